//! The conformance suite every [`ShareStore`] runs.

use std::{fmt::Debug, future::Future, sync::Arc};

use wallet_traits::{
    DerivationCacheStore, ErrorKind, ExecutionId, KeyId, PrimePoolStore, Result, ShareMeta, ShareState, ShareStore,
    StoredShare, WalletId, SHARE_FORMAT_VERSION,
};

/// What [`share_store_suite`] ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// Cases that ran and passed.
    pub passed: Vec<&'static str>,
    /// Cases not run because the store keeps no derivation cache or prime pool.
    pub skipped: Vec<&'static str>,
}

impl std::fmt::Display for SuiteReport {
    /// `11 passed, 0 skipped (create_and_load, ...)`: the line test logs show per store.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} skipped ({})", self.passed.len(), self.skipped.len(), self.passed.join(", "))?;
        if !self.skipped.is_empty() {
            write!(f, "; skipped: {}", self.skipped.join(", "))?;
        }
        Ok(())
    }
}

impl SuiteReport {
    pub(crate) async fn run(&mut self, name: &'static str, case: impl Future<Output = ()>) {
        case.await;
        self.passed.push(name);
    }

    /// Runs `case` if there is one (`None`: the store lacks the part it tests).
    async fn run_if(&mut self, name: &'static str, case: Option<impl Future<Output = ()>>) {
        match case {
            Some(case) => self.run(name, case).await,
            None => self.skipped.push(name),
        }
    }
}

/// Runs every case against `store` and reports which ran; panics with a message naming the
/// broken guarantee on the first failure.
///
/// Each case writes under fresh wallet ids and pool names with a random suffix, so the store may
/// already hold data (even from an earlier run). Cases of a derivation cache or prime pool the
/// store does not keep ([`ShareStore::derivation_cache`], [`ShareStore::prime_pool`]) are skipped
/// and listed in [`SuiteReport::skipped`].
///
/// ### Panics
///
/// On any broken guarantee. Needs a Tokio runtime; use a multi-thread one so the concurrency
/// cases really run in parallel.
pub async fn share_store_suite(store: Arc<dyn ShareStore>) -> SuiteReport {
    let s = store.as_ref();
    let mut report = SuiteReport::default();
    report.run("create_and_load", create_and_load(s)).await;
    report.run("create_refuses_existing", create_refuses_existing(s)).await;
    report.run("update_compare_and_swap", update_compare_and_swap(s)).await;
    report.run("delete_compare_and_swap", delete_compare_and_swap(s)).await;
    report.run("keys_scoped_by_wallet_and_index", keys_scoped_by_wallet_and_index(s)).await;
    report.run_if("derivation_cache", s.derivation_cache().map(derivation_cache)).await;
    report.run_if("derivation_cache_evicts_least_recently_used", s.derivation_cache().map(derivation_eviction)).await;
    let primes = s.prime_pool().map(|_| prime_pool_concurrent_take(&store));
    report.run_if("prime_pool_concurrent_take", primes).await;
    report.run("concurrent_create_one_winner", concurrent_create_one_winner(&store)).await;
    report.run("large_records_and_every_state", large_records_and_every_state(s)).await;
    report.run("errors_and_debug_hide_sealed_bytes", errors_and_debug_hide_sealed_bytes(s)).await;
    report
}

/// Each case of [`share_store_suite`] on its own, for [`share_store_tests!`](crate::share_store_tests)
/// (one test per case, so a failing case hides none of the others). A case of a derivation cache
/// or prime pool the store does not keep returns at once, saying so on stderr.
pub mod cases {
    use std::sync::Arc;

    use wallet_traits::ShareStore;

    /// The suite's case `create_and_load`.
    pub async fn create_and_load(s: Arc<dyn ShareStore>) {
        super::create_and_load(&*s).await
    }

    /// The suite's case `create_refuses_existing`.
    pub async fn create_refuses_existing(s: Arc<dyn ShareStore>) {
        super::create_refuses_existing(&*s).await
    }

    /// The suite's case `update_compare_and_swap`.
    pub async fn update_compare_and_swap(s: Arc<dyn ShareStore>) {
        super::update_compare_and_swap(&*s).await
    }

    /// The suite's case `delete_compare_and_swap`.
    pub async fn delete_compare_and_swap(s: Arc<dyn ShareStore>) {
        super::delete_compare_and_swap(&*s).await
    }

    /// The suite's case `keys_scoped_by_wallet_and_index`.
    pub async fn keys_scoped_by_wallet_and_index(s: Arc<dyn ShareStore>) {
        super::keys_scoped_by_wallet_and_index(&*s).await
    }

    /// The suite's case `derivation_cache`.
    pub async fn derivation_cache(s: Arc<dyn ShareStore>) {
        let Some(cache) = s.derivation_cache() else {
            eprintln!("skipped: the store keeps no derivation cache");
            return;
        };
        super::derivation_cache(cache).await
    }

    /// The suite's case `derivation_cache_evicts_least_recently_used`.
    pub async fn derivation_cache_evicts_least_recently_used(s: Arc<dyn ShareStore>) {
        let Some(cache) = s.derivation_cache() else {
            eprintln!("skipped: the store keeps no derivation cache");
            return;
        };
        super::derivation_eviction(cache).await
    }

    /// The suite's case `prime_pool_concurrent_take`.
    pub async fn prime_pool_concurrent_take(s: Arc<dyn ShareStore>) {
        if s.prime_pool().is_none() {
            eprintln!("skipped: the store keeps no prime pool");
            return;
        }
        super::prime_pool_concurrent_take(&s).await
    }

    /// The suite's case `concurrent_create_one_winner`.
    pub async fn concurrent_create_one_winner(s: Arc<dyn ShareStore>) {
        super::concurrent_create_one_winner(&s).await
    }

    /// The suite's case `large_records_and_every_state`.
    pub async fn large_records_and_every_state(s: Arc<dyn ShareStore>) {
        super::large_records_and_every_state(&*s).await
    }

    /// The suite's case `errors_and_debug_hide_sealed_bytes`.
    pub async fn errors_and_debug_hide_sealed_bytes(s: Arc<dyn ShareStore>) {
        super::errors_and_debug_hide_sealed_bytes(&*s).await
    }
}

/// Expands to one `#[tokio::test]` per conformance case (the names of [`cases`]), each against a
/// fresh [`StoreFixture`](crate::StoreFixture) from `$make` (an async function). Put it in a
/// module named after the store, so `scripts/test.sh` can count the cases per store:
///
/// ```ignore
/// mod sqlite_conformance {
///     async fn make() -> wallet_testkit::StoreFixture { ... }
///     wallet_testkit::share_store_tests!(make);
/// }
/// ```
#[macro_export]
macro_rules! share_store_tests {
    ($make:path) => {
        $crate::share_store_tests!(@cases $make;
            create_and_load, create_refuses_existing, update_compare_and_swap, delete_compare_and_swap,
            keys_scoped_by_wallet_and_index, derivation_cache, derivation_cache_evicts_least_recently_used,
            prime_pool_concurrent_take, concurrent_create_one_winner, large_records_and_every_state,
            errors_and_debug_hide_sealed_bytes);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            // Multi-thread, so the concurrency cases really run in parallel.
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture: $crate::StoreFixture = $make().await;
                $crate::cases::$case(fixture.subject.clone()).await;
                drop(fixture);
            }
        )*
    };
}

/// What one conformance case runs against (a store, a transport client), with whatever must live
/// as long as it: a temporary directory, a server handle.
pub struct Fixture<T> {
    /// The store or client under test.
    pub subject: T,
    _keep: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// A store for one [`share_store_tests!`](crate::share_store_tests) case.
pub type StoreFixture = Fixture<Arc<dyn ShareStore>>;

impl<T: std::fmt::Debug> std::fmt::Debug for Fixture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl<T> Fixture<T> {
    /// A subject that needs nothing kept.
    pub fn new(subject: T) -> Self {
        Self { subject, _keep: None }
    }

    /// A subject and what must outlive it (dropped after the subject).
    pub fn keeping(subject: T, keep: impl std::any::Any + Send + Sync) -> Self {
        Self { subject, _keep: Some(Box::new(keep)) }
    }
}

/// A valid record for key `index` of `wallet`, version 1, whose bytes are derived from `fill`
/// (records with different `fill` differ in every field that can).
pub fn sample_record(wallet: &WalletId, index: u32, fill: u8) -> StoredShare {
    let mut public_key = vec![fill; 33];
    public_key[0] = 0x02 | (fill & 1);
    StoredShare {
        key: KeyId::new(wallet.clone(), index),
        meta: ShareMeta {
            public_key,
            threshold: 2,
            parties: 3,
            party_index: 0,
            state: ShareState::Active,
            execution_id: ExecutionId::from_bytes([fill; 32]),
        },
        version: 1,
        format_version: SHARE_FORMAT_VERSION,
        sealed: (0..64u8).map(|i| fill.wrapping_add(i)).collect(),
    }
}

fn fresh_wallet(case: &str) -> WalletId {
    let suffix = &ExecutionId::random().to_string()[..16];
    WalletId::new(format!("testkit-{case}-{suffix}")).expect("the suite builds valid wallet ids")
}

#[track_caller]
fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

#[track_caller]
fn assert_kind<T: Debug>(result: Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: expected a {kind} error, got: {e}"),
        Ok(v) => panic!("{what}: expected a {kind} error, got Ok({v:?})"),
    }
}

async fn load(store: &dyn ShareStore, key: &KeyId) -> Option<StoredShare> {
    ok(store.load_share(key).await, "load_share")
}

async fn create_and_load(store: &dyn ShareStore) {
    let wallet = fresh_wallet("create");
    let record = sample_record(&wallet, 0, 1);
    assert_eq!(load(store, &record.key).await, None, "load of a key never written must be Ok(None)");

    ok(store.create_share(&record).await, "create_share of a fresh key");
    assert_eq!(load(store, &record.key).await, Some(record), "load must return the created record, version 1");

    // The store owns the version: whatever the caller passes, a new record starts at 1.
    let odd = StoredShare { version: 9, ..sample_record(&wallet, 1, 2) };
    ok(store.create_share(&odd).await, "create_share with a caller-set version");
    let loaded = load(store, &odd.key).await.expect("a created record must load");
    assert_eq!(loaded.version, 1, "create_share must store version 1 regardless of record.version");
}

async fn create_refuses_existing(store: &dyn ShareStore) {
    let wallet = fresh_wallet("exists");
    let record = sample_record(&wallet, 0, 1);
    ok(store.create_share(&record).await, "create_share of a fresh key");

    let rival = sample_record(&wallet, 0, 2);
    assert_kind(store.create_share(&rival).await, ErrorKind::AlreadyExists, "create_share over an existing key");
    assert_eq!(load(store, &record.key).await, Some(record), "a refused create must leave the stored record unchanged");
}

async fn update_compare_and_swap(store: &dyn ShareStore) {
    let wallet = fresh_wallet("update");
    let record = sample_record(&wallet, 0, 1);
    ok(store.create_share(&record).await, "create_share of a fresh key");

    let mut next = sample_record(&wallet, 0, 2);
    next.meta.state = ShareState::Frozen;
    next.format_version = SHARE_FORMAT_VERSION + 1;
    let version = ok(store.update_share(&next, 1).await, "update_share with the current version");
    assert_eq!(version, 2, "update_share from version 1 must return version 2");
    let expected = StoredShare { version: 2, ..next.clone() };
    assert_eq!(
        load(store, &next.key).await,
        Some(expected.clone()),
        "load after update_share must show the new sealed bytes and metadata at version 2"
    );

    let stale = sample_record(&wallet, 0, 3);
    assert_kind(store.update_share(&stale, 1).await, ErrorKind::Conflict, "update_share with a stale version");
    assert_eq!(load(store, &next.key).await, Some(expected), "a refused update must leave the record unchanged");

    let version = ok(store.update_share(&stale, 2).await, "a second update_share with the current version");
    assert_eq!(version, 3, "update_share from version 2 must return version 3");

    let missing = sample_record(&wallet, 1, 4);
    assert_kind(store.update_share(&missing, 1).await, ErrorKind::NotFound, "update_share of a missing key");
    assert_eq!(load(store, &missing.key).await, None, "a refused update must not create a record");
}

async fn delete_compare_and_swap(store: &dyn ShareStore) {
    let wallet = fresh_wallet("delete");
    let record = sample_record(&wallet, 0, 1);
    ok(store.create_share(&record).await, "create_share of a fresh key");

    assert_kind(store.delete_share(&record.key, 2).await, ErrorKind::Conflict, "delete_share with a wrong version");
    assert_eq!(load(store, &record.key).await, Some(record.clone()), "a refused delete must keep the record");

    ok(store.delete_share(&record.key, 1).await, "delete_share with the current version");
    assert_eq!(load(store, &record.key).await, None, "a deleted record must be gone");
    assert_kind(store.delete_share(&record.key, 1).await, ErrorKind::NotFound, "delete_share of a missing key");

    // A rolled-back DKG deletes its pending record and runs again under the same key.
    ok(store.create_share(&record).await, "create_share after delete_share");
    assert_eq!(load(store, &record.key).await, Some(record), "a key must be reusable after delete");
}

async fn keys_scoped_by_wallet_and_index(store: &dyn ShareStore) {
    let wallet = fresh_wallet("scope");
    // A wallet whose id extends the first one catches prefix matching instead of equality.
    let neighbour = WalletId::new(format!("{wallet}x")).expect("valid wallet id");
    // Out of order, with indexes that sort differently as text and past i32::MAX.
    let indexes = [5, 0, u32::MAX, 12, 3];
    for (fill, index) in (10u8..).zip(indexes) {
        ok(store.create_share(&sample_record(&wallet, index, fill)).await, "create_share");
    }
    ok(store.create_share(&sample_record(&neighbour, 1, 8)).await, "create_share");

    for (fill, index) in (10u8..).zip(indexes) {
        assert_eq!(
            load(store, &KeyId::new(wallet.clone(), index)).await,
            Some(sample_record(&wallet, index, fill)),
            "key {index} must load its own record"
        );
    }
    assert_eq!(load(store, &KeyId::new(wallet.clone(), 1)).await, None, "another wallet's index must not load");
    assert_eq!(
        load(store, &KeyId::new(neighbour.clone(), 0)).await,
        None,
        "a wallet whose id extends another's must not see its keys"
    );
    assert_eq!(load(store, &KeyId::new(neighbour.clone(), 1)).await, Some(sample_record(&neighbour, 1, 8)));
    assert_eq!(
        load(store, &KeyId::new(fresh_wallet("scope-empty"), 0)).await,
        None,
        "an unknown wallet must have no keys"
    );
}

async fn derivation_cache(store: &dyn DerivationCacheStore) {
    let wallet = fresh_wallet("derive");
    let other_wallet = fresh_wallet("derive-other");
    let root = KeyId::new(wallet.clone(), 0);
    let child = KeyId::new(wallet, 1);
    let foreign = KeyId::new(other_wallet, 0);
    let lookup = [0xAB; 32];
    let other_lookup = [0xCD; 32];

    assert_eq!(ok(store.get_derivation(&root, &lookup).await, "get_derivation"), None, "a missing entry must be None");

    ok(store.put_derivation(&root, &lookup, b"first").await, "put_derivation");
    assert_eq!(
        ok(store.get_derivation(&root, &lookup).await, "get_derivation"),
        Some(b"first".to_vec()),
        "get_derivation must return what put_derivation stored"
    );

    ok(store.put_derivation(&root, &lookup, b"second").await, "put_derivation over an existing entry");
    assert_eq!(
        ok(store.get_derivation(&root, &lookup).await, "get_derivation"),
        Some(b"second".to_vec()),
        "a second put_derivation must overwrite the entry"
    );

    for (key, lk, what) in [
        (&child, &lookup, "another key index"),
        (&foreign, &lookup, "another wallet"),
        (&root, &other_lookup, "another lookup"),
    ] {
        assert_eq!(
            ok(store.get_derivation(key, lk).await, "get_derivation"),
            None,
            "derivation entries must be scoped per key and lookup: {what} saw an entry"
        );
    }

    ok(store.put_derivation(&child, &lookup, b"child").await, "put_derivation");
    assert_eq!(
        ok(store.get_derivation(&root, &lookup).await, "get_derivation"),
        Some(b"second".to_vec()),
        "put_derivation for one key must not touch another key's entry"
    );
}

/// The engine's bound on the cache: a put followed by `evict_derivations(key, cap)`, as
/// `DerivationCache::put` does. All of it runs within a few milliseconds, so a store ordering
/// uses by a clock instead of a counter fails here. One scenario, step after step, each step's
/// assertion beside it: splitting it would hide the sequence it checks.
async fn derivation_eviction(store: &dyn DerivationCacheStore) {
    const CAP: usize = 4;
    let wallet = fresh_wallet("evict");
    let key = KeyId::new(wallet.clone(), 0);
    let neighbour = KeyId::new(wallet.clone(), 1);
    let lookup = |i: u8| [i; 32];
    let value = |i: u8, round: u8| vec![i, round, 0xEE];
    let count = |k: &KeyId| {
        let k = k.clone();
        async move { ok(store.count_derivations(&k).await, "count_derivations") }
    };
    let get = |i: u8| {
        let k = key.clone();
        async move { ok(store.get_derivation(&k, &lookup(i)).await, "get_derivation") }
    };

    assert_eq!(count(&key).await, 0, "a key without entries must count 0");
    for i in [0xA0, 0xA1] {
        ok(store.put_derivation(&neighbour, &lookup(i), &value(i, 0)).await, "put_derivation");
    }
    for i in 0..CAP as u8 {
        ok(store.put_derivation(&key, &lookup(i), &value(i, 0)).await, "put_derivation");
        let removed = ok(store.evict_derivations(&key, CAP).await, "evict_derivations");
        assert_eq!(removed, 0, "evict_derivations must remove nothing while the key holds at most `keep` entries");
    }
    assert_eq!(count(&key).await, CAP as u64, "count_derivations after {CAP} puts");

    // Written first but used since: entry 0 by a hit, entry 1 by a second put. Least recently
    // used now: 2, then 3.
    assert_eq!(get(0).await, Some(value(0, 0)), "get_derivation of a stored entry");
    ok(store.put_derivation(&key, &lookup(1), &value(1, 1)).await, "put_derivation over an existing entry");
    assert_eq!(count(&key).await, CAP as u64, "overwriting an entry must not add one");

    // Past the cap: each new entry pushes out the least recently used one.
    for (i, gone) in [(CAP as u8, 2), (CAP as u8 + 1, 3)] {
        ok(store.put_derivation(&key, &lookup(i), &value(i, 0)).await, "put_derivation");
        let removed = ok(store.evict_derivations(&key, CAP).await, "evict_derivations");
        assert_eq!(removed, 1, "one put past the cap must evict exactly one entry");
        assert_eq!(count(&key).await, CAP as u64, "count_derivations must equal the cap after an eviction");
        assert_eq!(
            get(gone).await,
            None,
            "entry {gone}, the least recently used, must be evicted (entries written earlier but used since must not)"
        );
    }
    for (i, v) in [(0, value(0, 0)), (1, value(1, 1)), (CAP as u8, value(CAP as u8, 0))] {
        assert_eq!(get(i).await, Some(v), "entry {i}, used recently, must survive eviction with its latest value");
    }
    assert_eq!(get(CAP as u8 + 1).await, Some(value(CAP as u8 + 1, 0)), "the newest entry must survive eviction");
    assert_eq!(count(&key).await, CAP as u64, "a miss must not add an entry");
    assert_eq!(count(&neighbour).await, 2, "evicting one key's entries must not touch another key's");

    // Far past the cap without evicting in between, then one eviction: the newest `keep` stay.
    let bulk = KeyId::new(wallet.clone(), 2);
    for i in 0..20u8 {
        ok(store.put_derivation(&bulk, &lookup(i), &value(i, 0)).await, "put_derivation");
    }
    assert_eq!(count(&bulk).await, 20, "count_derivations after 20 puts");
    assert_eq!(ok(store.evict_derivations(&bulk, 5).await, "evict_derivations"), 15, "20 entries, keep 5");
    for i in 0..20u8 {
        let got = ok(store.get_derivation(&bulk, &lookup(i)).await, "get_derivation");
        assert_eq!(got.is_some(), i >= 15, "after keeping 5 of 20, entry {i} must be there only if among the 5 newest");
    }
    assert_eq!(ok(store.evict_derivations(&bulk, 0).await, "evict_derivations"), 5, "keep 0 must remove every entry");
    assert_eq!(count(&bulk).await, 0, "count_derivations after removing every entry");
    assert_eq!(count(&neighbour).await, 2, "evicting one key's entries must not touch another key's");
}

/// The pool of a store the suite found to keep one.
fn pool_of(store: &dyn ShareStore) -> &dyn PrimePoolStore {
    store.prime_pool().expect("the prime-pool case runs only on a store that keeps a prime pool")
}

async fn prime_pool_concurrent_take(shares: &Arc<dyn ShareStore>) {
    let store = pool_of(shares.as_ref());
    let prefix = fresh_wallet("primes");
    let (p1, p2) = (format!("{prefix}-p1"), format!("{prefix}-p2"));
    let pairs1: Vec<Vec<u8>> = (0..5u8).map(|i| vec![0x10 + i; 512]).collect();
    let pairs2: Vec<Vec<u8>> = (0..2u8).map(|i| vec![0xA0 + i; 512]).collect();
    for pair in &pairs1 {
        ok(store.add_primes(&p1, pair).await, "add_primes");
    }
    for pair in &pairs2 {
        ok(store.add_primes(&p2, pair).await, "add_primes");
    }
    assert_eq!(ok(store.count_primes(&p1).await, "count_primes"), 5, "count_primes after adding 5 pairs");
    assert_eq!(ok(store.count_primes(&p2).await, "count_primes"), 2, "count_primes after adding 2 pairs");
    assert_eq!(ok(store.count_primes(&format!("{prefix}-none")).await, "count_primes"), 0, "an unknown pool is empty");

    let takers: Vec<_> = (0..5)
        .map(|_| {
            let shares = Arc::clone(shares);
            let pool = p1.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match pool_of(shares.as_ref()).take_primes(&pool).await {
                        Ok(Some(pair)) => got.push(pair),
                        Ok(None) => return got,
                        Err(e) => panic!("take_primes under concurrent takers failed: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.expect("a take_primes task panicked"));
    }
    taken.sort();
    assert_eq!(taken.len(), pairs1.len(), "concurrent takers must get every pair exactly once in total");
    assert_eq!(taken, pairs1, "concurrent takers must get exactly the pairs that were added");
    assert_eq!(ok(store.count_primes(&p1).await, "count_primes"), 0, "a drained pool must count 0");
    assert_eq!(ok(store.take_primes(&p1).await, "take_primes"), None, "a drained pool must give None");

    assert_eq!(ok(store.count_primes(&p2).await, "count_primes"), 2, "taking from one pool must not touch another");
    let mut rest = Vec::new();
    while let Some(pair) = ok(store.take_primes(&p2).await, "take_primes") {
        rest.push(pair);
    }
    rest.sort();
    assert_eq!(rest, pairs2, "the second pool must hand out its own pairs");
}

async fn concurrent_create_one_winner(store: &Arc<dyn ShareStore>) {
    let wallet = fresh_wallet("race");
    let tasks: Vec<_> = (1..=8u8)
        .map(|fill| {
            let store = Arc::clone(store);
            let record = sample_record(&wallet, 0, fill);
            tokio::spawn(async move { (fill, store.create_share(&record).await) })
        })
        .collect();
    let (mut winners, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.expect("a create_share task panicked") {
            (fill, Ok(())) => winners.push(fill),
            (_, Err(e)) if e.kind() == ErrorKind::AlreadyExists => refused += 1,
            (_, Err(e)) => {
                panic!("a concurrent create_share failed with {e} instead of AlreadyExists")
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 8 concurrent creates must succeed; winners: {winners:?}");
    assert_eq!(refused, 7, "the 7 losing concurrent creates must fail with AlreadyExists");
    assert_eq!(
        load(store.as_ref(), &KeyId::new(wallet.clone(), 0)).await,
        Some(sample_record(&wallet, 0, winners[0])),
        "the stored record must be the winner's"
    );
}

async fn large_records_and_every_state(store: &dyn ShareStore) {
    let wallet = fresh_wallet("large");
    let states = [ShareState::Pending, ShareState::Active, ShareState::Frozen];
    for (i, state) in (0u8..).zip(states) {
        let mut record = sample_record(&wallet, u32::from(i), i);
        record.meta.state = state;
        record.meta.execution_id = ExecutionId::random();
        record.meta.threshold = 3;
        record.meta.parties = 5;
        record.meta.party_index = 4;
        // ~9 KB like a real sealed cggmp21 share; every byte value, zeros included, so a store
        // that treats blobs as text fails.
        record.sealed = (0..9 * 1024 + 7u32).map(|j| (j * 31 + u32::from(i)) as u8).collect();
        ok(store.create_share(&record).await, "create_share of a 9 KB record");
        assert_eq!(
            load(store, &record.key).await,
            Some(record),
            "a 9 KB record in state {state} must round-trip unchanged"
        );
    }

    // Edge values of every integer field.
    let mut edge = sample_record(&wallet, u32::MAX, 0xFF);
    edge.meta.threshold = u16::MAX;
    edge.meta.parties = u16::MAX;
    edge.meta.party_index = u16::MAX;
    edge.format_version = u16::MAX;
    ok(store.create_share(&edge).await, "create_share with maximal integer fields");
    assert_eq!(load(store, &edge.key).await, Some(edge), "maximal integer fields must round-trip");
}

/// Errors name keys and versions, never the sealed bytes: shown or logged, an error must not leak
/// ciphertext, nor must the store's Debug.
async fn errors_and_debug_hide_sealed_bytes(store: &dyn ShareStore) {
    let wallet = fresh_wallet("errors");
    let marker = format!("SEALED-MARKER-{}", &ExecutionId::random().to_string()[..8]);
    let mut record = sample_record(&wallet, 0, 5);
    record.sealed = marker.as_bytes().to_vec();
    ok(store.create_share(&record).await, "create_share");
    let errors = [
        (store.create_share(&record).await, ErrorKind::AlreadyExists),
        (store.update_share(&record, 7).await.map(drop), ErrorKind::Conflict),
        (store.delete_share(&record.key, 7).await, ErrorKind::Conflict),
        (store.delete_share(&KeyId::new(wallet.clone(), 1), 1).await, ErrorKind::NotFound),
    ];
    let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    for (result, kind) in errors {
        let e = match result {
            Err(e) => e,
            Ok(()) => panic!("expected a {kind} error, got Ok"),
        };
        assert_eq!(e.kind(), kind, "{e}");
        if kind == ErrorKind::Conflict {
            assert_eq!(e.context_value("stored_version"), Some("1"), "a Conflict names the stored version: {e}");
        }
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(&marker) && !shown.contains(&hex), "an error shows the sealed bytes: {shown}");
        }
    }
    let shown = format!("{store:?}");
    assert!(!shown.contains(&marker) && !shown.contains(&hex), "the store's Debug shows sealed bytes: {shown}");
}
