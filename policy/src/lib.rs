#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod approval;
mod assess;
mod audit;
mod config;
mod decide;

pub use approval::{
    approval_wallet, parse_and_verify, sign_approval, ApprovalBody, ApproverKey, SignedApproval, APPROVAL_DOMAIN,
};
pub use assess::{assess, policy_tx_id, Assessment, ChangeClaim, ChangeOutput, Destination, SignedInput};
pub use audit::{audit_link, verify_chain, verify_chain_from, AuditBody, AuditDestination, AUDIT_VERSION};
pub use config::{Policy, RawDigests, Rules, RulesStatus, DEFAULT_WINDOW_SECS};
pub use decide::{approval_request_id, audit_refusal, decide, decide_raw_digest, Context, Decision, Rule};

#[cfg(test)]
mod tests;
