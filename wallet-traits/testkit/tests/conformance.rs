use std::sync::Arc;

use wallet_testkit::{sample_record, share_store_suite, MemoryShareStore};
use wallet_traits::{ShareStore, WalletId};

/// Every conformance case as its own test.
mod memory_conformance {
    use super::*;

    fn make() -> std::future::Ready<wallet_testkit::StoreFixture> {
        std::future::ready(wallet_testkit::StoreFixture::new(Arc::new(MemoryShareStore::new())))
    }

    wallet_testkit::share_store_tests!(make);
}

/// The policy-state contract on the memory store.
mod memory_policy_conformance {
    use super::*;

    fn make() -> std::future::Ready<wallet_testkit::StoreFixture> {
        std::future::ready(wallet_testkit::StoreFixture::new(Arc::new(MemoryShareStore::new())))
    }

    wallet_testkit::policy_store_tests!(make);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_suite_runs_twice_on_one_store() {
    let store: Arc<dyn ShareStore> = Arc::new(MemoryShareStore::new());
    let report = share_store_suite(Arc::clone(&store)).await;
    assert!(report.skipped.is_empty(), "a store keeping every part skips nothing: {report:?}");
    assert_eq!(report.passed.len(), 11, "{report:?}");

    // The suite must tolerate a store that already holds data, including its own earlier run.
    let again = share_store_suite(store).await;
    assert_eq!(again, report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_without_optional_parts_skips_their_cases() {
    let store = MemoryShareStore::shares_only();
    assert!(store.derivation_cache().is_none() && store.prime_pool().is_none());

    let report = share_store_suite(Arc::new(store)).await;
    println!("{report:?}");
    assert_eq!(
        report.skipped,
        ["derivation_cache", "derivation_cache_evicts_least_recently_used", "prime_pool_concurrent_take"]
    );
    assert_eq!(report.passed.len(), 8);
}

#[tokio::test]
async fn debug_does_not_print_records() {
    let store = MemoryShareStore::new();
    let wallet = WalletId::new("w").unwrap();
    store.create_share(&sample_record(&wallet, 0, 0xEE)).await.unwrap();
    let shown = format!("{store:?}");
    assert!(shown.contains("shares: 1"), "{shown}");
    assert!(!shown.contains("238"), "Debug must not print record bytes: {shown}");
}
