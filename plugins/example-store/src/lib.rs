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
// the linker drops it along with this registration.
wallet_traits::inventory::submit! {
    wallet_traits::ShareStoreFactory::new(JSONFILE_SCHEME, JsonFileStore::from_url)
        .with_check(|url, options| JsonFileConfig::from_url(url, options).map(drop))
}
