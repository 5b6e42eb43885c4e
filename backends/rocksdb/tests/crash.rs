//! A writer killed with SIGKILL mid-write leaves every record entirely old or entirely new.

use wallet_backend_rocksdb::RocksDbShareStore;
use wallet_testkit::crash::{check_after_crash, crash_child_dir, crash_writer, kill_writer_during_writes};

const CHILD: &str = "crash_writer_child";

/// The child: writes until killed when started by the parent, else a bounded run checked here.
#[tokio::test]
async fn crash_writer_child() {
    if let Some(dir) = crash_child_dir() {
        let store = RocksDbShareStore::open(dir.join("crash")).await.unwrap();
        crash_writer(&store, None).await;
        unreachable!("the writer runs until it is killed");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RocksDbShareStore::open(dir.path().join("crash")).await.unwrap();
    assert_eq!(crash_writer(&store, Some(3)).await, 3);
    assert_eq!(check_after_crash(&store).await.generation, 3);
    assert_eq!(crash_writer(&store, Some(2)).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_killed_mid_write_leaves_every_record_whole() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..6 {
        let path = dir.path().to_path_buf();
        let reported = tokio::task::spawn_blocking(move || kill_writer_during_writes(CHILD, &path, 3)).await.unwrap();
        // The killed process's LOCK is released by the kernel; the directory reopens at once.
        let store = RocksDbShareStore::open(dir.path().join("crash")).await.unwrap();
        let check = check_after_crash(&store).await;
        // Every generation the writer saw acknowledged (synced write batches) survived the kill.
        assert!(check.generation >= reported, "round {round}: reported {reported}, found {check:?}");
        assert!(check.primes > 0, "round {round}: {check:?}");
    }
}
