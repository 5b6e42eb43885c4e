//! [`PostgresOutputStore`]: the shared SQL core's output store in the PostgreSQL database.

use std::{fmt, sync::Arc};

use wallet_backend_sql::SqlOutputStore;
use wallet_traits::{BoxFuture, Options, OutputStore, Result};

use crate::{dialect::PgDialect, store::open_pool, PostgresConfig};

/// The [`OutputStore`] of one wallet (its scope) in a PostgreSQL database, within the configured
/// namespace. Methods that write several rows run in one transaction that first locks the
/// action's row, so concurrent writers on any connection or process serialize per action, and a
/// client killed mid-way leaves nothing: the server rolls back what was not committed. Funding
/// takes outputs with `FOR UPDATE SKIP LOCKED`, so concurrent payments never wait on, or take,
/// each other's outputs.
pub struct PostgresOutputStore {
    store: SqlOutputStore<PgDialect>,
}

wallet_backend_sql::output_store!(PostgresOutputStore => store);

impl PostgresOutputStore {
    /// Connects to the database of `config` for the wallet `scope` and brings its schema up to date.
    pub async fn connect(config: &PostgresConfig, scope: &str) -> Result<Self> {
        let (pool, dialect) = open_pool(config).await?;
        Ok(Self { store: SqlOutputStore::new(pool, dialect, scope) })
    }

    /// The registry constructor: the URL and options of [`PostgresShareStore::from_url`](crate::PostgresShareStore::from_url).
    pub fn from_url(url: String, options: Options, scope: String) -> BoxFuture<'static, Result<Arc<dyn OutputStore>>> {
        Box::pin(async move {
            let config = PostgresConfig::from_url(&url, &options)?;
            let store: Arc<dyn OutputStore> = Arc::new(Self::connect(&config, &scope).await?);
            Ok(store)
        })
    }

    /// Waits for running operations, then closes every connection.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

impl fmt::Debug for PostgresOutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dialect = self.store.dialect();
        f.debug_struct("PostgresOutputStore")
            .field("server", &dialect.server)
            .field("namespace", &dialect.namespace)
            .field("scope", &self.store.scope())
            .finish()
    }
}
