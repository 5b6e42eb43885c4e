//! A writer killed with SIGKILL mid-write leaves every record entirely old or entirely new.

use wallet_backend_sqlite::SqliteShareStore;

wallet_testkit::crash_safety_tests!(|dir| SqliteShareStore::open(dir.join("crash.db")).await.unwrap());
