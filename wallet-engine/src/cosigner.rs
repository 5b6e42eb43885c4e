//! A cosigner: its logic, independent of any transport (`service`), how one is built from
//! configuration (`builder`), its say over what it signs (`policy`), and the spending policy it
//! counts in its store (`spending`).

mod builder;
mod policy;
mod service;
mod spending;

pub use builder::CosignerBuilder;
pub use policy::{AllOf, AllowAll, DenyOutputScripts, SigningPolicy, TransactionsOnly, TxReview};
pub use service::{CosignerService, MAX_PARTIES};
pub use spending::SpendingPolicy;
