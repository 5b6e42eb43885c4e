//! From configuration to a provisioned wallet (docs/ARCHITECTURE.md, "The path of a request").

pub(crate) mod builder;
pub(crate) mod plan;
pub(crate) mod provisioner;
