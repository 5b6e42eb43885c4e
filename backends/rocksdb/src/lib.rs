#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod codec;
mod config;
mod store;

pub use config::RocksDbConfig;
pub use store::RocksDbShareStore;

/// The URL scheme of this store, as in `rocksdb:///var/lib/mpc/agent`.
pub const ROCKSDB_SCHEME: &str = "rocksdb";

wallet_traits::inventory::submit! {
    wallet_traits::ShareStoreFactory::new(ROCKSDB_SCHEME, RocksDbShareStore::from_url)
        .with_check(|url, options| RocksDbConfig::from_url(url, options).map(drop))
}
