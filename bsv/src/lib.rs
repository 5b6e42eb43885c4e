#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod brc42;
mod network;

pub use network::Network;
