//! The sqlx calls behind [`SqliteShareStore`].

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use sqlx::{
    migrate::Migrator,
    query::Query,
    sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
    Decode, Row, Sqlite, Type,
};
use wallet_traits::{
    BoxFuture, DerivationCacheStore, Error, ErrorKind, ExecutionId, KeyId, Options, PrimePoolStore, Result, ShareMeta,
    ShareState, ShareStore, StoredShare,
};

use crate::{SqliteConfig, SQLITE_SCHEME};

static MIGRATOR: Migrator = sqlx::migrate!();

/// A [`ShareStore`] in one SQLite file: sealed shares, the sealed derivation cache and the sealed
/// prime pool. Opened in WAL mode with `synchronous=FULL`, so a share reported written survives
/// a power cut.
///
/// Every operation is a single SQL statement, hence atomic, also across the connections of the
/// pool and across processes sharing the file.
pub struct SqliteShareStore {
    pool: SqlitePool,
    path: PathBuf,
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new(SQLITE_SCHEME);

impl SqliteShareStore {
    /// Opens (creating when missing) the database file at `path` with default settings and
    /// brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect(&SqliteConfig::new(path.as_ref())).await
    }

    /// Opens the database described by `config`, creating the file and its parent directory when
    /// missing, and brings its schema up to date.
    pub async fn connect(config: &SqliteConfig) -> Result<Self> {
        let pool = open_pool(config).await?;
        Ok(Self { pool, path: config.path.clone() })
    }

    /// The registry constructor: `url` is `sqlite:///abs/path.db` or `sqlite://relative/path.db`,
    /// `options` the keys of [`SqliteConfig`] other than `path`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn ShareStore>>> {
        Box::pin(async move {
            let config = SqliteConfig::from_url(&url, &options)?;
            let store: Arc<dyn ShareStore> = Arc::new(Self::connect(&config).await?);
            Ok(store)
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for running operations, then closes every connection; later operations fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Tells a missing record from one at another version, after a compare-and-swap matched no row.
    async fn mismatch(&self, key: &KeyId, expected_version: u64) -> Error {
        let stored = sqlx::query("SELECT version FROM mpc_shares WHERE wallet_id = ?1 AND key_index = ?2")
            .bind(key.wallet.as_str())
            .bind(i64::from(key.index))
            .fetch_optional(&self.pool)
            .await;
        match stored {
            Err(e) => storage(e, "read a share's version").with_context("key", key),
            Ok(row) => {
                let stored =
                    row.map(|row| row.try_get::<i64, _>("version").map_or_else(|_| "?".into(), |v| v.to_string()));
                ERRORS.version_mismatch(key, expected_version, stored)
            }
        }
    }
}

/// Opens the file of `config` (creating it and its directory when missing) in WAL mode with
/// `synchronous=FULL` and brings its schema up to date: the one pool behind the share store and
/// the output store.
pub(crate) async fn open_pool(config: &SqliteConfig) -> Result<SqlitePool> {
    config.validate()?;
    let path = &config.path;
    prepare_file(path).await?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(config.busy_timeout_ms));
    let pool = SqlitePoolOptions::new()
        .max_connections(config.max_connections)
        .connect_with(options)
        .await
        .map_err(|e| storage(e, "open the database file").with_context("path", path.display()))?;
    MIGRATOR.run(&pool).await.map_err(|e| {
        Error::new(
            ErrorKind::Storage,
            "could not create or upgrade the SQLite store's schema; if a newer release wrote this file, run that \
             release or restore a backup",
        )
        .with_context("backend", SQLITE_SCHEME)
        .with_context("path", path.display())
        .with_source(e)
    })?;
    Ok(pool)
}

impl fmt::Debug for SqliteShareStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteShareStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Creates the parent directory and the file itself owner-only (on Unix), so neither the sealed
/// shares nor SQLite's `-wal`/`-shm` files, which copy the file's mode, are readable by others.
/// Existing directories and files keep their permissions.
async fn prepare_file(path: &Path) -> Result<()> {
    let io_error = |e: std::io::Error, what: &str, at: &Path| {
        Error::new(
            ErrorKind::Storage,
            format!("could not create the SQLite {what}; check the permissions of its directory"),
        )
        .with_context("backend", SQLITE_SCHEME)
        .with_context("path", at.display())
        .with_source(e)
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dir = tokio::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        dir.mode(0o700);
        dir.create(parent).await.map_err(|e| io_error(e, "database directory", parent))?;
    }
    let mut file = tokio::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    file.mode(0o600);
    match file.open(path).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(e, "database file", path)),
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

type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds `?1`..`?10` of the share statements, in column order.
fn bind_share<'q>(query: SqliteQuery<'q>, record: &'q StoredShare) -> SqliteQuery<'q> {
    let meta = &record.meta;
    query
        .bind(record.key.wallet.as_str())
        .bind(i64::from(record.key.index))
        .bind(i64::from(meta.party_index))
        .bind(meta.public_key.as_slice())
        .bind(i64::from(meta.threshold))
        .bind(i64::from(meta.parties))
        .bind(meta.state.as_str())
        .bind(meta.execution_id.as_bytes().as_slice())
        .bind(i64::from(record.format_version))
        .bind(record.sealed.as_slice())
}

/// Reads columns of one row, reporting anything that does not parse as a corrupted record.
pub(crate) struct RowReader<'a> {
    pub(crate) row: &'a SqliteRow,
    pub(crate) what: &'static str,
    pub(crate) key: &'a dyn fmt::Display,
}

impl RowReader<'_> {
    pub(crate) fn corrupted(&self, column: &'static str) -> Error {
        Error::new(
            ErrorKind::Corrupted,
            format!("a stored {} row does not parse; restore the SQLite database from a backup", self.what),
        )
        .with_context("backend", SQLITE_SCHEME)
        .with_context("key", self.key)
        .with_context("column", column)
    }

    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T>
    where
        T: for<'r> Decode<'r, Sqlite> + Type<Sqlite>,
    {
        self.row.try_get(column).map_err(|e| self.corrupted(column).with_source(e))
    }

    pub(crate) fn int<T: TryFrom<i64>>(&self, column: &'static str) -> Result<T> {
        T::try_from(self.get::<i64>(column)?).map_err(|_| self.corrupted(column))
    }
}

fn share_from_row(key: &KeyId, row: &SqliteRow) -> Result<StoredShare> {
    let r = RowReader { row, what: "share", key };
    let state = ShareState::parse(&r.get::<String>("state")?)
        .map_err(|e| e.with_context("backend", SQLITE_SCHEME).with_context("key", key))?;
    let execution_id: [u8; 32] =
        r.get::<Vec<u8>>("execution_id")?.try_into().map_err(|_| r.corrupted("execution_id"))?;
    Ok(StoredShare {
        key: key.clone(),
        meta: ShareMeta {
            public_key: r.get("public_key")?,
            threshold: r.int("threshold")?,
            parties: r.int("parties")?,
            party_index: r.int("party_index")?,
            state,
            execution_id: ExecutionId::from_bytes(execution_id),
        },
        version: r.int("version")?,
        format_version: r.int("format_version")?,
        sealed: r.get("sealed")?,
    })
}

#[async_trait]
impl ShareStore for SqliteShareStore {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        Some(self)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        Some(self)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        let row = sqlx::query(
            "SELECT party_index, public_key, threshold, parties, state, execution_id, format_version, version, \
             sealed FROM mpc_shares WHERE wallet_id = ?1 AND key_index = ?2",
        )
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage(e, "read a share").with_context("key", key))?;
        row.map(|row| share_from_row(key, &row)).transpose()
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO mpc_shares (wallet_id, key_index, party_index, public_key, threshold, parties, state, \
             execution_id, format_version, sealed, version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, unixepoch(), unixepoch())",
        );
        match bind_share(query, record).execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(ERRORS.already_exists(&record.key)),
            Err(e) => Err(storage(e, "write a new share").with_context("key", &record.key)),
        }
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        // No stored version exceeds i64::MAX, so such an expectation can only mismatch.
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(&record.key, expected_version).await);
        };
        let query = sqlx::query(
            "UPDATE mpc_shares SET party_index = ?3, public_key = ?4, threshold = ?5, parties = ?6, state = ?7, \
             execution_id = ?8, format_version = ?9, sealed = ?10, version = version + 1, updated_at = unixepoch() \
             WHERE wallet_id = ?1 AND key_index = ?2 AND version = ?11 \
             RETURNING version",
        );
        let row = bind_share(query, record)
            .bind(expected)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| storage(e, "update a share").with_context("key", &record.key))?;
        match row {
            Some(row) => RowReader { row: &row, what: "share", key: &record.key }.int("version"),
            None => Err(self.mismatch(&record.key, expected_version).await),
        }
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(key, expected_version).await);
        };
        let done = sqlx::query("DELETE FROM mpc_shares WHERE wallet_id = ?1 AND key_index = ?2 AND version = ?3")
            .bind(key.wallet.as_str())
            .bind(i64::from(key.index))
            .bind(expected)
            .execute(&self.pool)
            .await
            .map_err(|e| storage(e, "delete a share").with_context("key", key))?;
        if done.rows_affected() == 0 {
            return Err(self.mismatch(key, expected_version).await);
        }
        Ok(())
    }
}

#[async_trait]
impl DerivationCacheStore for SqliteShareStore {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        // A hit marks the entry used: one indexed UPDATE, its new value the key's newest use + 1
        // (the write statement holds SQLite's write lock while the subquery reads).
        let row = sqlx::query(
            "UPDATE mpc_derivations SET used_seq = \
             (SELECT MAX(used_seq) + 1 FROM mpc_derivations WHERE wallet_id = ?1 AND key_index = ?2) \
             WHERE wallet_id = ?1 AND key_index = ?2 AND lookup = ?3 \
             RETURNING sealed",
        )
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage(e, "read a derivation-cache entry").with_context("key", key))?;
        row.map(|row| RowReader { row: &row, what: "derivation-cache", key }.get("sealed")).transpose()
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO mpc_derivations (wallet_id, key_index, lookup, sealed, created_at, used_seq) \
             VALUES (?1, ?2, ?3, ?4, unixepoch(), \
             (SELECT COALESCE(MAX(used_seq), 0) + 1 FROM mpc_derivations WHERE wallet_id = ?1 AND key_index = ?2)) \
             ON CONFLICT (wallet_id, key_index, lookup) DO UPDATE SET sealed = excluded.sealed, \
             created_at = excluded.created_at, used_seq = excluded.used_seq",
        )
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(lookup)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(|e| storage(e, "write a derivation-cache entry").with_context("key", key))?;
        Ok(())
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        // Walks the recency index from the newest entry, skipping `keep`; one statement, so
        // atomic. LIMIT -1 is SQLite's "no limit".
        let done = sqlx::query(
            "DELETE FROM mpc_derivations WHERE rowid IN \
             (SELECT rowid FROM mpc_derivations WHERE wallet_id = ?1 AND key_index = ?2 \
             ORDER BY used_seq DESC LIMIT -1 OFFSET ?3)",
        )
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(|e| storage(e, "evict derivation-cache entries").with_context("key", key))?;
        Ok(done.rows_affected())
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mpc_derivations WHERE wallet_id = ?1 AND key_index = ?2")
            .bind(key.wallet.as_str())
            .bind(i64::from(key.index))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| storage(e, "count derivation-cache entries").with_context("key", key))?;
        RowReader { row: &row, what: "derivation-cache", key }.int("n")
    }
}

#[async_trait]
impl PrimePoolStore for SqliteShareStore {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO mpc_primes (pool, sealed, created_at) VALUES (?1, ?2, unixepoch())")
            .bind(pool)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(|e| storage(e, "add to the prime pool").with_context("pool", pool.escape_default()))?;
        Ok(())
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        // One write statement is one transaction: SQLite takes the write lock before the subquery
        // reads, so concurrent takers on any connection or process never get the same row.
        let row = sqlx::query(
            "DELETE FROM mpc_primes WHERE id = \
             (SELECT id FROM mpc_primes WHERE pool = ?1 ORDER BY id LIMIT 1) \
             RETURNING sealed",
        )
        .bind(pool)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage(e, "take from the prime pool").with_context("pool", pool.escape_default()))?;
        let pool = pool.escape_default();
        row.map(|row| RowReader { row: &row, what: "prime-pool", key: &pool }.get("sealed")).transpose()
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mpc_primes WHERE pool = ?1")
            .bind(pool)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| storage(e, "count the prime pool").with_context("pool", pool.escape_default()))?;
        let pool = pool.escape_default();
        RowReader { row: &row, what: "prime-pool", key: &pool }.int("n")
    }
}
