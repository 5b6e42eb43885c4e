//! Benchmark (not a test): signing with cggmp21 as releases before cggmp24 did, with cggmp24, and
//! with cggmp24 plus precomputed multiexponentiation tables, over in-process cosigners
//! (`local://`), HTTP and gRPC cosigner processes on 127.0.0.1, in one run; and the migration
//! (with and without tables), start-up (restore) with tables, a DKG and a further key.
//!
//! Per transport: two groups of parties (one making tables, one not), each on its own files.
//! The cggmp21 wallets are made by a trusted dealer (the same shares a cggmp21 DKG makes), the
//! cggmp24 ones by migrating such a wallet. Signing rounds interleave the three variants, so load
//! changes hit them alike; the ratios are to cggmp21 in the same run. Prime pools are filled with
//! the INSECURE fixture primes, so DKG and migration figures exclude prime generation.
//!
//! `cargo bench -p mpc-wallet --bench protocols` (BENCH_ROUNDS, default 9)

#[path = "../src/embedded.rs"]
#[allow(dead_code)] // the demo's warning text
mod embedded;
#[path = "../tests/fleet/mod.rs"]
mod fleet;

use std::time::{Duration, Instant};

use fleet::{agent_builder, prefill, Fleet, StoreSpec, SECRET};
use wallet_engine::{Protocol, Provisioned, Sealer, ShareSecret, Wallet, WalletBuilder};
use wallet_traits::{KeyId, WalletId};

/// The parties of one group: the agent's store and a fresh builder for wallet `id` on them.
struct Group {
    stores: Vec<StoreSpec>,
    builder: Box<dyn Fn(&str) -> WalletBuilder>,
    tables: bool,
    _fleet: Option<Fleet>,
    _dir: Option<tempfile::TempDir>,
}

impl Group {
    fn local(runtime: &tokio::runtime::Runtime, tables: bool) -> Group {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<StoreSpec> = ["agent.db", "cosigner-1.db", "cosigner-2.db"]
            .iter()
            .map(|f| StoreSpec::sqlite(&dir.path().join(f)))
            .collect();
        prefill(&stores[0], "agent", 3);
        for s in &stores[1..] {
            prefill(s, "cosigner", 3);
        }
        let (agent, cosigners) =
            runtime.block_on(embedded::start(dir.path(), &ShareSecret::new(SECRET).unwrap(), tables, None)).unwrap();
        let agent_store = stores[0].clone();
        let builder = Box::new(move |id: &str| {
            cosigners
                .iter()
                .fold(agent_builder(&agent_store, agent.clone()), |b, t| b.cosigner(t.clone()))
                .wallet_id(id)
                .multiexp_tables(tables)
        });
        Group { stores, builder, tables, _fleet: None, _dir: Some(dir) }
    }

    fn networked(scheme: &'static str, tables: bool) -> Group {
        let fleet = Fleet::with_cosigner_env(scheme, &[("MPC_MULTIEXP_TABLES", if tables { "true" } else { "false" })]);
        // Fleet::build filled two runs per party; a migration and a DKG take one each.
        let stores = fleet.stores.clone();
        let builder = {
            let (stores0, keys0, endpoints) = (fleet.stores[0].clone(), fleet.keys[0].clone(), fleet.endpoints.clone());
            Box::new(move |id: &str| {
                let mut options = wallet_traits::Options::new();
                options.insert("jwt_secret".into(), fleet::JWT.into());
                endpoints
                    .iter()
                    .fold(agent_builder(&stores0, keys0.clone()).transport_options(options), |b, e| b.cosigner_url(e))
                    .wallet_id(id)
                    .multiexp_tables(tables)
            })
        };
        Group { stores, builder, tables, _fleet: Some(fleet), _dir: None }
    }

    /// Writes a cggmp21 wallet `id` (trusted dealer) into every party's store.
    async fn cggmp21_wallet(&self, id: &str) {
        let key = KeyId::new(WalletId::new(id).unwrap(), 0);
        let s = Sealer::new(ShareSecret::new(SECRET).unwrap(), Default::default());
        let mut root = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut root);
        let records =
            wallet_engine::insecure_testing::import_key(root, 2, &key, &[&s, &s, &s], Protocol::Cggmp21).unwrap();
        for (spec, r) in self.stores.iter().zip(&records) {
            spec.open().await.create_share(r).await.unwrap();
        }
    }

    async fn build(&self, id: &str, migrate: bool) -> (Wallet, Provisioned, Duration) {
        let b = (self.builder)(id);
        let b = if migrate { b.migrate() } else { b };
        let t = Instant::now();
        let (w, p) = b.build().await.unwrap();
        (w, p, t.elapsed())
    }

    async fn record_size(&self, id: &str) -> usize {
        self.record_size_of(id, 0).await
    }

    async fn record_size_of(&self, id: &str, index: u32) -> usize {
        let key = KeyId::new(WalletId::new(id).unwrap(), index);
        self.stores[0].open().await.load_share(&key).await.unwrap().map_or(0, |r| r.sealed.len())
    }
}

/// What one transport measured.
#[derive(Default)]
struct Figures {
    sign: [Vec<Duration>; 3],
    migration: [Duration; 2],
    restore: [Duration; 3],
    dkg: Duration,
    /// `Wallet::key` on key 0's wallet, each a new key.
    further_key: Vec<Duration>,
    /// A new builder for a further key (opening key 0's record first).
    further_key_cold: Duration,
    /// Of it, the threshold keygen run alone (progress report).
    further_keygen: Duration,
    record: [usize; 3],
    further_record: usize,
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

async fn measure(rounds: usize, plain: &Group, tables: &Group) -> Figures {
    assert!(!plain.tables && tables.tables);
    let mut f = Figures::default();
    for (g, id) in [(plain, "bench-c21"), (plain, "bench-c24"), (tables, "bench-c24t")] {
        g.cggmp21_wallet(id).await;
    }
    let (_, p, d) = plain.build("bench-c24", true).await;
    assert_eq!(p, Provisioned::Migrated);
    f.migration[0] = d;
    let (_, p, d) = tables.build("bench-c24t", true).await;
    assert_eq!(p, Provisioned::Migrated);
    f.migration[1] = d;
    let mut wallets = Vec::new();
    for (k, (g, id, protocol)) in [
        (plain, "bench-c21", Protocol::Cggmp21),
        (plain, "bench-c24", Protocol::Cggmp24),
        (tables, "bench-c24t", Protocol::Cggmp24),
    ]
    .into_iter()
    .enumerate()
    {
        let (w, p, d) = g.build(id, false).await;
        assert_eq!((p, w.protocol()), (Provisioned::Restored, protocol));
        f.restore[k] = d;
        f.record[k] = g.record_size(id).await;
        wallets.push(w);
    }
    // One warm-up round, then interleaved rounds.
    for round in 0..=rounds {
        for (k, w) in wallets.iter().enumerate() {
            let d = [round as u8 + 1; 32];
            let t = Instant::now();
            let sig = w.sign_digest(&d, None).await.unwrap();
            let took = t.elapsed();
            assert!(wallet_engine::verify_signature(&w.identity_key(), &d, &sig));
            if round > 0 {
                f.sign[k].push(took);
            }
        }
    }
    let (group, p, d) = tables.build("bench-dkg", false).await;
    assert_eq!(p, Provisioned::Created);
    f.dkg = d;
    // Further keys as a running agent makes them: from the wallet of key 0, which holds its share.
    let d = [0xee; 32];
    assert!(wallet_engine::verify_signature(&group.identity_key(), &d, &group.sign_digest(&d, None).await.unwrap()));
    for index in 1..=FURTHER_KEYS {
        let t = Instant::now();
        let (w, p) = group.key(index).await.unwrap();
        f.further_key.push(t.elapsed());
        assert_eq!(p, Provisioned::Created);
        assert!(wallet_engine::verify_signature(&w.identity_key(), &d, &w.sign_digest(&d, None).await.unwrap()));
    }
    // And from a fresh start (a new builder), which first opens key 0's record.
    let keygen = std::sync::Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let mark = keygen.clone();
    let t = Instant::now();
    let (w, p) = (tables.builder)("bench-dkg")
        .key_index(FURTHER_KEYS + 1)
        .on_progress(move |p| {
            if let wallet_engine::Progress::Finished(wallet_engine::Phase::Keygen, d) = p {
                *mark.lock().unwrap() = d;
            }
        })
        .build()
        .await
        .unwrap();
    f.further_key_cold = t.elapsed();
    f.further_keygen = *keygen.lock().unwrap();
    assert_eq!(p, Provisioned::Created);
    assert!(wallet_engine::verify_signature(&w.identity_key(), &d, &w.sign_digest(&d, None).await.unwrap()));
    f.further_record = tables.record_size_of("bench-dkg", FURTHER_KEYS + 1).await;
    f
}

/// How many further keys a wallet makes, one after the other (their median is reported).
const FURTHER_KEYS: u32 = 5;

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(9);
    let runtime = fleet::runtime();
    let mut all = Vec::new();
    for transport in ["local", "http", "grpc"] {
        // Fleets start their processes outside the runtime (they block while waiting for them).
        let (plain, tables) = match transport {
            "local" => (Group::local(&runtime, false), Group::local(&runtime, true)),
            scheme => (Group::networked(scheme, false), Group::networked(scheme, true)),
        };
        eprintln!("measuring {transport}...");
        all.push((transport, runtime.block_on(measure(rounds, &plain, &tables))));
    }
    report(rounds, &all);
}

fn report(rounds: usize, all: &[(&str, Figures)]) {
    let s = |d: Duration| d.as_secs_f64();
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("signing 2 of 3, median of {rounds} interleaved rounds (seconds), and ratio to cggmp21 in the same run");
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "transport", "cggmp21", "cggmp24", "24+tables", "24/21", "24t/21"
    );
    for (t, f) in all {
        let m: Vec<f64> = f.sign.iter().map(|v| s(median(v))).collect();
        println!("{t:<10} {:>10.4} {:>10.4} {:>10.4} {:>8.2} {:>8.2}", m[0], m[1], m[2], m[1] / m[0], m[2] / m[0]);
    }
    println!("{:<44} {:>10} {:>10} {:>10}", "other measures (seconds)", "local", "http", "grpc");
    let row = |name: &str, f: &dyn Fn(&Figures) -> f64| {
        let v: Vec<String> = all.iter().map(|(_, x)| format!("{:>10.4}", f(x))).collect();
        println!("{name:<44} {}", v.join(" "));
    };
    row("migration, no tables (aux info + commit)", &|f| s(f.migration[0]));
    row("migration, with tables", &|f| s(f.migration[1]));
    row("restore cggmp21", &|f| s(f.restore[0]));
    row("restore cggmp24", &|f| s(f.restore[1]));
    row("restore cggmp24 + tables", &|f| s(f.restore[2]));
    row("DKG cggmp24 + tables (fixture primes)", &|f| s(f.dkg));
    row(&format!("further key, Wallet::key (median of {FURTHER_KEYS})"), &|f| s(median(&f.further_key)));
    row("further key, from a new builder", &|f| s(f.further_key_cold));
    row("  of it, the threshold keygen run", &|f| s(f.further_keygen));
    println!(
        "agent's sealed record (bytes): cggmp21 {}, cggmp24 {}, cggmp24 + tables {}, a further key {}",
        all[0].1.record[0], all[0].1.record[1], all[0].1.record[2], all[0].1.further_record
    );
}
