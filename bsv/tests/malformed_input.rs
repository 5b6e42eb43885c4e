//! Every decoder of wallet-bsv refuses malformed input with an error and never panics: random
//! bytes and mutations of valid encodings (bit flips, truncations, insertions, overwritten
//! counts), 100,000 cases per decoder in the normal run. The script interpreter gets the same:
//! random and mutated scripts, each run to a verdict without panicking and within its bounds. A longer run for fuzzing:
//! `MPC_FUZZ_CASES=10000000 cargo test --release -p wallet-bsv --test malformed_input`
//! (`MPC_FUZZ_SEED` replays a run; the seed of each run is printed).

use k256::ecdsa::SigningKey;
use rand::{rngs::StdRng, seq::SliceRandom, Rng, RngCore, SeedableRng};
use wallet_bsv::{
    interpreter, sighash, AtomicBeef, Beef, BeefTx, BeefVersion, MerkleLeaf, MerklePath, Script, Transaction, TxId,
    TxInput, TxOutput,
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
            // An Extended Format transaction carries what the interpreter needs: run every input.
            if tx.inputs.iter().all(|i| i.source_output.is_some()) {
                if let Err(e) = interpreter::verify_spends(&tx) {
                    refused(e);
                }
            }
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
    // Each seed parses as what it is. Random bytes inside one may happen to read as another kind
    // too (a merkle path's txids as a transaction's inputs), so other decoders are not asserted.
    for seed in &seeds {
        assert!(decode_all(seed) >= 1);
    }
    assert!(seeds[..2].iter().all(|s| Transaction::from_bytes(s).is_ok()));
    assert!(MerklePath::from_bytes(&seeds[2]).is_ok());
    assert!(seeds[3..5].iter().all(|s| Beef::from_bytes(s).is_ok()));
    assert!(AtomicBeef::from_bytes(&seeds[5]).is_ok());
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

/// Opcodes the random scripts favour: pushes of every form, flow control, and the opcodes that
/// allocate, loop over items or check signatures.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x04, 0x4c, 0x4d, 0x4e, 0x4f, 0x51, 0x52, 0x53, 0x58, 0x60, 0x62, 0x63, 0x64, 0x65, 0x67, 0x68,
    0x69, 0x6a, 0x6b, 0x6c, 0x6e, 0x6f, 0x74, 0x76, 0x79, 0x7a, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x87, 0x88,
    0x8b, 0x93, 0x95, 0x96, 0x97, 0x98, 0x99, 0xa5, 0xa8, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb3, 0xb6, 0xb7,
];

fn random_script(rng: &mut StdRng, most: usize) -> Vec<u8> {
    let n = rng.gen_range(0..most);
    (0..n).map(|_| if rng.gen_bool(0.6) { *INTERESTING.choose(rng).unwrap() } else { rng.gen() }).collect()
}

fn spend_tx(version: u32, unlocking: Vec<u8>) -> Transaction {
    Transaction {
        version,
        inputs: vec![TxInput {
            source_txid: TxId([5; 32]),
            source_vout: 0,
            unlocking_script: Script::new(unlocking),
            sequence: u32::MAX,
            source_output: None,
        }],
        outputs: vec![TxOutput { satoshis: 1, locking_script: Script::new(vec![0x51]) }],
        lock_time: 0,
    }
}

/// Runs one spend: a verdict (never a panic) or an `InvalidInput` refusal. Its time is bounded
/// by the interpreter's work budget, which its own unit tests check; tests assert no timings.
fn run_spend(tx: &Transaction, locking: &[u8]) -> bool {
    let result = interpreter::verify_input(tx, 0, &Script::new(locking.to_vec()), 1000);
    match result {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.message().starts_with("input 0: "), "{e}");
            false
        }
    }
}

#[test]
fn random_scripts_run_to_a_verdict_within_bounds() {
    let mut rng = rng();
    let mut accepted = 0;
    for i in 0..cases() {
        let version = 1 + (i % 2) as u32;
        let tx = spend_tx(version, random_script(&mut rng, 24));
        let locking = random_script(&mut rng, 200);
        accepted += usize::from(run_spend(&tx, &locking));
    }
    println!("{accepted} of {} random spends succeed", cases());
}

/// Valid spends (P2PKH, 2-of-3 multisig, and a script of splice and arithmetic opcodes),
/// mutated in their unlocking or locking script.
#[test]
fn mutated_spends_run_to_a_verdict_within_bounds() {
    let mut rng = rng();
    let keys: Vec<SigningKey> = (1..=3u8).map(|i| SigningKey::from_slice(&[i; 32]).unwrap()).collect();
    let public: Vec<[u8; 33]> =
        keys.iter().map(|k| k.verifying_key().to_sec1_bytes().as_ref().try_into().unwrap()).collect();
    let tx = spend_tx(1, vec![]);
    let sign = |k: &SigningKey, lock: &Script| {
        let digest = sighash::digest(&tx, 0, lock.as_bytes(), 1000, sighash::ALL_FORKID).unwrap();
        let (sig, _) = k.sign_prehash_recoverable(&digest).unwrap();
        [sig.to_der().as_bytes(), &[0x41]].concat()
    };
    let p2pkh = Script::p2pkh_lock_to(&public[0]);
    let multisig =
        public.iter().fold(Script::default().push_op(0x52), |s, p| s.push_data(p)).push_op(0x53).push_op(0xae);
    let arithmetic = Script::from_hex("9355887e760361626388517f8252887c750164548081016488755c53970087").unwrap();
    let seeds: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (Script::p2pkh_unlock(&sign(&keys[0], &p2pkh), &public[0]).into_bytes(), p2pkh.into_bytes()),
        (
            Script::default()
                .push_op(0)
                .push_data(&sign(&keys[0], &multisig))
                .push_data(&sign(&keys[2], &multisig))
                .into_bytes(),
            multisig.into_bytes(),
        ),
        (Script::from_hex("01610262635253").unwrap().into_bytes(), arithmetic.into_bytes()),
    ];
    for (unlocking, locking) in &seeds {
        assert!(run_spend(&spend_tx(1, unlocking.clone()), locking), "each seed is valid");
    }
    let mut accepted = 0;
    for i in 0..cases() {
        let (unlocking, locking) = &seeds[i % seeds.len()];
        let (mut unlocking, mut locking) = (unlocking.clone(), locking.clone());
        match rng.gen_range(0..3) {
            0 => unlocking = mutate(&mut rng, &unlocking),
            1 => locking = mutate(&mut rng, &locking),
            _ => (unlocking, locking) = (mutate(&mut rng, &unlocking), mutate(&mut rng, &locking)),
        }
        let version = 1 + (i / seeds.len() % 2) as u32;
        accepted += usize::from(run_spend(&spend_tx(version, unlocking), &locking));
    }
    println!("{accepted} of {} mutated spends succeed", cases());
    assert!(accepted < cases());
}
