#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod config;
mod file;
mod store;

pub use config::JsonFileConfig;
pub use store::JsonFileStore;

/// The URL scheme of this store, as in `jsonfile:///var/lib/mpc/agent.json`.
pub const JSONFILE_SCHEME: &str = "jsonfile";

// Runs before main in every binary that links this crate: `open_store("jsonfile://...")` then
// finds the factory. A binary must name the crate (`use wallet_plugin_example_store as _;`), or
// the linker drops it along with this registration; `install` avoids that.
const FACTORY: wallet_traits::ShareStoreFactory =
    wallet_traits::ShareStoreFactory::new(JSONFILE_SCHEME, JsonFileStore::from_url)
        .with_check(|url, options| JsonFileConfig::from_url(url, options).map(drop));

wallet_traits::inventory::submit! { FACTORY }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: wallet_traits::ShareStoreFactory = FACTORY;
    plugins.with_store(&F)
}
