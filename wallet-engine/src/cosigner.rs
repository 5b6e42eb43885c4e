//! A cosigner: its logic, independent of any transport (`service`), and how one is built from
//! configuration (`builder`), and its say over what it signs (`policy`).

mod builder;
mod policy;
mod service;

pub use builder::CosignerBuilder;
pub use policy::{AllOf, AllowAll, DenyOutputScripts, SigningPolicy, TransactionsOnly, TxReview};
pub use service::{CosignerService, MAX_PARTIES};
