//! Connecting to the PostgreSQL database behind [`PostgresShareStore`] and
//! [`PostgresOutputStore`](crate::PostgresOutputStore); the statements are the shared SQL core's.

use std::{fmt, sync::Arc, time::Duration};

use sqlx::{
    migrate::{MigrateError, Migrator},
    postgres::{PgPool, PgPoolOptions},
};
use wallet_backend_sql::SqlShareStore;
use wallet_traits::{BoxFuture, Error, ErrorKind, Options, Result, ShareStore};

use crate::{
    dialect::{db_error, PgDialect},
    PostgresConfig, POSTGRES_SCHEME,
};

static MIGRATOR: Migrator = sqlx::migrate!();

/// A [`ShareStore`] in a PostgreSQL database: sealed shares, the sealed derivation cache and the
/// sealed prime pool, every row scoped by the configured namespace.
///
/// Every operation is a single SQL statement, hence atomic, also across the connections of the
/// pool and across processes sharing the database: creates are `INSERT ... ON CONFLICT DO
/// NOTHING`, updates and deletes compare the record version in their `WHERE`, and prime takers
/// lock rows with `FOR UPDATE SKIP LOCKED`.
pub struct PostgresShareStore {
    store: SqlShareStore<PgDialect>,
}

wallet_backend_sql::share_store!(PostgresShareStore => store);

impl PostgresShareStore {
    /// Connects to the database described by `config` and brings its schema up to date.
    ///
    /// Several processes may connect at once: the migrations run under a PostgreSQL advisory
    /// lock, so exactly one of them applies each.
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let (pool, dialect) = open_pool(config).await?;
        Ok(Self { store: SqlShareStore::new(pool, dialect) })
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
        &self.store.dialect().namespace
    }

    /// Waits for running operations, then closes every connection; later operations fail.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Connects to the database of `config` and brings its schema up to date (under a PostgreSQL
/// advisory lock, so concurrent processes apply each migration once): the one pool behind the
/// share store and the output store, with its dialect.
pub(crate) async fn open_pool(config: &PostgresConfig) -> Result<(PgPool, PgDialect)> {
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
    Ok((pool, PgDialect { server, namespace: config.namespace.clone() }))
}

impl fmt::Debug for PostgresShareStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dialect = self.store.dialect();
        f.debug_struct("PostgresShareStore")
            .field("server", &dialect.server)
            .field("namespace", &dialect.namespace)
            .finish_non_exhaustive()
    }
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
