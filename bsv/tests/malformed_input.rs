//! Every decoder of wallet-bsv refuses malformed input with an error and never panics: random
//! bytes and mutations of valid encodings (bit flips, truncations, insertions, overwritten
//! counts), 100,000 cases per decoder in the normal run. A longer run for fuzzing:
//! `MPC_FUZZ_CASES=10000000 cargo test --release -p wallet-bsv --test malformed_input`
//! (`MPC_FUZZ_SEED` replays a run; the seed of each run is printed).

use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use wallet_bsv::{
    AtomicBeef, Beef, BeefTx, BeefVersion, MerkleLeaf, MerklePath, Script, Transaction, TxId, TxInput, TxOutput,
};
use wallet_traits::ErrorKind;

fn cases() -> usize {
    std::env::var("MPC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn rng() -> StdRng {
    let seed = std::env::var("MPC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("MPC_FUZZ_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// A transaction of `n` inputs and outputs, with source outputs (Extended Format).
fn tx(rng: &mut StdRng, n: usize) -> Transaction {
    let script = |rng: &mut StdRng| {
        let mut b = vec![0u8; rng.gen_range(0..40)];
        rng.fill_bytes(&mut b);
        Script::new(b)
    };
    Transaction {
        version: 1,
        inputs: (0..n)
            .map(|_| TxInput {
                source_txid: TxId(rng.gen()),
                source_vout: rng.gen_range(0..4),
                unlocking_script: script(rng),
                sequence: u32::MAX,
                source_output: Some(TxOutput { satoshis: rng.gen(), locking_script: script(rng) }),
            })
            .collect(),
        outputs: (0..n).map(|_| TxOutput { satoshis: rng.gen(), locking_script: script(rng) }).collect(),
        lock_time: rng.gen(),
    }
}

/// Valid encodings of every kind: what the mutations start from.
fn seeds(rng: &mut StdRng) -> Vec<Vec<u8>> {
    let a = tx(rng, 1);
    let b = tx(rng, 3);
    let txids: Vec<[u8; 32]> = (0..5).map(|_| rng.gen()).collect();
    let path = MerklePath::new(
        800_000,
        vec![txids.iter().enumerate().map(|(i, t)| MerkleLeaf::hash(i as u64, *t, true)).collect()],
        true,
    )
    .unwrap();
    let beef = |version| Beef {
        version,
        bumps: vec![path.clone()],
        txs: vec![BeefTx::TxidOnly(TxId(txids[0])), BeefTx::Full { tx: a.clone(), bump: None }],
    };
    let v1 = Beef { txs: vec![BeefTx::Full { tx: b.clone(), bump: None }], ..beef(BeefVersion::V1) };
    let atomic = AtomicBeef { subject: a.txid(), beef: beef(BeefVersion::V2) };
    vec![
        a.to_bytes(),
        b.to_ef().unwrap(),
        path.to_bytes(),
        beef(BeefVersion::V2).to_bytes().unwrap(),
        v1.to_bytes().unwrap(),
        atomic.to_bytes().unwrap(),
    ]
}

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.gen_range(1..4) {
        if b.is_empty() {
            b.push(rng.gen());
        }
        let at = rng.gen_range(0..b.len());
        match rng.gen_range(0..5) {
            0 => b[at] ^= 1 << rng.gen_range(0..8),
            1 => b.truncate(at),
            2 => b.insert(at, rng.gen()),
            // A count or length that claims the most it can.
            3 => b.splice(at..at, [0xff; 9]).for_each(drop),
            _ => b[at] = rng.gen(),
        }
    }
    b
}

/// Runs every decoder on `bytes`; each either parses or refuses as InvalidInput, and what
/// parses writes back and parses again to the same value. Returns how many decoders parsed it.
fn decode_all(bytes: &[u8]) -> usize {
    let mut parsed = 0;
    let refused = |e: wallet_traits::Error| assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    match Transaction::from_bytes(bytes) {
        Ok(tx) => {
            parsed += 1;
            assert_eq!(Transaction::from_bytes(&tx.to_bytes()).unwrap().txid(), tx.txid());
        }
        Err(e) => refused(e),
    }
    match MerklePath::from_bytes(bytes) {
        Ok(p) => {
            parsed += 1;
            assert_eq!(MerklePath::from_bytes(&p.to_bytes()).unwrap(), p);
        }
        Err(e) => refused(e),
    }
    match Beef::from_bytes(bytes) {
        Ok(beef) => {
            parsed += 1;
            if let Err(e) = beef.verify_structure(true) {
                refused(e);
            }
            assert_eq!(Beef::from_bytes(&beef.to_bytes().unwrap()).unwrap(), beef);
        }
        Err(e) => refused(e),
    }
    match AtomicBeef::from_bytes(bytes) {
        Ok(atomic) => {
            parsed += 1;
            assert_eq!(AtomicBeef::from_bytes(&atomic.to_bytes().unwrap()).unwrap(), atomic);
        }
        Err(e) => refused(e),
    }
    if let Err(e) = Script::new(bytes.to_vec()).chunks() {
        refused(e);
    }
    parsed
}

#[test]
fn random_bytes_are_refused_or_round_trip() {
    let mut rng = rng();
    let prefixes: [&[u8]; 4] = [&[], &[1, 0, 0xbe, 0xef], &[2, 0, 0xbe, 0xef], &[1, 1, 1, 1]];
    for i in 0..cases() {
        let mut b = prefixes[i % prefixes.len()].to_vec();
        let n = rng.gen_range(0..200);
        b.extend((0..n).map(|_| rng.gen::<u8>()));
        decode_all(&b);
    }
}

#[test]
fn mutated_encodings_are_refused_or_round_trip() {
    let mut rng = rng();
    let seeds = seeds(&mut rng);
    for seed in &seeds {
        assert_eq!(decode_all(seed), 1, "each seed parses as what it is");
    }
    let mut accepted = 0;
    for i in 0..cases() {
        let m = mutate(&mut rng, &seeds[i % seeds.len()]);
        accepted += usize::from(decode_all(&m) > 0);
    }
    // Mutations hit both sides: many are refused, and some (a flipped script byte) still parse.
    println!("{accepted} of {} mutations parsed", cases());
    assert!(accepted > 0 && accepted < cases());
}

#[test]
fn counts_larger_than_the_input_are_refused_before_allocating() {
    let huge = [0xff; 9];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for prefix in [&[1u8, 0, 0, 0][..], &[1, 0, 0xbe, 0xef], &[2, 0, 0xbe, 0xef], &[1, 0, 0xbe, 0xef, 0]] {
        let mut b = prefix.to_vec();
        b.extend_from_slice(&huge);
        inputs.push(b);
    }
    // A merkle level of 2^64 - 1 nodes, and a script push of 4 GiB.
    inputs.push([&[0x01, 0x01][..], &huge].concat());
    for b in &inputs {
        decode_all(b);
        assert!(
            Transaction::from_bytes(b).is_err() && Beef::from_bytes(b).is_err() && MerklePath::from_bytes(b).is_err()
        );
    }
    let e = Script::new(vec![0x4e, 0xff, 0xff, 0xff, 0xff, 0]).chunks().unwrap_err();
    assert!(e.message().contains("more bytes"), "{e}");
}

/// A path as wide as a block of 2^15 transactions, all of them flagged, inside a BEEF: reading
/// and checking it is linear in its nodes (a per-transaction search of the path would take
/// 2^30 steps here).
#[test]
fn wide_merkle_paths_are_read_and_checked_in_one_pass() {
    let n = 1u64 << 15;
    let leaves = (0..n).map(|o| MerkleLeaf::hash(o, [(o % 251) as u8; 32], true)).collect();
    let path = MerklePath::new(1, vec![leaves], true).unwrap();
    let beef = Beef { version: BeefVersion::V2, bumps: vec![path], txs: vec![] };
    let bytes = beef.to_bytes().unwrap();
    let back = Beef::from_bytes(&bytes).unwrap();
    let roots = back.verify_structure(false).unwrap();
    assert_eq!(roots.get(&1), Some(&back.bumps[0].root()));
}
