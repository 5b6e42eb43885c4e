//! A writer killed with SIGKILL mid-write leaves every record entirely old or entirely new. The
//! kernel releases the killed process's LOCK, so the directory reopens at once.

use wallet_backend_rocksdb::RocksDbShareStore;

wallet_testkit::crash_safety_tests!(|dir| RocksDbShareStore::open(dir.join("crash")).await.unwrap());
