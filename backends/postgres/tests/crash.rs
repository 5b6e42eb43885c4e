//! A client killed with SIGKILL mid-write leaves every record entirely old or entirely new: the
//! server rolls back what the dead connection had not committed.

use wallet_backend_postgres::{PostgresConfig, PostgresShareStore};

/// One namespace per test directory, so parallel and repeated runs never share records.
async fn open(dir: &std::path::Path) -> PostgresShareStore {
    let url = std::env::var("MPC_TEST_POSTGRES_URL")
        .expect("MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` and export the URL it prints");
    let name = dir.file_name().unwrap().to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    PostgresShareStore::connect(&PostgresConfig::new(url).with_namespace(format!("crash-{name}"))).await.unwrap()
}

wallet_testkit::crash_safety_tests!(|dir| open(dir).await);

async fn open_outputs(dir: &std::path::Path) -> wallet_backend_postgres::PostgresOutputStore {
    let url = std::env::var("MPC_TEST_POSTGRES_URL")
        .expect("MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` and export the URL it prints");
    let name = dir.file_name().unwrap().to_string_lossy().replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let config = PostgresConfig::new(url).with_namespace(format!("crash-{name}"));
    wallet_backend_postgres::PostgresOutputStore::connect(&config, "crash").await.unwrap()
}

wallet_testkit::output_crash_tests!(|dir| open_outputs(dir).await);
