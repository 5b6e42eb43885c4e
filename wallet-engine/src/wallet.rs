//! The provisioned wallet: threshold signing and distributed ECDH over the cosigner transports.

use std::{collections::HashSet, sync::Arc, time::Duration};

use async_trait::async_trait;
use cggmp21::{
    generic_ec::{NonZero, Point},
    key_share::AnyKeyShare,
};
use futures::future::join_all;
use wallet_traits::{
    CosignerTransport, EcdhRequest, EcdsaSignature, Error, ErrorKind, ExecutionId, KeyDeriver, KeyId, LinkageProof,
    PartyIndex, PublicKey, Result, SessionKind, SessionOutcome, SessionRequest, Signer, AGENT_INDEX,
};

use crate::{
    cache::DerivationCache,
    config::Network,
    coordinator::{coordinate, Remote},
    keys::Keyring,
    protocol::{self, Share},
};

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
}

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
    pub(crate) fn new(
        key: KeyId,
        share: Share,
        keyring: Arc<Keyring>,
        cosigners: Vec<Cosigner>,
        cache: Option<DerivationCache>,
        network: Network,
        idle: Duration,
    ) -> Self {
        let public_key = protocol::public_key_of(&share);
        let share = Arc::new(share);
        Self { inner: Arc::new(Inner { key, share, keyring, public_key, cosigners, cache, network, idle }) }
    }

    /// The root (identity) public key.
    pub fn identity_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// The key this wallet signs with.
    pub fn key_id(&self) -> &KeyId {
        &self.inner.key
    }

    /// Signing threshold t.
    pub fn threshold(&self) -> u16 {
        self.inner.share.min_signers()
    }

    /// The configured network.
    pub fn network(&self) -> Network {
        self.inner.network
    }

    /// Picks the first t-1 cosigners (in configured order) that answer, skipping `excluded`.
    async fn pick(&self, excluded: &HashSet<PartyIndex>) -> Result<Vec<Cosigner>> {
        let need = usize::from(self.threshold() - 1);
        let mut chosen = Vec::with_capacity(need);
        let mut last_err = None;
        for c in self.inner.cosigners.iter().filter(|c| !excluded.contains(&c.index)) {
            if chosen.len() == need {
                break;
            }
            match tokio::time::timeout(self.inner.idle, c.transport.health()).await {
                Ok(Ok(())) => chosen.push(c.clone()),
                Ok(Err(e)) => last_err = Some(c.name(e)),
                Err(_) => last_err = Some(c.name(Error::new(ErrorKind::Timeout, "health check timed out"))),
            }
        }
        if chosen.len() < need {
            let mut msg = format!(
                "this operation needs {need} cosigner(s) but only {} answer; start the cosigners or check MPC_COSIGNER_ENDPOINTS",
                chosen.len()
            );
            if let Some(e) = last_err {
                msg.push_str(&format!(" (last error: {e})"));
            }
            return Err(Error::new(ErrorKind::CosignerUnavailable, msg));
        }
        Ok(chosen)
    }

    /// Runs one session of `kind` with the agent and the first t-1 reachable cosigners (moving on
    /// when a cosigner refuses for a temporary reason); `run` is this party's part. Returns the
    /// agent's output and, per chosen cosigner, its outcome.
    async fn joint<O, F, Fut>(&self, template: SessionRequest, run: F) -> Result<(O, Vec<(Cosigner, SessionOutcome)>)>
    where
        O: Send + 'static,
        F: FnOnce(protocol::PartyIo, SessionRequest, Arc<Share>) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<O>>,
    {
        let mut excluded = HashSet::new();
        loop {
            let chosen = self.pick(&excluded).await?;
            let mut parties: Vec<PartyIndex> =
                std::iter::once(AGENT_INDEX).chain(chosen.iter().map(|c| c.index)).collect();
            parties.sort_unstable();
            let request =
                SessionRequest { execution_id: ExecutionId::random(), parties: parties.clone(), ..template.clone() };
            let mut remotes = Vec::with_capacity(chosen.len());
            let mut retry = false;
            for c in &chosen {
                match c.transport.open_session(request.clone()).await {
                    Ok(channel) => {
                        remotes.push(Remote { index: c.index, endpoint: c.transport.endpoint().to_string(), channel })
                    }
                    Err(e) if e.is_temporary() && excluded.len() + 1 < self.inner.cosigners.len() => {
                        tracing::warn!(cosigner = c.index, error = %e, "cosigner refused a session; trying another");
                        excluded.insert(c.index);
                        retry = true;
                        break;
                    }
                    Err(e) => return Err(c.name(e)),
                }
            }
            if retry {
                continue;
            }
            let positions: Vec<u16> = remotes.iter().map(|r| pos_of(&parties, r.index)).collect::<Result<_>>()?;
            let local_pos = pos_of(&parties, AGENT_INDEX)?;
            let (share, r, run) = (self.inner.share.clone(), request.clone(), run.clone());
            let local = protocol::spawn_party(self.inner.keyring.clone(), &request, move |io| run(io, r, share))?;
            let (out, outcomes) =
                coordinate(request.execution_id, local_pos, local, remotes, positions, self.inner.idle).await?;
            return Ok((out, chosen.into_iter().zip(outcomes).collect()));
        }
    }

    fn template(&self, kind: SessionKind) -> SessionRequest {
        SessionRequest {
            kind,
            key: self.inner.key.clone(),
            execution_id: ExecutionId::random(),
            parties: Vec::new(),
            threshold: self.threshold(),
            total: self.inner.share.n(),
            digest: None,
            tweak: None,
            point: None,
        }
    }

    /// Signs `digest` with the root key, or with the child key `root + tweak` (public key
    /// `P + tweak*G`), using the agent and the first t-1 reachable cosigners. The signature is
    /// verified against the expected public key before it is returned.
    pub async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        let expected = match tweak {
            Some(t) => protocol::tweaked_public_key(&self.inner.public_key, t)?,
            None => self.inner.public_key,
        };
        let request =
            SessionRequest { digest: Some(*digest), tweak: tweak.copied(), ..self.template(SessionKind::Sign) };
        let (sig, outcomes) = self
            .joint(request, |io, r, share| async move {
                let share = match &r.tweak {
                    Some(t) => Arc::new(protocol::tweak_share(&share, t)?),
                    None => share,
                };
                protocol::run_sign(io, r, share).await
            })
            .await?;
        for (c, o) in &outcomes {
            if o.public_key != expected.as_bytes() {
                return Err(c.name(Error::new(
                    ErrorKind::ShareMismatch,
                    format!("cosigner {} signed for another key", c.index),
                )));
            }
        }
        if !protocol::verify_signature(&expected, digest, &sig) {
            return Err(Error::new(
                ErrorKind::ProtocolAbort,
                "the joint signature does not verify; no signature was returned",
            ));
        }
        Ok(sig)
    }

    /// `root * counterparty` with a Schnorr proof, computed jointly: no party learns the root key.
    pub async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
        protocol::parse_point(counterparty.as_bytes())?;
        let request =
            SessionRequest { point: Some(counterparty.as_bytes().to_vec()), ..self.template(SessionKind::Linkage) };
        let (proof, outcomes) = self.joint(request, protocol::run_linkage).await?;
        for (c, o) in &outcomes {
            if o.public_key != proof.shared.as_bytes() {
                return Err(c.name(Error::new(
                    ErrorKind::ShareMismatch,
                    format!("cosigner {} ended with another shared secret", c.index),
                )));
            }
        }
        Ok(proof)
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
        let q = protocol::parse_point(point.as_bytes())?;
        let chosen = self.pick(&HashSet::new()).await?;
        let mut parties: Vec<PartyIndex> = std::iter::once(AGENT_INDEX).chain(chosen.iter().map(|c| c.index)).collect();
        parties.sort_unstable();
        let eid = ExecutionId::random();
        let request = EcdhRequest { key: self.inner.key.clone(), execution_id: eid, point: point.as_bytes().to_vec() };
        let ctx = protocol::ecdh_context(&self.inner.key, &eid, point.as_bytes());
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
        let mut acc: Point<protocol::E> =
            q.into_inner() * (protocol::lagrange(share, &parties, own_pos.into())? * &share.core.x);
        for (c, partial) in chosen.iter().zip(partials) {
            let partial = partial?;
            let z = (partial.party_index == c.index)
                .then(|| protocol::verify_ecdh_partial(share, c.index, &q, &ctx, &partial.point, &partial.proof))
                .flatten()
                .ok_or_else(|| {
                    c.name(
                        Error::new(
                            ErrorKind::ProtocolAbort,
                            format!(
                                "cosigner {} returned an ECDH partial whose DLEQ proof does not verify against its public share; \
                                 the result was discarded",
                                c.index
                            ),
                        )
                        .with_blamed([c.index]),
                    )
                })?;
            acc += z * protocol::lagrange(share, &parties, pos_of(&parties, c.index)?.into())?;
        }
        let shared =
            NonZero::from_point(acc).ok_or_else(|| Error::new(ErrorKind::Internal, "ECDH result is the identity"))?;
        PublicKey::from_slice(&shared.to_bytes(true))
    }
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
