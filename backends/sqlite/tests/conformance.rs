use std::sync::Arc;

use wallet_backend_sql::test_util;
use wallet_backend_sqlite::{SqliteConfig, SqliteShareStore};
use wallet_testkit::{sample_record, share_store_suite};
use wallet_traits::{ErrorKind, KeyId, PrimePoolStore, ShareStore, WalletId};

/// Every conformance case as its own test, each on a fresh file.
mod sqlite_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteShareStore::open(dir.path().join("suite.db")).await.unwrap();
        wallet_testkit::StoreFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::share_store_tests!(make);
}

/// The policy-state contract, each case on a file of its own.
mod sqlite_policy_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteShareStore::open(dir.path().join("policy.db")).await.unwrap();
        wallet_testkit::StoreFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::policy_store_tests!(make);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_holds_across_stores_sharing_a_file() {
    // Two pools on one file behave like two processes: the suite's concurrent takers and
    // creators run on one of them while the other keeps writing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let one = Arc::new(SqliteShareStore::connect(&SqliteConfig::new(&path).with_max_connections(8)).await.unwrap());
    let two = SqliteShareStore::open(&path).await.unwrap();
    let wallet = WalletId::new("other-writer").unwrap();
    let writer = tokio::spawn(async move {
        for index in 0..50 {
            two.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
            two.add_primes("other-writer", b"pair").await.unwrap();
        }
    });
    share_store_suite(one).await;
    writer.await.unwrap();
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet: open creates them.
    let path = dir.path().join("nested/dir/agent.db");
    let wallet = WalletId::new("reopen").unwrap();

    let store = SqliteShareStore::open(&path).await.unwrap();
    let record = test_util::write_before_restart(&store, &wallet).await;
    store.close().await;
    drop(store);

    let store = SqliteShareStore::open(&path).await.unwrap();
    test_util::check_after_restart(&store, &record, "sqlite").await;
}

#[cfg(unix)]
#[tokio::test]
async fn new_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private/agent.db");
    let _store = SqliteShareStore::open(&path).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[tokio::test]
async fn opens_through_the_registry() {
    // Names the crate so the linker keeps its inventory registration.
    use wallet_backend_sqlite as _;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    assert!(url.starts_with("sqlite:///"), "{url}");
    let store = wallet_traits::open_store(&url, Default::default()).await.unwrap();
    let wallet = WalletId::new("registry").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    assert!(store.load_share(&KeyId::new(wallet, 0)).await.unwrap().is_some());
    assert!(store.derivation_cache().is_some() && store.prime_pool().is_some());
    assert!(wallet_traits::store_registry().schemes().contains(&"sqlite"));

    let options = [("busy_timeout".to_string(), "1".to_string())].into();
    let e = wallet_traits::open_store(&url, options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[tokio::test]
async fn unparsable_rows_are_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let store = SqliteShareStore::open(&path).await.unwrap();
    let wallet = WalletId::new("corrupt").unwrap();
    for index in 0..2 {
        store.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
    }

    // Damage the rows behind the store's back, as a bad restore or a foreign tool might.
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("UPDATE mpc_shares SET state = 'bogus' WHERE key_index = 0").execute(&raw).await.unwrap();
    sqlx::query("UPDATE mpc_shares SET execution_id = x'0102' WHERE key_index = 1").execute(&raw).await.unwrap();
    raw.close().await;

    for index in 0..2 {
        let e = store.load_share(&KeyId::new(wallet.clone(), index)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        assert_eq!(e.context_value("backend"), Some("sqlite"));
    }
}

#[tokio::test]
async fn a_database_from_before_recency_keeps_its_cache_in_write_order() {
    // A file migrated by the first release only: its derivation rows have no recency column.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let first = dir.path().join("first-migration");
    std::fs::create_dir(&first).unwrap();
    let initial = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_initial.sql");
    std::fs::copy(initial, first.join("0001_initial.sql")).unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let raw = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(first.as_path()).await.unwrap().run(&raw).await.unwrap();
    // Written at 100, 300 and 200 seconds: least recently used first is a, c, b.
    for (lookup, at) in [(&b"a"[..], 100), (b"b", 300), (b"c", 200)] {
        sqlx::query("INSERT INTO mpc_derivations VALUES ('old', 0, ?1, ?1, ?2)")
            .bind(lookup)
            .bind(at)
            .execute(&raw)
            .await
            .unwrap();
    }
    raw.close().await;

    let store = SqliteShareStore::open(&path).await.unwrap();
    let key = KeyId::new(WalletId::new("old").unwrap(), 0);
    test_util::check_recency_after_migration(&store, &key, [b"a", b"c", b"b"]).await;
}

/// Every output-store conformance case, each on a fresh file.
mod sqlite_output_conformance {
    use super::*;
    use wallet_backend_sqlite::SqliteOutputStore;

    async fn make() -> wallet_testkit::OutputFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteOutputStore::open(dir.path().join("outputs.db"), "suite").await.unwrap();
        wallet_testkit::OutputFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::output_store_tests!(make);

    /// The certificates kept beside the books.
    mod certificates {
        use super::make;
        wallet_testkit::certificate_store_tests!(make);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_stores_share_the_share_file_and_keep_wallets_apart() {
    use wallet_backend_sqlite::SqliteOutputStore;
    use wallet_traits::OutputStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.db");
    let shares = SqliteShareStore::open(&path).await.unwrap();
    let wallet = WalletId::new("beside").unwrap();
    shares.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    let one = SqliteOutputStore::open(&path, "one").await.unwrap();
    let two = SqliteOutputStore::open(&path, "two").await.unwrap();
    let funded = wallet_testkit::fund(&one, "default", &[700]).await;
    assert_eq!(one.balance("default").await.unwrap(), 700);
    assert_eq!(two.balance("default").await.unwrap(), 0, "another wallet's outputs are not its own");
    assert_eq!(two.output(&funded[0]).await.unwrap(), None);
    // What is kept for signing an open action is the wallet's alone, and survives a reopen.
    let pay = wallet_testkit::open_action(&one).await;
    one.keep_signable(&pay, b"a draft").await.unwrap();
    assert_eq!(two.signable(&pay).await.unwrap(), None);
    assert_eq!(two.keep_signable(&pay, b"other").await.unwrap_err().kind(), ErrorKind::NotFound);
    // Through the registry, and across a reopen.
    drop(one);
    let url = format!("sqlite://{}", path.display());
    let reopened = wallet_traits::Plugins::default().open_output_store(&url, Default::default(), "one").await.unwrap();
    assert_eq!(reopened.balance("default").await.unwrap(), 700);
    assert_eq!(reopened.signable(&pay).await.unwrap(), Some(b"a draft".to_vec()));
    assert!(shares.load_share(&KeyId::new(wallet, 0)).await.unwrap().is_some(), "the shares are untouched");
}

#[tokio::test]
async fn corrupted_output_rows_are_reported() {
    use wallet_backend_sqlite::SqliteOutputStore;
    use wallet_traits::{OutputQuery, OutputStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt-outputs.db");
    let store = SqliteOutputStore::open(&path, "w").await.unwrap();
    let funded = wallet_testkit::fund(&store, "default", &[1, 2]).await;
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("UPDATE mpc_outputs SET txid = x'01' WHERE vout = 0").execute(&raw).await.unwrap();
    sqlx::query("UPDATE mpc_actions SET status = 'bogus'").execute(&raw).await.unwrap();
    raw.close().await;
    let e = store.list_outputs(&OutputQuery::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    let created_by = store.output(&funded[1]).await.unwrap().unwrap().created_by;
    let e = store.action(&created_by).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.message().contains("backup"), "{e}");
}
