//! A writer killed with SIGKILL mid-write leaves every record entirely old or entirely new.

use wallet_backend_sqlite::SqliteShareStore;

wallet_testkit::crash_safety_tests!(|dir| SqliteShareStore::open(dir.join("crash.db")).await.unwrap());

wallet_testkit::output_crash_tests!(|dir| wallet_backend_sqlite::SqliteOutputStore::open(
    dir.join("payments.db"),
    "crash"
)
.await
.unwrap());
