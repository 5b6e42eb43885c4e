//! [`SqliteOutputStore`]: the shared SQL core's output store on the SQLite file.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use wallet_backend_sql::SqlOutputStore;
use wallet_traits::{BoxFuture, Options, OutputStore, Result};

use crate::{dialect::SqliteDialect, store::open_pool, SqliteConfig};

/// The [`OutputStore`] of one wallet (its scope) in a SQLite file, usually the agent's share
/// store file. Methods that write several rows run in one `BEGIN IMMEDIATE` transaction: SQLite
/// takes its write lock first, so concurrent writers, in this process or another, queue instead
/// of failing mid-way, and a crash leaves each payment entirely recorded or not at all.
pub struct SqliteOutputStore {
    store: SqlOutputStore<SqliteDialect>,
    path: PathBuf,
}

wallet_backend_sql::output_store!(SqliteOutputStore => store);

impl SqliteOutputStore {
    /// Opens (creating when missing) the database file at `path` for the wallet `scope`.
    pub async fn open(path: impl AsRef<Path>, scope: &str) -> Result<Self> {
        Self::connect(&SqliteConfig::new(path.as_ref()), scope).await
    }

    /// Opens the database described by `config` for the wallet `scope`.
    pub async fn connect(config: &SqliteConfig, scope: &str) -> Result<Self> {
        let pool = open_pool(config).await?;
        Ok(Self { store: SqlOutputStore::new(pool, SqliteDialect, scope), path: config.path.clone() })
    }

    /// The registry constructor: the URL and options of [`SqliteShareStore::from_url`](crate::SqliteShareStore::from_url).
    pub fn from_url(url: String, options: Options, scope: String) -> BoxFuture<'static, Result<Arc<dyn OutputStore>>> {
        Box::pin(async move {
            let config = SqliteConfig::from_url(&url, &options)?;
            let store: Arc<dyn OutputStore> = Arc::new(Self::connect(&config, &scope).await?);
            Ok(store)
        })
    }

    /// Waits for running operations, then closes every connection.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

impl fmt::Debug for SqliteOutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOutputStore").field("path", &self.path).field("scope", &self.store.scope()).finish()
    }
}
