//! Talking to one cosigner.

use std::fmt;

use async_trait::async_trait;
use futures::channel::mpsc;
use serde::{Deserialize, Serialize};

use crate::{ExecutionId, KeyId, PartyIndex, Result, ShareState, WireError};

/// Which protocol a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// Threshold key generation followed by aux info generation; ends with a Pending share.
    Dkg,
    /// Full threshold signing of a 32-byte digest.
    Sign,
    /// A joint Schnorr proof that `S = root * B` for the counterparty key in
    /// [`SessionRequest::point`] (BRC-100 `revealCounterpartyKeyLinkage`).
    Linkage,
}

/// What the agent asks a cosigner to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRequest {
    /// The protocol.
    pub kind: SessionKind,
    /// The key.
    pub key: KeyId,
    /// The run's id; a cosigner refuses one it has seen.
    pub execution_id: ExecutionId,
    /// Keygen indexes of the participants in protocol order; a party's protocol index is its
    /// position here.
    pub parties: Vec<PartyIndex>,
    /// Threshold t (DKG).
    pub threshold: u16,
    /// Number of parties n (DKG).
    pub total: u16,
    /// The digest to sign (Sign).
    #[serde(default)]
    pub digest: Option<[u8; 32]>,
    /// Additive tweak h applied to the key before signing: signs for P + h*G (Sign).
    #[serde(default)]
    pub tweak: Option<[u8; 32]>,
    /// A compressed point the protocol is about: the counterparty key B (Linkage).
    #[serde(default)]
    pub point: Option<Vec<u8>>,
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

/// Both directions of an open session. Dropping `outgoing` tells the cosigner the agent gave
/// up; the cosigner then abandons the run.
#[derive(Debug)]
pub struct SessionChannel {
    /// Envelopes for the cosigner.
    pub outgoing: mpsc::UnboundedSender<Envelope>,
    /// Events from the cosigner. Ends after `Done` or `Failed`, or early when the cosigner is gone.
    pub incoming: mpsc::UnboundedReceiver<SessionEvent>,
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
    /// The DKG run that produced the share.
    pub execution_id: ExecutionId,
}

/// Ask a cosigner for its part of a distributed ECDH with `point`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcdhRequest {
    /// The key.
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

    /// Flips the Pending share of run `execution_id` to Active. Idempotent.
    async fn commit(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()>;

    /// Deletes the Pending share of run `execution_id`. Idempotent; never touches an Active share.
    async fn rollback(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()>;
}
