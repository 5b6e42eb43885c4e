use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use wallet_backend_rocksdb::{RocksDbConfig, RocksDbShareStore};
use wallet_testkit::{sample_record, share_store_suite};
use wallet_traits::{
    Approval, DerivationCacheStore, ErrorKind, KeyId, LedgerEntry, PolicyStore, PrimePoolStore, Ruling, ShareStore,
    WalletId,
};

/// Every conformance case as its own test, each on a fresh directory.
mod rocksdb_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksDbShareStore::open(dir.path().join("suite")).await.unwrap();
        wallet_testkit::StoreFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::share_store_tests!(make);
}

/// Every policy conformance case as its own test, each on a fresh directory.
mod rocksdb_policy_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksDbShareStore::open(dir.path().join("policy")).await.unwrap();
        wallet_testkit::StoreFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::policy_store_tests!(make);
}

/// A ruling that charges `tx` to `charged` at `at_ms` (none when `None`), spending `approval`.
fn charge(tx: [u8; 32], charged: Option<u64>, at_ms: u64, approval: Option<[u8; 32]>, note: &str) -> Ruling {
    Ruling {
        charge: charged.map(|charged| LedgerEntry { tx, charged, at_ms, state: note.as_bytes().to_vec() }),
        spend_approval: approval,
        audit: note.as_bytes().to_vec(),
        audit_hash: [note.len() as u8; 32],
    }
}

#[tokio::test]
async fn policy_state_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy");
    let (wallet, first, second) = ("cosigned", [1u8; 32], [2u8; 32]);
    let approval = |id: u8| Approval { id: [id; 32], wallet: wallet.into(), expires_ms: 50_000, body: vec![id; 3] };

    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert!(store.add_approval(&approval(7)).await.unwrap());
    assert!(store.add_approval(&approval(8)).await.unwrap());
    store.settle(wallet, &first, 0, 1_000, &|_| charge(first, Some(300), 1_000, None, "first")).await.unwrap();
    store.settle(wallet, &[0; 32], 0, 1_500, &|_| charge([0; 32], None, 0, None, "refused")).await.unwrap();
    store
        .settle(wallet, &second, 0, 2_000, &|_| charge(second, Some(200), 2_000, Some([7; 32]), "approved"))
        .await
        .unwrap();
    assert!(store.mark_seen("jti", b"token", 10_000, 100).await.unwrap());
    drop(store);

    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert!(store.policy_state().is_some());
    assert_eq!(store.window(wallet, 0).await.unwrap(), (500, 2));
    assert_eq!(store.window(wallet, 1_500).await.unwrap(), (200, 1));
    let log = store.audit(Some(wallet), 0, 10).await.unwrap();
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(log.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>(), [&b"first"[..], b"refused", b"approved"]);
    assert_eq!((log[2].at_ms, log[2].hash, log[2].wallet.as_str()), (2_000, [8; 32], wallet));
    assert_eq!(store.audit(None, 0, 10).await.unwrap(), log);
    assert!(!store.mark_seen("jti", b"token", 10_000, 200).await.unwrap(), "a replay after a restart");
    assert!(!store.add_approval(&approval(7)).await.unwrap(), "a spent approval stays known");
    store
        .settle(wallet, &first, 1_500, 3_000, &|l| {
            assert_eq!((l.window_sats, l.window_txs), (200, 1));
            assert_eq!(
                l.entry.as_ref().map(|e| (e.charged, e.at_ms, e.state.as_slice())),
                Some((300, 1_000, &b"first"[..]))
            );
            assert_eq!((l.head.seq, l.head.hash), (3, [8; 32]), "the head survives the restart");
            assert_eq!(l.approvals, vec![approval(8)], "the spent approval is not offered");
            charge(first, Some(350), 3_000, None, "renewed")
        })
        .await
        .unwrap();
    // The renewed entry moved into the window; its old place is gone.
    assert_eq!(store.window(wallet, 1_500).await.unwrap(), (550, 2));
    assert_eq!(store.window(wallet, 0).await.unwrap(), (550, 2));
    assert_eq!(store.audit(None, 3, 10).await.unwrap()[0].seq, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn options_are_applied() {
    // Names the crate so the linker keeps its inventory registration.
    use wallet_backend_rocksdb as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuned");
    let url = format!("rocksdb://{}", path.display());
    let options = wallet_traits::options(&[("max_open_files", "64"), ("sync_writes", "false")]);
    let store = wallet_traits::open_store(&url, options).await.unwrap();
    assert!(format!("{store:?}").contains("sync_writes: false"), "{store:?}");

    // RocksDB records the options it runs with in an OPTIONS-* file in the directory.
    let options_files: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("OPTIONS-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!options_files.is_empty(), "RocksDB wrote no OPTIONS file");
    assert!(options_files.iter().all(|text| text.contains("max_open_files=64")), "max_open_files was not applied");

    // Unsynced writes keep every guarantee except surviving a power cut.
    let report = share_store_suite(store).await;
    assert!(report.skipped.is_empty(), "{report:?}");
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet: open creates them.
    let path = dir.path().join("nested/dir/agent");
    let wallet = WalletId::new("reopen").unwrap();
    let mut record = sample_record(&wallet, 0, 3);

    let store = RocksDbShareStore::open(&path).await.unwrap();
    store.create_share(&record).await.unwrap();
    store.create_share(&sample_record(&wallet, 7, 4)).await.unwrap();
    record.sealed = vec![9; 9000];
    record.version = store.update_share(&record, 1).await.unwrap();
    store.put_derivation(&record.key, b"lookup", b"cached").await.unwrap();
    store.add_primes("pool", b"first").await.unwrap();
    store.add_primes("pool", b"second").await.unwrap();
    store.add_primes("other", b"other-pair").await.unwrap();
    drop(store);

    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert_eq!(store.path(), std::fs::canonicalize(&path).unwrap());
    assert_eq!(store.load_share(&record.key).await.unwrap(), Some(record.clone()));
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 7)).await.unwrap(), Some(sample_record(&wallet, 7, 4)));
    assert_eq!(store.get_derivation(&record.key, b"lookup").await.unwrap(), Some(b"cached".to_vec()));
    assert_eq!(store.count_primes("pool").await.unwrap(), 2);
    // A pair added after the restart queues behind the older ones instead of landing on the
    // first one's sequence number.
    store.add_primes("pool", b"third").await.unwrap();
    assert_eq!(store.take_primes("pool").await.unwrap(), Some(b"first".to_vec()));
    drop(store);

    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert_eq!(store.take_primes("pool").await.unwrap(), Some(b"second".to_vec()));
    assert_eq!(store.take_primes("pool").await.unwrap(), Some(b"third".to_vec()));
    assert_eq!(store.take_primes("pool").await.unwrap(), None);
    assert_eq!(store.take_primes("other").await.unwrap(), Some(b"other-pair".to_vec()));
    // The guard holds across restarts: DKG cannot overwrite the share written before.
    let e = store.create_share(&sample_record(&wallet, 0, 4)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.message().contains("DKG will not overwrite"), "{e}");
    assert_eq!(e.context_value("backend"), Some("rocksdb"));
    assert_eq!(store.load_share(&record.key).await.unwrap(), Some(record));
}

#[tokio::test]
async fn unsynced_writes_survive_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let config = RocksDbConfig::new(dir.path().join("db")).with_sync_writes(false);
    let wallet = WalletId::new("unsynced").unwrap();
    let store = RocksDbShareStore::connect(&config).await.unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    drop(store);
    let store = RocksDbShareStore::connect(&config).await.unwrap();
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap(), Some(sample_record(&wallet, 0, 1)));
}

#[cfg(unix)]
#[tokio::test]
async fn new_directories_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private/agent");
    let store = RocksDbShareStore::open(&path).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    let backup = dir.path().join("backup");
    store.checkpoint(&backup).await.unwrap();
    assert_eq!(mode(&backup), 0o700);
}

#[tokio::test]
async fn checkpoint_is_a_consistent_copy_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksDbShareStore::open(dir.path().join("live")).await.unwrap();
    let wallet = WalletId::new("backup").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    store.add_primes("pool", b"pair").await.unwrap();

    let backup = dir.path().join("backup");
    store.checkpoint(&backup).await.unwrap();
    store.create_share(&sample_record(&wallet, 1, 2)).await.unwrap();

    // The copy is a store of its own, openable while the original is open.
    let copy = RocksDbShareStore::open(&backup).await.unwrap();
    assert_eq!(copy.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap(), Some(sample_record(&wallet, 0, 1)));
    assert_eq!(copy.load_share(&KeyId::new(wallet.clone(), 1)).await.unwrap(), None, "written after the checkpoint");
    assert_eq!(copy.take_primes("pool").await.unwrap(), Some(b"pair".to_vec()));
    assert_eq!(store.count_primes("pool").await.unwrap(), 1, "taking from the copy must not touch the original");

    // A checkpoint never writes into an existing directory.
    let e = store.checkpoint(&backup).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("already exists"), "{e}");
    assert_eq!(e.context_value("backend"), Some("rocksdb"));
}

#[tokio::test]
async fn second_open_in_one_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = RocksDbShareStore::open(&path).await.unwrap();
    let e = RocksDbShareStore::open(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("already open in this process"), "{e}");
    assert_eq!(e.context_value("backend"), Some("rocksdb"));

    drop(first);
    let again = RocksDbShareStore::open(&path).await.unwrap();
    assert_eq!(again.load_share(&KeyId::new(WalletId::new("w").unwrap(), 0)).await.unwrap(), None);
}

/// Set for the child process of [`directory_in_use_by_another_process_is_refused`].
const HOLD_DIR_ENV: &str = "WALLET_BACKEND_ROCKSDB_TEST_HOLD_DIR";

/// Kills the child when the test ends, also when it fails.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn directory_in_use_by_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // This test binary, running only the helper below, is the other process.
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["hold_directory_open_for_another_test", "--exact", "--ignored", "--test-threads=1"])
        .env(HOLD_DIR_ENV, dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let ready = dir.path().join("ready");
    let start = Instant::now();
    while !ready.exists() {
        assert!(child.0.try_wait().unwrap().is_none(), "the child process exited before opening the store");
        assert!(start.elapsed() < Duration::from_secs(60), "the child process did not open the store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let e = RocksDbShareStore::open(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("in use by another process"), "{e}");
    assert!(e.message().contains("stop that process"), "{e}");
    assert_eq!(e.context_value("backend"), Some("rocksdb"));
    assert_eq!(e.context_value("path"), Some(std::fs::canonicalize(&db).unwrap().display().to_string().as_str()));

    std::fs::write(dir.path().join("done"), b"").unwrap();
    assert!(child.0.wait().unwrap().success(), "the child process failed");
    // Once the other process is gone, the directory opens and holds what it wrote.
    let store = RocksDbShareStore::open(&db).await.unwrap();
    let wallet = WalletId::new("held").unwrap();
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap(), Some(sample_record(&wallet, 0, 1)));
}

#[tokio::test]
#[ignore = "helper: directory_in_use_by_another_process_is_refused runs it in a child process"]
async fn hold_directory_open_for_another_test() {
    let dir =
        PathBuf::from(std::env::var_os(HOLD_DIR_ENV).expect("run by directory_in_use_by_another_process_is_refused"));
    let store = RocksDbShareStore::open(dir.join("db")).await.unwrap();
    let wallet = WalletId::new("held").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    // Hold the directory until the parent is done, or give up should the parent have died.
    let start = Instant::now();
    while !dir.join("done").exists() && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn opens_through_the_registry() {
    use wallet_backend_rocksdb as _;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocksdb://{}", dir.path().join("x").display());
    assert!(url.starts_with("rocksdb:///"), "{url}");
    let store = wallet_traits::open_store(&url, Default::default()).await.unwrap();
    let wallet = WalletId::new("registry").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    assert!(store.load_share(&KeyId::new(wallet, 0)).await.unwrap().is_some());
    assert!(store.derivation_cache().is_some() && store.prime_pool().is_some() && store.policy_state().is_some());
    assert!(wallet_traits::store_registry().schemes().contains(&"rocksdb"));
    drop(store);

    let options = [("sync".to_string(), "true".to_string())].into();
    let e = wallet_traits::open_store(&url, options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("known options: max_open_files, sync_writes"), "{e}");

    let e = wallet_traits::open_store(&format!("{url}?sync_writes=false"), Default::default()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

/// The share key of the documented layout: `len(wallet): u8 ‖ wallet ‖ index: u32 BE`.
fn raw_share_key(wallet: &str, index: u32) -> Vec<u8> {
    [&[wallet.len() as u8][..], wallet.as_bytes(), &index.to_be_bytes()].concat()
}

/// The documented column families of layout 3.
const COLUMN_FAMILIES: [&str; 13] = [
    "shares",
    "derivations",
    "primes",
    "meta",
    "derivation_uses",
    "policy_ledger",
    "policy_window",
    "policy_approvals",
    "policy_open_approvals",
    "policy_audit",
    "policy_audit_wallets",
    "policy_seen",
    "policy_seen_expiry",
];

/// The policy key prefix of the documented layout: `len(name): u32 BE ‖ name`.
fn raw_policy_prefix(name: &str) -> Vec<u8> {
    [&(name.len() as u32).to_be_bytes()[..], name.as_bytes()].concat()
}

/// Opens the directory with the raw RocksDB API, as a foreign tool or a bad restore might.
fn raw_db(path: &Path) -> rocksdb::DB {
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, COLUMN_FAMILIES).unwrap()
}

#[tokio::test]
async fn undecodable_values_are_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt");
    let wallet = WalletId::new("corrupt").unwrap();
    let store = RocksDbShareStore::open(&path).await.unwrap();
    for index in 0..3 {
        store.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
    }
    store.put_derivation(&KeyId::new(wallet.clone(), 0), b"lookup", b"cached").await.unwrap();
    store.add_primes("pool", b"pair").await.unwrap();
    drop(store);

    {
        let raw = raw_db(&path);
        let shares = raw.cf_handle("shares").unwrap();
        raw.put_cf(shares, raw_share_key("corrupt", 0), b"\x01\x00\x00").unwrap();
        raw.put_cf(shares, raw_share_key("corrupt", 1), b"\x09future").unwrap();
        let whole = raw.get_cf(shares, raw_share_key("corrupt", 2)).unwrap().unwrap();
        raw.put_cf(shares, raw_share_key("corrupt", 2), [whole.as_slice(), b"SEALED-MARKER"].concat()).unwrap();
        let derivations = raw.cf_handle("derivations").unwrap();
        let derivation_key = [raw_share_key("corrupt", 0), b"lookup".to_vec()].concat();
        raw.put_cf(derivations, derivation_key, b"\x07SEALED-MARKER").unwrap();
        let primes = raw.cf_handle("primes").unwrap();
        let (pair_key, _) = raw.iterator_cf(primes, rocksdb::IteratorMode::Start).next().unwrap().unwrap();
        raw.put_cf(primes, pair_key, b"").unwrap();
    }

    let store = RocksDbShareStore::open(&path).await.unwrap();
    for (index, field) in [(0, "version"), (1, "encoding"), (2, "end")] {
        let key = KeyId::new(wallet.clone(), index);
        let e = store.load_share(&key).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        assert_eq!(e.context_value("backend"), Some("rocksdb"));
        assert_eq!(e.context_value("field"), Some(field), "{e}");
        assert_eq!(e.context_value("key"), Some(key.to_string().as_str()));
        assert!(!format!("{e} {e:?}").contains("SEALED-MARKER"), "{e:?}");
    }
    // A version that does not decode refuses CAS.
    let e = store.update_share(&sample_record(&wallet, 0, 2), 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");

    let e = store.get_derivation(&KeyId::new(wallet.clone(), 0), b"lookup").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(!format!("{e} {e:?}").contains("SEALED-MARKER"), "{e:?}");

    let e = store.take_primes("pool").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert_eq!(store.count_primes("pool").await.unwrap(), 1, "a pair that does not decode stays in the pool");
}

#[tokio::test]
async fn stray_keys_are_ignored_and_bad_layouts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout");
    let wallet = WalletId::new("keys").unwrap();
    let store = RocksDbShareStore::open(&path).await.unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    drop(store);

    {
        let raw = raw_db(&path);
        // Inside the wallet's key range, but with a 2-byte index.
        let bad_key = [&raw_share_key("keys", 0)[..6], &[0, 1]].concat();
        raw.put_cf(raw.cf_handle("shares").unwrap(), bad_key, b"\x01").unwrap();
    }
    // Records are read by their exact key, so a stray key beside them changes nothing.
    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap(), Some(sample_record(&wallet, 0, 1)));
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 1)).await.unwrap(), None);
    drop(store);

    for (layout, kind) in [(&[4u8][..], ErrorKind::Unsupported), (&[1, 0][..], ErrorKind::Corrupted)] {
        {
            let raw = raw_db(&path);
            raw.put_cf(raw.cf_handle("meta").unwrap(), b"layout", layout).unwrap();
        }
        let e = RocksDbShareStore::open(&path).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{layout:?}: {e}");
        assert_eq!(e.context_value("backend"), Some("rocksdb"));
    }
}

#[tokio::test]
async fn a_layout_1_directory_is_upgraded_with_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout1");
    let wallet = WalletId::new("old").unwrap();
    {
        // What the first release wrote: four column families, derivation values `01 ‖ sealed`.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let raw = rocksdb::DB::open_cf(&options, &path, ["shares", "derivations", "primes", "meta"]).unwrap();
        raw.put_cf(raw.cf_handle("meta").unwrap(), b"layout", [1]).unwrap();
        let derivations = raw.cf_handle("derivations").unwrap();
        for lookup in [&b"a"[..], b"b", b"c"] {
            let raw_key = [raw_share_key("old", 0), lookup.to_vec()].concat();
            raw.put_cf(derivations, raw_key, [&[1u8][..], lookup].concat()).unwrap();
        }
        raw.put_cf(derivations, [raw_share_key("old", 1), b"damaged".to_vec()].concat(), b"\x07").unwrap();
    }

    let store = RocksDbShareStore::open(&path).await.unwrap();
    let key = KeyId::new(wallet.clone(), 0);
    assert_eq!(store.count_derivations(&key).await.unwrap(), 3);
    assert_eq!(store.count_derivations(&KeyId::new(wallet.clone(), 1)).await.unwrap(), 0, "damaged entries dropped");
    // Upgraded entries count as used in key order; a hit makes `a` the newest.
    assert_eq!(store.get_derivation(&key, b"a").await.unwrap(), Some(b"a".to_vec()));
    store.put_derivation(&key, b"d", b"d").await.unwrap();
    assert_eq!(store.evict_derivations(&key, 2).await.unwrap(), 2);
    assert_eq!(store.get_derivation(&key, b"b").await.unwrap(), None);
    assert_eq!(store.get_derivation(&key, b"c").await.unwrap(), None);
    drop(store);

    // Upgraded once: the counter survives the restart, so a new put is still the newest.
    let store = RocksDbShareStore::open(&path).await.unwrap();
    store.put_derivation(&key, b"e", b"e").await.unwrap();
    assert_eq!(store.evict_derivations(&key, 2).await.unwrap(), 1);
    assert_eq!(store.get_derivation(&key, b"a").await.unwrap(), None, "`a` was used before `d`");
    assert_eq!(store.get_derivation(&key, b"d").await.unwrap(), Some(b"d".to_vec()));
    assert_eq!(store.get_derivation(&key, b"e").await.unwrap(), Some(b"e".to_vec()));
    drop(store);
    let raw = raw_db(&path);
    assert_eq!(raw.get_cf(raw.cf_handle("meta").unwrap(), b"layout").unwrap(), Some(vec![3]));
}

#[tokio::test]
async fn a_layout_2_directory_gains_policy_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout2");
    let wallet = WalletId::new("before-policy").unwrap();
    let store = RocksDbShareStore::open(&path).await.unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    drop(store);
    {
        // What layout 2 left: no policy column families, and its marker.
        let mut raw = raw_db(&path);
        for name in &COLUMN_FAMILIES[5..] {
            raw.drop_cf(name).unwrap();
        }
        raw.put_cf(raw.cf_handle("meta").unwrap(), b"layout", [2]).unwrap();
    }

    let store = RocksDbShareStore::open(&path).await.unwrap();
    assert_eq!(store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap(), Some(sample_record(&wallet, 0, 1)));
    assert_eq!(store.window("w", 0).await.unwrap(), (0, 0));
    let tx = [4u8; 32];
    store.settle("w", &tx, 0, 10, &|_| charge(tx, Some(5), 10, None, "first")).await.unwrap();
    assert_eq!(store.window("w", 0).await.unwrap(), (5, 1));
    drop(store);
    let raw = raw_db(&path);
    assert_eq!(raw.get_cf(raw.cf_handle("meta").unwrap(), b"layout").unwrap(), Some(vec![3]));
}

#[tokio::test]
async fn undecodable_policy_records_are_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt-policy");
    let (wallet, tx) = ("damaged", [6u8; 32]);
    let store = RocksDbShareStore::open(&path).await.unwrap();
    store.settle(wallet, &tx, 0, 10, &|_| charge(tx, Some(5), 10, None, "first")).await.unwrap();
    assert!(store.mark_seen("jti", b"token", 1_000, 10).await.unwrap());
    drop(store);
    {
        let raw = raw_db(&path);
        let ledger_key = [raw_policy_prefix(wallet), tx.to_vec()].concat();
        raw.put_cf(raw.cf_handle("policy_ledger").unwrap(), ledger_key, b"\x01MARKER").unwrap();
        raw.put_cf(raw.cf_handle("policy_audit").unwrap(), 1u64.to_be_bytes(), b"\x02BODY-MARKER").unwrap();
        let seen_key = [raw_policy_prefix("jti"), b"token".to_vec()].concat();
        raw.put_cf(raw.cf_handle("policy_seen").unwrap(), seen_key, b"\x01\x00").unwrap();
    }

    let store = RocksDbShareStore::open(&path).await.unwrap();
    let decided = std::sync::atomic::AtomicBool::new(false);
    let e = store
        .settle(wallet, &tx, 0, 20, &|_| {
            decided.store(true, std::sync::atomic::Ordering::SeqCst);
            charge(tx, Some(6), 20, None, "second")
        })
        .await
        .unwrap_err();
    assert!(!decided.into_inner(), "no decision on a ledger that does not read");
    let audit = store.audit(None, 0, 10).await.unwrap_err();
    let by_wallet = store.audit(Some(wallet), 0, 10).await.unwrap_err();
    let seen = store.mark_seen("jti", b"token", 1_000, 20).await.unwrap_err();
    for (e, field) in [(e, "charged"), (audit, "encoding"), (by_wallet, "encoding"), (seen, "expires_ms")] {
        assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
        assert_eq!(e.context_value("backend"), Some("rocksdb"));
        assert_eq!(e.context_value("field"), Some(field), "{e}");
        assert!(e.message().contains("restore the RocksDB directory from a backup"), "{e}");
        assert!(!format!("{e} {e:?}").contains("MARKER"), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_panics_writes_nothing_and_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksDbShareStore::open(dir.path().join("panic")).await.unwrap());
    let tx = [5u8; 32];
    let panicking = Arc::clone(&store);
    let joined =
        tokio::spawn(
            async move { panicking.settle("w", &tx, 0, 10, &|_| panic!("the decision failed")).await.map(drop) },
        )
        .await;
    assert!(joined.unwrap_err().is_panic());
    assert_eq!(store.window("w", 0).await.unwrap(), (0, 0));
    assert!(store.audit(None, 0, 10).await.unwrap().is_empty());
    // The next decision is not locked out, and chains to an empty log.
    store
        .settle("w", &tx, 0, 20, &|l| {
            assert_eq!((l.head.seq, l.head.hash), (0, [0; 32]));
            charge(tx, Some(5), 20, None, "after")
        })
        .await
        .unwrap();
    assert_eq!(store.audit(None, 0, 10).await.unwrap()[0].seq, 1);
}

#[tokio::test]
async fn expired_seen_ids_are_forgotten_in_bounded_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seen");
    // Unsynced: this only counts records, and 1100 fsyncs would dominate the test.
    let config = RocksDbConfig::new(&path).with_sync_writes(false);
    let store = RocksDbShareStore::connect(&config).await.unwrap();
    for i in 0u32..1_100 {
        assert!(store.mark_seen("eid", &i.to_be_bytes(), 10, 0).await.unwrap());
    }
    assert!(store.mark_seen("eid", b"late", 1_000, 0).await.unwrap());
    let count = |path: &Path, cf: &str| {
        let raw = raw_db(path);
        let n = raw.iterator_cf(raw.cf_handle(cf).unwrap(), rocksdb::IteratorMode::Start).count();
        n
    };
    // Every id expired at 10, the last one at 1000: the first call past 10 forgets 1024 of them,
    // the next the rest; the unexpired one stays throughout.
    assert!(store.mark_seen("eid", b"new", 1_000, 20).await.unwrap());
    drop(store);
    assert_eq!((count(&path, "policy_seen"), count(&path, "policy_seen_expiry")), (78, 78));
    let store = RocksDbShareStore::connect(&config).await.unwrap();
    // An expired id not forgotten yet is still unseen.
    assert!(store.mark_seen("eid", &1_099u32.to_be_bytes(), 1_000, 20).await.unwrap());
    assert!(!store.mark_seen("eid", b"late", 1_000, 20).await.unwrap());
    drop(store);
    assert_eq!((count(&path, "policy_seen"), count(&path, "policy_seen_expiry")), (3, 3));
}
