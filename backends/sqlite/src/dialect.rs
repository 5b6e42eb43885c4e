//! How SQLite differs, for the shared SQL core (`wallet-backend-sql`).

use sqlx::{sqlite::SqliteQueryResult, Sqlite};
use wallet_traits::{Error, ErrorKind};

use crate::SQLITE_SCHEME;

/// SQLite: one file, one party, one writer at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteDialect;

impl wallet_backend_sql::Dialect for SqliteDialect {
    type Database = Sqlite;

    const BACKEND: &'static str = SQLITE_SCHEME;
    // Takes the write lock first: concurrent writers, in this process or another, queue (up to
    // busy_timeout_ms) instead of failing midway on a lock upgrade.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // In WAL mode a read transaction reads one snapshot.
    const BEGIN_READ: &'static str = "BEGIN";
    // The write transaction holds the whole file; there are no row locks.
    const LOCK: &'static str = "";
    // A write statement takes the write lock before its subquery reads, so concurrent takers on
    // any connection or process never get the same row.
    const SKIP_LOCKED: &'static str = "";
    // Unix seconds.
    const NOW: &'static str = "unixepoch()";
    // A per-key counter: the key's newest use + 1, read under the write statement's lock.
    const NEXT_USE: &'static str =
        "(SELECT COALESCE(MAX(used_seq), 0) + 1 FROM mpc_derivations WHERE wallet_id = $1 AND key_index = $2)";
    const JSON_AGG: &'static str = "json_group_array";
    const SEQ: &'static str = "seq";
    const NO_LIMIT: &'static str = "-1";
    // TOTAL is a float that never overflows (exact far beyond any real window); the cast clamps.
    const SUM_CHARGED: &'static str = "CAST(MIN(TOTAL(charged), 9223372036854775807.0) AS INTEGER)";
    const CORRUPTED_HINT: &'static str = "restore the SQLite database from a backup";

    fn namespace(&self) -> Option<&str> {
        None
    }

    fn error(&self, e: sqlx::Error, action: &str) -> Error {
        storage(e, action)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// A failed statement. Lock waits that ran out are `Timeout` (temporary: a retry may succeed),
/// everything else `Storage`.
pub(crate) fn storage(e: sqlx::Error, action: &str) -> Error {
    let busy = matches!(e, sqlx::Error::PoolTimedOut)
        || e.as_database_error()
            .and_then(|d| d.code())
            .and_then(|code| code.parse::<i32>().ok())
            // Primary result codes SQLITE_BUSY and SQLITE_LOCKED; the code may be extended.
            .is_some_and(|code| matches!(code & 0xff, 5 | 6));
    let (kind, hint) = if busy {
        (ErrorKind::Timeout, "another connection or process held the database lock longer than busy_timeout_ms")
    } else {
        (ErrorKind::Storage, "check that the database file is readable and writable and the disk is not full")
    };
    Error::new(kind, format!("the SQLite store could not {action}; {hint}"))
        .with_context("backend", SQLITE_SCHEME)
        .with_source(e)
}
