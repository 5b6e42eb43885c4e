#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod memory;
mod suite;

pub use memory::MemoryShareStore;
pub use suite::{sample_record, share_store_suite, SuiteReport};
