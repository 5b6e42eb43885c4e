#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod serve;
mod server;
mod wire;

pub use client::HttpTransport;
pub use serve::serve;
pub use server::cosigner_router;
pub use wire::{CBOR, JSON};

use wallet_traits::TransportFactory;

/// The URL scheme of plain HTTP cosigners: `http://host:port`.
pub const HTTP_SCHEME: &str = "http";
/// The URL scheme of HTTPS cosigners: `https://host:port`.
pub const HTTPS_SCHEME: &str = "https";

wallet_traits::inventory::submit! { TransportFactory::new(HTTP_SCHEME, HttpTransport::from_url) }
wallet_traits::inventory::submit! { TransportFactory::new(HTTPS_SCHEME, HttpTransport::from_url) }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: [TransportFactory; 2] = [
        TransportFactory::new(HTTP_SCHEME, HttpTransport::from_url),
        TransportFactory::new(HTTPS_SCHEME, HttpTransport::from_url),
    ];
    plugins.with_transport(&F[0]).with_transport(&F[1])
}
