//! What a store keeps: a sealed share plus public metadata.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, ExecutionId, KeyId, PartyIndex, Result};

/// Lifecycle of a stored share (docs/ARCHITECTURE.md, "Shares and the commit").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    /// Written after DKG, before every party confirmed; not usable for signing.
    Pending,
    /// Committed by all parties; usable.
    Active,
    /// Frozen after a protocol blamed a party; an operator must act.
    Frozen,
}

impl ShareState {
    /// Stable name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareState::Pending => "pending",
            ShareState::Active => "active",
            ShareState::Frozen => "frozen",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(ShareState::Pending),
            "active" => Ok(ShareState::Active),
            "frozen" => Ok(ShareState::Frozen),
            other => Err(Error::new(ErrorKind::Corrupted, "unknown share state in store")
                .with_context("state", other.escape_default())),
        }
    }
}

impl fmt::Display for ShareState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Public facts about a share: readable without the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareMeta {
    /// Compressed SEC1 collective public key (33 bytes).
    pub public_key: Vec<u8>,
    /// Signing threshold t.
    pub threshold: u16,
    /// Number of parties n.
    pub parties: u16,
    /// This share's party index.
    pub party_index: PartyIndex,
    /// Lifecycle state.
    pub state: ShareState,
    /// The DKG run that produced the share; commit and rollback name it.
    pub execution_id: ExecutionId,
}

/// One stored share record. `sealed` is ciphertext: a store never sees plaintext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredShare {
    /// Which key.
    pub key: KeyId,
    /// Public metadata.
    pub meta: ShareMeta,
    /// Store-managed version for compare-and-swap; 1 after create.
    pub version: u64,
    /// Version of the sealed format.
    pub format_version: u16,
    /// The sealed share.
    #[serde(with = "crate::outputs::hex_bytes")]
    pub sealed: Vec<u8>,
}

impl fmt::Debug for StoredShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredShare")
            .field("key", &self.key)
            .field("meta", &self.meta)
            .field("version", &self.version)
            .field("format_version", &self.format_version)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .finish()
    }
}
