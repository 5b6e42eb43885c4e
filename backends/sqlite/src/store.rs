//! Opening the SQLite file behind [`SqliteShareStore`] and [`SqliteOutputStore`](crate::SqliteOutputStore);
//! the statements are the shared SQL core's.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};
use wallet_backend_sql::SqlShareStore;
use wallet_traits::{BoxFuture, Error, ErrorKind, Options, Result, ShareStore};

use crate::{
    dialect::{storage, SqliteDialect},
    SqliteConfig, SQLITE_SCHEME,
};

static MIGRATOR: Migrator = sqlx::migrate!();

/// A [`ShareStore`] in one SQLite file: sealed shares, the sealed derivation cache and the sealed
/// prime pool. Opened in WAL mode with `synchronous=FULL`, so a share reported written survives
/// a power cut.
///
/// Every operation is a single SQL statement, hence atomic, also across the connections of the
/// pool and across processes sharing the file.
pub struct SqliteShareStore {
    store: SqlShareStore<SqliteDialect>,
    path: PathBuf,
}

wallet_backend_sql::share_store!(SqliteShareStore => store);

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
        Ok(Self { store: SqlShareStore::new(pool, SqliteDialect), path: config.path.clone() })
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
        self.store.close().await;
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
