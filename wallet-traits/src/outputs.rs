//! The agent's accounting: the [`OutputStore`] contract, its records and its queries.
//!
//! Only the agent keeps one (cosigners hold shares, not money). It holds *actions* (transactions
//! the wallet made or received, with their status, raw bytes, the BEEF of unproven ancestors and
//! the merkle proof once known), their labels, and *outputs* (what the wallet can spend or tracks
//! in a basket) with their tags. The shapes follow BRC-100 as @bsv/sdk's `Wallet.interfaces`
//! defines it, so the action methods map onto the store one to one.
//!
//! Spending is two-phase. An action is recorded first (status `unsigned`), then outputs are
//! *reserved* for it one at a time ([`OutputStore::reserve_change`]) or by outpoint
//! ([`OutputStore::reserve_outputs`]); a reserved output has `spent_by` set and is no longer
//! spendable, so two actions never hold the same output. Signing happens outside the store;
//! [`OutputStore::commit_action`] then records the signed transaction and its new outputs in one
//! step, and [`OutputStore::fail_action`] releases the reservations of an action that was aborted
//! or whose broadcast failed. A crash between reserving and committing leaves the outputs reserved,
//! never spendable twice; the wallet fails such abandoned actions later.
//!
//! An open action may carry what the wallet needs to sign it later (BRC-100's `signAction`), kept
//! with [`OutputStore::keep_signable`] as bytes the store does not read, so the action can still be
//! signed after the wallet restarts; committing or failing the action drops them in the same step.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// A transaction output: the txid in display (RPC) byte order and the output index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outpoint {
    /// The txid as the network displays it (the reverse of its hash bytes).
    pub txid: [u8; 32],
    /// The output's index in its transaction.
    pub vout: u32,
}

impl Outpoint {
    /// The outpoint `vout` of `txid` (display order).
    pub fn new(txid: [u8; 32], vout: u32) -> Self {
        Self { txid, vout }
    }

    /// The txid as lower-case hex, as BRC-100 writes it.
    pub fn txid_hex(&self) -> String {
        hex::encode(self.txid)
    }

    /// Parses BRC-100's `"<txid hex>.<vout>"`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::new(ErrorKind::InvalidInput, "an outpoint is `<64 hex digits of the txid>.<output index>`")
                .with_context("parameter", "outpoint")
        };
        let (txid, vout) = s.split_once('.').ok_or_else(bad)?;
        let txid = parse_txid(txid).map_err(|_| bad())?;
        let vout = vout.parse::<u32>().map_err(|_| bad())?;
        Ok(Self { txid, vout })
    }
}

/// Parses a txid in display hex (64 digits).
pub fn parse_txid(s: &str) -> Result<[u8; 32]> {
    let mut txid = [0u8; 32];
    hex::decode_to_slice(s, &mut txid).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "a txid is 64 hexadecimal digits").with_context("parameter", "txid")
    })?;
    Ok(txid)
}

impl fmt::Display for Outpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", hex::encode(self.txid), self.vout)
    }
}

impl fmt::Debug for Outpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serde helpers for the records' bytes, as hex strings (what a backup file holds).
pub(crate) mod hex_bytes {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(D::Error::custom)
    }

    /// `Option<Vec<u8>>`.
    pub(crate) mod opt {
        use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match b {
                Some(b) => s.serialize_some(&hex::encode(b)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?.map(|h| hex::decode(h).map_err(D::Error::custom)).transpose()
        }
    }

    /// `Option<[u8; 32]>`.
    pub(crate) mod opt32 {
        use serde::{de::Error as _, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
            super::opt::serialize(&b.map(|b| b.to_vec()), s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
            super::opt::deserialize(d)?
                .map(|v| <[u8; 32]>::try_from(v).map_err(|_| D::Error::custom("expected 32 bytes")))
                .transpose()
        }
    }
}

impl Serialize for Outpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Outpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Outpoint::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// BRC-100's action status, with its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Proven: its merkle path is recorded.
    Completed,
    /// Signed, recorded, not yet handed to the network (a delayed broadcast).
    Unprocessed,
    /// Being broadcast.
    Sending,
    /// Accepted by the network; no merkle proof yet.
    Unproven,
    /// Created, inputs reserved, not yet signed.
    Unsigned,
    /// Signed and recorded; the caller broadcasts it (`noSend`).
    #[serde(rename = "nosend")]
    NoSend,
    /// Has a lock time in the future.
    #[serde(rename = "nonfinal")]
    NonFinal,
    /// Aborted, rejected or abandoned: its inputs are spendable again, its outputs never were.
    Failed,
}

impl ActionStatus {
    /// Every status.
    pub const ALL: [ActionStatus; 8] = [
        Self::Completed,
        Self::Unprocessed,
        Self::Sending,
        Self::Unproven,
        Self::Unsigned,
        Self::NoSend,
        Self::NonFinal,
        Self::Failed,
    ];

    /// The BRC-100 spelling, which is also what stores write.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Unprocessed => "unprocessed",
            Self::Sending => "sending",
            Self::Unproven => "unproven",
            Self::Unsigned => "unsigned",
            Self::NoSend => "nosend",
            Self::NonFinal => "nonfinal",
            Self::Failed => "failed",
        }
    }

    /// The status spelled `s`; `None` for anything else (a store reports that as corrupted).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether an action in this status may still be committed (signed) or failed by abort.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Unsigned)
    }
}

impl fmt::Display for ActionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transaction the wallet made or received.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Unique per store: the wallet's handle for the action (BRC-100's `reference` for
    /// `signAction` and `abortAction`).
    pub reference: String,
    /// The txid (display order); `None` until signed.
    #[serde(with = "hex_bytes::opt32")]
    pub txid: Option<[u8; 32]>,
    /// Where the action stands.
    pub status: ActionStatus,
    /// Whether the wallet created it (`createAction`) rather than received it.
    pub outgoing: bool,
    /// Its net effect on the wallet's balance, in satoshis (negative for a payment out).
    pub satoshis: i64,
    /// The caller's description (5 to 2000 bytes in BRC-100).
    pub description: String,
    /// Its labels, lower case, each at most 300 bytes.
    pub labels: Vec<String>,
    /// The transaction's version.
    pub version: u32,
    /// The transaction's lock time.
    pub lock_time: u32,
    /// The raw transaction, once signed (or as received).
    #[serde(with = "hex_bytes::opt")]
    pub raw_tx: Option<Vec<u8>>,
    /// A BEEF holding the transaction's unproven ancestors and their proven parents, so the
    /// wallet can hand out a valid Atomic BEEF while the transaction itself is unproven.
    #[serde(with = "hex_bytes::opt")]
    pub input_beef: Option<Vec<u8>>,
    /// The transaction's merkle path (BRC-74 binary), once known.
    #[serde(with = "hex_bytes::opt")]
    pub merkle_path: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch when it was recorded.
    pub created_at: u64,
}

impl fmt::Debug for ActionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionRecord")
            .field("reference", &self.reference)
            .field("txid", &self.txid.map(hex::encode))
            .field("status", &self.status)
            .field("outgoing", &self.outgoing)
            .field("satoshis", &self.satoshis)
            .field("labels", &self.labels)
            .field("raw_tx", &self.raw_tx.as_ref().map(Vec::len))
            .field("merkle_path", &self.merkle_path.is_some())
            .finish_non_exhaustive()
    }
}

/// How the wallet derives the key of an output it can spend: BRC-29's derivation prefix and
/// suffix with the sender's identity key (`protocolID [2, "3241645161d8"]`, key ID
/// `"<prefix> <suffix>"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    /// The derivation prefix (base64 in BRC-29).
    pub prefix: String,
    /// The derivation suffix (base64 in BRC-29).
    pub suffix: String,
    /// The counterparty's identity key as 66 hex digits; the wallet's own for its change.
    pub sender: String,
}

impl Derivation {
    /// The derivation a store kept in three nullable columns: `Some(None)` when all are empty,
    /// `None` when only some are (a torn or foreign row, which the store reports as corrupted).
    pub fn from_columns(
        prefix: Option<String>,
        suffix: Option<String>,
        sender: Option<String>,
    ) -> Option<Option<Self>> {
        match (prefix, suffix, sender) {
            (Some(prefix), Some(suffix), Some(sender)) => Some(Some(Self { prefix, suffix, sender })),
            (None, None, None) => Some(None),
            _ => None,
        }
    }
}

/// An output the wallet tracks.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Where it is.
    pub outpoint: Outpoint,
    /// The reference of the action that created (or received) it.
    pub created_by: String,
    /// Its value.
    pub satoshis: u64,
    /// Its locking script.
    #[serde(with = "hex_bytes")]
    pub locking_script: Vec<u8>,
    /// Its basket; `None` once relinquished, or when it was never put in one.
    pub basket: Option<String>,
    /// Its tags, lower case.
    pub tags: Vec<String>,
    /// Whatever the inserting application needs to spend it later.
    pub custom_instructions: Option<String>,
    /// The output's description.
    pub description: String,
    /// Whether it can be spent now (unspent, unreserved, its transaction not failed).
    pub spendable: bool,
    /// Whether it is the wallet's own change (the `default` basket, funding `createAction`).
    pub change: bool,
    /// How the wallet derives its key, for outputs the wallet can sign for.
    pub derivation: Option<Derivation>,
    /// The reference of the action that reserved or spent it.
    pub spent_by: Option<String>,
}

impl fmt::Debug for OutputRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputRecord")
            .field("outpoint", &self.outpoint)
            .field("satoshis", &self.satoshis)
            .field("basket", &self.basket)
            .field("tags", &self.tags)
            .field("spendable", &self.spendable)
            .field("change", &self.change)
            .field("spent_by", &self.spent_by)
            .finish_non_exhaustive()
    }
}

/// How a list of tags or labels selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryMode {
    /// Has at least one of them (BRC-100's default).
    #[default]
    Any,
    /// Has every one of them.
    All,
}

/// Which outputs [`OutputStore::list_outputs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputQuery {
    /// Only this basket.
    pub basket: Option<String>,
    /// Only outputs with these tags (as `tag_mode` says); none: no tag filter.
    pub tags: Vec<String>,
    /// How `tags` select.
    pub tag_mode: QueryMode,
    /// Only spendable outputs (BRC-100's `listOutputs` lists those only).
    pub spendable_only: bool,
    /// Only the outputs this action created.
    pub created_by: Option<String>,
    /// Only the outputs this action reserved or spent.
    pub spent_by: Option<String>,
    /// At most this many (`None`: all).
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
}

/// Which actions [`OutputStore::list_actions`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionQuery {
    /// Only actions with these labels (as `label_mode` says); none: every action.
    pub labels: Vec<String>,
    /// How `labels` select.
    pub label_mode: QueryMode,
    /// Only actions in one of these statuses; none: any status.
    pub statuses: Vec<ActionStatus>,
    /// At most this many (`None`: all).
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
}

/// One page of a list, with how many match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// How many records match the query, regardless of limit and offset.
    pub total: u64,
    /// This page, oldest first.
    pub items: Vec<T>,
}

/// What [`OutputStore::record_action`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The reference the transaction is recorded under: the given one, or the earlier action's
    /// when its txid was already known.
    pub reference: String,
    /// `false` when an action with the same txid was recorded before: then only outputs not yet
    /// known were added, and its status, amount and raw bytes stayed.
    pub new_action: bool,
    /// How many of the given outputs were new.
    pub outputs_added: u32,
}

/// What [`OutputStore::commit_action`] writes for a signed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAction {
    /// The txid (display order).
    pub txid: [u8; 32],
    /// The signed raw transaction.
    pub raw_tx: Vec<u8>,
    /// The BEEF of its unproven ancestors.
    pub input_beef: Option<Vec<u8>>,
    /// `unprocessed`, `sending` or `nosend`.
    pub status: ActionStatus,
    /// Its net effect on the balance.
    pub satoshis: i64,
    /// The outputs it creates that the wallet tracks (its change, basket insertions).
    pub outputs: Vec<OutputRecord>,
}

/// Everything an [`OutputStore`] holds of one wallet ([`OutputStore::export_books`]): what a
/// backup carries besides the key share and the certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Books {
    /// Every action, oldest first.
    pub actions: Vec<ActionRecord>,
    /// Every output, oldest first.
    pub outputs: Vec<OutputRecord>,
}

/// What [`OutputStore::import_books`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Actions the store did not hold.
    pub actions: u64,
    /// Outputs the store did not hold.
    pub outputs: u64,
    /// Actions and outputs the store held, now in the books' state.
    pub replaced: u64,
    /// Actions left out: the store holds their transaction under another reference.
    pub skipped: u64,
}

/// The agent's accounting: actions, labels, outputs, baskets and tags.
///
/// Every method is atomic, also against other processes sharing the store: a method that
/// writes several rows writes all of them or none, so a crash never leaves a payment half
/// recorded.
#[async_trait]
pub trait OutputStore: fmt::Debug + Send + Sync + 'static {
    /// Records an action with its labels and outputs. The outputs' `created_by` must be the
    /// action's reference. When `action.txid` is already recorded under another reference, the
    /// earlier action stays as it is and only outputs not yet known are added (with their tags),
    /// and the action's labels are added to it: receiving the same transaction twice counts it
    /// once. [`ErrorKind::AlreadyExists`] when the reference is taken.
    async fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded>;

    /// Reserves one spendable change output of `basket` for the open action `reference`: one of
    /// exactly `exact` satoshis if asked and there is one, else the smallest of at least `target`,
    /// else the largest. `None` when the basket has no spendable change left. Two concurrent
    /// callers never get the same output. [`ErrorKind::Conflict`] when the action is not open.
    async fn reserve_change(
        &self,
        reference: &str,
        basket: &str,
        target: u64,
        exact: Option<u64>,
    ) -> Result<Option<OutputRecord>>;

    /// Reserves the given outputs for the open action `reference`, all or none:
    /// [`ErrorKind::Conflict`] naming the first that is not spendable, [`ErrorKind::NotFound`]
    /// for one the store does not know.
    async fn reserve_outputs(&self, reference: &str, outpoints: &[crate::Outpoint]) -> Result<Vec<OutputRecord>>;

    /// Records the signed transaction of the open action `reference` and the outputs it creates,
    /// in one step; its reservations become spends, and what
    /// [`keep_signable`](Self::keep_signable) kept with it is dropped. [`ErrorKind::Conflict`]
    /// when the action is no longer open (aborted, failed or committed before).
    async fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()>;

    /// Marks the action failed: every output it reserved or spent is spendable again, the
    /// outputs it created are not spendable (a failed transaction never pays), and what
    /// [`keep_signable`](Self::keep_signable) kept with it is dropped, in one step. Returns
    /// `false` when it was failed already. [`ErrorKind::Conflict`] when it is proven
    /// (`completed`), and when an output it created is reserved or spent by an action that has
    /// not failed (context `spent_by`): its inputs coming back would fund a double spend of what
    /// that action spent.
    async fn fail_action(&self, reference: &str) -> Result<bool>;

    /// Keeps `signable` with the open action `reference`, replacing what was kept before: bytes
    /// the store does not read (the wallet's own encoding of what finishing the action takes), so
    /// the action can be signed after the wallet restarts. [`ErrorKind::Conflict`] when the action
    /// is not open (committed, aborted or failed), [`ErrorKind::NotFound`] when unknown.
    async fn keep_signable(&self, reference: &str, signable: &[u8]) -> Result<()>;

    /// What [`keep_signable`](Self::keep_signable) kept with `reference`, while the action is
    /// open. `None` when nothing was kept, when the action is unknown, and once it is no longer
    /// open: [`commit_action`](Self::commit_action) and [`fail_action`](Self::fail_action) drop
    /// it, so a finished action can never be signed again from what was kept.
    async fn signable(&self, reference: &str) -> Result<Option<Vec<u8>>>;

    /// Sets the status of the action `reference` (not to `failed`: use
    /// [`fail_action`](Self::fail_action)). [`ErrorKind::NotFound`] when unknown.
    async fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()>;

    /// Records the merkle path of the transaction `txid` and marks its action `completed`.
    /// Returns `false` when the store knows no such transaction.
    async fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool>;

    /// The action recorded under `reference`.
    async fn action(&self, reference: &str) -> Result<Option<ActionRecord>>;

    /// The action of the transaction `txid`.
    async fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>>;

    /// The output at `outpoint`, spendable or not.
    async fn output(&self, outpoint: &crate::Outpoint) -> Result<Option<OutputRecord>>;

    /// Outputs matching `query`, oldest first, with the total count.
    async fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>>;

    /// Actions matching `query`, oldest first, with the total count.
    async fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>>;

    /// Takes the output out of `basket` (it stays recorded, no longer listed or spent by the
    /// wallet). Returns `false` when `basket` holds no such output.
    async fn relinquish_output(&self, basket: &str, outpoint: &crate::Outpoint) -> Result<bool>;

    /// Marks a spendable output that the chain says something else spent (a transaction this
    /// wallet did not make, or one it lost track of) as no longer spendable; it stays in its
    /// basket and in the books. Returns `false` when the output is not spendable now (unknown,
    /// already spent, or reserved by one of the wallet's own actions, which decides for itself).
    async fn mark_spent_elsewhere(&self, outpoint: &crate::Outpoint) -> Result<bool>;

    /// Undoes [`fail_action`](Self::fail_action) for an action whose transaction the network took
    /// after all: `inputs` (the transaction's, those the store knows) are spent by it again, what
    /// it created in a basket is spendable again, and it is `unproven`. Returns `false` when the
    /// action is not failed. An input another live action reserved or spent is a
    /// [`crate::ErrorKind::Conflict`]: that action must fail first (it spends what the network
    /// already gave to this one).
    async fn unfail_action(&self, reference: &str, inputs: &[crate::Outpoint]) -> Result<bool>;

    /// Drops the merkle path of the `completed` transaction `txid` (display order) whose block
    /// the chain no longer holds (a reorg): it is `unproven` again, its outputs untouched, and
    /// the next proof fetch finds its new block. Returns `false` when no completed action has it.
    async fn clear_merkle_path(&self, txid: &[u8; 32]) -> Result<bool>;

    /// Drops the transaction bytes (raw transaction, input BEEF, held signable) of at most
    /// `limit` failed actions created before `before_ms` (milliseconds since the epoch), oldest
    /// first; their rows, labels and outputs stay in the history. Returns how many.
    async fn purge_failed(&self, before_ms: u64, limit: u32) -> Result<u64>;

    /// Counts one more proof look-up that found nothing (at a new block) for the `unproven`
    /// transaction `txid` and returns the count so far; `0` when no unproven action has it. The
    /// proof task gives up asking after a limit and asks the chain what became of it instead.
    async fn count_proof_attempt(&self, txid: &[u8; 32]) -> Result<u32>;

    /// Sets the count of [`count_proof_attempt`](Self::count_proof_attempt) of `txid` back to 0.
    async fn reset_proof_attempts(&self, txid: &[u8; 32]) -> Result<()>;

    /// Every action and output of this wallet, labels and tags with them, oldest first, read in
    /// one snapshot: a backup taken while payments run is consistent.
    async fn export_books(&self) -> Result<Books>;

    /// Writes the actions and outputs of `books` as they stand there, all in one step: rows this
    /// store lacks are added, rows it holds (an action by reference, an output by outpoint) take
    /// the books' state, labels and tags are added to what is there, and rows the books lack stay.
    /// An action whose txid the store holds under another reference is left out. Importing the
    /// same books twice changes nothing the second time. Returns what was added and replaced.
    async fn import_books(&self, books: &Books) -> Result<Imported>;

    /// The sum of the spendable outputs of `basket`.
    async fn balance(&self, basket: &str) -> Result<u64>;

    /// The wallet's identity certificates, when this store keeps them (the SQL stores do). Without
    /// them the certificate methods answer "not supported".
    fn certificates(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn crate::CertificateStore>> {
        None
    }
}

/// The errors of the [`OutputStore`] contract, worded alike by every store.
#[derive(Debug, Clone, Copy)]
pub struct OutputErrors {
    backend: &'static str,
}

impl OutputErrors {
    /// The errors of the store called `backend`.
    pub const fn new(backend: &'static str) -> Self {
        Self { backend }
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).with_context("backend", self.backend)
    }

    /// [`OutputStore::record_action`] with a reference already taken.
    pub fn reference_taken(&self, reference: &str) -> Error {
        self.error(ErrorKind::AlreadyExists, "an action with this reference is already recorded")
            .with_context("reference", reference)
    }

    /// An action the store does not know.
    pub fn unknown_action(&self, reference: &str) -> Error {
        self.error(ErrorKind::NotFound, "no action is recorded under this reference")
            .with_context("reference", reference)
    }

    /// An action whose output `spent_by` reserved or spent: it cannot fail before that one does.
    pub fn spent_further(&self, reference: &str, spent_by: &str) -> Error {
        self.error(
            ErrorKind::Conflict,
            "a later action spends this action's output: abort that action first, or this one cannot fail",
        )
        .with_context("reference", reference)
        .with_context("spent_by", spent_by)
    }

    /// An action that is no longer open (committed, aborted or failed).
    pub fn not_open(&self, reference: &str, status: ActionStatus) -> Error {
        self.error(
            ErrorKind::Conflict,
            format!("the action is {status}, no longer unsigned: it cannot reserve, sign or abort again"),
        )
        .with_context("reference", reference)
    }

    /// An output the store does not know.
    pub fn unknown_output(&self, outpoint: &Outpoint) -> Error {
        self.error(ErrorKind::NotFound, "the wallet has no such output").with_context("outpoint", outpoint)
    }

    /// An output that is spent, reserved, or not spendable.
    pub fn not_spendable(&self, outpoint: &Outpoint) -> Error {
        self.error(ErrorKind::Conflict, "the output is spent, reserved by another action, or not spendable")
            .with_context("outpoint", outpoint)
    }

    /// An input of an action to un-fail that another live action holds.
    pub fn input_held(&self, reference: &str, outpoint: &Outpoint, held_by: &str) -> Error {
        self.error(
            ErrorKind::Conflict,
            "another action holds an input of this one, which the network took: that action must fail first",
        )
        .with_context("reference", reference)
        .with_context("outpoint", outpoint)
        .with_context("held_by", held_by)
    }

    /// A proven action asked to fail.
    pub fn proven(&self, reference: &str) -> Error {
        self.error(ErrorKind::Conflict, "the action is proven in a block; it cannot fail")
            .with_context("reference", reference)
    }

    /// [`OutputStore::commit_action`] with a txid another action already holds.
    pub fn txid_taken(&self, txid: &[u8; 32]) -> Error {
        self.error(ErrorKind::Conflict, "another action already recorded this transaction")
            .with_context("txid", hex::encode(txid))
    }

    /// An output whose value no store column holds (more than `i64::MAX` satoshis, far beyond
    /// the 21 million coins there are).
    pub fn amount_out_of_range(&self, outpoint: &Outpoint) -> Error {
        self.error(ErrorKind::InvalidInput, "the output's satoshis exceed every possible amount")
            .with_context("outpoint", outpoint)
    }

    /// A status change to `failed` through [`OutputStore::set_status`].
    pub fn fail_through_set_status(&self) -> Error {
        self.error(ErrorKind::InvalidInput, "mark an action failed with fail_action, which releases its inputs")
    }
}

/// Builds an [`OutputStore`] from a URL (the agent's store URL, or `MPC_OUTPUT_STORE_URL`), its
/// options and the scope its rows belong to (the wallet id).
pub type OutputStoreBuildFn = fn(
    url: String,
    options: crate::Options,
    scope: String,
) -> crate::BoxFuture<'static, Result<std::sync::Arc<dyn OutputStore>>>;

/// An output store factory, found by URL scheme: submit one with `inventory::submit!` or install
/// it with [`crate::Plugins::with_output_store`].
#[derive(Debug)]
pub struct OutputStoreFactory {
    /// URL scheme, without `://`.
    pub scheme: &'static str,
    /// The constructor.
    pub build: OutputStoreBuildFn,
}

inventory::collect!(OutputStoreFactory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outpoints_round_trip_and_refuse_garbage() {
        let o = Outpoint::new([0xab; 32], 7);
        assert_eq!(Outpoint::parse(&o.to_string()).unwrap(), o);
        for bad in ["", "ab.1", &hex::encode([0; 32]), &format!("{}.x", hex::encode([0; 32]))] {
            let e = Outpoint::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert_eq!(e.context_value("parameter"), Some("outpoint"));
        }
    }

    #[test]
    fn statuses_spell_as_brc100() {
        for status in ActionStatus::ALL {
            assert_eq!(ActionStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
        assert_eq!(ActionStatus::parse("bogus"), None);
    }
}
