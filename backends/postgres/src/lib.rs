#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod dialect;
mod outputs;
mod store;

pub use config::PostgresConfig;
pub use outputs::PostgresOutputStore;
pub use store::PostgresShareStore;

/// The URL scheme of this store, as in `postgres://mpc@db.example:5432/mpc_wallet`.
pub const POSTGRES_SCHEME: &str = "postgres";

/// The other scheme PostgreSQL URLs use, as in `postgresql://mpc@db.example/mpc_wallet`; opens
/// the same store.
pub const POSTGRESQL_SCHEME: &str = "postgresql";

// The check parses the URL and options without connecting.
const fn factory(scheme: &'static str) -> wallet_traits::ShareStoreFactory {
    wallet_traits::ShareStoreFactory::new(scheme, PostgresShareStore::from_url)
        .with_check(|url, options| PostgresConfig::from_url(url, options)?.connect_options().map(drop))
}

const fn output_factory(scheme: &'static str) -> wallet_traits::OutputStoreFactory {
    wallet_traits::OutputStoreFactory { scheme, build: PostgresOutputStore::from_url }
}

wallet_traits::inventory::submit! { factory(POSTGRES_SCHEME) }
wallet_traits::inventory::submit! { factory(POSTGRESQL_SCHEME) }
wallet_traits::inventory::submit! { output_factory(POSTGRES_SCHEME) }
wallet_traits::inventory::submit! { output_factory(POSTGRESQL_SCHEME) }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: [wallet_traits::ShareStoreFactory; 2] = [factory(POSTGRES_SCHEME), factory(POSTGRESQL_SCHEME)];
    static O: [wallet_traits::OutputStoreFactory; 2] =
        [output_factory(POSTGRES_SCHEME), output_factory(POSTGRESQL_SCHEME)];
    plugins.with_store(&F[0]).with_store(&F[1]).with_output_store(&O[0]).with_output_store(&O[1])
}
