//! Benchmark (not a test): signing transactions of 1, 4 and 16 inputs against as many
//! raw-digest signatures, the sessions each takes, and the sighash and BEEF parsing throughput of
//! wallet-bsv, in one run on the embedded default (in-process cosigners behind the serializing
//! local:// transport, SQLite files). Prints ratios measured in this run.
//!
//! `cargo bench -p wallet-engine --bench sign_transaction`

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use common::*;
use wallet_bsv::{sighash, Beef, BeefTx, BeefVersion, MerkleLeaf, MerklePath, Script};
use wallet_traits::{InputToSign, PublicKey};

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (b, sessions) = counting_builder(dir.path(), SECRET, &cosigners).await;
    let (wallet, _) = b.build().await.unwrap();
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let mut one_input = None;
    for n in [1usize, 4, 16] {
        let tweaks: Vec<Option<[u8; 32]>> = (0..n).map(|i| (i % 2 == 1).then(|| digest(&format!("t{i}")))).collect();
        let keys: Vec<PublicKey> = tweaks
            .iter()
            .map(|t| {
                t.map_or(wallet.identity_key(), |t| {
                    wallet_engine::tweaked_public_key(&wallet.identity_key(), &t).unwrap()
                })
            })
            .collect();
        let tx = spending(&keys, Script::p2pkh_lock(&[7; 20]));
        let inputs: Vec<InputToSign> = tweaks
            .iter()
            .enumerate()
            .map(|(i, t)| InputToSign { index: i as u32, sighash_type: 0x41, tweak: *t })
            .collect();
        let before = sessions.load(Ordering::SeqCst);
        let t = Instant::now();
        wallet.sign_transaction(&tx, &inputs, &[]).await.unwrap();
        let tx_time = t.elapsed();
        let tx_sessions = sessions.load(Ordering::SeqCst) - before;
        let t = Instant::now();
        for (i, tweak) in tweaks.iter().enumerate() {
            wallet.sign_digest(&digest(&format!("raw {i}")), tweak.as_ref()).await.unwrap();
        }
        let raw_time = t.elapsed();
        let one = *one_input.get_or_insert(tx_time.as_secs_f64());
        println!(
            "transaction of {n:>2} inputs: {:.3} s in {tx_sessions} session(s); {n:>2} raw-digest signatures: {:.3} s in {n} sessions",
            tx_time.as_secs_f64(),
            raw_time.as_secs_f64()
        );
        println!(
            "ratio transaction / raw digests, {n:>2} inputs:  {:.2}",
            tx_time.as_secs_f64() / raw_time.as_secs_f64()
        );
        println!("ratio {n:>2}-input / 1-input transaction:       {:.2}", tx_time.as_secs_f64() / one);
    }

    // wallet-bsv parsing throughput.
    let keys: Vec<PublicKey> = (0..10).map(|_| wallet.identity_key()).collect();
    let tx = spending(&keys, Script::p2pkh_lock(&[7; 20]));
    let rounds = 20_000;
    let t = Instant::now();
    for i in 0..rounds {
        std::hint::black_box(sighash::input_digest(&tx, i % 10, 0x41).unwrap());
    }
    let sighash_time = t.elapsed();
    let leaves = (0..8u64).map(|o| MerkleLeaf::hash(o, digest(&format!("leaf {o}")), o == 3)).collect();
    let beef = Beef {
        version: BeefVersion::V2,
        bumps: vec![MerklePath::new(1, vec![leaves], true).unwrap()],
        txs: vec![BeefTx::Full { tx: tx.clone(), bump: None }],
    };
    let bytes = beef.to_bytes().unwrap();
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(Beef::from_bytes(&bytes).unwrap());
    }
    let beef_time = t.elapsed();
    println!("sighash of a 10-input transaction: {:.0} digests/s", per_second(rounds, sighash_time));
    println!(
        "BEEF parse ({} bytes, one 8-leaf path, one 10-input tx): {:.0} BEEFs/s",
        bytes.len(),
        per_second(rounds, beef_time)
    );
}
