#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod convert;
mod server;

pub use client::{
    GrpcTransport, BUSY_ATTEMPTS, BUSY_FIRST_DELAY, CLIENT_MAX_MESSAGE_BYTES, CONNECT_TIMEOUT, REQUEST_TIMEOUT,
};
pub use server::serve;
use wallet_traits::TransportFactory;

/// Plaintext HTTP/2: `grpc://HOST:PORT`. For loopback or a network that is already protected.
pub const GRPC_SCHEME: &str = "grpc";
/// TLS: `grpcs://HOST:PORT`.
pub const GRPCS_SCHEME: &str = "grpcs";

/// Binary metadata entry in a failed call's trailers that carries the full error (a serialized
/// [`proto::WireError`]).
pub const ERROR_METADATA_KEY: &str = convert::ERROR_METADATA_KEY;

wallet_traits::inventory::submit! { TransportFactory::new(GRPC_SCHEME, GrpcTransport::from_url) }
wallet_traits::inventory::submit! { TransportFactory::new(GRPCS_SCHEME, GrpcTransport::from_url) }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: [TransportFactory; 2] = [
        TransportFactory::new(GRPC_SCHEME, GrpcTransport::from_url),
        TransportFactory::new(GRPCS_SCHEME, GrpcTransport::from_url),
    ];
    plugins.with_transport(&F[0]).with_transport(&F[1])
}

/// The messages and stubs generated from `proto/cosigner.proto` (package `mpc.cosigner.v1`), for
/// clients and servers that speak the API directly.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("mpc.cosigner.v1");
}
