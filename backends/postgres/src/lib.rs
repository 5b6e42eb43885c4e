#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod store;

pub use config::PostgresConfig;
pub use store::PostgresShareStore;

/// The URL scheme of this store, as in `postgres://mpc@db.example:5432/mpc_wallet`.
pub const POSTGRES_SCHEME: &str = "postgres";

/// The other scheme PostgreSQL URLs use, as in `postgresql://mpc@db.example/mpc_wallet`; opens
/// the same store.
pub const POSTGRESQL_SCHEME: &str = "postgresql";

// The check parses the URL and options without connecting.
wallet_traits::inventory::submit! {
    wallet_traits::ShareStoreFactory::new(POSTGRES_SCHEME, PostgresShareStore::from_url)
        .with_check(|url, options| PostgresConfig::from_url(url, options)?.connect_options().map(drop))
}

wallet_traits::inventory::submit! {
    wallet_traits::ShareStoreFactory::new(POSTGRESQL_SCHEME, PostgresShareStore::from_url)
        .with_check(|url, options| PostgresConfig::from_url(url, options)?.connect_options().map(drop))
}
