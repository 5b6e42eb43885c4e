//! Against a real PostgreSQL server: `MPC_TEST_POSTGRES_URL=$(bash scripts/postgres.sh) cargo test`.
//!
//! Every test works in namespaces (or a schema) of its own with a random suffix, so the tests run
//! in parallel against one database and reruns never collide with earlier rows.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use wallet_backend_postgres::{PostgresConfig, PostgresShareStore};
use wallet_backend_sql::test_util;
use wallet_testkit::{sample_record, share_store_suite};
use wallet_traits::{
    DerivationCacheStore, ErrorKind, ExecutionId, KeyId, Options, PrimePoolStore, ShareStore, WalletId,
};

fn server_url() -> String {
    std::env::var("MPC_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` (it starts a local PostgreSQL server \
             and prints its URL) and export that URL as MPC_TEST_POSTGRES_URL"
        )
    })
}

fn random_suffix() -> String {
    ExecutionId::random().to_string()[..16].to_string()
}

fn fresh_namespace(tag: &str) -> String {
    format!("test-{tag}-{}", random_suffix())
}

async fn connect(namespace: &str) -> PostgresShareStore {
    PostgresShareStore::connect(&PostgresConfig::new(server_url()).with_namespace(namespace)).await.unwrap()
}

/// A pool of our own, to look at and damage the tables behind the store's back.
async fn raw_pool() -> sqlx::PgPool {
    sqlx::PgPool::connect(&server_url()).await.unwrap()
}

/// The test server's URL with its password replaced, and the real password.
fn url_with_password(password: &str) -> (String, String) {
    let url = server_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.rsplit_once('@').expect("MPC_TEST_POSTGRES_URL names a user and password");
    let (user, real) = userinfo.split_once(':').expect("MPC_TEST_POSTGRES_URL names a password");
    (format!("{scheme}://{user}:{password}@{host}"), real.to_string())
}

fn with_query(url: &str, pair: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{pair}")
}

/// Every conformance case as its own test, each in a namespace of its own.
mod postgres_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        wallet_testkit::StoreFixture::new(Arc::new(connect(&fresh_namespace("suite")).await))
    }

    wallet_testkit::share_store_tests!(make);
}

/// The policy-state contract, each case in a namespace of its own.
mod postgres_policy_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        wallet_testkit::StoreFixture::new(Arc::new(connect(&fresh_namespace("policy")).await))
    }

    wallet_testkit::policy_store_tests!(make);
}

/// Every output-store conformance case, each in a namespace of its own.
mod postgres_output_conformance {
    use super::*;
    use wallet_backend_postgres::PostgresOutputStore;

    async fn make() -> wallet_testkit::OutputFixture {
        let config = PostgresConfig::new(server_url()).with_namespace(fresh_namespace("outputs"));
        wallet_testkit::OutputFixture::new(Arc::new(PostgresOutputStore::connect(&config, "suite").await.unwrap()))
    }

    wallet_testkit::output_store_tests!(make);

    /// The certificates kept beside the books.
    mod certificates {
        use super::make;
        wallet_testkit::certificate_store_tests!(make);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_across_pools_never_share_an_output() {
    // Two pools on one namespace and scope behave like two agent processes.
    use wallet_backend_postgres::PostgresOutputStore;
    use wallet_traits::OutputStore;

    let config = PostgresConfig::new(server_url()).with_namespace(fresh_namespace("two-pools"));
    let one: Arc<dyn OutputStore> = Arc::new(PostgresOutputStore::connect(&config, "w").await.unwrap());
    let two: Arc<dyn OutputStore> = Arc::new(PostgresOutputStore::connect(&config, "w").await.unwrap());
    let other: Arc<dyn OutputStore> = Arc::new(PostgresOutputStore::connect(&config, "other").await.unwrap());
    let funded = wallet_testkit::fund(&*one, "default", &[10; 30]).await;
    assert_eq!(other.balance("default").await.unwrap(), 0, "another wallet's outputs are not its own");
    let takers = [one.clone(), two.clone(), one, two].map(|s| {
        tokio::spawn(async move {
            let pay = wallet_testkit::open_action(&*s).await;
            let mut got = Vec::new();
            while let Some(o) = s.reserve_change(&pay, "default", 25, None).await.unwrap() {
                got.push(o.outpoint);
            }
            got
        })
    });
    let mut all = Vec::new();
    for t in takers {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let mut expected = funded;
    expected.sort();
    assert_eq!(all, expected, "each output reserved exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_holds_across_stores_sharing_a_namespace() {
    // Two pools on one namespace behave like two processes of one party: the suite's concurrent
    // takers and creators run on one of them while the other keeps writing.
    let namespace = fresh_namespace("fleet");
    let one = Arc::new(connect(&namespace).await);
    let two = Arc::new(connect(&namespace).await);
    let wallet = WalletId::new("other-writer").unwrap();
    let writer = {
        let (two, wallet) = (Arc::clone(&two), wallet.clone());
        tokio::spawn(async move {
            for index in 0..50 {
                two.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
                two.add_primes("other-writer", b"pair").await.unwrap();
            }
        })
    };
    let report = share_store_suite(Arc::clone(&one) as Arc<dyn ShareStore>).await;
    assert!(report.skipped.is_empty(), "{report:?}");
    writer.await.unwrap();
    // Both processes see one set of records.
    for index in 0..50 {
        assert!(one.load_share(&KeyId::new(wallet.clone(), index)).await.unwrap().is_some(), "record {index}");
    }
    assert_eq!(one.count_primes("other-writer").await.unwrap(), 50);
    let e = one.create_share(&sample_record(&wallet, 7, 2)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "the other process's record guards the key: {e}");

    // Takers in both processes drain one pool: every pair exactly once.
    let pairs: Vec<Vec<u8>> = (0..60u16).map(|i| i.to_be_bytes().repeat(64)).collect();
    for pair in &pairs {
        one.add_primes("shared", pair).await.unwrap();
    }
    let takers: Vec<_> = [&one, &two]
        .repeat(4)
        .into_iter()
        .map(|store| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(pair) = store.take_primes("shared").await.unwrap() {
                    got.push(pair);
                }
                got
            })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.unwrap());
    }
    taken.sort();
    assert_eq!(taken, pairs, "takers in two processes must get every pair exactly once");
    assert_eq!(two.count_primes("shared").await.unwrap(), 0);
}

#[tokio::test]
async fn namespaces_isolate_parties() {
    // Cosigner 1 and cosigner 2 of one wallet: same wallet id, same key index, one database.
    let (ns1, ns2) = (fresh_namespace("party1"), fresh_namespace("party2"));
    let c1 = connect(&ns1).await;
    let c2 = connect(&ns2).await;
    assert_eq!((c1.namespace(), c2.namespace()), (ns1.as_str(), ns2.as_str()));
    let wallet = WalletId::new("shared-wallet").unwrap();
    let (r1, r2) = (sample_record(&wallet, 0, 1), sample_record(&wallet, 0, 2));
    c1.create_share(&r1).await.unwrap();
    c2.create_share(&r2).await.unwrap();
    c2.create_share(&sample_record(&wallet, 5, 2)).await.unwrap();
    assert_eq!(c1.load_share(&r1.key).await.unwrap(), Some(r1.clone()));
    assert_eq!(c2.load_share(&r2.key).await.unwrap(), Some(r2.clone()));
    assert_eq!(c1.load_share(&KeyId::new(wallet.clone(), 5)).await.unwrap(), None, "a create leaked across namespaces");
    assert!(c2.load_share(&KeyId::new(wallet.clone(), 5)).await.unwrap().is_some());

    // Updates and deletes touch their own namespace only.
    let mut next = sample_record(&wallet, 0, 3);
    assert_eq!(c1.update_share(&next, 1).await.unwrap(), 2);
    next.version = 2;
    assert_eq!(c2.load_share(&r2.key).await.unwrap(), Some(r2.clone()), "an update leaked across namespaces");
    c1.delete_share(&r1.key, 2).await.unwrap();
    assert_eq!(c2.load_share(&r2.key).await.unwrap(), Some(r2.clone()), "a delete leaked across namespaces");
    let e = c1.update_share(&next, 2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.context_value("namespace"), Some(ns1.as_str()));

    c1.put_derivation(&r1.key, b"lookup", b"one").await.unwrap();
    assert_eq!(c2.get_derivation(&r2.key, b"lookup").await.unwrap(), None);
    c2.put_derivation(&r2.key, b"lookup", b"two").await.unwrap();
    assert_eq!(c1.get_derivation(&r1.key, b"lookup").await.unwrap(), Some(b"one".to_vec()));

    c1.add_primes("pool", b"pair-1").await.unwrap();
    assert_eq!(c2.count_primes("pool").await.unwrap(), 0);
    assert_eq!(c2.take_primes("pool").await.unwrap(), None);
    assert_eq!(c1.take_primes("pool").await.unwrap(), Some(b"pair-1".to_vec()));
}

#[tokio::test]
async fn data_survives_close_and_reconnect() {
    let namespace = fresh_namespace("reopen");
    let wallet = WalletId::new("reopen").unwrap();

    let store = connect(&namespace).await;
    let record = test_util::write_before_restart(&store, &wallet).await;
    store.close().await;
    let e = store.load_share(&record.key).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(e.message().contains("closed"), "{e}");
    drop(store);

    let store = connect(&namespace).await;
    test_util::check_after_restart(&store, &record, "postgres").await;
    assert_eq!(store.load_share(&record.key).await.unwrap(), Some(record));
}

#[tokio::test]
async fn opens_through_the_registry() {
    // Names the crate so the linker keeps its inventory registration.
    use wallet_backend_postgres as _;

    let schemes = wallet_traits::store_registry().schemes();
    assert!(schemes.contains(&"postgres") && schemes.contains(&"postgresql"), "{schemes:?}");

    let url = server_url();
    let (_, rest) = url.split_once("://").unwrap();
    let namespace = fresh_namespace("registry");
    let wallet = WalletId::new("registry").unwrap();
    for (index, scheme) in [(0, "postgres"), (1, "postgresql")] {
        let url = format!("{scheme}://{rest}");
        let options: Options = [("namespace".to_string(), namespace.clone())].into();
        wallet_traits::check_store(&url, &options).unwrap();
        let store = wallet_traits::open_store(&url, options).await.unwrap();
        store.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
        // Both schemes open the same store: the second sees the first's record.
        for seen in 0..=index {
            assert!(store.load_share(&KeyId::new(wallet.clone(), seen)).await.unwrap().is_some(), "{scheme}");
        }
        assert!(store.derivation_cache().is_some() && store.prime_pool().is_some());
    }

    let options: Options = [("max_conections".to_string(), "1".to_string())].into();
    let e = wallet_traits::check_store(&url, &options).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let e = wallet_traits::open_store(&url, options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("known options: namespace, password, max_connections, acquire_timeout_ms"), "{e}");
    let options: Options = [("namespace".to_string(), "no spaces".to_string())].into();
    assert_eq!(wallet_traits::open_store(&url, options).await.unwrap_err().kind(), ErrorKind::Config);
}

#[tokio::test]
async fn unparsable_rows_are_corrupted() {
    let namespace = fresh_namespace("corrupt");
    let store = connect(&namespace).await;
    let wallet = WalletId::new("corrupt").unwrap();
    for index in 0..4 {
        let mut record = sample_record(&wallet, index, 1);
        record.sealed = b"SEALED-MARKER".to_vec();
        store.create_share(&record).await.unwrap();
    }

    // Damage the rows behind the store's back, as a bad restore or a foreign tool might.
    let raw = raw_pool().await;
    for (index, set) in
        [(0, "state = 'bogus'"), (1, "execution_id = '\\x0102'::bytea"), (2, "threshold = 70000"), (3, "version = -1")]
    {
        sqlx::query(&format!("UPDATE mpc_shares SET {set} WHERE namespace = $1 AND key_index = $2"))
            .bind(&namespace)
            .bind(index)
            .execute(&raw)
            .await
            .unwrap();
    }
    for index in 0..4 {
        let e = store.load_share(&KeyId::new(wallet.clone(), index as u32)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "key {index}: {e}");
        assert_eq!(e.context_value("backend"), Some("postgres"));
        assert_eq!(e.context_value("namespace"), Some(namespace.as_str()));
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("SEALED-MARKER"), "{shown}");
        }
    }
    raw.close().await;
}

#[tokio::test]
async fn a_wrong_password_is_a_config_error_that_does_not_show_it() {
    let (wrong_url, real) = url_with_password("WRONG-PW-MARKER");
    let namespace = fresh_namespace("auth");
    let by_url = PostgresConfig::new(&wrong_url).with_namespace(&namespace);
    // The override replaces a correct password in the URL.
    let by_option = PostgresConfig::new(server_url()).with_namespace(&namespace).with_password("WRONG-PW-MARKER");
    for config in [by_url, by_option] {
        let e = PostgresShareStore::connect(&config).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("refused the credentials"), "{e}");
        assert!(e.message().contains("MPC_STORAGE__PASSWORD") && e.message().contains("MPC_STORAGE_URL"), "{e}");
        assert_eq!(e.context_value("sqlstate"), Some("28P01"), "{e}");
        for shown in [e.to_string(), format!("{e:?}"), format!("{config:?}")] {
            assert!(!shown.contains("WRONG-PW-MARKER") && !shown.contains(&real), "{shown}");
        }
    }
    let options: Options = [("password".to_string(), "WRONG-PW-MARKER".to_string())].into();
    let e = wallet_traits::open_store(&server_url(), options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.to_string().contains("WRONG-PW-MARKER"), "{e}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_quick_timeout() {
    let config = PostgresConfig::new("postgres://mpc:UNREACHABLE-PW@127.0.0.1:1/mpc_test").with_acquire_timeout_ms(300);
    let started = Instant::now();
    let e = PostgresShareStore::connect(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_temporary());
    assert!(e.message().contains("127.0.0.1:1/mpc_test") && e.message().contains("check that the server runs"), "{e}");
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("UNREACHABLE-PW"), "{shown}");
    }
}

#[tokio::test]
async fn errors_and_debug_hide_sealed_bytes_and_password() {
    let (_, real) = url_with_password("");
    let store = connect(&fresh_namespace("secret")).await;
    let wallet = WalletId::new("secret").unwrap();
    let mut record = sample_record(&wallet, 0, 1);
    record.sealed = b"SEALED-MARKER".to_vec();
    store.create_share(&record).await.unwrap();
    let e = store.create_share(&record).await.unwrap_err();
    let e2 = store.update_share(&record, 7).await.unwrap_err();
    let e3 = store.delete_share(&record.key, 7).await.unwrap_err();
    assert_eq!((e.kind(), e2.kind(), e3.kind()), (ErrorKind::AlreadyExists, ErrorKind::Conflict, ErrorKind::Conflict));
    assert_eq!(e2.context_value("stored_version"), Some("1"));
    let shown_store = format!("{store:?}");
    assert!(shown_store.contains("namespace"), "{shown_store}");
    let config = PostgresConfig::new(server_url());
    for shown in
        [e.to_string(), format!("{e:?}"), e2.to_string(), format!("{e2:?}"), shown_store, format!("{config:?}")]
    {
        assert!(!shown.contains("SEALED-MARKER") && !shown.contains(&real), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_connects_migrate_a_fresh_schema_once() {
    // A schema of its own (through search_path) is a database never migrated: several processes
    // starting at once must leave one complete schema, not fail on each other's CREATE TABLE.
    let schema = format!("mpc_test_{}", random_suffix());
    let raw = raw_pool().await;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&raw).await.unwrap();
    let url = with_query(&server_url(), &format!("options=-c%20search_path%3D{schema}"));
    let namespace = fresh_namespace("migrate");

    let connects: Vec<_> = (0..6)
        .map(|_| {
            let config = PostgresConfig::new(&url).with_namespace(&namespace).with_max_connections(2);
            tokio::spawn(async move { PostgresShareStore::connect(&config).await })
        })
        .collect();
    let mut stores = Vec::new();
    for connect in connects {
        stores.push(connect.await.unwrap().expect("every concurrent connect must succeed"));
    }

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(&schema)
    .fetch_all(&raw)
    .await
    .unwrap();
    let expected = [
        "_sqlx_migrations",
        "mpc_action_labels",
        "mpc_actions",
        "mpc_certificates",
        "mpc_derivations",
        "mpc_output_tags",
        "mpc_outputs",
        "mpc_policy_approvals",
        "mpc_policy_audit",
        "mpc_policy_head",
        "mpc_policy_ledger",
        "mpc_policy_seen",
        "mpc_primes",
        "mpc_shares",
    ];
    assert_eq!(tables, expected);
    let applied: Vec<(i64, bool)> =
        sqlx::query_as(&format!("SELECT version, success FROM {schema}._sqlx_migrations ORDER BY version"))
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(
        applied,
        [(1, true), (2, true), (3, true), (4, true), (5, true), (6, true), (7, true)],
        "each migration applied exactly once"
    );

    // The stores work in that schema and see each other's writes.
    let record = sample_record(&WalletId::new("migrate").unwrap(), 0, 1);
    stores[0].create_share(&record).await.unwrap();
    assert_eq!(stores[5].load_share(&record.key).await.unwrap(), Some(record));
    let rows: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.mpc_shares")).fetch_one(&raw).await.unwrap();
    assert_eq!(rows, 1, "the record went into the schema named in the URL");

    for store in &stores {
        store.close().await;
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&raw).await.unwrap();
    raw.close().await;
}

#[tokio::test]
async fn sslmode_in_the_url_uses_tls() {
    let raw = raw_pool().await;
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(&raw).await.unwrap();
    assert_eq!(ssl, "on", "the test server must offer TLS (Debian's clusters do, with the snakeoil certificate)");

    let namespace = fresh_namespace("tls");
    let config = PostgresConfig::new(with_query(&server_url(), "sslmode=require")).with_namespace(&namespace);
    let store = PostgresShareStore::connect(&config).await.unwrap();
    let record = sample_record(&WalletId::new("tls").unwrap(), 0, 1);
    store.create_share(&record).await.unwrap();
    // The store names its connections after the namespace, which finds them here.
    let encrypted: Vec<bool> = sqlx::query_scalar(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
    )
    .bind(format!("mpc-wallet:{namespace}"))
    .fetch_all(&raw)
    .await
    .unwrap();
    assert!(!encrypted.is_empty() && encrypted.iter().all(|&ssl| ssl), "{encrypted:?}");
    store.close().await;
    raw.close().await;
}

#[tokio::test]
async fn a_database_from_before_recency_keeps_its_cache_in_write_order() {
    // A schema migrated by the first release only: its derivation rows have no recency column.
    let schema = format!("mpc_test_{}", random_suffix());
    let raw = raw_pool().await;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&raw).await.unwrap();
    let url = with_query(&server_url(), &format!("options=-c%20search_path%3D{schema}"));
    let dir = tempfile::tempdir().unwrap();
    let initial = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_initial.sql");
    std::fs::copy(initial, dir.path().join("0001_initial.sql")).unwrap();
    let old = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.path()).await.unwrap().run(&old).await.unwrap();
    let namespace = fresh_namespace("recency");
    // Written an hour, a minute and a day ago: least recently used first is c, a, b.
    for (lookup, age) in [(&b"a"[..], "1 hour"), (b"b", "1 minute"), (b"c", "1 day")] {
        sqlx::query(
            "INSERT INTO mpc_derivations (namespace, wallet_id, key_index, lookup, sealed, created_at) \
             VALUES ($1, 'old', 0, $2, $2, now() - $3::interval)",
        )
        .bind(&namespace)
        .bind(lookup)
        .bind(age)
        .execute(&old)
        .await
        .unwrap();
    }
    old.close().await;

    let store = PostgresShareStore::connect(&PostgresConfig::new(&url).with_namespace(&namespace)).await.unwrap();
    let key = KeyId::new(WalletId::new("old").unwrap(), 0);
    test_util::check_recency_after_migration(&store, &key, [b"c", b"a", b"b"]).await;

    store.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&raw).await.unwrap();
    raw.close().await;
}
