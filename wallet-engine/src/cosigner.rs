//! A cosigner: its logic, independent of any transport (`service`), and how one is built from
//! configuration (`builder`).

mod builder;
mod service;

pub use builder::CosignerBuilder;
pub use service::{CosignerService, MAX_PARTIES};
