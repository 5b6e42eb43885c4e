//! The provisioned wallet: threshold signing and distributed ECDH over the cosigner transports.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use cggmp24::generic_ec::{NonZero, Point};
use futures::{future::join_all, stream, StreamExt, TryStreamExt};
use wallet_bsv::{Script, Transaction};
use wallet_traits::{
    max_inputs_per_session, ChainServices, ChangeClaim, CosignerTransport, EcdhRequest, EcdsaSignature, Error,
    ErrorKind, ExecutionId, InputToSign, KeyDeriver, KeyId, LinkageProof, PartyIndex, PublicKey, Result,
    SessionOutcome, SessionParams, SessionRequest, Signer, AGENT_INDEX,
};

use crate::{
    at_rest::cache::DerivationCache,
    config::Network,
    coordinator::{coordinate, Remote, RunFailure},
    failover::{self, CosignerReport, Unfit, PROBE_TIMEOUT},
    keys::Keyring,
    mpc::{self, Protocol, Share},
    provision::{builder::Provisioned, provisioner::Provisioner},
    transaction,
};

/// The most sessions one transaction's signing runs at once (each signs up to
/// `max_inputs_per_session` inputs).
const MAX_SESSIONS_PER_TX: usize = 4;

/// A cosigner as the agent knows it: its party index and transport.
#[derive(Debug, Clone)]
pub(crate) struct Cosigner {
    pub(crate) index: PartyIndex,
    pub(crate) transport: Arc<dyn CosignerTransport>,
}

impl Cosigner {
    pub(crate) fn name(&self, e: Error) -> Error {
        e.with_context("cosigner", self.index).with_context("endpoint", self.transport.endpoint())
    }
}

/// A provisioned MPC wallet. Cheap to clone; concurrent calls run independent sessions.
#[derive(Clone)]
pub struct Wallet {
    inner: Arc<Inner>,
}

struct Inner {
    key: KeyId,
    share: Arc<Share>,
    keyring: Arc<Keyring>,
    public_key: PublicKey,
    cosigners: Vec<Cosigner>,
    cache: Option<DerivationCache>,
    network: Network,
    idle: Duration,
    /// Cosigners found unfit lately, and until when they are tried only after the others, so a
    /// cosigner that does not answer costs one probe timeout, not one per operation.
    demoted: std::sync::Mutex<HashMap<PartyIndex, Instant>>,
    chain: ChainServices,
    /// The run that provisioned this key, for further keys of its group ([`Wallet::key`]).
    origin: Provisioner,
}

/// What a wallet was built with besides its key and parties.
#[derive(Clone)]
pub(crate) struct WalletSettings {
    pub(crate) network: Network,
    /// How long a protocol run may go without a message.
    pub(crate) idle: Duration,
    pub(crate) chain: ChainServices,
}

/// How long a cosigner found unfit is tried after the others.
const DEMOTION: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("key", &self.inner.key)
            .field("public_key", &self.inner.public_key)
            .field("threshold", &self.threshold())
            .field("cosigners", &self.inner.cosigners.iter().map(|c| c.transport.endpoint()).collect::<Vec<_>>())
            .finish()
    }
}

impl Wallet {
    /// The wallet of `share`, which `origin` provisioned.
    pub(crate) fn new(
        share: Share,
        cache: Option<DerivationCache>,
        origin: Provisioner,
        settings: WalletSettings,
    ) -> Self {
        let WalletSettings { network, idle, chain } = settings;
        let public_key = mpc::public_key_of(&share);
        let share = Arc::new(share);
        let (key, keyring, cosigners) = (origin.key.clone(), origin.keyring.clone(), origin.cosigners.clone());
        let demoted = Default::default();
        Self {
            inner: Arc::new(Inner {
                key,
                share,
                keyring,
                public_key,
                cosigners,
                cache,
                network,
                idle,
                demoted,
                chain,
                origin,
            }),
        }
    }

    /// Key `index` of this wallet's party group, with the same store, secret, cosigners and
    /// settings: restored when it exists, made otherwise. While the group's first key (index 0)
    /// is cggmp24, a new key runs only the threshold keygen and reuses that key's aux info, which
    /// this wallet (or the one it came from) holds in memory: milliseconds, not a DKG
    /// (docs/ARCHITECTURE.md, "Protocols").
    pub async fn key(&self, index: u32) -> Result<(Wallet, Provisioned)> {
        let inner = &self.inner;
        let mut run = inner.origin.clone();
        run.key = KeyId::new(inner.key.wallet.clone(), index);
        run.migrate = false;
        run.stop_at = None;
        if inner.key.index == 0 {
            run.group = Some((inner.key.clone(), inner.share.clone()));
        }
        let (share, cache, provisioned) = run.provision().await?;
        let settings = WalletSettings { network: inner.network, idle: inner.idle, chain: inner.chain.clone() };
        Ok((Wallet::new(share, cache, run, settings), provisioned))
    }

    /// The chain services the configuration named (MPC_BROADCASTER, MPC_ARC_URL,
    /// MPC_CHAIN_TRACKER, MPC_CHAIN_TRACKER_URL).
    pub fn chain_services(&self) -> &ChainServices {
        &self.inner.chain
    }

    /// The root (identity) public key.
    pub fn identity_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// The key this wallet signs with.
    pub fn key_id(&self) -> &KeyId {
        &self.inner.key
    }

    /// The protocol of this wallet's share: [`Protocol::CURRENT`] unless it was made before
    /// cggmp24 and not migrated yet (`mpc-wallet migrate`).
    pub fn protocol(&self) -> Protocol {
        self.inner.share.protocol()
    }

    /// Signing threshold t.
    pub fn threshold(&self) -> u16 {
        self.inner.share.min_signers()
    }

    /// The configured network.
    pub fn network(&self) -> Network {
        self.inner.network
    }

    /// How long to wait for a cosigner's answer about the key.
    fn probe_timeout(&self) -> Duration {
        self.inner.idle.min(PROBE_TIMEOUT)
    }

    /// What every cosigner says about the wallet's key right now, in configured order: which
    /// can serve, and why the others cannot. Asks them all at once.
    pub async fn cosigner_reports(&self) -> Vec<CosignerReport> {
        let (key, pk, timeout) = (&self.inner.key, self.inner.public_key.as_bytes(), self.probe_timeout());
        let protocol = self.protocol();
        join_all(
            self.inner
                .cosigners
                .iter()
                .map(|c| failover::probe(c.index, c.transport.as_ref(), key, pk, protocol, timeout)),
        )
        .await
    }

    /// Cosigners in the order to try them: configured order, those found unfit in the last
    /// [`DEMOTION`] last.
    fn candidates(&self) -> Vec<&Cosigner> {
        let mut demoted = self.inner.demoted.lock().expect("demotion lock");
        demoted.retain(|_, until| *until > Instant::now());
        let (later, first): (Vec<&Cosigner>, Vec<&Cosigner>) =
            self.inner.cosigners.iter().partition(|c| demoted.contains_key(&c.index));
        first.into_iter().chain(later).collect()
    }

    fn demote(&self, index: PartyIndex) {
        self.inner.demoted.lock().expect("demotion lock").insert(index, Instant::now() + DEMOTION);
    }

    /// The first t-1 cosigners (in configured order, recently unfit ones last) that can serve
    /// the key, leaving out those in `skipped` and adding to it every one found unfit. Fails
    /// listing every skipped cosigner and why when fewer than t-1 can serve.
    async fn pick(&self, skipped: &mut Vec<CosignerReport>) -> Result<Vec<Cosigner>> {
        let need = usize::from(self.threshold() - 1);
        let mut chosen = Vec::with_capacity(need);
        for c in self.candidates() {
            if chosen.len() == need {
                break;
            }
            if skipped.iter().any(|r| r.index == c.index) {
                continue;
            }
            let pk = self.inner.public_key.as_bytes();
            let report = failover::probe(
                c.index,
                c.transport.as_ref(),
                &self.inner.key,
                pk,
                self.protocol(),
                self.probe_timeout(),
            )
            .await;
            if report.can_serve() {
                self.inner.demoted.lock().expect("demotion lock").remove(&c.index);
                chosen.push(c.clone());
            } else {
                self.demote(c.index);
                tracing::warn!(cosigner = c.index, endpoint = c.transport.endpoint(), reason = %report, detail = ?report.detail, "skipping a cosigner that cannot serve the key");
                skipped.push(report);
            }
        }
        if chosen.len() < need {
            return Err(failover::too_few(need, chosen.len(), self.inner.cosigners.len(), skipped));
        }
        Ok(chosen)
    }

    /// Rules out `c` for the rest of this operation; tried after the others for a while, unless
    /// it only said no (its spending policy refused: it is healthy).
    fn skip(&self, skipped: &mut Vec<CosignerReport>, c: &Cosigner, unfit: Unfit, e: &Error) {
        if e.kind() != ErrorKind::PolicyDenied {
            self.demote(c.index);
        }
        tracing::warn!(cosigner = c.index, endpoint = c.transport.endpoint(), reason = %unfit, error = %e, "a cosigner failed; going on with the next");
        skipped.push(CosignerReport::unfit(c, unfit, Some(e)));
    }

    /// Rules out `c`, which the protocol proved to misbehave.
    fn skip_blamed(&self, skipped: &mut Vec<CosignerReport>, c: &Cosigner, e: &Error) {
        self.demote(c.index);
        tracing::error!(cosigner = c.index, endpoint = c.transport.endpoint(), error = %e, "a cosigner misbehaved; going on with the next");
        let mut report = CosignerReport::unfit(c, Unfit::Failed(ErrorKind::ProtocolAbort), Some(e));
        report.blamed = true;
        skipped.push(report);
    }

    /// Runs one session of `kind` with the agent and the first t-1 cosigners that can serve the
    /// key; `run` is this party's part. A cosigner that refuses the session, fails during the run
    /// or ends with an outcome that `agrees` rejects (another key) is skipped and the run starts
    /// again with the next one. Returns the agent's output.
    async fn joint<O, F, Fut>(
        &self,
        template: SessionRequest,
        run: F,
        agrees: impl Fn(&O, &SessionOutcome) -> bool,
    ) -> Result<O>
    where
        O: Send + 'static,
        F: FnOnce(mpc::PartyIo, SessionRequest, Arc<Share>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<O>>,
    {
        let mut skipped = Vec::new();
        'attempt: loop {
            let chosen = self.pick(&mut skipped).await?;
            let parties = party_set(&chosen);
            let request =
                SessionRequest { execution_id: ExecutionId::random(), parties: parties.clone(), ..template.clone() };
            let mut remotes = Vec::with_capacity(chosen.len());
            for c in &chosen {
                match c.transport.open_session(request.clone()).await {
                    Ok(channel) => {
                        remotes.push(Remote { index: c.index, endpoint: c.transport.endpoint().to_string(), channel })
                    }
                    // Sessions already opened end when `remotes` is dropped.
                    Err(e) => {
                        self.skip(&mut skipped, c, Unfit::Refused(e.kind()), &e);
                        continue 'attempt;
                    }
                }
            }
            let positions: Vec<u16> = remotes.iter().map(|r| pos_of(&parties, r.index)).collect::<Result<_>>()?;
            let local_pos = pos_of(&parties, AGENT_INDEX)?;
            let (share, r, run) = (self.inner.share.clone(), request.clone(), run.clone());
            let local = mpc::spawn_party(self.inner.keyring.clone(), &request, move |io| run(io, r, share))?;
            match coordinate(request.execution_id, local_pos, local, remotes, positions, self.inner.idle).await {
                Ok((out, outcomes)) => {
                    let Some(k) = outcomes.iter().position(|o| !agrees(&out, o)) else { return Ok(out) };
                    let e = chosen[k].name(Error::new(
                        ErrorKind::ShareMismatch,
                        format!("cosigner {} ended the run with another key", chosen[k].index),
                    ));
                    self.skip(&mut skipped, &chosen[k], Unfit::AnotherKey, &e);
                }
                Err(RunFailure { error, culprits }) if !culprits.is_empty() => {
                    for k in culprits {
                        self.skip(&mut skipped, &chosen[k], Unfit::Failed(error.kind()), &error);
                    }
                }
                Err(RunFailure { error, .. }) => return Err(error),
            }
        }
    }

    /// A request for `params`; `joint` fills in the parties and a fresh execution id per attempt.
    fn template(&self, params: SessionParams) -> SessionRequest {
        SessionRequest { key: self.inner.key.clone(), execution_id: ExecutionId::random(), parties: Vec::new(), params }
    }

    /// Signs `digest` with the root key, or with the child key `root + tweak` (public key
    /// `P + tweak*G`), using the agent and the first t-1 cosigners that can serve the key. The signature is
    /// verified against the expected public key before it is returned.
    pub async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        self.sign_one(SessionParams::Sign { digest: *digest, tweak: tweak.copied() }, digest, tweak).await
    }

    /// Signs SHA-256 of `data` as [`sign_digest`](Self::sign_digest) signs a digest, in a session
    /// that carries the data: each cosigner hashes it itself, so it knows it signs no
    /// transaction's sighash (unless the data is 32 bytes, which a spending policy refuses).
    ///
    /// Data longer than a session carries ([`wallet_traits::MAX_SIGN_DATA`]) is hashed here and
    /// signed as a digest, as before sessions carried data: a cosigner without a spending policy
    /// signs it, one with a policy refuses it as a raw digest.
    pub async fn sign_data(&self, data: &[u8], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(data).into();
        if data.len() > wallet_traits::MAX_SIGN_DATA {
            return self.sign_digest(&digest, tweak).await;
        }
        self.sign_one(SessionParams::SignData { data: data.to_vec(), tweak: tweak.copied() }, &digest, tweak).await
    }

    /// One signature of `digest`, in a session of `params` (a digest, or data hashing to it).
    async fn sign_one(
        &self,
        params: SessionParams,
        digest: &[u8; 32],
        tweak: Option<&[u8; 32]>,
    ) -> Result<EcdsaSignature> {
        let expected = match tweak {
            Some(t) => mpc::tweaked_public_key(&self.inner.public_key, t)?,
            None => self.inner.public_key,
        };
        let request = self.template(params);
        let tweak = tweak.copied();
        let run = move |io, r: SessionRequest, share: Arc<Share>| async move {
            let share = match &tweak {
                Some(t) => Arc::new(mpc::tweak_share(&share, t)?),
                None => share,
            };
            mpc::run_sign(io, r, share).await
        };
        let sig = self.joint(request, run, |_, o| o.public_key == expected.as_bytes()).await?;
        if !mpc::verify_signature(&expected, digest, &sig) {
            return Err(Error::new(
                ErrorKind::ProtocolAbort,
                "the joint signature does not verify; no signature was returned",
            ));
        }
        Ok(sig)
    }

    /// Signs `inputs` of `tx`, which must be in Extended Format (every input with the output it
    /// spends) and list the inputs in increasing index order. Every party, this one first,
    /// parses the transaction, checks that each input spends a P2PKH output of the key it is
    /// signed with (the root key, or the child key of its tweak), computes each digest itself
    /// and lets its policy review the transaction; one refusal signs nothing. The inputs run
    /// side by side in one session (several sessions, side by side, past
    /// [`max_inputs_per_session`]), so the round trips do not grow with the inputs. `change`
    /// names the outputs that pay the wallet itself (see [`ChangeClaim`]); every session carries
    /// them all. Returns one signature per input, each verified against its key and digest.
    pub async fn sign_transaction(
        &self,
        tx: &Transaction,
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<Vec<EcdsaSignature>> {
        if inputs.is_empty() || inputs.windows(2).any(|w| w[0].index >= w[1].index) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "list the inputs to sign once each, in increasing index order (at least one)",
            ));
        }
        let ef = tx.to_ef()?;
        let (_, prepared) = transaction::prepare(&self.inner.public_key, &ef, inputs)?;
        let per_session = max_inputs_per_session(usize::from(self.threshold()));
        let root = self.inner.public_key;
        // Owned per session, so the futures borrow nothing but `self` (callers box them as Send).
        let chunks: Vec<(Vec<InputToSign>, Vec<_>)> = inputs
            .chunks(per_session)
            .zip(prepared.chunks(per_session))
            .map(|(chunk, prepared)| (chunk.to_vec(), prepared.iter().map(|p| (p.tweak, p.digest)).collect()))
            .collect();
        let sessions = chunks.into_iter().map(|(chunk, jobs)| {
            let request =
                self.template(SessionParams::SignTx { tx: ef.clone(), inputs: chunk, change: change.to_vec() });
            // Prepared once, here: every attempt signs the same digests.
            let run = move |io, r: SessionRequest, share: Arc<Share>| mpc::run_sign_tx(io, r, share, jobs);
            self.joint(request, run, move |_, o| o.public_key == root.as_bytes())
        });
        let signatures: Vec<EcdsaSignature> = stream::iter(sessions).buffered(MAX_SESSIONS_PER_TX).try_concat().await?;
        for (k, (sig, p)) in signatures.iter().zip(&prepared).enumerate() {
            if !mpc::verify_signature(&p.public_key, &p.digest, sig) {
                return Err(Error::new(
                    ErrorKind::ProtocolAbort,
                    format!("the joint signature of input {} does not verify; nothing was returned", inputs[k].index),
                ));
            }
        }
        Ok(signatures)
    }

    /// [`Self::sign_transaction`], then each signed input's unlocking script set to
    /// `<signature ‖ sighash byte> <public key>`: the transaction, ready for P2PKH inputs.
    pub async fn sign_p2pkh_inputs(
        &self,
        tx: &Transaction,
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<Transaction> {
        let signatures = self.sign_transaction(tx, inputs, change).await?;
        let mut signed = tx.clone();
        for (input, sig) in inputs.iter().zip(&signatures) {
            let public_key = match &input.tweak {
                Some(t) => mpc::tweaked_public_key(&self.inner.public_key, t)?,
                None => self.inner.public_key,
            };
            let push = wallet_bsv::signature::checksig_format(sig, input.sighash_type);
            signed.inputs[input.index as usize].unlocking_script = Script::p2pkh_unlock(&push, public_key.as_bytes());
        }
        Ok(signed)
    }

    /// `root * counterparty` with a Schnorr proof, computed jointly: no party learns the root key.
    pub async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
        mpc::parse_point(counterparty.as_bytes())?;
        let request = self.template(SessionParams::Linkage { point: counterparty.as_bytes().to_vec() });
        self.joint(request, mpc::run_linkage, |proof: &LinkageProof, o| o.public_key == proof.shared.as_bytes()).await
    }

    /// `root * point`, from the sealed derivation cache or computed jointly (then cached).
    pub async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        if let Some(cache) = &self.inner.cache {
            if let Some(shared) = cache.get(point).await? {
                return Ok(shared);
            }
        }
        let shared = self.distributed_ecdh(point).await?;
        if let Some(cache) = &self.inner.cache {
            // A failed write only costs a round trip next time.
            if let Err(e) = cache.put(point, &shared).await {
                tracing::warn!(error = %e, "could not store a derivation-cache entry");
            }
        }
        Ok(shared)
    }

    /// `root * point` computed jointly: each cosigner returns `x_i * point` with a DLEQ proof
    /// against its public share; a partial whose proof fails is rejected, naming the cosigner.
    pub async fn distributed_ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        let q = mpc::parse_point(point.as_bytes())?;
        let mut skipped = Vec::new();
        loop {
            let chosen = self.pick(&mut skipped).await?;
            if let Some(shared) = self.ecdh_with(&chosen, &q, point, &mut skipped).await? {
                return Ok(shared);
            }
        }
    }

    /// One attempt of [`Self::distributed_ecdh`] with `chosen`: `None` when a cosigner failed or
    /// sent a partial that does not verify (it is then skipped, and the caller picks again).
    async fn ecdh_with(
        &self,
        chosen: &[Cosigner],
        q: &NonZero<Point<mpc::E>>,
        point: &PublicKey,
        skipped: &mut Vec<CosignerReport>,
    ) -> Result<Option<PublicKey>> {
        let parties = party_set(chosen);
        let eid = ExecutionId::random();
        let request = EcdhRequest { key: self.inner.key.clone(), execution_id: eid, point: point.as_bytes().to_vec() };
        let ctx = mpc::ecdh_context(&self.inner.key, &eid, point.as_bytes());
        let idle = self.inner.idle;
        let partials = join_all(chosen.iter().map(|c| {
            let req = request.clone();
            async move {
                tokio::time::timeout(idle, c.transport.partial_ecdh(req))
                    .await
                    .map_err(|_| Error::new(ErrorKind::Timeout, "partial ECDH timed out"))
                    .and_then(|r| r)
                    .map_err(|e| c.name(e))
            }
        }))
        .await;
        let share = &self.inner.share;
        let own_pos = pos_of(&parties, AGENT_INDEX)?;
        let mut acc: Point<mpc::E> =
            q.into_inner() * (mpc::lagrange(share, &parties, own_pos.into())? * &share.core().x);
        let mut complete = true;
        for (c, partial) in chosen.iter().zip(partials) {
            let partial = match partial {
                Ok(p) => p,
                Err(e) => {
                    self.skip(skipped, c, Unfit::Refused(e.kind()), &e);
                    complete = false;
                    continue;
                }
            };
            let verified = (partial.party_index == c.index)
                .then(|| mpc::verify_ecdh_partial(share, c.index, q, &ctx, &partial.point, &partial.proof))
                .flatten();
            match verified {
                Some(z) => acc += z * mpc::lagrange(share, &parties, pos_of(&parties, c.index)?.into())?,
                None => {
                    self.skip_blamed(skipped, c, &c.name(forged_partial(c.index)));
                    complete = false;
                }
            }
        }
        if !complete {
            return Ok(None);
        }
        let shared =
            NonZero::from_point(acc).ok_or_else(|| Error::new(ErrorKind::Internal, "ECDH result is the identity"))?;
        PublicKey::from_slice(&shared.to_bytes(true)).map(Some)
    }
}

fn forged_partial(index: PartyIndex) -> Error {
    Error::new(
        ErrorKind::ProtocolAbort,
        format!(
            "cosigner {index} returned an ECDH partial whose DLEQ proof does not verify against its public share; \
             the partial was discarded"
        ),
    )
    .with_blamed([index])
}

/// The agent and `chosen`, sorted: protocol index = position.
fn party_set(chosen: &[Cosigner]) -> Vec<PartyIndex> {
    let mut parties: Vec<PartyIndex> = std::iter::once(AGENT_INDEX).chain(chosen.iter().map(|c| c.index)).collect();
    parties.sort_unstable();
    parties
}

fn pos_of(parties: &[PartyIndex], index: PartyIndex) -> Result<u16> {
    parties
        .iter()
        .position(|&p| p == index)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Error::new(ErrorKind::Internal, "party not in the signer set"))
}

#[async_trait]
impl Signer for Wallet {
    fn public_key(&self) -> PublicKey {
        self.identity_key()
    }

    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        Wallet::sign_digest(self, digest, tweak).await
    }

    async fn sign_data(&self, data: &[u8], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        Wallet::sign_data(self, data, tweak).await
    }

    async fn sign_transaction(
        &self,
        tx_ef: &[u8],
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<Vec<EcdsaSignature>> {
        Wallet::sign_transaction(self, &Transaction::from_bytes(tx_ef)?, inputs, change).await
    }
}

#[async_trait]
impl KeyDeriver for Wallet {
    fn identity_key(&self) -> PublicKey {
        Wallet::identity_key(self)
    }

    async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        Wallet::ecdh(self, point).await
    }

    async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
        Wallet::linkage_proof(self, counterparty).await
    }
}
