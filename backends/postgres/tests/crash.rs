//! A client killed with SIGKILL mid-write leaves every record entirely old or entirely new: the
//! server rolls back what the dead connection had not committed.

use wallet_backend_postgres::{PostgresConfig, PostgresShareStore};
use wallet_testkit::crash::{check_after_crash, crash_child_dir, crash_writer, kill_writer_during_writes};

const CHILD: &str = "crash_writer_child";

fn server_url() -> String {
    std::env::var("MPC_TEST_POSTGRES_URL")
        .expect("MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` and export the URL it prints")
}

/// One namespace per test directory, so parallel and repeated runs never share records.
async fn open(dir: &std::path::Path) -> PostgresShareStore {
    let name = dir.file_name().unwrap().to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let config = PostgresConfig::new(server_url()).with_namespace(format!("crash-{name}"));
    PostgresShareStore::connect(&config).await.unwrap()
}

/// The child: writes until killed when started by the parent, else a bounded run checked here.
#[tokio::test]
async fn crash_writer_child() {
    if let Some(dir) = crash_child_dir() {
        let store = open(&dir).await;
        crash_writer(&store, None).await;
        unreachable!("the writer runs until it is killed");
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    assert_eq!(crash_writer(&store, Some(3)).await, 3);
    assert_eq!(check_after_crash(&store).await.generation, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_killed_mid_write_leaves_every_record_whole() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        let path = dir.path().to_path_buf();
        let reported = tokio::task::spawn_blocking(move || kill_writer_during_writes(CHILD, &path, 3)).await.unwrap();
        let store = open(dir.path()).await;
        let check = check_after_crash(&store).await;
        assert!(check.generation >= reported, "round {round}: reported {reported}, found {check:?}");
        store.close().await;
    }
}
