#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod store;

pub use config::SqliteConfig;
pub use store::SqliteShareStore;

/// The URL scheme of this store, as in `sqlite:///var/lib/mpc/agent.db`.
pub const SQLITE_SCHEME: &str = "sqlite";

wallet_traits::inventory::submit! {
    wallet_traits::ShareStoreFactory::new(SQLITE_SCHEME, SqliteShareStore::from_url)
        .with_check(|url, options| SqliteConfig::from_url(url, options).map(drop))
}
