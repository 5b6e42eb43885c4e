//! Benchmark (not a test): what a cosigner's spending policy costs, in one run.
//!
//! 1. Signing one transaction input on the embedded default (in-process cosigners, SQLite files)
//!    without a policy and with one (each session assessed, decided and charged in the cosigner's
//!    store before the protocol runs): rounds interleave the two, the ratio is with / without.
//! 2. The decision alone (`SpendingPolicy::review_transaction`: assess, then settle in the store),
//!    on SQLite and, when MPC_TEST_POSTGRES_URL is set, on Postgres: the median of sequential
//!    decisions, and 32 decisions racing for a window that holds 16 (the wall time, and that
//!    exactly 16 were charged).
//!
//! `cargo bench -p mpc-wallet --bench policy` (BENCH_ROUNDS, default 9)

#[path = "../src/embedded.rs"]
#[allow(dead_code)] // the demo's warning text
mod embedded;
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use fleet::{agent_builder, prefill, StoreSpec, SECRET};
use wallet_bsv::{hash::hash160, Script, Transaction, TxId, TxInput, TxOutput};
use wallet_engine::{ShareSecret, SpendingPolicy, Wallet};
use wallet_policy::Policy;
use wallet_traits::{InputToSign, KeyId, PublicKey, ShareStore, WalletId};

const POLICY: &str = "max_sats_per_tx = 100000000\nmax_sats_per_window = 100000000000\n";

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(9)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// Spends a 10,000-satoshi output of `key` (`n` makes it another transaction).
fn payment(key: &PublicKey, n: u64) -> Transaction {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_be_bytes());
    Transaction {
        version: 1,
        inputs: vec![TxInput {
            source_txid: TxId(id),
            source_vout: 0,
            unlocking_script: Script::default(),
            sequence: u32::MAX,
            source_output: Some(TxOutput {
                satoshis: 10_000,
                locking_script: Script::p2pkh_lock(&hash160(key.as_bytes())),
            }),
        }],
        outputs: vec![TxOutput { satoshis: 9_500, locking_script: Script::p2pkh_lock(&[7; 20]) }],
        lock_time: 0,
    }
}

/// `prefix` and a random suffix: a wallet or namespace of this run alone.
fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", &wallet_traits::ExecutionId::random().to_string()[..12])
}

const ALL: [InputToSign; 1] = [InputToSign { index: 0, sighash_type: 0x41, tweak: None }];

/// A wallet on the embedded default in a directory of its own, its cosigners enforcing `policy`.
fn embedded_wallet(rt: &tokio::runtime::Runtime, policy: Option<&Policy>) -> (Wallet, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let agent_store = StoreSpec::sqlite(&dir.path().join("agent.db"));
    prefill(&agent_store, "agent", 1);
    for i in 1..=2 {
        prefill(&StoreSpec::sqlite(&dir.path().join(format!("cosigner-{i}.db"))), "cosigner", 1);
    }
    let (agent, cosigners) =
        rt.block_on(embedded::start(dir.path(), &ShareSecret::new(SECRET).unwrap(), false, policy)).unwrap();
    let builder = cosigners.iter().fold(agent_builder(&agent_store, agent), |b, t| b.cosigner(t.clone()));
    let (wallet, _) = rt.block_on(builder.multiexp_tables(false).build()).unwrap();
    (wallet, dir)
}

fn signing(rt: &tokio::runtime::Runtime) {
    let policy = Policy::from_toml(POLICY).unwrap();
    let (plain, _d1) = embedded_wallet(rt, None);
    let (guarded, _d2) = embedded_wallet(rt, Some(&policy));
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds() as u64 {
        for (wallet, times) in [(&plain, &mut without), (&guarded, &mut with)] {
            let tx = payment(&wallet.identity_key(), round);
            let t = Instant::now();
            rt.block_on(wallet.sign_transaction(&tx, &ALL, &[])).unwrap();
            times.push(t.elapsed());
        }
    }
    let (a, b) = (median(without), median(with));
    println!(
        "signing one input, embedded default: without a policy {:.1} ms, with one {:.1} ms, ratio {:.3}",
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() / a.as_secs_f64()
    );
}

fn decisions(rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn ShareStore>) {
    let root = PublicKey::from_slice(&hex::decode(fleet::public_key_of(0x31)).unwrap()).unwrap();
    let key = KeyId::new(WalletId::new(fresh("bench")).unwrap(), 0);
    let open = SpendingPolicy::new(Policy::from_toml(POLICY).unwrap(), store.clone(), 1).unwrap();
    let mut times = Vec::new();
    for n in 0..200u64 {
        let tx = payment(&root, 1_000_000 + n);
        let t = Instant::now();
        rt.block_on(open.review_transaction(&key, &root, &tx, &ALL, &[])).unwrap();
        times.push(t.elapsed());
    }
    let one = median(times);
    // 32 racing for a window of 16 payments of 10,000 satoshis.
    let key = KeyId::new(WalletId::new(fresh("race")).unwrap(), 0);
    let tight =
        Arc::new(SpendingPolicy::new(Policy::from_toml("max_sats_per_window = 160000\n").unwrap(), store, 1).unwrap());
    let t = Instant::now();
    let allowed: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..32u64)
            .map(|n| {
                let (tight, key) = (tight.clone(), key.clone());
                tokio::spawn(async move {
                    let tx = payment(&root, 2_000_000 + n);
                    tight.review_transaction(&key, &root, &tx, &ALL, &[]).await.is_ok()
                })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(task.await.unwrap());
        }
        allowed
    });
    let race = t.elapsed();
    assert_eq!(allowed, 16, "exactly the window was charged");
    println!(
        "policy decision on {name}: {:.2} ms each (median of 200); 32 racing for a window of 16: {:.1} ms in all \
         ({:.0} decisions/s), {allowed} allowed",
        one.as_secs_f64() * 1e3,
        race.as_secs_f64() * 1e3,
        32.0 / race.as_secs_f64()
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    signing(&rt);
    let dir = tempfile::tempdir().unwrap();
    decisions(&rt, "SQLite", rt.block_on(StoreSpec::sqlite(&dir.path().join("cosigner.db")).open()));
    match std::env::var("MPC_TEST_POSTGRES_URL") {
        Ok(url) => {
            let mut options = wallet_traits::Options::new();
            options.insert("namespace".into(), fresh("bench"));
            let store = rt.block_on(wallet_traits::Plugins::from_inventory().open_store(&url, options)).unwrap();
            decisions(&rt, "Postgres", store);
        }
        Err(_) => {
            println!("policy decision on Postgres: skipped (set MPC_TEST_POSTGRES_URL: bash scripts/postgres.sh)")
        }
    }
}
