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

/// The median time of `n` runs of `op`, one after the other.
async fn median_of<F: std::future::Future<Output = ()>>(n: usize, mut op: impl FnMut(usize) -> F) -> Duration {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        op(i).await;
        times.push(t.elapsed());
    }
    median(times)
}

/// A fresh counterparty's compressed public key, in hex.
fn fresh_counterparty() -> String {
    let k = k256::SecretKey::random(&mut rand::rngs::OsRng);
    hex::encode(k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&k.public_key(), true).as_bytes())
}

fn key_args(counterparty: String, key_id: &str) -> wallet_brc100::GetPublicKeyArgs {
    wallet_brc100::GetPublicKeyArgs {
        identity_key: false,
        protocol_id: Some((2, "bench protocol x".into())),
        key_id: Some(key_id.into()),
        counterparty: Some(counterparty),
        for_self: Some(false),
    }
}

/// Median BRC-42 derivation through the key methods, uncached (a fresh counterparty: one
/// distributed ECDH) and cached (the same counterparty, another key id), over `n` pairs.
async fn derivations(methods: &wallet_brc100::KeyMethods, n: usize) -> (Duration, Duration) {
    let (mut uncached, mut cached) = (vec![], vec![]);
    for i in 0..n {
        let cp = fresh_counterparty();
        let t = Instant::now();
        methods.get_public_key(key_args(cp.clone(), "1")).await.unwrap();
        uncached.push(t.elapsed());
        let t = Instant::now();
        methods.get_public_key(key_args(cp, &format!("{i}"))).await.unwrap();
        cached.push(t.elapsed());
    }
    (median(uncached), median(cached))
}

// One straight run from DKG to the ratios, in the order they are printed: its length is the list
// of measurements, each a few lines.
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
    let sign = median_of(rounds, |_| async { wallet.sign_digest(&d, None).await.map(drop).unwrap() }).await;
    let tweak = digest("tweak");
    let tweaked = median_of(rounds, |_| async { wallet.sign_digest(&d, Some(&tweak)).await.map(drop).unwrap() }).await;
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
    let ecdh = median_of(rounds * 4, |_| async { wallet.distributed_ecdh(&q).await.map(drop).unwrap() }).await;

    // BRC-42 derivations and createSignature through the BRC-100 key methods.
    let w = std::sync::Arc::new(wallet.clone());
    let methods = wallet_brc100::KeyMethods::new(w.clone(), w, wallet_engine::Network::Mainnet);
    let (uncached, cached) = derivations(&methods, rounds * 4).await;
    let create_sig = median_of(rounds, |_| {
        let args = wallet_brc100::CreateSignatureArgs {
            key: wallet_brc100::KeyArgs {
                protocol_id: (2, "bench protocol x".into()),
                key_id: "1".into(),
                counterparty: Some(fresh_counterparty()),
            },
            data: Some(b"bench".to_vec()),
            hash_to_directly_sign: None,
        };
        let methods = &methods;
        async move { methods.create_signature(args).await.map(drop).unwrap() }
    })
    .await;
    let seq_rate = 1.0 / secs(sign);
    let conc_rate = f64::from(concurrency) / secs(concurrent);
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("DKG (keygen + aux info, fixture primes, 3 parties): {:.2} s", secs(dkg));
    println!("restore (open sealed share, ask 2 cosigners):       {:.3} s", secs(restore));
    println!("sign, 2 of 3, median of {rounds}:                          {:.3} s", secs(sign));
    println!("sign with tweak, median of {rounds}:                       {:.3} s", secs(tweaked));
    println!("{concurrency} concurrent signs, wall:                          {:.3} s", secs(concurrent));
    println!("distributed ECDH with DLEQ proofs, median of {}:     {:.4} s", rounds * 4, secs(ecdh));
    println!("BRC-42 derivation, uncached (distributed ECDH), median of {}: {:.4} s", rounds * 4, secs(uncached));
    println!("BRC-42 derivation, cached (sealed cache), median of {}:      {:.4} s", rounds * 4, secs(cached));
    println!("createSignature (derivation + 2-of-3 signing), median of {rounds}: {:.3} s", secs(create_sig));
    println!("ratio cached / uncached derivation:    {:.3}", secs(cached) / secs(uncached));
    println!("ratio createSignature / raw sign:      {:.2}", secs(create_sig) / secs(sign));
    println!("ratio restore / DKG:                   {:.4}", secs(restore) / secs(dkg));
    println!("ratio tweaked sign / sign:             {:.2}", secs(tweaked) / secs(sign));
    println!("ratio concurrent / sequential rate:    {:.2}", conc_rate / seq_rate);
    println!("ratio ECDH / sign:                     {:.4}", secs(ecdh) / secs(sign));
}
