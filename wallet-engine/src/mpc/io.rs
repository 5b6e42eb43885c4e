//! One party of a run over sealed envelopes: cggmp21's round-based delivery on one side, the
//! session's bounded queues on the other.

use std::{
    collections::{HashMap, VecDeque},
    marker::PhantomData,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
};

use futures::{channel::mpsc, Sink, Stream, StreamExt};
use round_based::{Incoming, MessageDestination, MessageType, Outgoing};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{session_queue, Envelope, Error, ErrorKind, ExecutionId, PartyIndex, Result, SessionRequest};

use super::stages_of;
use crate::keys::{Keyring, SealHeader};

/// A transport-level fault seen by the protocol (undecodable message, closed channel).
#[derive(Debug)]
pub(crate) struct WireFault(String);

impl std::fmt::Display for WireFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireFault {}

/// The hash of everything in the request, which every stage's execution id is bound to, so
/// parties that were told different things (parties, digest, tweak, transaction) cannot
/// complete a run together. Computed once per party: a transaction session has a stage per
/// input and may carry megabytes.
fn request_hash(request: &SessionRequest) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpc-wallet/eid/v1");
    let mut buf = Vec::new();
    ciborium::into_writer(request, &mut buf).expect("a request always serializes");
    h.update(&buf);
    h.finalize().into()
}

/// What a party's envelopes are sealed with: its keyring and who is who in this run.
#[derive(Clone)]
struct Seals {
    me: u16,
    execution_id: ExecutionId,
    /// Keygen index of each protocol position.
    parties: Arc<Vec<PartyIndex>>,
    keyring: Arc<Keyring>,
}

impl Seals {
    fn party(&self, pos: u16) -> Option<PartyIndex> {
        self.parties.get(usize::from(pos)).copied()
    }
}

/// One party's end: it reads envelopes addressed to it, one inbox per stage, and writes
/// envelopes it sends.
pub(crate) struct PartyIo {
    seals: Seals,
    request_hash: [u8; 32],
    inboxes: Mutex<HashMap<u16, mpsc::Receiver<Envelope>>>,
    tx: mpsc::Sender<Envelope>,
}

impl PartyIo {
    pub(crate) fn me(&self) -> u16 {
        self.seals.me
    }

    /// The cggmp21 execution id of `stage`.
    pub(super) fn stage_eid(&self, stage: u16) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.request_hash);
        h.update(stage.to_be_bytes());
        h.finalize().into()
    }

    /// The stage's inbox and outbox. The inbox is taken: a stage is read once, and dropping its
    /// stream drops whatever still arrives for it.
    pub(super) fn delivery<M>(&self, stage: u16) -> (StageStream<M>, StageSink<M>) {
        let rx = self.inboxes.lock().expect("inbox lock").remove(&stage);
        (
            StageStream { rx, seals: self.seals.clone(), stage, next_id: 0, _m: PhantomData },
            StageSink {
                tx: self.tx.clone(),
                pending: VecDeque::new(),
                seals: self.seals.clone(),
                stage,
                seq: 0,
                _m: PhantomData,
            },
        )
    }
}

/// A party's inbox as its peers see it: each envelope goes to its stage's queue, so a message
/// for a later stage (a faster peer's) waits there without holding up the current stage, and a
/// peer that sends more than a stage takes fills its queue and waits (backpressure) instead of
/// growing memory. Envelopes for a stage that is over, or that the protocol does not have, are
/// dropped: an honest peer sends none. Dropping or closing the inbox ends every stage's stream.
pub(crate) struct PartyInbox {
    stages: Vec<(u16, mpsc::Sender<Envelope>)>,
}

impl Sink<Envelope> for PartyInbox {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // The next envelope may be for any stage, so every open stage needs room; a stage whose
        // stream is gone takes anything (and drops it).
        for (_, tx) in &mut self.get_mut().stages {
            if tx.poll_ready(cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, env: Envelope) -> Result<()> {
        if let Some((_, tx)) = self.get_mut().stages.iter_mut().find(|(stage, _)| *stage == env.stage) {
            // Full only if the caller skipped poll_ready; closed once the stage is over.
            let _ = tx.start_send(env);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<()>> {
        for (_, tx) in &mut self.get_mut().stages {
            tx.close_channel();
        }
        Poll::Ready(Ok(()))
    }
}

pub(super) struct StageStream<M> {
    /// `None` when the stage was read before or is not one of the protocol's.
    rx: Option<mpsc::Receiver<Envelope>>,
    seals: Seals,
    stage: u16,
    next_id: u64,
    _m: PhantomData<fn() -> M>,
}

impl<M> StageStream<M> {
    /// Authenticates and opens one envelope; the sender is whoever could seal it.
    fn open(&self, env: &Envelope) -> std::result::Result<zeroize::Zeroizing<Vec<u8>>, WireFault> {
        let forged = || {
            WireFault(format!(
                "a message claiming to come from protocol party {} failed authentication: it was altered or forged in transit",
                env.from
            ))
        };
        if env.to != self.seals.me || env.from == self.seals.me || env.execution_id != self.seals.execution_id {
            return Err(WireFault(format!("a message from protocol party {} was misrouted", env.from)));
        }
        let from = self.seals.party(env.from).ok_or_else(forged)?;
        let header =
            SealHeader { execution_id: env.execution_id, stage: env.stage, seq: env.seq, broadcast: env.broadcast };
        self.seals.keyring.open(&header, from, &env.payload).ok_or_else(forged)
    }
}

impl<M: DeserializeOwned> Stream for StageStream<M> {
    type Item = std::result::Result<Incoming<M>, WireFault>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(Some(Err(WireFault(format!("stage {} has no inbox", this.stage)))));
        };
        let Some(env) = ready!(rx.poll_next_unpin(cx)) else { return Poll::Ready(None) };
        let id = this.next_id;
        this.next_id += 1;
        let msg = this.open(&env).and_then(|plain| {
            ciborium::from_reader::<M, _>(&plain[..])
                .map_err(|_| WireFault(format!("a message from protocol party {} could not be decoded", env.from)))
        });
        Poll::Ready(Some(msg.map(|msg| Incoming {
            id,
            sender: env.from,
            msg_type: if env.broadcast { MessageType::Broadcast } else { MessageType::P2P },
            msg,
        })))
    }
}

pub(super) struct StageSink<M> {
    tx: mpsc::Sender<Envelope>,
    /// Envelopes of the last message (one per recipient of a broadcast) not yet in `tx`.
    pending: VecDeque<Envelope>,
    seals: Seals,
    stage: u16,
    seq: u64,
    _m: PhantomData<fn(M)>,
}

impl<M> Unpin for StageSink<M> {}

impl<M> StageSink<M> {
    /// Moves the pending envelopes into the outbox as it has room.
    fn push_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), WireFault>> {
        let closed = || WireFault("the session was closed".into());
        while !self.pending.is_empty() {
            ready!(self.tx.poll_ready(cx)).map_err(|_| closed())?;
            let env = self.pending.pop_front().expect("not empty");
            self.tx.start_send(env).map_err(|_| closed())?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<M: Serialize> Sink<Outgoing<M>> for StageSink<M> {
    type Error = WireFault;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::result::Result<(), WireFault>> {
        self.get_mut().push_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Outgoing<M>) -> std::result::Result<(), WireFault> {
        let this = self.get_mut();
        let mut plain = zeroize::Zeroizing::new(Vec::new());
        ciborium::into_writer(&item.msg, &mut *plain).map_err(|e| WireFault(format!("encode: {e}")))?;
        let me = this.seals.me;
        let (recipients, broadcast): (Vec<u16>, bool) = match item.recipient {
            MessageDestination::AllParties => {
                let n = u16::try_from(this.seals.parties.len()).unwrap_or(u16::MAX);
                ((0..n).filter(|&j| j != me).collect(), true)
            }
            MessageDestination::OneParty(j) => (vec![j], false),
        };
        let header = SealHeader { execution_id: this.seals.execution_id, stage: this.stage, seq: this.seq, broadcast };
        this.seq += 1;
        for to in recipients {
            let party = this.seals.party(to).ok_or_else(|| WireFault(format!("no protocol party {to}")))?;
            let payload = this.seals.keyring.seal(&header, party, &plain).map_err(|e| WireFault(e.to_string()))?;
            let env = Envelope {
                execution_id: header.execution_id,
                stage: header.stage,
                from: me,
                to,
                broadcast,
                seq: header.seq,
                payload,
            };
            this.pending.push_back(env);
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::result::Result<(), WireFault>> {
        self.get_mut().push_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::result::Result<(), WireFault>> {
        self.get_mut().push_pending(cx)
    }
}

/// A running party: feed it envelopes, read what it sends, await its result. Its queues hold
/// [`SESSION_CAPACITY`] envelopes each.
pub(crate) struct RunningParty<O> {
    pub(crate) inbound: PartyInbox,
    pub(crate) outbound: mpsc::Receiver<Envelope>,
    pub(crate) result: tokio::task::JoinHandle<Result<O>>,
}

/// Starts this party of `request` on the blocking pool: the protocol is CPU-heavy and must stay
/// off the reactor. Fails before starting if a participant has no pinned key.
pub(crate) fn spawn_party<O, F, Fut>(keyring: Arc<Keyring>, request: &SessionRequest, run: F) -> Result<RunningParty<O>>
where
    O: Send + 'static,
    F: FnOnce(PartyIo) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<O>>,
{
    keyring.require(&request.parties)?;
    let me = request
        .parties
        .iter()
        .position(|&p| p == keyring.party_index())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "this party is not among the session's parties"))?;
    let (mut stages, mut inboxes) = (Vec::new(), HashMap::new());
    for stage in stages_of(&request.params) {
        let (tx, rx) = session_queue();
        stages.push((stage, tx));
        inboxes.insert(stage, rx);
    }
    let (out_tx, out_rx) = session_queue();
    let seals = Seals { me, execution_id: request.execution_id, parties: Arc::new(request.parties.clone()), keyring };
    let io = PartyIo { seals, request_hash: request_hash(request), inboxes: Mutex::new(inboxes), tx: out_tx };
    let result = tokio::task::spawn_blocking(move || futures::executor::block_on(run(io)));
    Ok(RunningParty { inbound: PartyInbox { stages }, outbound: out_rx, result })
}
