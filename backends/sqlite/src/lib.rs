#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod dialect;
mod outputs;
mod store;

pub use config::SqliteConfig;
pub use outputs::SqliteOutputStore;
pub use store::SqliteShareStore;

/// The URL scheme of this store, as in `sqlite:///var/lib/mpc/agent.db`.
pub const SQLITE_SCHEME: &str = "sqlite";

const FACTORY: wallet_traits::ShareStoreFactory =
    wallet_traits::ShareStoreFactory::new(SQLITE_SCHEME, SqliteShareStore::from_url)
        .with_check(|url, options| SqliteConfig::from_url(url, options).map(drop));

const OUTPUT_FACTORY: wallet_traits::OutputStoreFactory =
    wallet_traits::OutputStoreFactory { scheme: SQLITE_SCHEME, build: SqliteOutputStore::from_url };

wallet_traits::inventory::submit! { FACTORY }
wallet_traits::inventory::submit! { OUTPUT_FACTORY }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: wallet_traits::ShareStoreFactory = FACTORY;
    static O: wallet_traits::OutputStoreFactory = OUTPUT_FACTORY;
    plugins.with_store(&F).with_output_store(&O)
}
