//! The sqlx calls behind [`PostgresShareStore`].

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{
    migrate::{MigrateError, Migrator},
    postgres::{PgArguments, PgPool, PgPoolOptions, PgRow},
    query::Query,
    Decode, Postgres, Row, Type,
};
use wallet_traits::{
    BoxFuture, DerivationCacheStore, Error, ErrorKind, ExecutionId, KeyId, Options, PrimePoolStore, Result, ShareMeta,
    ShareState, ShareStore, StoredShare,
};

use crate::{PostgresConfig, POSTGRES_SCHEME};

static MIGRATOR: Migrator = sqlx::migrate!();

/// A [`ShareStore`] in a PostgreSQL database: sealed shares, the sealed derivation cache and the
/// sealed prime pool, every row scoped by the configured namespace.
///
/// Every operation is a single SQL statement, hence atomic, also across the connections of the
/// pool and across processes sharing the database: creates are `INSERT ... ON CONFLICT DO
/// NOTHING`, updates and deletes compare the record version in their `WHERE`, and prime takers
/// lock rows with `FOR UPDATE SKIP LOCKED`.
pub struct PostgresShareStore {
    pool: PgPool,
    namespace: String,
    /// `host:port/database`, for messages; never credentials.
    server: String,
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new(POSTGRES_SCHEME);

impl PostgresShareStore {
    /// Connects to the database described by `config` and brings its schema up to date.
    ///
    /// Several processes may connect at once: the migrations run under a PostgreSQL advisory
    /// lock, so exactly one of them applies each.
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let (pool, server) = open_pool(config).await?;
        Ok(Self { pool, namespace: config.namespace.clone(), server })
    }

    /// The registry constructor: `url` is `postgres://user:password@host:port/database` (or
    /// `postgresql://`), `options` the keys of [`PostgresConfig`] other than `url`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn ShareStore>>> {
        Box::pin(async move {
            let config = PostgresConfig::from_url(&url, &options)?;
            let store: Arc<dyn ShareStore> = Arc::new(Self::connect(&config).await?);
            Ok(store)
        })
    }

    /// The namespace every row of this store is scoped by.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Waits for running operations, then closes every connection; later operations fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn fail(&self, e: sqlx::Error, action: &str) -> Error {
        db_error(e, action, &self.server).with_context("namespace", &self.namespace)
    }

    /// Tells a missing record from one at another version, after a compare-and-swap matched no row.
    async fn mismatch(&self, key: &KeyId, expected_version: u64) -> Error {
        let stored =
            sqlx::query("SELECT version FROM mpc_shares WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3")
                .bind(&self.namespace)
                .bind(key.wallet.as_str())
                .bind(i64::from(key.index))
                .fetch_optional(&self.pool)
                .await;
        match stored {
            Err(e) => self.fail(e, "read a share's version").with_context("key", key),
            Ok(row) => {
                let stored =
                    row.map(|row| row.try_get::<i64, _>("version").map_or_else(|_| "?".into(), |v| v.to_string()));
                ERRORS.version_mismatch(key, expected_version, stored).with_context("namespace", &self.namespace)
            }
        }
    }

    fn reader<'a>(&'a self, row: &'a PgRow, what: &'static str, key: &'a dyn fmt::Display) -> RowReader<'a> {
        RowReader { row, what, key, namespace: &self.namespace }
    }
}

/// Connects to the database of `config` and brings its schema up to date (under a PostgreSQL
/// advisory lock, so concurrent processes apply each migration once): the one pool behind the
/// share store and the output store, and `host:port/database` for messages.
pub(crate) async fn open_pool(config: &PostgresConfig) -> Result<(PgPool, String)> {
    let options = config.connect_options()?;
    let server = format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or(""));
    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_with(options)
        .await
        .map_err(|e| db_error(e, "connect", &server))?;
    if let Err(e) = MIGRATOR.run(&pool).await {
        // A failed run can leave the advisory lock held on a pooled connection; closing the
        // pool ends that session and releases it for the other processes.
        pool.close().await;
        return Err(migrate_error(e, &server));
    }
    Ok((pool, server))
}

impl fmt::Debug for PostgresShareStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresShareStore")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// SQLSTATEs after which a retry may succeed: connection exceptions (class 08), the server
/// shutting down or starting up, too many connections.
fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// A failed statement or connection attempt, by what the operator should do about it. `server`
/// is `host:port/database`; neither the URL's credentials nor any record bytes reach the error.
pub(crate) fn db_error(e: sqlx::Error, action: &str, server: &str) -> Error {
    let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()).unwrap_or_default();
    let (kind, message) = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => (
            // Temporary: a retry may succeed once the server is back or the pool has room.
            ErrorKind::Timeout,
            format!(
                "the PostgreSQL store could not {action}: no connection to the server at {server} within \
                 acquire_timeout_ms; check that the server runs and accepts connections (or raise \
                 max_connections if every pooled connection is busy)"
            ),
        ),
        _ if server_unavailable(&code) => (
            ErrorKind::Timeout,
            format!(
                "the PostgreSQL store could not {action}: the server at {server} is unavailable (starting, \
                 shutting down or out of connections); check that the server runs and accepts connections"
            ),
        ),
        // Not Unauthorized: that kind means a cosigner refused the agent's credentials, and a
        // transport would report it as such; a wrong database password is the operator's setting.
        _ if code.starts_with("28") => (
            ErrorKind::Config,
            format!(
                "the PostgreSQL server at {server} refused the credentials; check the user and password in \
                 MPC_STORAGE_URL, or set the password in MPC_STORAGE__PASSWORD"
            ),
        ),
        _ if code == "3D000" => (
            ErrorKind::Config,
            format!(
                "the database does not exist on the PostgreSQL server at {server}; create it or fix the \
                 database name in MPC_STORAGE_URL"
            ),
        ),
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => (
            ErrorKind::Config,
            format!(
                "the PostgreSQL store could not {action}: the connection settings do not work with the server at \
                 {server}; check sslmode and sslrootcert in MPC_STORAGE_URL"
            ),
        ),
        sqlx::Error::PoolClosed => {
            (ErrorKind::Storage, format!("the PostgreSQL store could not {action}: the store was closed"))
        }
        _ => (
            ErrorKind::Storage,
            format!("the PostgreSQL store could not {action}; check the server's log and the database role's rights"),
        ),
    };
    let error = Error::new(kind, message).with_context("backend", POSTGRES_SCHEME).with_context("server", server);
    let error = if code.is_empty() { error } else { error.with_context("sqlstate", code) };
    // The driver's text: an OS error, or the server's message, which names the user at most.
    error.with_source(e)
}

fn migrate_error(e: MigrateError, server: &str) -> Error {
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
            db_error(e, "create or upgrade its schema", server)
        }
        e => Error::new(
            ErrorKind::Storage,
            "could not create or upgrade the PostgreSQL store's schema: the database holds migrations this \
             release does not know; if a newer release wrote it, run that release, and give the store a \
             database (or schema) of its own rather than one another sqlx application migrates",
        )
        .with_context("backend", POSTGRES_SCHEME)
        .with_context("server", server)
        .with_source(e),
    }
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// Binds `$1`..`$11` of the share statements, in column order.
fn bind_share<'q>(query: PgQuery<'q>, namespace: &'q str, record: &'q StoredShare) -> PgQuery<'q> {
    let meta = &record.meta;
    query
        .bind(namespace)
        .bind(record.key.wallet.as_str())
        .bind(i64::from(record.key.index))
        .bind(i32::from(meta.party_index))
        .bind(meta.public_key.as_slice())
        .bind(i32::from(meta.threshold))
        .bind(i32::from(meta.parties))
        .bind(meta.state.as_str())
        .bind(meta.execution_id.as_bytes().as_slice())
        .bind(i32::from(record.format_version))
        .bind(record.sealed.as_slice())
}

/// Reads columns of one row, reporting anything that does not parse as a corrupted record.
pub(crate) struct RowReader<'a> {
    pub(crate) row: &'a PgRow,
    pub(crate) what: &'static str,
    pub(crate) key: &'a dyn fmt::Display,
    pub(crate) namespace: &'a str,
}

impl RowReader<'_> {
    pub(crate) fn corrupted(&self, column: &'static str) -> Error {
        Error::new(
            ErrorKind::Corrupted,
            format!(
                "a stored {} row does not parse; restore the PostgreSQL database from a backup, and check that \
                 nothing else writes to the store's tables",
                self.what
            ),
        )
        .with_context("backend", POSTGRES_SCHEME)
        .with_context("namespace", self.namespace)
        .with_context("key", self.key)
        .with_context("column", column)
    }

    pub(crate) fn get<T>(&self, column: &'static str) -> Result<T>
    where
        T: for<'r> Decode<'r, Postgres> + Type<Postgres>,
    {
        // The decode error names the column and types, never the value.
        self.row.try_get(column).map_err(|e| self.corrupted(column).with_source(e))
    }

    /// An integer column of SQL type `S` (`i32` for INTEGER, `i64` for BIGINT) into `T`.
    pub(crate) fn int<S, T>(&self, column: &'static str) -> Result<T>
    where
        S: for<'r> Decode<'r, Postgres> + Type<Postgres>,
        T: TryFrom<S>,
    {
        T::try_from(self.get::<S>(column)?).map_err(|_| self.corrupted(column))
    }
}

fn share_from_row(key: &KeyId, r: &RowReader<'_>) -> Result<StoredShare> {
    let state = ShareState::parse(&r.get::<String>("state")?).map_err(|e| {
        e.with_context("backend", POSTGRES_SCHEME).with_context("namespace", r.namespace).with_context("key", key)
    })?;
    let execution_id: [u8; 32] =
        r.get::<Vec<u8>>("execution_id")?.try_into().map_err(|_| r.corrupted("execution_id"))?;
    Ok(StoredShare {
        key: key.clone(),
        meta: ShareMeta {
            public_key: r.get("public_key")?,
            threshold: r.int::<i32, _>("threshold")?,
            parties: r.int::<i32, _>("parties")?,
            party_index: r.int::<i32, _>("party_index")?,
            state,
            execution_id: ExecutionId::from_bytes(execution_id),
        },
        version: r.int::<i64, _>("version")?,
        format_version: r.int::<i32, _>("format_version")?,
        sealed: r.get("sealed")?,
    })
}

#[async_trait]
impl ShareStore for PostgresShareStore {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        Some(self)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        Some(self)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        let row = sqlx::query(
            "SELECT party_index, public_key, threshold, parties, state, execution_id, format_version, version, \
             sealed FROM mpc_shares WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "read a share").with_context("key", key))?;
        row.map(|row| share_from_row(key, &self.reader(&row, "share", key))).transpose()
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        // ON CONFLICT DO NOTHING rather than catching the unique violation: a concurrent creator
        // waits for the winner's commit and then inserts nothing, with no error to classify.
        let query = sqlx::query(
            "INSERT INTO mpc_shares (namespace, wallet_id, key_index, party_index, public_key, threshold, parties, \
             state, execution_id, format_version, sealed, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1) \
             ON CONFLICT (namespace, wallet_id, key_index) DO NOTHING",
        );
        let done = bind_share(query, &self.namespace, record)
            .execute(&self.pool)
            .await
            .map_err(|e| self.fail(e, "write a new share").with_context("key", &record.key))?;
        if done.rows_affected() == 0 {
            return Err(ERRORS.already_exists(&record.key).with_context("namespace", &self.namespace));
        }
        Ok(())
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        // No stored version exceeds i64::MAX, so such an expectation can only mismatch.
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(&record.key, expected_version).await);
        };
        let query = sqlx::query(
            "UPDATE mpc_shares SET party_index = $4, public_key = $5, threshold = $6, parties = $7, state = $8, \
             execution_id = $9, format_version = $10, sealed = $11, version = version + 1, updated_at = now() \
             WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3 AND version = $12 \
             RETURNING version",
        );
        let row = bind_share(query, &self.namespace, record)
            .bind(expected)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.fail(e, "update a share").with_context("key", &record.key))?;
        match row {
            Some(row) => self.reader(&row, "share", &record.key).int::<i64, _>("version"),
            None => Err(self.mismatch(&record.key, expected_version).await),
        }
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(key, expected_version).await);
        };
        let done = sqlx::query(
            "DELETE FROM mpc_shares WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3 AND version = $4",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(expected)
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail(e, "delete a share").with_context("key", key))?;
        if done.rows_affected() == 0 {
            return Err(self.mismatch(key, expected_version).await);
        }
        Ok(())
    }
}

#[async_trait]
impl DerivationCacheStore for PostgresShareStore {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        // A hit marks the entry used: one UPDATE by primary key, taking the next value of the
        // sequence (ordered across every connection and process).
        let row = sqlx::query(
            "UPDATE mpc_derivations SET used_seq = nextval('mpc_derivation_uses') \
             WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3 AND lookup = $4 \
             RETURNING sealed",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "read a derivation-cache entry").with_context("key", key))?;
        row.map(|row| self.reader(&row, "derivation-cache", key).get("sealed")).transpose()
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        // used_seq defaults to the sequence's next value; an overwrite takes the one the insert
        // drew (excluded.used_seq) rather than drawing another.
        sqlx::query(
            "INSERT INTO mpc_derivations (namespace, wallet_id, key_index, lookup, sealed) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (namespace, wallet_id, key_index, lookup) DO UPDATE SET sealed = excluded.sealed, \
             created_at = now(), used_seq = excluded.used_seq",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(lookup)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail(e, "write a derivation-cache entry").with_context("key", key))?;
        Ok(())
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        // The subquery walks the recency index from the newest entry, skipping `keep`. Two
        // processes evicting at once may pick the same rows; deleting a row twice is harmless.
        let done = sqlx::query(
            "DELETE FROM mpc_derivations \
             WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3 AND lookup IN \
             (SELECT lookup FROM mpc_derivations WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3 \
             ORDER BY used_seq DESC OFFSET $4)",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .bind(i64::try_from(keep).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail(e, "evict derivation-cache entries").with_context("key", key))?;
        Ok(done.rows_affected())
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM mpc_derivations WHERE namespace = $1 AND wallet_id = $2 AND key_index = $3",
        )
        .bind(&self.namespace)
        .bind(key.wallet.as_str())
        .bind(i64::from(key.index))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.fail(e, "count derivation-cache entries").with_context("key", key))?;
        self.reader(&row, "derivation-cache", key).int::<i64, _>("n")
    }
}

#[async_trait]
impl PrimePoolStore for PostgresShareStore {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO mpc_primes (namespace, pool, sealed) VALUES ($1, $2, $3)")
            .bind(&self.namespace)
            .bind(pool)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(|e| self.fail(e, "add to the prime pool").with_context("pool", pool.escape_default()))?;
        Ok(())
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        // The subquery locks the oldest row no other taker holds, so concurrent takers in any
        // process each get a different pair without waiting on one another; the statement is its
        // own transaction, so the lock lasts until the row is gone.
        let row = sqlx::query(
            "DELETE FROM mpc_primes WHERE id = \
             (SELECT id FROM mpc_primes WHERE namespace = $1 AND pool = $2 ORDER BY id LIMIT 1 \
             FOR UPDATE SKIP LOCKED) \
             RETURNING sealed",
        )
        .bind(&self.namespace)
        .bind(pool)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "take from the prime pool").with_context("pool", pool.escape_default()))?;
        let pool = pool.escape_default();
        row.map(|row| self.reader(&row, "prime-pool", &pool).get("sealed")).transpose()
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mpc_primes WHERE namespace = $1 AND pool = $2")
            .bind(&self.namespace)
            .bind(pool)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.fail(e, "count the prime pool").with_context("pool", pool.escape_default()))?;
        let pool = pool.escape_default();
        self.reader(&row, "prime-pool", &pool).int::<i64, _>("n")
    }
}
