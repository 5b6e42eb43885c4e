#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod codec;
mod config;
mod store;

pub use config::RocksDbConfig;
pub use store::RocksDbShareStore;

/// The URL scheme of this store, as in `rocksdb:///var/lib/mpc/agent`.
pub const ROCKSDB_SCHEME: &str = "rocksdb";

const FACTORY: wallet_traits::ShareStoreFactory =
    wallet_traits::ShareStoreFactory::new(ROCKSDB_SCHEME, RocksDbShareStore::from_url)
        .with_check(|url, options| RocksDbConfig::from_url(url, options).map(drop));

wallet_traits::inventory::submit! { FACTORY }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: wallet_traits::ShareStoreFactory = FACTORY;
    plugins.with_store(&F)
}
