//! The audit log: one canonical JSON record per decision, each hash-chained to the one before.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{AuditHead, AuditRecord, Error, ErrorKind, Result};

/// The version of [`AuditBody`] written by this release.
pub const AUDIT_VERSION: u32 = 1;

/// A paying output as a record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditDestination {
    /// The output's index.
    pub vout: u32,
    /// Its locking script, hex.
    pub script: String,
    /// Its satoshis.
    pub sats: u64,
}

/// One decision as the audit log keeps it ([`wallet_traits::AuditRecord::body`]). Its JSON is
/// canonical: the fields in this order, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditBody {
    /// [`AUDIT_VERSION`].
    pub v: u32,
    /// When the decision was made (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The wallet.
    pub wallet: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The rule that decided: `ok` or `approval` when allowed, else the rule that refused
    /// (see [`crate::Rule`]).
    pub rule: String,
    /// The transaction's policy id in hex; `None` for a decision about no transaction.
    pub tx: Option<String>,
    /// The transaction's net outflow, as counted over every session so far.
    pub outflow: Option<u64>,
    /// What this decision charged the window (0 when refused).
    pub charge: u64,
    /// The outputs that pay someone else.
    pub destinations: Vec<AuditDestination>,
    /// The window's satoshis after the decision.
    pub window_sats: u64,
    /// The window's transactions after the decision.
    pub window_txs: u64,
    /// The approval that allowed it, hex id.
    pub approval: Option<String>,
    /// Why it was refused, as the refusal said.
    pub detail: Option<String>,
}

impl AuditBody {
    /// The canonical JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain data serializes")
    }

    /// Reads a record's body. `Corrupted` when it is not one this release reads.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let body: AuditBody = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupted,
                format!("an audit record's body is not an audit body this release reads: {e}"),
            )
        })?;
        if body.v != AUDIT_VERSION {
            return Err(Error::new(
                ErrorKind::Corrupted,
                format!("an audit record has version {}; this release reads version {AUDIT_VERSION}", body.v),
            ));
        }
        Ok(body)
    }
}

/// A record's link: SHA-256 of the previous record's hash (all zero before the first), `seq`
/// as 8 bytes big-endian, and the body.
pub fn audit_link(prev_hash: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(seq.to_be_bytes());
    h.update(body);
    h.finalize().into()
}

/// Checks a complete log, from seq 1: [`verify_chain_from`] after the empty head. Returns the
/// head it reached.
pub fn verify_chain(records: &[AuditRecord]) -> Result<AuditHead> {
    verify_chain_from(AuditHead::default(), records)
}

/// Checks a run of the log that follows `prev` (the record before it, or the empty head):
/// contiguous seq numbers, every record's hash, and each record's wallet and time columns
/// against its body. Records removed, reordered or edited (body or hash) are found, and the
/// error names the first record that breaks the chain. Returns the head it reached, to check
/// the next page from. Needs every wallet's records: the chain runs over all of them.
pub fn verify_chain_from(prev: AuditHead, records: &[AuditRecord]) -> Result<AuditHead> {
    let broken = |seq: u64, why: String| {
        Error::new(ErrorKind::Corrupted, format!("the audit log is broken at record {seq}: {why}"))
            .with_context("seq", seq)
    };
    let mut head = prev;
    for record in records {
        let expected = head.seq.checked_add(1).ok_or_else(|| broken(head.seq, "no record can follow it".into()))?;
        if record.seq != expected {
            let why = if record.seq > expected {
                format!("the record after {} is {}: records were removed", head.seq, record.seq)
            } else {
                format!("it comes after record {}: records were reordered or repeated", head.seq)
            };
            return Err(broken(record.seq, why));
        }
        if audit_link(&head.hash, record.seq, &record.body) != record.hash {
            return Err(broken(
                record.seq,
                "its hash does not match: it, or the record before it, was edited, removed or reordered".into(),
            ));
        }
        let body = AuditBody::parse(&record.body).map_err(|e| broken(record.seq, e.message().to_string()))?;
        if body.wallet != record.wallet || body.at_ms != record.at_ms {
            return Err(broken(record.seq, "its wallet or time was changed outside its body".into()));
        }
        head = AuditHead { seq: record.seq, hash: record.hash };
    }
    Ok(head)
}
