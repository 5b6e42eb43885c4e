#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod brc100;
mod client;
mod serve;
mod server;
mod wire;

pub use brc100::{brc100_router, MAX_BODY_BYTES};
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
