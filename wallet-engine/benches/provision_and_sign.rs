//! Benchmark (not a test): DKG vs restore, signing latency, concurrent signing throughput and
//! distributed ECDH, all in one run on the embedded default (in-process cosigners behind the
//! serializing local:// transport, SQLite files). Prints ratios measured in this run.
//!
//! `cargo bench -p wallet-engine --bench provision_and_sign`
//! (DKG uses the INSECURE fixture primes, so the DKG figure excludes prime generation.)

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;

    let t = Instant::now();
    let (_, p) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    let dkg = t.elapsed();
    assert_eq!(p, wallet_engine::Provisioned::Created);

    let t = Instant::now();
    let (wallet, p) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    let restore = t.elapsed();
    assert_eq!(p, wallet_engine::Provisioned::Restored);

    let d = digest("benchmark");
    let mut sign = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        wallet.sign_digest(&d, None).await.unwrap();
        sign.push(t.elapsed());
    }
    let tweak = digest("tweak");
    let mut tweaked = vec![];
    for _ in 0..rounds {
        let t = Instant::now();
        wallet.sign_digest(&d, Some(&tweak)).await.unwrap();
        tweaked.push(t.elapsed());
    }
    let concurrency = 8;
    let t = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let w = wallet.clone();
            tokio::spawn(async move { w.sign_digest(&d, None).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = t.elapsed();
    let q = wallet.identity_key();
    let mut ecdh = vec![];
    for _ in 0..rounds * 4 {
        let t = Instant::now();
        wallet.ecdh(&q).await.unwrap();
        ecdh.push(t.elapsed());
    }

    let (sign, tweaked, ecdh) = (median(sign), median(tweaked), median(ecdh));
    let seq_rate = 1.0 / secs(sign);
    let conc_rate = f64::from(concurrency) / secs(concurrent);
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("DKG (keygen + aux info, fixture primes, 3 parties): {:.2} s", secs(dkg));
    println!("restore (open sealed share, ask 2 cosigners):       {:.3} s", secs(restore));
    println!("sign, 2 of 3, median of {rounds}:                          {:.3} s", secs(sign));
    println!("sign with tweak, median of {rounds}:                       {:.3} s", secs(tweaked));
    println!("{concurrency} concurrent signs, wall:                          {:.3} s", secs(concurrent));
    println!("distributed ECDH with DLEQ proofs, median of {}:     {:.4} s", rounds * 4, secs(ecdh));
    println!("ratio restore / DKG:                   {:.4}", secs(restore) / secs(dkg));
    println!("ratio tweaked sign / sign:             {:.2}", secs(tweaked) / secs(sign));
    println!("ratio concurrent / sequential rate:    {:.2}", conc_rate / seq_rate);
    println!("ratio ECDH / sign:                     {:.4}", secs(ecdh) / secs(sign));
}
