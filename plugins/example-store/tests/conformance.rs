use std::sync::Arc;

use wallet_plugin_example_store::{JsonFileConfig, JsonFileStore, JSONFILE_SCHEME};
use wallet_testkit::{sample_record, share_store_suite};
use wallet_traits::{DerivationCacheStore, ErrorKind, KeyId, Options, PrimePoolStore, ShareStore, WalletId};

/// Every conformance case as its own test, each on a fresh file.
mod jsonfile_conformance {
    use super::*;

    async fn make() -> wallet_testkit::StoreFixture {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStore::open(dir.path().join("suite.json")).await.unwrap();
        wallet_testkit::StoreFixture::keeping(Arc::new(store), dir)
    }

    wallet_testkit::share_store_tests!(make);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_sharing_a_file_in_one_process_lose_no_writes() {
    // Two stores opened on one file share its write lock: the suite runs on one while the other
    // keeps writing, and afterwards every write of both is in the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.json");
    let one = Arc::new(JsonFileStore::open(&path).await.unwrap());
    let two = JsonFileStore::open(&path).await.unwrap();
    let wallet = WalletId::new("other-writer").unwrap();
    let writer = tokio::spawn(async move {
        for index in 0..20 {
            two.create_share(&sample_record(&wallet, index, 1)).await.unwrap();
            two.add_primes("other-writer", b"pair").await.unwrap();
        }
        two
    });
    share_store_suite(Arc::clone(&one) as Arc<dyn ShareStore>).await;
    let two = writer.await.unwrap();
    let wallet = WalletId::new("other-writer").unwrap();
    for index in 0..20 {
        assert!(one.load_share(&KeyId::new(wallet.clone(), index)).await.unwrap().is_some(), "record {index} lost");
    }
    assert_eq!(two.count_primes("other-writer").await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_writes_finish_or_never_start() {
    // A caller that stops waiting (a timeout, a dropped request) must neither leave a half-written
    // file nor let the next write start from contents about to be replaced.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.json");
    let store = Arc::new(JsonFileStore::open(&path).await.unwrap());
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // From "at once" to a few writes' time: some never start, some stop mid-write.
                let patience = std::time::Duration::from_micros(u64::from(i) * 250);
                let _ = tokio::time::timeout(patience, store.add_primes("pool", &[i])).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Queues behind every abandoned write still under way.
    store.add_primes("pool", b"last").await.unwrap();

    let reopened = JsonFileStore::open(&path).await.unwrap();
    let mut taken = Vec::new();
    while let Some(pair) = reopened.take_primes("pool").await.unwrap() {
        taken.push(pair);
    }
    println!("{} of 32 abandoned writes landed", taken.len() - 1);
    assert_eq!(taken.last(), Some(&b"last".to_vec()), "{taken:?}");
    let mut unique = taken.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), taken.len(), "no pair may be written twice: {taken:?}");
    assert!(!dir.path().join(".agent.json.tmp").exists());
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet: open creates them.
    let path = dir.path().join("nested/dir/agent.json");
    let wallet = WalletId::new("reopen").unwrap();
    let mut record = sample_record(&wallet, 0, 3);

    let store = JsonFileStore::open(&path).await.unwrap();
    store.create_share(&record).await.unwrap();
    record.sealed = (0..9000u32).map(|i| i as u8).collect();
    record.version = store.update_share(&record, 1).await.unwrap();
    store.put_derivation(&record.key, b"lookup", b"cached").await.unwrap();
    store.add_primes("pool", b"pair-1").await.unwrap();
    store.add_primes("pool", b"pair-2").await.unwrap();
    drop(store);

    let store = JsonFileStore::connect(&JsonFileConfig::new(&path).with_create(false)).await.unwrap();
    assert_eq!(store.load_share(&record.key).await.unwrap(), Some(record.clone()));
    assert_eq!(store.get_derivation(&record.key, b"lookup").await.unwrap(), Some(b"cached".to_vec()));
    // Oldest pair first, also across a reopen.
    assert_eq!(store.take_primes("pool").await.unwrap(), Some(b"pair-1".to_vec()));
    assert_eq!(store.count_primes("pool").await.unwrap(), 1);
    // The guard holds across restarts: DKG cannot overwrite the share written before.
    let e = store.create_share(&sample_record(&wallet, 0, 4)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.message().contains("DKG will not overwrite"), "{e}");
    assert_eq!(e.context_value("backend"), Some(JSONFILE_SCHEME));
    // Writes replace the file through a temporary file, which never stays behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec!["agent.json"]);
}

#[tokio::test]
async fn opens_through_the_registry() {
    // Names the crate so the linker keeps its inventory registration.
    use wallet_plugin_example_store as _;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("jsonfile://{}", dir.path().join("x.json").display());
    assert!(url.starts_with("jsonfile:///"), "{url}");
    let store = wallet_traits::open_store(&url, Default::default()).await.unwrap();
    let wallet = WalletId::new("registry").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    assert!(store.load_share(&KeyId::new(wallet, 0)).await.unwrap().is_some());
    assert!(store.derivation_cache().is_some() && store.prime_pool().is_some());
    assert!(wallet_traits::store_registry().schemes().contains(&JSONFILE_SCHEME));
    assert!(format!("{store:?}").starts_with("JsonFileStore"), "{store:?}");

    let typo: Options = [("craete".to_string(), "false".to_string())].into();
    let e = wallet_traits::open_store(&url, typo).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("known options: create"), "{e}");

    let missing = format!("jsonfile://{}", dir.path().join("missing.json").display());
    let no_create: Options = [("create".to_string(), "false".to_string())].into();
    let e = wallet_traits::open_store(&missing, no_create).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("create=true"), "{e}");
    assert!(!dir.path().join("missing.json").exists(), "create=false must not create the file");
}

#[tokio::test]
async fn damaged_files_are_refused_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.json");
    let store = JsonFileStore::open(&path).await.unwrap();
    let wallet = WalletId::new("damaged").unwrap();
    store.create_share(&sample_record(&wallet, 0, 1)).await.unwrap();
    let good = std::fs::read_to_string(&path).unwrap();

    // Damaged behind the store's back, as a bad restore or a foreign tool might.
    std::fs::write(&path, good.replace(r#""state": "active""#, r#""state": "bogus""#)).unwrap();
    let e = store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert_eq!(e.context_value("entry"), Some("shares[0]"));
    let e = store.add_primes("pool", b"pair").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "a write must not replace a file it cannot read: {e}");

    // Opening refuses it too, and a truncated file is not taken for an empty store.
    std::fs::write(&path, "").unwrap();
    let e = JsonFileStore::open(&path).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.message().contains("empty"), "{e}");

    // A file removed while the store is open is an error, not a fresh empty store.
    std::fs::remove_file(&path).unwrap();
    let e = store.load_share(&KeyId::new(wallet.clone(), 0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(!path.exists());
}

#[cfg(unix)]
#[tokio::test]
async fn new_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private/agent.json");
    let store = JsonFileStore::open(&path).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    // A rewrite keeps the file owner-only.
    store.add_primes("pool", b"pair").await.unwrap();
    assert_eq!(mode(&path), 0o600);
}
