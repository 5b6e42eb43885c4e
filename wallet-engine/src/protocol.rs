//! The cggmp21 driver: runs one party of a protocol over envelopes, plus the key-share arithmetic
//! (additive tweak, verifiable ECDH partials) that needs no interaction.

use std::{
    collections::{HashMap, VecDeque},
    marker::PhantomData,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
};

use cggmp21::{
    generic_ec::{NonZero, Point, Scalar, SecretScalar},
    key_share::{AnyKeyShare, AuxInfo, DirtyKeyShare, IncompleteKeyShare, KeyShare},
    security_level::SecurityLevel128,
    supported_curves::Secp256k1,
    DataToSign, PregeneratedPrimes,
};
use futures::{channel::mpsc, Sink, Stream, StreamExt};
use rand::rngs::OsRng;
use round_based::{Incoming, MessageDestination, MessageType, MpcParty, Outgoing};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{
    session_queue, EcdsaSignature, Envelope, Error, ErrorKind, ExecutionId, PartyIndex, PublicKey, Result,
    SessionParams, SessionRequest, MAX_PARTIES, SESSION_CAPACITY,
};

use crate::keys::{Keyring, SealHeader};

/// The curve.
pub(crate) type E = Secp256k1;
/// The security level.
pub(crate) type L = SecurityLevel128;
type D = Sha256;
/// A complete key share.
pub(crate) type Share = KeyShare<E, L>;
/// A prime pair for aux info generation.
pub type Primes = PregeneratedPrimes<L>;

type KeygenMsg = cggmp21::keygen::msg::threshold::Msg<E, L, D>;
type AuxMsg = cggmp21::key_refresh::msg::aux_only::Msg<D, L>;
type SignMsg = cggmp21::signing::msg::Msg<E, D>;

/// DKG stages share one session; the stage tag keeps their messages apart.
pub(crate) const STAGE_KEYGEN: u16 = 0;
pub(crate) const STAGE_AUX: u16 = 1;
pub(crate) const STAGE_SIGN: u16 = 0;
const STAGE_LINKAGE_COMMIT: u16 = 0;
const STAGE_LINKAGE_RESPONSE: u16 = 1;

/// The stages a session of `params` runs, each with its own inbox.
fn stages_of(params: &SessionParams) -> &'static [u16] {
    match params {
        SessionParams::Dkg { .. } => &[STAGE_KEYGEN, STAGE_AUX],
        SessionParams::Sign { .. } => &[STAGE_SIGN],
        SessionParams::Linkage { .. } => &[STAGE_LINKAGE_COMMIT, STAGE_LINKAGE_RESPONSE],
    }
}

/// The most envelopes one party sends to one other party in a run: every round sends each
/// other party exactly one (a broadcast is one copy per recipient). DKG: keygen 5 rounds (commit,
/// reliability check, decommit, shares, proof) and aux info 4 (commit, reliability check,
/// decommit, proofs); signing 6; linkage 2 (commit, response).
const MAX_ENVELOPES_PER_PEER: usize = 9;

// Every queue of a session (a party's inbox per stage, its outbox, the transport's) must hold all
// a party sends or receives in a run, plus the final event, so that no send of an honest run
// ever waits and the relaying through the agent cannot deadlock (see wallet_traits::SESSION_CAPACITY).
const MOST_PER_QUEUE: usize = MAX_ENVELOPES_PER_PEER * (MAX_PARTIES as usize - 1) + 1;
const _: () = assert!(MOST_PER_QUEUE <= SESSION_CAPACITY);

/// A transport-level fault seen by the protocol (undecodable message, closed channel).
#[derive(Debug)]
pub(crate) struct WireFault(String);

impl std::fmt::Display for WireFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireFault {}

/// The cggmp21 execution id of one stage: bound to everything in the request, so parties that
/// were told different things (parties, digest, tweak) cannot complete a run together.
fn stage_eid(request: &SessionRequest, stage: u16) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpc-wallet/eid/v1");
    let mut buf = Vec::new();
    ciborium::into_writer(request, &mut buf).expect("a request always serializes");
    h.update(&buf);
    h.update(stage.to_be_bytes());
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
    inboxes: Mutex<HashMap<u16, mpsc::Receiver<Envelope>>>,
    tx: mpsc::Sender<Envelope>,
}

impl PartyIo {
    pub(crate) fn me(&self) -> u16 {
        self.seals.me
    }

    /// The stage's inbox and outbox. The inbox is taken: a stage is read once, and dropping its
    /// stream drops whatever still arrives for it.
    fn delivery<M>(&self, stage: u16) -> (StageStream<M>, StageSink<M>) {
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

struct StageStream<M> {
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

struct StageSink<M> {
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
    for &stage in stages_of(&request.params) {
        let (tx, rx) = session_queue();
        stages.push((stage, tx));
        inboxes.insert(stage, rx);
    }
    let (out_tx, out_rx) = session_queue();
    let seals = Seals { me, execution_id: request.execution_id, parties: Arc::new(request.parties.clone()), keyring };
    let io = PartyIo { seals, inboxes: Mutex::new(inboxes), tx: out_tx };
    let result = tokio::task::spawn_blocking(move || futures::executor::block_on(run(io)));
    Ok(RunningParty { inbound: PartyInbox { stages }, outbound: out_rx, result })
}

fn abort(what: &str, e: impl std::error::Error) -> Error {
    // cggmp21's error texts name the failing check and party, never secret values; the cause
    // (for example a message that failed authentication) sits in the source chain.
    let mut msg = format!("{what} aborted: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::new(ErrorKind::ProtocolAbort, msg)
}

/// Threshold keygen, then aux info: one party's whole DKG. `primes` resolves when this party's
/// prime pair is ready (it may still be generating while keygen runs).
pub(crate) async fn run_dkg<P>(
    io: PartyIo,
    request: SessionRequest,
    primes: P,
    on_keygen_done: impl FnOnce(),
) -> Result<Share>
where
    P: std::future::Future<Output = Result<Primes>>,
{
    let me = io.me();
    let SessionParams::Dkg { threshold, total: n } = request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a DKG session"));
    };
    let eid = stage_eid(&request, STAGE_KEYGEN);
    let incomplete: IncompleteKeyShare<E> = cggmp21::keygen::<E>(cggmp21::ExecutionId::new(&eid), me, n)
        .set_threshold(threshold)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<KeygenMsg>(STAGE_KEYGEN)))
        .await
        .map_err(|e| abort("keygen", e))?;
    on_keygen_done();
    let primes = primes.await?;
    let eid = stage_eid(&request, STAGE_AUX);
    let aux: AuxInfo<L> = cggmp21::aux_info_gen(cggmp21::ExecutionId::new(&eid), me, n, primes)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<AuxMsg>(STAGE_AUX)))
        .await
        .map_err(|e| abort("aux info generation", e))?;
    KeyShare::from_parts((incomplete, aux))
        .map_err(|e| Error::new(ErrorKind::ProtocolAbort, format!("DKG produced an inconsistent key share: {e}")))
}

/// Full threshold signing of `request.digest` with `share` (already tweaked if requested).
pub(crate) async fn run_sign(io: PartyIo, request: SessionRequest, share: Arc<Share>) -> Result<EcdsaSignature> {
    let SessionParams::Sign { digest, .. } = request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a signing session"));
    };
    let data = DataToSign::<E>::from_scalar(Scalar::from_be_bytes_mod_order(digest));
    let eid = stage_eid(&request, STAGE_SIGN);
    let sig = cggmp21::signing(cggmp21::ExecutionId::new(&eid), io.me(), &request.parties, &share)
        .sign(&mut OsRng, MpcParty::connected(io.delivery::<SignMsg>(STAGE_SIGN)), data)
        .await
        .map_err(|e| abort("signing", e))?
        .normalize_s();
    let mut out = [0u8; 64];
    sig.write_to_slice(&mut out);
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&out[..32]);
    s.copy_from_slice(&out[32..]);
    Ok(EcdsaSignature { r, s })
}

/// The tweak as a scalar, reduced modulo the group order (docs/ARCHITECTURE.md, "Derived keys").
pub(crate) fn tweak_scalar(tweak: &[u8; 32]) -> Scalar<E> {
    Scalar::from_be_bytes_mod_order(tweak)
}

/// The share of the child key `x + h`: every signer applies the same public `h` to its secret
/// share, every public share and the collective key, so any t shares interpolate to `x + h`.
pub(crate) fn tweak_share(share: &Share, tweak: &[u8; 32]) -> Result<Share> {
    let h = tweak_scalar(tweak);
    let mut d: DirtyKeyShare<E, L> = share.clone().into_inner();
    let hg = Point::generator() * h;
    let invalid = || Error::new(ErrorKind::InvalidInput, "the tweak makes the key zero; use another tweak");
    d.core.key_info.shared_public_key =
        NonZero::from_point(d.core.key_info.shared_public_key + hg).ok_or_else(invalid)?;
    for x_j in d.core.key_info.public_shares.iter_mut() {
        *x_j = NonZero::from_point(*x_j + hg).ok_or_else(invalid)?;
    }
    let mut x = d.core.x.clone() + h;
    d.core.x = NonZero::from_secret_scalar(SecretScalar::new(&mut x)).ok_or_else(invalid)?;
    KeyShare::validate(d)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("tweaked share does not validate: {}", e.into_error())))
}

/// Compressed collective public key of a share.
pub(crate) fn public_key_of(share: &Share) -> PublicKey {
    PublicKey::from_slice(&share.shared_public_key().to_bytes(true)).expect("a curve point encodes to 33 bytes")
}

/// Parses a compressed point, refusing the identity and off-curve encodings.
pub(crate) fn parse_point(bytes: &[u8]) -> Result<NonZero<Point<E>>> {
    Point::<E>::from_bytes(bytes)
        .ok()
        .and_then(NonZero::from_point)
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "not a valid compressed secp256k1 point"))
}

/// Lagrange coefficient at zero of `parties[pos]` for the signer set `parties` (keygen indexes).
pub(crate) fn lagrange(share: &Share, parties: &[u16], pos: usize) -> Result<Scalar<E>> {
    let xs: Vec<NonZero<Scalar<E>>> = parties
        .iter()
        .map(|&k| {
            share.core.share_preimage(k).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "unknown party index"))
        })
        .collect::<Result<_>>()?;
    let mut num = Scalar::<E>::one();
    let mut den = Scalar::<E>::one();
    for (j, xj) in xs.iter().enumerate() {
        if j != pos {
            num *= xj;
            den *= *xj - xs[pos];
        }
    }
    Ok(num * den.invert().ok_or_else(|| Error::new(ErrorKind::InvalidInput, "repeated party index"))?)
}

type DleqProof = generic_ec_zkp::dlog_eq::non_interactive::Proof<E>;

/// This party's `x_i * Q` and a DLEQ proof that it used the secret behind its public share.
pub(crate) fn ecdh_partial(share: &Share, q: &NonZero<Point<E>>, context: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    use generic_ec_zkp::dlog_eq::non_interactive;
    let x: &SecretScalar<E> = share.core.x.as_ref();
    let data = non_interactive::Data::from_secret_key(x, q.into_inner());
    let proof: DleqProof = non_interactive::prove::<E, D>(&mut OsRng, &udigest::Bytes(context), x, data);
    let mut proof_bytes = Vec::new();
    ciborium::into_writer(&proof, &mut proof_bytes)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("encode proof: {e}")))?;
    Ok((data.prod2.to_bytes(true).to_vec(), proof_bytes))
}

/// Checks party `k`'s partial against its public share; returns `Z_k` if the proof holds.
pub(crate) fn verify_ecdh_partial(
    share: &Share,
    k: u16,
    q: &NonZero<Point<E>>,
    context: &[u8],
    point: &[u8],
    proof: &[u8],
) -> Option<Point<E>> {
    use generic_ec_zkp::dlog_eq::non_interactive;
    let z = Point::<E>::from_bytes(point).ok()?;
    let proof: DleqProof = ciborium::from_reader(proof).ok()?;
    let x_k = share.core.key_info.public_shares.get(usize::from(k))?;
    let data = non_interactive::Data {
        gen1: Point::generator().into(),
        prod1: x_k.into_inner(),
        gen2: q.into_inner(),
        prod2: z,
    };
    non_interactive::verify::<E, D>(&udigest::Bytes(context), data, proof).ok()?;
    Some(z)
}

/// Serializes a share for sealing.
pub(crate) fn encode_share(share: &Share) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    ciborium::into_writer(share, &mut *out).expect("a key share always serializes");
    out
}

/// Parses (and validates) an opened share.
pub(crate) fn decode_share(bytes: &[u8]) -> Result<Share> {
    ciborium::from_reader(bytes).map_err(|_| {
        Error::new(
            ErrorKind::Corrupted,
            "the opened share does not parse as a key share; restore the record from backup",
        )
    })
}

/// Verifies an ECDSA signature with k256, independently of cggmp21.
pub fn verify_signature(public_key: &PublicKey, digest: &[u8; 32], sig: &EcdsaSignature) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key.as_bytes()) else { return false };
    let Ok(s) = k256::ecdsa::Signature::from_slice(&sig.to_compact()) else { return false };
    vk.verify_prehash(digest, &s).is_ok()
}

/// `P + h*G` for a tweak `h`: the public key a tweaked signature verifies against.
pub fn tweaked_public_key(public_key: &PublicKey, tweak: &[u8; 32]) -> Result<PublicKey> {
    let p = parse_point(public_key.as_bytes())?;
    let child = NonZero::from_point(p.into_inner() + Point::generator() * tweak_scalar(tweak))
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the tweak makes the key zero"))?;
    PublicKey::from_slice(&child.to_bytes(true))
}

/// What a DLEQ proof of an ECDH partial is bound to: the key, the request id and the point.
pub(crate) fn ecdh_context(key: &wallet_traits::KeyId, eid: &ExecutionId, point: &[u8]) -> Vec<u8> {
    let mut c = b"mpc-wallet/ecdh/v1".to_vec();
    c.extend_from_slice(key.wallet.as_str().as_bytes());
    c.push(0);
    c.extend_from_slice(&key.index.to_be_bytes());
    c.extend_from_slice(eid.as_bytes());
    c.extend_from_slice(point);
    c
}

/// Messages of the joint linkage proof.
#[derive(serde::Serialize, serde::Deserialize)]
enum LinkageMsg {
    /// Round 1: `R_i = r_i*G`, `S'_i = r_i*B`, `Z_i = x_i*B` and a DLEQ proof of `Z_i`.
    Commit { r: Vec<u8>, s_prime: Vec<u8>, z_point: Vec<u8>, proof: Vec<u8> },
    /// Round 2: `z_i = r_i + e*lambda_i*x_i`.
    Response { z: [u8; 32] },
}

/// `e = SHA-256(A || B || S || S' || R) mod n`, as @bsv/sdk's `Schnorr.computeChallenge`.
pub(crate) fn linkage_challenge(
    a: &Point<E>,
    b: &Point<E>,
    s: &Point<E>,
    s_prime: &Point<E>,
    r: &Point<E>,
) -> Scalar<E> {
    let mut h = Sha256::new();
    for p in [a, b, s, s_prime, r] {
        h.update(p.to_bytes(true));
    }
    Scalar::from_be_bytes_mod_order(h.finalize())
}

fn point_from(bytes: &[u8], from: u16) -> Result<Point<E>> {
    Point::<E>::from_bytes(bytes).map_err(|_| {
        Error::new(ErrorKind::ProtocolAbort, format!("protocol party {from} sent an invalid point")).with_blamed([from])
    })
}

/// One party of the joint Schnorr proof that `S = root * B` (B in `request.point`). Each party
/// contributes a fresh nonce and its Lagrange-weighted share; nobody assembles the root key, and
/// every party checks the others' ECDH parts (DLEQ) and the final proof.
pub(crate) async fn run_linkage(
    io: PartyIo,
    request: SessionRequest,
    share: Arc<Share>,
) -> Result<wallet_traits::LinkageProof> {
    use futures::SinkExt;
    let SessionParams::Linkage { point: b_bytes } = &request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a linkage session"));
    };
    let b = parse_point(b_bytes)?;
    let me = usize::from(io.me());
    let parties = request.parties.clone();
    let ctx = ecdh_context(&request.key, &request.execution_id, b_bytes);
    let r_i = SecretScalar::<E>::random(&mut OsRng);
    let big_r_i = Point::generator() * &r_i;
    let s_prime_i = b.into_inner() * &r_i;
    let (z_point, proof) = ecdh_partial(&share, &b, &ctx)?;
    let lambdas: Vec<Scalar<E>> =
        (0..parties.len()).map(|pos| lagrange(&share, &parties, pos)).collect::<Result<_>>()?;

    let (mut inbox, mut outbox) = io.delivery::<LinkageMsg>(STAGE_LINKAGE_COMMIT);
    let commit = LinkageMsg::Commit {
        r: big_r_i.to_bytes(true).to_vec(),
        s_prime: s_prime_i.to_bytes(true).to_vec(),
        z_point: z_point.clone(),
        proof,
    };
    let fault = |e: WireFault| Error::new(ErrorKind::ProtocolAbort, format!("linkage proof aborted: {e}"));
    outbox.send(Outgoing::broadcast(commit)).await.map_err(fault)?;
    let mut big_r = big_r_i;
    let mut s_prime = s_prime_i;
    let mut shared = point_from(&z_point, io.me())? * lambdas[me];
    for _ in 1..parties.len() {
        let msg = inbox
            .next()
            .await
            .ok_or_else(|| Error::new(ErrorKind::CosignerUnavailable, "the linkage session closed early"))?
            .map_err(fault)?;
        let LinkageMsg::Commit { r, s_prime: sp, z_point, proof } = msg.msg else {
            return Err(
                Error::new(ErrorKind::ProtocolAbort, "a linkage message came out of order").with_blamed([msg.sender])
            );
        };
        let k = parties[usize::from(msg.sender)];
        let z = verify_ecdh_partial(&share, k, &b, &ctx, &z_point, &proof).ok_or_else(|| {
            Error::new(ErrorKind::ProtocolAbort, format!("party {k}'s ECDH part fails its DLEQ proof")).with_blamed([k])
        })?;
        big_r += point_from(&r, msg.sender)?;
        s_prime += point_from(&sp, msg.sender)?;
        shared += z * lambdas[usize::from(msg.sender)];
    }
    let a = share.shared_public_key().into_inner();
    let e = linkage_challenge(&a, &b.into_inner(), &shared, &s_prime, &big_r);
    let z_i = *r_i.as_ref() + e * lambdas[me] * &share.core.x;
    drop(inbox);
    let (mut inbox2, mut outbox2) = io.delivery::<LinkageMsg>(STAGE_LINKAGE_RESPONSE);
    outbox2
        .send(Outgoing::broadcast(LinkageMsg::Response {
            z: z_i.to_be_bytes().as_bytes().try_into().expect("32 bytes"),
        }))
        .await
        .map_err(fault)?;
    let mut z = z_i;
    for _ in 1..parties.len() {
        let msg = inbox2
            .next()
            .await
            .ok_or_else(|| Error::new(ErrorKind::CosignerUnavailable, "the linkage session closed early"))?
            .map_err(fault)?;
        let LinkageMsg::Response { z: z_j } = msg.msg else {
            return Err(
                Error::new(ErrorKind::ProtocolAbort, "a linkage message came out of order").with_blamed([msg.sender])
            );
        };
        z += Scalar::from_be_bytes_mod_order(z_j);
    }
    // zG = R + eA and zB = S' + eS, as the verifier will check.
    if Point::generator() * z != big_r + a * e || b.into_inner() * z != s_prime + shared * e {
        return Err(Error::new(
            ErrorKind::ProtocolAbort,
            "the joint linkage proof does not verify; a party sent a bad response",
        ));
    }
    let pk = |p: &Point<E>| PublicKey::from_slice(&p.to_bytes(true));
    Ok(wallet_traits::LinkageProof {
        shared: pk(&shared)?,
        r: pk(&big_r)?,
        s_prime: pk(&s_prime)?,
        z: z.to_be_bytes().as_bytes().try_into().expect("32 bytes"),
    })
}
