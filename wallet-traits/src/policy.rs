//! A cosigner's policy state: what its spending limits count against, the approvals a person
//! signed, the hash-chained log of every decision, and the replay sets that outlive a restart.
//!
//! What is allowed is pure code elsewhere (`wallet-policy`); a store only keeps this state and
//! applies a decision atomically: [`PolicyStore::settle`] reads a wallet's [`Ledger`], hands it
//! to the decision, and writes the [`Ruling`] in the same step, so concurrent signing sessions,
//! in one process or several sharing the store, can never spend one remaining budget twice.

use async_trait::async_trait;

use crate::Result;

/// What one transaction has been charged against its wallet's window.
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The transaction's policy id: a hash of the parts every `SIGHASH_ALL|FORKID` signature
    /// commits to (version, outpoints, outputs, lock time), the same for each session that
    /// signs some of its inputs.
    pub tx: [u8; 32],
    /// Satoshis charged for it so far. Never lowered: an outflow once counted stays counted.
    pub charged: u64,
    /// When it was charged (milliseconds since the Unix epoch); the window counts it from then.
    /// The policy keeps the first charge's time, or renews it when it charges an entry from an
    /// earlier window again; a store writes what the ruling says.
    pub at_ms: u64,
    /// The policy's own record of what it counted (inputs, change), opaque to the store.
    pub state: Vec<u8>,
}

impl std::fmt::Debug for LedgerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerEntry")
            .field("tx", &hex::encode(self.tx))
            .field("charged", &self.charged)
            .field("at_ms", &self.at_ms)
            .finish_non_exhaustive()
    }
}

/// A signed approval a person gave for one payment, kept until it is spent or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Its id (a hash of `body`): an approval is stored and spent once.
    pub id: [u8; 32],
    /// The wallet it is for.
    pub wallet: String,
    /// When it stops counting (milliseconds since the Unix epoch).
    pub expires_ms: u64,
    /// The signed approval, opaque to the store (the policy verified it before it was added).
    pub body: Vec<u8>,
}

/// The newest record of the audit log: what the next record chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditHead {
    /// Its sequence number; 0 when the log is empty (records count from 1).
    pub seq: u64,
    /// Its hash; all zero when the log is empty.
    pub hash: [u8; 32],
}

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its place in the log, from 1, without gaps.
    pub seq: u64,
    /// The wallet the decision was about.
    pub wallet: String,
    /// When it was written (milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The decision, as the policy wrote it.
    pub body: Vec<u8>,
    /// Its link in the chain: a hash over the previous record's hash, `seq` and `body`.
    pub hash: [u8; 32],
}

/// What [`PolicyStore::settle`] reads for a decision, in one atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The sum of `charged` over the wallet's entries charged since the window began
    /// (saturating).
    pub window_sats: u64,
    /// How many of the wallet's entries were charged since the window began.
    pub window_txs: u64,
    /// The entry of the transaction being decided, if it was charged before (in any window).
    pub entry: Option<LedgerEntry>,
    /// The wallet's approvals neither spent nor expired.
    pub approvals: Vec<Approval>,
    /// The newest audit record, which the decision's record chains to.
    pub head: AuditHead,
}

/// What a decision writes: the charge when it allows, always its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruling {
    /// The transaction's entry as it is to be stored (allowed), or `None` (refused: nothing is
    /// charged, nothing else changes).
    pub charge: Option<LedgerEntry>,
    /// The approval the decision spent, if any: it is never used again.
    pub spend_approval: Option<[u8; 32]>,
    /// The decision's audit record body.
    pub audit: Vec<u8>,
    /// The record's link: a hash over the head's hash, the head's `seq` + 1 and `audit`.
    pub audit_hash: [u8; 32],
}

/// The policy state of a cosigner's store (see the module docs). A store that keeps it returns
/// itself from [`ShareStore::policy_state`](crate::ShareStore::policy_state); a cosigner with a
/// policy refuses to start on a store that does not.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Atomically against every other caller, in this process or another sharing the store:
    /// reads the [`Ledger`] of `wallet` (the window from `since_ms`, the entry of `tx`, the
    /// approvals unexpired at `now_ms`, the audit head), calls `decide` once with it, and writes
    /// its [`Ruling`]: the entry, the spent approval and the audit record at the head's `seq` + 1,
    /// all or nothing. Returns the ruling. A `tx` of all zeros names no transaction (a refusal
    /// before one was read). A ruling that charges another transaction than `tx` (or any, for
    /// all zeros), or spends an approval that is not open, fails the call and writes nothing.
    async fn settle(
        &self,
        wallet: &str,
        tx: &[u8; 32],
        since_ms: u64,
        now_ms: u64,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Ruling + Send + Sync),
    ) -> Result<Ruling>;

    /// The wallet's window from `since_ms`: (satoshis charged, transactions charged).
    async fn window(&self, wallet: &str, since_ms: u64) -> Result<(u64, u64)>;

    /// Keeps an approval until it is spent or expires; `false` when its id is known already
    /// (spent or not): an approval counts once.
    async fn add_approval(&self, approval: &Approval) -> Result<bool>;

    /// Up to `limit` audit records after `after_seq`, oldest first; with `wallet`, only its
    /// records (their `seq` then has gaps: the chain runs over every wallet's records).
    async fn audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>>;

    /// Records `id` as seen under `kind` (a token id, a session's execution id) until
    /// `expires_ms`; `false` when it was seen before and has not expired, so a replay after a
    /// restart is refused as one before it. Forgets entries expired at `now_ms`.
    async fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool>;
}
