#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod certificate_suite;
mod counting;
pub mod crash;
mod intercept;
mod memory;
pub mod output_crash;
mod output_suite;
mod policy_suite;
mod suite;
mod transport_suite;

pub use certificate_suite::{certificate_cases, certificates_of, sample_certificate};
pub use counting::CountingCosigner;
pub use intercept::Intercept;
pub use memory::MemoryShareStore;
pub use output_suite::{
    fund, open_action, output_cases, random_txid, sample_action, sample_output, unique, OutputFixture,
};
pub use policy_suite::{policy_cases, policy_of};
pub use suite::{cases, sample_record, share_store_suite, Fixture, StoreFixture, SuiteReport};
pub use transport_suite::{
    known_key, scripted_request, transport_cases, transport_suite, Script, ScriptedCosigner, TransportFixture,
    COMMIT_EID, FINISH_STAGE, KNOWN_WALLET,
};

#[doc(hidden)]
pub mod __private {
    pub use tempfile;
}
