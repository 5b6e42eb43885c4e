#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod certificates;
mod client;
mod json;
#[cfg(test)]
mod nonce;
pub mod payment;
pub mod wire;

#[cfg(test)]
mod tests;

pub use certificates::{CertificateSource, StaticCertificates};
pub use client::{
    AuthClient, AuthRequest, AuthResponse, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_PAYMENT_SATOSHIS,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, SIGNATURE_PROTOCOL,
};
pub use payment::{ActionsPayer, Payer, PaymentReceipt};
