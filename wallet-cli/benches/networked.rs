//! Benchmark (not a test): the same wallet operations with in-process cosigners (`local://`) and
//! with two `mpc-wallet cosigner` processes over HTTP and over gRPC on 127.0.0.1, in one run, with
//! the networked / in-process ratios. Each setup gets its own wallet and SQLite files; prime pools
//! are filled with the INSECURE fixture primes, so DKG figures exclude prime generation.
//!
//! `cargo bench -p mpc-wallet --bench networked` (BENCH_ROUNDS, default 5)

// The demo's embedded default: two in-process cosigners behind `local://`, SQLite files.
mod common;
#[path = "../src/embedded.rs"]
#[allow(dead_code)] // the demo's warning text
mod embedded;
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::time::{Duration, Instant};

use fleet::Fleet;
use wallet_engine::{Provisioned, Wallet, WalletBuilder};

/// What one setup measured.
struct Figures {
    dkg: Duration,
    restore: Duration,
    sign: Duration,
    ecdh: Duration,
    concurrent: Duration,
}

const CONCURRENCY: u8 = 8;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// DKG, restore, then signing and ECDH figures; `build` makes a fresh builder for the same wallet.
async fn measure(rounds: usize, build: impl Fn() -> WalletBuilder) -> Figures {
    let t = Instant::now();
    let (_, p) = build().build().await.unwrap();
    let dkg = t.elapsed();
    assert_eq!(p, Provisioned::Created);
    let t = Instant::now();
    let (wallet, p) = build().build().await.unwrap();
    let restore = t.elapsed();
    assert_eq!(p, Provisioned::Restored);
    let pk = wallet.identity_key();
    let mut sign = vec![];
    for i in 0..rounds {
        let d = [i as u8; 32];
        let t = Instant::now();
        let sig = wallet.sign_digest(&d, None).await.unwrap();
        sign.push(t.elapsed());
        assert!(wallet_engine::verify_signature(&pk, &d, &sig));
    }
    let mut ecdh = vec![];
    for _ in 0..rounds * 4 {
        let t = Instant::now();
        wallet.distributed_ecdh(&pk).await.unwrap();
        ecdh.push(t.elapsed());
    }
    let concurrent = concurrent_signs(&wallet).await;
    Figures { dkg, restore, sign: median(sign), ecdh: median(ecdh), concurrent }
}

async fn concurrent_signs(wallet: &Wallet) -> Duration {
    let t = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|i| {
            let w = wallet.clone();
            tokio::spawn(async move { w.sign_digest(&[i; 32], None).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    t.elapsed()
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let runtime = fleet::runtime();

    let dir = tempfile::tempdir().unwrap();
    let local = runtime.block_on(measure(rounds, common::embedded_wallet(&runtime, dir.path())));

    // Fleets start their processes outside the runtime (they block while waiting for them).
    let http_fleet = Fleet::new("http");
    let http = runtime.block_on(measure(rounds, || http_fleet.wallet_builder()));
    drop(http_fleet);
    let grpc_fleet = Fleet::new("grpc");
    let grpc = runtime.block_on(measure(rounds, || grpc_fleet.wallet_builder()));
    drop(grpc_fleet);

    let s = |d: Duration| d.as_secs_f64();
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("{:<44} {:>10} {:>10} {:>10}", "measure (seconds)", "local", "http", "grpc");
    let row = |name: &str, f: fn(&Figures) -> Duration| {
        println!("{name:<44} {:>10.4} {:>10.4} {:>10.4}", s(f(&local)), s(f(&http)), s(f(&grpc)));
    };
    row("DKG (keygen + aux info, fixture primes)", |f| f.dkg);
    row("restore (open share, ask 2 cosigners)", |f| f.restore);
    row(&format!("sign 2 of 3, median of {rounds}"), |f| f.sign);
    row(&format!("distributed ECDH, median of {}", rounds * 4), |f| f.ecdh);
    row(&format!("{CONCURRENCY} concurrent signs, wall"), |f| f.concurrent);
    println!("{:<44} {:>10} {:>10}", "ratio to local (same run)", "http", "grpc");
    let ratio = |name: &str, f: fn(&Figures) -> Duration| {
        println!("{name:<44} {:>10.2} {:>10.2}", s(f(&http)) / s(f(&local)), s(f(&grpc)) / s(f(&local)));
    };
    ratio("DKG", |f| f.dkg);
    ratio("restore", |f| f.restore);
    ratio("sign", |f| f.sign);
    ratio("distributed ECDH", |f| f.ecdh);
    ratio("concurrent signs", |f| f.concurrent);
}
