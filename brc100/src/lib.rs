#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod actions;
mod args;
#[cfg(feature = "front")]
mod front;
pub mod identity;
mod methods;
mod single_key;

pub use args::*;
#[cfg(feature = "front")]
pub use front::door::{
    FrontLimits, FrontPolicy, BODY_TIMEOUT, HOSTS_VAR, MAX_BODY_BYTES, MAX_BUFFERED_BYTES, MAX_IN_FLIGHT, ORIGINS_VAR,
    TOKEN_VAR,
};
#[cfg(feature = "front")]
pub use front::{brc100_router, guarded};
pub use methods::KeyMethods;
pub use single_key::SingleKey;
