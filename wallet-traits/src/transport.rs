//! Talking to one cosigner.

use std::{fmt, pin::Pin};

use async_trait::async_trait;
use futures::{channel::mpsc, Sink, SinkExt, Stream};
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, ExecutionId, KeyId, PartyIndex, PublicKey, Result, ShareState, WireError, AGENT_INDEX};

/// Which protocol a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// Threshold key generation followed by aux info generation; ends with a Pending share.
    Dkg,
    /// Full threshold signing of a 32-byte digest.
    Sign,
    /// A joint Schnorr proof that `S = root * B` for a counterparty key `B` (BRC-100
    /// `revealCounterpartyKeyLinkage`).
    Linkage,
    /// Signing inputs of one transaction: every party computes each digest from the
    /// transaction itself.
    SignTx,
    /// Threshold key generation of a further key of the party group, reusing the aux info of
    /// the group's first key; ends with a Pending share.
    Keygen,
    /// A protocol migration of an existing key: aux info generation for the current protocol,
    /// keeping the key; ends with the new share staged (Pending) beside the old one.
    Migrate,
    /// Signing SHA-256 of the data the session carries, which every party hashes itself.
    SignData,
}

/// The most data a [`SessionParams::SignData`] session carries (1 MiB).
pub const MAX_SIGN_DATA: usize = 1024 * 1024;

/// One input a [`SessionParams::SignTx`] session signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputToSign {
    /// Its index in the transaction.
    pub index: u32,
    /// The sighash type it is signed with (FORKID set, for example `0x41` for ALL).
    pub sighash_type: u32,
    /// The additive tweak of the key it spends from (a BRC-42 child key), if not the root key.
    #[serde(default)]
    pub tweak: Option<[u8; 32]>,
}

/// An output of a [`SessionParams::SignTx`] transaction that pays the wallet itself: P2PKH of
/// the child key `root + tweak·G`. A cosigner checks each claim against the output (a false one
/// refuses the session) and counts every unclaimed output as money leaving the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeClaim {
    /// The output's index.
    pub vout: u32,
    /// The additive tweak of the key it pays (a BRC-42 child key of the wallet's root key).
    pub tweak: [u8; 32],
}

/// The most change claims one [`SessionParams::SignTx`] session carries.
pub const MAX_CHANGE_CLAIMS: usize = 256;

/// The most envelopes one signing run sends each other party (cggmp24 signing: 6 rounds, one
/// envelope per peer each). The engine asserts its signing stays within it.
pub const ENVELOPES_PER_SIGNING: usize = 6;

/// The most inputs one [`SessionParams::SignTx`] session of `parties` parties signs: the
/// inputs' runs share the session's queues, which must hold all that passes through them (see
/// [`SESSION_CAPACITY`]). With the agent and one cosigner that is 42 inputs; a longer
/// transaction is signed in several sessions, run side by side.
pub const fn max_inputs_per_session(parties: usize) -> usize {
    let peers = if parties > 1 { parties - 1 } else { 1 };
    (SESSION_CAPACITY - 1) / (ENVELOPES_PER_SIGNING * peers)
}

/// Most parties of one key (the agent and up to 15 cosigners).
pub const MAX_PARTIES: u16 = 16;

/// What a session of each kind is about. A request carries exactly one, so a request that
/// mixes kinds cannot be built. On the wire it is tagged by kind: a new kind (signing a
/// transaction input, say) is a new variant, and a peer that does not know it refuses the
/// request as malformed instead of running something else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionParams {
    /// DKG of a `threshold`-of-`total` key.
    Dkg {
        /// Threshold t.
        threshold: u16,
        /// Number of parties n.
        total: u16,
    },
    /// Signing `digest`, for the key `P + tweak*G` when a tweak is given.
    Sign {
        /// The digest to sign.
        digest: [u8; 32],
        /// Additive tweak h (a BRC-42 child key).
        #[serde(default)]
        tweak: Option<[u8; 32]>,
    },
    /// A linkage proof about the compressed counterparty key `point`.
    Linkage {
        /// The counterparty key B, compressed.
        point: Vec<u8>,
    },
    /// Signing `inputs` of `tx`. Each party parses the transaction, checks that each input's
    /// source output is P2PKH of the key it is asked to sign for, computes the digests itself
    /// and signs nothing it did not compute.
    SignTx {
        /// The transaction in Extended Format (BRC-30: each input with the output it spends);
        /// a byte string on the wire, as an envelope's payload.
        #[serde(with = "serde_bytes_compat")]
        tx: Vec<u8>,
        /// The inputs to sign, in increasing index order; input `k` of this list runs in stage `k`.
        inputs: Vec<InputToSign>,
        /// The outputs that pay the wallet itself, in increasing output order (an older agent
        /// sends none: every output then counts as leaving the wallet).
        #[serde(default)]
        change: Vec<ChangeClaim>,
    },
    /// Threshold keygen of a `threshold`-of-`total` key whose aux info is that of key index
    /// `aux_from` of the same wallet (the group's aux info serves several keys).
    Keygen {
        /// Threshold t.
        threshold: u16,
        /// Number of parties n.
        total: u16,
        /// The key index whose share lends its aux info.
        aux_from: u32,
    },
    /// Migration of the key to the current protocol: every party generates new aux info for
    /// its existing share and stages the result beside it, until the commit.
    Migrate {},
    /// Signing SHA-256 of `data` (BRC-100 `createSignature` with `data`: BRC-3 and BRC-103/104
    /// signatures), for the key `P + tweak*G` when a tweak is given. Each party hashes the data
    /// itself, so a cosigner knows what it signs is not a transaction's sighash unless the data
    /// is 32 bytes (a sighash preimage's first hash), which a spending policy refuses.
    SignData {
        /// The data; a byte string on the wire.
        #[serde(with = "serde_bytes_compat")]
        data: Vec<u8>,
        /// Additive tweak h (a BRC-42 child key).
        #[serde(default)]
        tweak: Option<[u8; 32]>,
    },
}

impl SessionParams {
    /// The kind these parameters are for.
    pub fn kind(&self) -> SessionKind {
        match self {
            SessionParams::Dkg { .. } => SessionKind::Dkg,
            SessionParams::Sign { .. } => SessionKind::Sign,
            SessionParams::Linkage { .. } => SessionKind::Linkage,
            SessionParams::SignTx { .. } => SessionKind::SignTx,
            SessionParams::Keygen { .. } => SessionKind::Keygen,
            SessionParams::Migrate {} => SessionKind::Migrate,
            SessionParams::SignData { .. } => SessionKind::SignData,
        }
    }
}

/// What the agent asks a cosigner to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    /// The key the run is for (its share, or the share DKG creates).
    pub key: KeyId,
    /// The run's id; a cosigner refuses one it has seen.
    pub execution_id: ExecutionId,
    /// Keygen indexes of the participants in protocol order; a party's protocol index is its
    /// position here.
    pub parties: Vec<PartyIndex>,
    /// What the run is about.
    pub params: SessionParams,
}

impl SessionRequest {
    /// The protocol.
    pub fn kind(&self) -> SessionKind {
        self.params.kind()
    }

    /// The request's shape, checked once for every receiver: parties strictly increasing and
    /// led by the agent; a DKG of every party `0..n` with `2 <= t <= n <= MAX_PARTIES`; a signing
    /// or linkage run of at least two parties; a linkage point of 33 bytes; a transaction
    /// signing of 1 to [`max_inputs_per_session`] inputs in strictly increasing index order. What
    /// only the receiver knows (whether it is among the parties, whether the point is on the
    /// curve, what the transaction holds) is its own to check. Errors are `InvalidInput`.
    pub fn check(&self) -> Result<()> {
        let p = &self.parties;
        let invalid = |m: &str| Error::new(ErrorKind::InvalidInput, m.to_string());
        if p.is_empty() || p.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("parties must be strictly increasing keygen indexes"));
        }
        if p[0] != AGENT_INDEX {
            return Err(invalid("every session includes the agent (party 0)"));
        }
        if p.len() > usize::from(MAX_PARTIES) {
            return Err(invalid("a session has at most 16 parties"));
        }
        let every_party = || p.iter().enumerate().all(|(i, &k)| usize::from(k) == i);
        match &self.params {
            SessionParams::Dkg { threshold, total } | SessionParams::Keygen { threshold, total, .. } => {
                let n = *total;
                if !(2..=MAX_PARTIES).contains(&n) || !(2..=n).contains(threshold) {
                    return Err(invalid("DKG needs 2 <= threshold <= parties <= 16"));
                }
                if p.len() != usize::from(n) || !every_party() {
                    return Err(invalid("DKG needs every party 0..n"));
                }
                if let SessionParams::Keygen { aux_from, .. } = &self.params {
                    if *aux_from == self.key.index {
                        return Err(invalid("a key cannot lend its own aux info to itself"));
                    }
                }
            }
            SessionParams::Migrate {} if p.len() < 2 || !every_party() => {
                return Err(invalid("a migration needs every party 0..n"));
            }
            SessionParams::Migrate {} => {}
            SessionParams::Sign { .. }
            | SessionParams::SignData { .. }
            | SessionParams::Linkage { .. }
            | SessionParams::SignTx { .. }
                if p.len() < 2 =>
            {
                return Err(invalid("a session needs the agent and at least one cosigner"));
            }
            SessionParams::Linkage { point } if PublicKey::from_slice(point).is_err() => {
                return Err(invalid("a linkage session needs a compressed counterparty point (33 bytes)"));
            }
            SessionParams::SignTx { tx, inputs, change } => {
                if change.len() > MAX_CHANGE_CLAIMS || change.windows(2).any(|w| w[0].vout >= w[1].vout) {
                    return Err(invalid(&format!(
                        "change claims name each output once, in increasing order, at most {MAX_CHANGE_CLAIMS}"
                    )));
                }
                let most = max_inputs_per_session(p.len());
                if tx.is_empty() || inputs.is_empty() || inputs.len() > most {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("a transaction signing session signs 1 to {most} inputs of a non-empty transaction"),
                    ));
                }
                if inputs.windows(2).any(|w| w[0].index >= w[1].index) {
                    return Err(invalid("the inputs to sign must be in strictly increasing index order"));
                }
            }
            SessionParams::SignData { data, .. } if data.len() > MAX_SIGN_DATA => {
                return Err(invalid(&format!("a data signing session carries at most {MAX_SIGN_DATA} bytes")));
            }
            SessionParams::Sign { .. } | SessionParams::Linkage { .. } | SessionParams::SignData { .. } => {}
        }
        Ok(())
    }
}

/// One protocol message in flight, from one party to one other. `from` and `to` are protocol
/// indexes (positions in [`SessionRequest::parties`]). A broadcast travels as one envelope per
/// recipient, each sealed for that recipient, with `broadcast` set. The payload is sealed
/// pairwise between sender and recipient, so a relay can neither read nor forge it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The run.
    pub execution_id: ExecutionId,
    /// Sub-protocol within the session (DKG: 0 keygen, 1 aux info).
    pub stage: u16,
    /// Sender's protocol index.
    pub from: u16,
    /// Recipient's protocol index.
    pub to: u16,
    /// Whether this is the recipient's copy of a broadcast.
    pub broadcast: bool,
    /// Sender's sequence number.
    pub seq: u64,
    /// The sealed message.
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("execution_id", &self.execution_id)
            .field("stage", &self.stage)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("broadcast", &self.broadcast)
            .field("seq", &self.seq)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}

mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// How a cosigner's part of a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOutcome {
    /// The collective public key the cosigner ended with (DKG: of its Pending share; Sign: of the
    /// possibly tweaked key it signed with).
    pub public_key: Vec<u8>,
}

/// What a cosigner sends back during a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    /// A protocol message, to the agent or to be relayed.
    Message(Envelope),
    /// The cosigner finished its part successfully. Nothing follows.
    Done(SessionOutcome),
    /// The cosigner's part failed. Nothing follows.
    Failed(WireError),
}

/// How many envelopes (or events) every queue of a session holds before a send waits: the
/// agent's and each cosigner's queues of one [`SessionChannel`], and every buffer a transport
/// puts between its two ends (HTTP batches, gRPC streams, a server's forwarding).
///
/// Why bounded queues cannot deadlock the protocols: a queue of a session carries, over a whole
/// honest run, at most what one party sends or receives in that run. Every round of the
/// protocols (cggmp21 keygen 5 rounds and aux info 4, signing 6, linkage 2) sends one envelope
/// to each other party (a broadcast is one sealed copy per recipient), so a DKG, the longest
/// run, moves 9 envelopes per pair of parties, and one party exchanges at most 9 x 15 = 135
/// with its up to 15 peers, plus one final event. The engine asserts its protocols stay within
/// this capacity. A queue that can hold everything that will ever pass through it is never
/// full, so in an honest run no send ever waits, whatever order the tasks run in: a broadcast,
/// or the agent relaying a message from one cosigner to another while that cosigner is itself
/// sending, cannot form a cycle of parties each waiting for the next to take its messages.
/// Only a peer that sends more than any honest run fills a queue; its sends then wait
/// (backpressure, so memory stays bounded) and the idle timeouts end the run.
pub const SESSION_CAPACITY: usize = 256;

/// A bounded queue of [`SESSION_CAPACITY`] for one direction of a session.
pub fn session_queue<T>() -> (mpsc::Sender<T>, mpsc::Receiver<T>) {
    mpsc::channel(SESSION_CAPACITY)
}

/// Envelopes on their way to a cosigner. A send waits while the cosigner's queue is full.
pub type EnvelopeSink = Pin<Box<dyn Sink<Envelope, Error = Error> + Send>>;
/// Events on their way back from a cosigner.
pub type EventStream = Pin<Box<dyn Stream<Item = SessionEvent> + Send>>;

/// Both directions of an open session, bounded (see [`SESSION_CAPACITY`]). Dropping or closing
/// `outgoing` tells the cosigner the agent gave up; the cosigner then abandons the run.
pub struct SessionChannel {
    /// Envelopes for the cosigner. A send fails once the cosigner is done with the run.
    pub outgoing: EnvelopeSink,
    /// Events from the cosigner. Ends after `Done` or `Failed`, or early when the cosigner is gone.
    pub incoming: EventStream,
}

impl fmt::Debug for SessionChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionChannel").finish_non_exhaustive()
    }
}

/// The cosigner's ends of a [`SessionChannel::bounded`] channel.
#[derive(Debug)]
pub struct SessionPeer {
    /// Envelopes from the agent; ends when the agent drops or closes its `outgoing`.
    pub inbound: mpsc::Receiver<Envelope>,
    /// Events for the agent; `is_closed` once the agent dropped its `incoming`.
    pub events: mpsc::Sender<SessionEvent>,
}

fn session_closed() -> Error {
    Error::new(ErrorKind::CosignerUnavailable, "the session is over: its other side is gone")
}

impl SessionChannel {
    /// A channel from any sink and stream.
    pub fn new(
        outgoing: impl Sink<Envelope, Error = Error> + Send + 'static,
        incoming: impl Stream<Item = SessionEvent> + Send + 'static,
    ) -> Self {
        Self { outgoing: Box::pin(outgoing), incoming: Box::pin(incoming) }
    }

    /// A channel whose envelopes go into `outgoing`, a queue from [`session_queue`].
    pub fn from_queue(
        outgoing: mpsc::Sender<Envelope>,
        incoming: impl Stream<Item = SessionEvent> + Send + 'static,
    ) -> Self {
        Self::new(outgoing.sink_map_err(|_| session_closed()), incoming)
    }

    /// Two fresh queues of [`SESSION_CAPACITY`]: the agent's channel and the cosigner's ends.
    pub fn bounded() -> (Self, SessionPeer) {
        let (to_peer, inbound) = session_queue();
        let (events, from_peer) = session_queue();
        (Self::from_queue(to_peer, from_peer), SessionPeer { inbound, events })
    }
}

/// A cosigner's view of a key, readable without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Compressed collective public key.
    pub public_key: Vec<u8>,
    /// Threshold t.
    pub threshold: u16,
    /// Parties n.
    pub parties: u16,
    /// The cosigner's party index.
    pub party_index: PartyIndex,
    /// Its record's state.
    pub state: ShareState,
    /// The run that produced the share in force (its DKG, or the migration that replaced it).
    pub execution_id: ExecutionId,
    /// The protocol label of the share in force (`cggmp24/0.7.0-alpha.3`); `None` from a
    /// cosigner older than labels, whose shares are cggmp21's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The migration run whose new share the cosigner holds staged (Pending) beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrating: Option<ExecutionId>,
    /// The spending policy the cosigner enforces for the key's wallet, and what its window holds;
    /// `None` when it enforces none. The agent reads it; it cannot change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyReport>,
}

/// A cosigner's spending policy for one wallet as it reports it ([`KeyInfo::policy`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyReport {
    /// A hash of the policy file's rules: cosigners with the same rules report the same.
    pub fingerprint: String,
    /// The most one transaction may send out, fee included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sats_per_tx: Option<u64>,
    /// The rolling window, in seconds.
    pub window_secs: u64,
    /// The most the window may send out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sats_per_window: Option<u64>,
    /// The most transactions in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tx_per_window: Option<u64>,
    /// How many destinations the allowlist holds; `None`: any destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_destinations: Option<u64>,
    /// How many approver keys can lift the limits for one payment.
    pub approvers: u64,
    /// Whether raw digests are signed.
    pub raw_digests: bool,
    /// Satoshis charged in the window so far.
    pub window_sats: u64,
    /// Transactions charged in the window so far.
    pub window_txs: u64,
}

impl PolicyReport {
    /// What the window still allows: (satoshis, transactions), `None` where unlimited.
    pub fn left(&self) -> (Option<u64>, Option<u64>) {
        (
            self.max_sats_per_window.map(|m| m.saturating_sub(self.window_sats)),
            self.max_tx_per_window.map(|m| m.saturating_sub(self.window_txs)),
        )
    }
}

/// Ask a cosigner for its part of a distributed ECDH with `point`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdhRequest {
    /// The key whose share multiplies the point.
    pub key: KeyId,
    /// Unique id of this request; binds the proof.
    pub execution_id: ExecutionId,
    /// Compressed point Q.
    pub point: Vec<u8>,
}

/// A cosigner's part of a distributed ECDH: `x_i * Q` with a DLEQ proof against its public share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdhPartial {
    /// The cosigner's party index.
    pub party_index: PartyIndex,
    /// Compressed `x_i * Q`.
    pub point: Vec<u8>,
    /// Serialized DLEQ proof.
    pub proof: Vec<u8>,
}

/// One connection to one cosigner. Built from an endpoint URL by scheme
/// (see [`crate::TransportFactory`]).
#[async_trait]
pub trait CosignerTransport: fmt::Debug + Send + Sync + 'static {
    /// The endpoint, for messages (never contains credentials).
    fn endpoint(&self) -> &str;

    /// Whether the cosigner answers.
    async fn health(&self) -> Result<()>;

    /// The cosigner's view of `key`, or `None` when it holds no share of it.
    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>>;

    /// Opens a protocol session.
    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel>;

    /// The cosigner's part of a distributed ECDH.
    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial>;

    /// Flips the Pending share of run `execution_id` to Active: a DKG's share, or the successor a
    /// migration staged, which then replaces the share in force. Idempotent.
    async fn commit(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()>;

    /// Deletes the Pending share of run `execution_id` (a DKG's, or a staged migration's).
    /// Idempotent; never touches the share in force of an Active record.
    async fn rollback(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()>;

    /// Hands the cosigner a person's signed approval of one payment (as `mpc-wallet approve`
    /// writes it), which it keeps once it verifies against its pinned approver keys; `false`
    /// when it had it already. The approval authenticates itself: no agent token is needed, and
    /// an agent cannot make one.
    async fn submit_approval(&self, approval: &[u8]) -> Result<bool> {
        let _ = approval;
        Err(Error::new(ErrorKind::Unsupported, "this transport does not carry approvals; submit them over HTTP"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WalletId;

    fn request(parties: Vec<PartyIndex>, params: SessionParams) -> SessionRequest {
        let key = KeyId::new(WalletId::new("w").unwrap(), 0);
        SessionRequest { key, execution_id: ExecutionId::random(), parties, params }
    }

    #[test]
    fn shapes_are_checked_in_one_place() {
        let sign = SessionParams::Sign { digest: [1; 32], tweak: None };
        assert!(request(vec![0, 2], sign.clone()).check().is_ok());
        assert_eq!(request(vec![0, 2], sign.clone()).kind(), SessionKind::Sign);
        for parties in [vec![], vec![1, 2], vec![0, 2, 1], vec![0, 0, 1], vec![0]] {
            let e = request(parties.clone(), sign.clone()).check().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{parties:?}");
        }
        assert!(request(vec![0, 1, 2], SessionParams::Dkg { threshold: 2, total: 3 }).check().is_ok());
        for (parties, t, n) in [(vec![0, 1, 2], 1, 3), (vec![0, 1, 2], 4, 3), (vec![0, 1], 2, 3), (vec![0, 1, 3], 2, 3)]
        {
            let e = request(parties, SessionParams::Dkg { threshold: t, total: n }).check().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        let point = PublicKey::from_slice(&[2; 33]).unwrap().as_bytes().to_vec();
        assert!(request(vec![0, 1], SessionParams::Linkage { point }).check().is_ok());
        let e = request(vec![0, 1], SessionParams::Linkage { point: vec![2; 5] }).check().unwrap_err();
        assert!(e.message().contains("33 bytes"), "{e}");
    }

    #[test]
    fn a_migration_and_a_further_keygen_need_every_party() {
        let migrate = SessionParams::Migrate {};
        assert!(request(vec![0, 1, 2], migrate.clone()).check().is_ok());
        assert_eq!(request(vec![0, 1, 2], migrate.clone()).kind(), SessionKind::Migrate);
        for parties in [vec![0], vec![0, 2], vec![0, 1, 3]] {
            assert!(request(parties.clone(), migrate.clone()).check().is_err(), "{parties:?}");
        }
        let keygen = |aux_from| SessionParams::Keygen { threshold: 2, total: 3, aux_from };
        let mut r = request(vec![0, 1, 2], keygen(0));
        r.key.index = 1;
        assert!(r.check().is_ok());
        assert!(request(vec![0, 1], keygen(1)).check().is_err(), "every party");
        let e = request(vec![0, 1, 2], keygen(0)).check().unwrap_err();
        assert!(e.message().contains("its own aux info"), "{e}");
        // On the wire the kinds are tagged by name, so an older peer refuses them by name.
        let json = serde_json::to_string(&migrate).unwrap();
        assert_eq!(json, r#"{"migrate":{}}"#);
        let json = serde_json::to_string(&keygen(0)).unwrap();
        assert_eq!(json, r#"{"keygen":{"threshold":2,"total":3,"aux_from":0}}"#);
    }

    #[test]
    fn a_transaction_session_signs_a_bounded_ordered_set_of_inputs() {
        let input = |index| InputToSign { index, sighash_type: 0x41, tweak: None };
        let sign_tx = |inputs: Vec<InputToSign>| SessionParams::SignTx { tx: vec![1; 60], inputs, change: vec![] };
        assert!(request(vec![0, 1], sign_tx(vec![input(0), input(3)])).check().is_ok());
        assert_eq!(max_inputs_per_session(2), 42);
        assert_eq!(max_inputs_per_session(3), 21);
        let most: Vec<_> = (0..42).map(input).collect();
        assert!(request(vec![0, 1], sign_tx(most.clone())).check().is_ok());
        for (parties, inputs) in [
            (vec![0, 1], vec![]),
            (vec![0, 1], vec![input(1), input(1)]),
            (vec![0, 1], vec![input(2), input(1)]),
            (vec![0, 1, 2], most),
        ] {
            let e = request(parties, sign_tx(inputs.clone())).check().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{inputs:?}");
        }
        let empty = SessionParams::SignTx { tx: vec![], inputs: vec![input(0)], change: vec![] };
        assert!(request(vec![0, 1], empty).check().is_err());
        // The transaction travels as a byte string (CBOR major type 2), not an array of numbers.
        let r = request(vec![0, 1], sign_tx(vec![input(0)]));
        let mut cbor = Vec::new();
        ciborium::into_writer(&r, &mut cbor).unwrap();
        assert!(cbor.windows(3).any(|w| w == [0x58, 60, 1]), "a 60-byte byte string");
        assert_eq!(ciborium::from_reader::<SessionRequest, _>(&cbor[..]).unwrap(), r);
    }

    #[test]
    fn the_kind_tags_the_wire_form_and_an_unknown_kind_is_refused() {
        let r = request(vec![0, 1], SessionParams::Sign { digest: [7; 32], tweak: Some([9; 32]) });
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["params"]["sign"]["digest"].is_array(), "{json}");
        assert_eq!(serde_json::from_value::<SessionRequest>(json.clone()).unwrap(), r);
        let mut newer = json;
        newer["params"] = serde_json::json!({ "sign_input": { "index": 0 } });
        let e = serde_json::from_value::<SessionRequest>(newer).unwrap_err();
        assert!(e.to_string().contains("sign_input"), "{e}");
    }
}
