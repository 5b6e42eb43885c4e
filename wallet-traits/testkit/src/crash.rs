//! Crash safety: a writer process that never stops, killed with SIGKILL mid-write, and the check
//! that the reopened store holds every record entirely old or entirely new.
//!
//! A backend's test binary plays both roles. The parent test calls [`kill_writer_during_writes`],
//! which re-runs the same test binary filtered to one test (the child) with [`CRASH_CHILD_ENV`]
//! set; that test calls [`crash_child_dir`], opens its store there and runs [`crash_writer`]
//! until it is killed. Without the variable, the child test runs a bounded writer and checks it,
//! so it is a real test on its own too.
//!
//! Every value the writer stores is a function of its generation number, which is also the
//! record's version, so [`check_after_crash`] can tell a torn record from a whole one.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use wallet_traits::{
    DerivationCacheStore, ExecutionId, KeyId, PrimePoolStore, ShareState, ShareStore, StoredShare, WalletId,
};

use crate::sample_record;

/// Set (to a directory) in the child's environment; the child keeps writing there until killed.
pub const CRASH_CHILD_ENV: &str = "MPC_TESTKIT_CRASH_CHILD";

/// Records the writer keeps rewriting.
pub const CRASH_RECORDS: u32 = 6;

const CRASH_WALLET: &str = "crash-writer";
const CRASH_POOL: &str = "crash-writer";
const LOOKUP: &[u8] = b"crash-writer-lookup";
/// A second entry per record, written before [`LOOKUP`]'s and evicted right after it, so
/// recency and eviction are killed mid-write too.
const SPARE: &[u8] = b"crash-writer-spare";
const PROGRESS: &str = "crash-writer generation ";

/// The directory the child writes in, when this process is a crash child.
pub fn crash_child_dir() -> Option<PathBuf> {
    std::env::var_os(CRASH_CHILD_ENV).map(PathBuf::from)
}

fn wallet() -> WalletId {
    WalletId::new(CRASH_WALLET).expect("a valid wallet id")
}

/// The derivation cache of the store under test: the crash test writes to all three contracts.
fn cache(store: &dyn ShareStore) -> &dyn DerivationCacheStore {
    store.derivation_cache().expect("the crash test needs a store with a derivation cache")
}

/// The prime pool of the store under test.
fn pool(store: &dyn ShareStore) -> &dyn PrimePoolStore {
    store.prime_pool().expect("the crash test needs a store with a prime pool")
}

fn byte(index: u32, generation: u64, i: usize) -> u8 {
    // Any position of any generation differs from its neighbours, so a mix of two writes shows.
    (generation.wrapping_mul(31).wrapping_add(u64::from(index) * 7).wrapping_add(i as u64) % 251) as u8
}

/// Record `index` as written in `generation` (version `generation + 1`): every field, and the
/// sealed bytes' length and content, derive from the generation.
pub fn generation_record(index: u32, generation: u64) -> StoredShare {
    let mut record = sample_record(&wallet(), index, generation as u8);
    record.version = generation + 1;
    record.meta.state = if generation.is_multiple_of(2) { ShareState::Active } else { ShareState::Pending };
    let mut eid = [0u8; 32];
    eid[..8].copy_from_slice(&generation.to_be_bytes());
    eid[8..12].copy_from_slice(&index.to_be_bytes());
    record.meta.execution_id = ExecutionId::from_bytes(eid);
    record.sealed = (0..4096 + (generation % 5) as usize * 1024).map(|i| byte(index, generation, i)).collect();
    record
}

fn derivation(index: u32, generation: u64) -> Vec<u8> {
    let mut v = generation.to_be_bytes().to_vec();
    v.extend((0..512 + (generation % 3) as usize * 256).map(|i| byte(index, generation, i)));
    v
}

fn decode_generation(index: u32, value: &[u8], what: &str) -> u64 {
    let generation =
        u64::from_be_bytes(value.get(..8).and_then(|b| b.try_into().ok()).unwrap_or_else(|| {
            panic!("{what}: a value of {} bytes is shorter than its header: torn write", value.len())
        }));
    assert!(
        value == derivation(index, generation),
        "{what}: the value is not whole generation {generation}: torn write"
    );
    generation
}

/// Writes generation after generation: each rewrites every record (compare-and-swap on its
/// version) and its derivation-cache entry (after a spare entry that an eviction to one entry
/// then removes), and adds a prime pair. Resumes after what the store
/// holds. After each completed generation prints `crash-writer generation N` and flushes.
/// Stops after `generations` generations when given, else never returns.
///
/// ### Panics
///
/// On any store error or inconsistency, and on a store without a derivation cache or prime pool.
pub async fn crash_writer(store: &dyn ShareStore, generations: Option<u64>) -> u64 {
    let mut current = match store.load_share(&KeyId::new(wallet(), 0)).await.expect("load") {
        Some(_) => {
            // Finish the generation a crash interrupted: versions count generations, so no
            // record may skip one.
            let newest = check_after_crash(store).await.generation;
            for index in 0..CRASH_RECORDS {
                let key = KeyId::new(wallet(), index);
                let have = store.load_share(&key).await.expect("load").expect("the record exists").version;
                if have == newest {
                    store.update_share(&generation_record(index, newest), have).await.expect("update");
                    cache(store)
                        .put_derivation(&key, LOOKUP, &derivation(index, newest))
                        .await
                        .expect("put_derivation");
                }
            }
            newest
        }
        None => {
            for index in 0..CRASH_RECORDS {
                store.create_share(&generation_record(index, 0)).await.expect("create");
            }
            0
        }
    };
    let mut written = 0;
    while generations.is_none_or(|n| written < n) {
        let next = current + 1;
        for index in 0..CRASH_RECORDS {
            let key = KeyId::new(wallet(), index);
            // After a crash, records of the interrupted generation are one ahead of the rest.
            let have = store.load_share(&key).await.expect("load").expect("the record exists").version;
            let v = store.update_share(&generation_record(index, next), have).await.expect("update");
            assert_eq!(v, next + 1, "update_share must return the new version");
            cache(store).put_derivation(&key, SPARE, &derivation(index, next)).await.expect("put_derivation");
            cache(store).put_derivation(&key, LOOKUP, &derivation(index, next)).await.expect("put_derivation");
            // LOOKUP is the most recently used, so the spare goes.
            let evicted = cache(store).evict_derivations(&key, 1).await.expect("evict_derivations");
            assert_eq!(evicted, 1, "evict_derivations(key, 1) over two entries must remove one");
        }
        pool(store).add_primes(CRASH_POOL, &derivation(CRASH_RECORDS, next)).await.expect("add_primes");
        current = next;
        written += 1;
        report_generation(current);
    }
    current
}

/// Prints `crash-writer generation N` and flushes: what [`kill_writer_during_writes`] waits for.
/// Every crash writer calls it after each completed generation.
pub fn report_generation(generation: u64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PROGRESS}{generation}");
    let _ = out.flush();
}

/// What [`check_after_crash`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashCheck {
    /// The newest generation any record holds.
    pub generation: u64,
    /// Prime pairs in the pool, each whole.
    pub primes: u64,
}

/// Checks that every record, derivation entry and prime pair is whole (entirely one generation),
/// that no record has more derivation entries than were written, and that records are at most
/// one generation apart, then that the store still takes writes.
///
/// ### Panics
///
/// On a torn, missing or unreadable record.
pub async fn check_after_crash(store: &dyn ShareStore) -> CrashCheck {
    let mut generations = Vec::new();
    for index in 0..CRASH_RECORDS {
        let key = KeyId::new(wallet(), index);
        let record = match store.load_share(&key).await {
            Ok(Some(r)) => r,
            Ok(None) => panic!("record {index} is missing after the crash"),
            Err(e) => panic!("record {index} does not load after the crash: {e}"),
        };
        let generation = record.version.checked_sub(1).expect("versions start at 1");
        assert!(
            record == generation_record(index, generation),
            "record {index} at version {} is not entirely generation {generation}: torn write",
            record.version
        );
        // Each generation writes a record, then its derivation entry.
        match cache(store).get_derivation(&key, LOOKUP).await.expect("get_derivation") {
            Some(value) => {
                let at = decode_generation(index, &value, &format!("derivation of record {index}"));
                assert!(at <= generation, "derivation {index} is newer than its record");
            }
            None => assert!(generation <= 1, "the derivation of record {index} at generation {generation} is lost"),
        }
        // At most the spare survives beside it (a kill between its put and the eviction).
        let entries = cache(store).count_derivations(&key).await.expect("count_derivations");
        assert!(entries <= 2, "record {index} has {entries} derivation entries; at most 2 were ever written");
        if let Some(value) = cache(store).get_derivation(&key, SPARE).await.expect("get_derivation") {
            decode_generation(index, &value, &format!("spare derivation of record {index}"));
        }
        generations.push(generation);
    }
    let (newest, oldest) = (generations.iter().max().copied(), generations.iter().min().copied());
    let (newest, oldest) = (newest.unwrap_or(0), oldest.unwrap_or(0));
    assert!(newest - oldest <= 1, "records are more than one generation apart: {generations:?}");
    // Writes go in index order, so a crash leaves a newer prefix and an older suffix.
    assert!(
        generations.windows(2).all(|w| w[0] >= w[1]),
        "a later record is newer than an earlier one: {generations:?}"
    );

    let primes = pool(store).count_primes(CRASH_POOL).await.expect("count_primes");
    let mut taken = Vec::new();
    while let Some(pair) = pool(store).take_primes(CRASH_POOL).await.expect("take_primes") {
        decode_generation(CRASH_RECORDS, &pair, "a prime pair");
        taken.push(pair);
    }
    assert_eq!(taken.len() as u64, primes, "count_primes disagrees with what take_primes hands out");
    for pair in &taken {
        pool(store).add_primes(CRASH_POOL, pair).await.expect("the store takes writes after the crash");
    }
    CrashCheck { generation: newest, primes }
}

/// Runs the test `child_test` of the current test binary as a crash child writing in `dir`,
/// waits until it reported at least `generations` more generations, lets it run on for a few
/// milliseconds so the kill lands mid-write, and kills it with SIGKILL. Returns the last
/// generation it reported complete. Blocking; call it from `spawn_blocking` in async tests.
///
/// ### Panics
///
/// When the child cannot start, exits on its own or reports nothing within two minutes.
pub fn kill_writer_during_writes(child_test: &str, dir: &Path, generations: u64) -> u64 {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the crash child");
    let stdout = child.stdout.take().expect("piped stdout");
    // A reader thread, so a child that hangs without output still meets the deadline.
    let (progress, reports) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            // libtest may print its own `test name ... ` before the first line.
            if let Some(n) = line.split_once(PROGRESS).and_then(|(_, n)| n.trim().parse::<u64>().ok()) {
                if progress.send(n).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut first, mut last) = (None, 0);
    loop {
        match reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(n) => {
                last = n;
                if n >= *first.get_or_insert(n) + generations {
                    // Somewhere inside the next generation's writes.
                    std::thread::sleep(Duration::from_micros(u64::from(rand_below(5_000))));
                    child.kill().expect("SIGKILL the child");
                    let status = child.wait().expect("reap the child");
                    assert!(!status.success(), "the child was killed, not finished");
                    return last;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the crash child wrote too slowly: generation {last} after two minutes");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait();
                panic!("the crash child stopped on its own after generation {last}: {status:?}");
            }
        }
    }
}

fn rand_below(n: u32) -> u32 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos % n
}

/// Defines this crate's crash-safety tests: `crash_writer_child` (the child of
/// [`kill_writer_during_writes`], and on its own a bounded write-and-check run) and
/// `a_writer_killed_mid_write_leaves_every_record_whole` (six SIGKILLs mid-write, each followed by
/// [`check_after_crash`] on the reopened store).
///
/// `|dir| expr`: `expr` opens the store under the directory `dir: &Path` (a fresh temporary one,
/// the same one for every round); it may `.await`. Use it at the top level of a test file.
///
/// # Examples
///
/// ```ignore
/// wallet_testkit::crash_safety_tests!(|dir| SqliteShareStore::open(dir.join("crash.db")).await.unwrap());
/// ```
#[macro_export]
macro_rules! crash_safety_tests {
    (|$dir:ident| $open:expr) => {
        #[tokio::test]
        async fn crash_writer_child() {
            use $crate::crash::{check_after_crash, crash_child_dir, crash_writer};
            if let Some(child_dir) = crash_child_dir() {
                let $dir: &::std::path::Path = &child_dir;
                let store = $open;
                crash_writer(&store, None).await;
                unreachable!("the writer runs until it is killed");
            }
            let tmp = $crate::__private::tempfile::tempdir().unwrap();
            let $dir: &::std::path::Path = tmp.path();
            let store = $open;
            assert_eq!(crash_writer(&store, Some(3)).await, 3);
            assert_eq!(check_after_crash(&store).await.generation, 3);
            // Resumes after what the store holds.
            assert_eq!(crash_writer(&store, Some(2)).await, 5);
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_writer_killed_mid_write_leaves_every_record_whole() {
            use $crate::crash::{check_after_crash, kill_writer_during_writes};
            let tmp = $crate::__private::tempfile::tempdir().unwrap();
            for round in 0..6 {
                let path = tmp.path().to_path_buf();
                let reported =
                    tokio::task::spawn_blocking(move || kill_writer_during_writes("crash_writer_child", &path, 3))
                        .await
                        .unwrap();
                let $dir: &::std::path::Path = tmp.path();
                let store = $open;
                let check = check_after_crash(&store).await;
                // Every generation the writer saw acknowledged survived the kill.
                assert!(check.generation >= reported, "round {round}: reported {reported}, found {check:?}");
                assert!(check.primes > 0, "round {round}: {check:?}");
                drop(store);
            }
        }
    };
}
