//! From configuration to a provisioned wallet: DKG the first time, restore every time after.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::join_all;
use wallet_traits::{
    CosignerTransport, Error, ErrorKind, ExecutionId, KeyId, PartyIndex, Result, SessionKind, SessionRequest,
    ShareMeta, ShareState, ShareStore, StoredShare, WalletId, AGENT_INDEX, SHARE_FORMAT_VERSION,
};

use crate::{
    cache::DerivationCache,
    config::{Network, WalletConfig},
    coordinator::{coordinate, Remote, RunFailure},
    keys::Keyring,
    plan::{plan, CosignerView, Plan},
    primes::{PrimeSource, StorePrimePool},
    protocol::{self, Share},
    seal::{SealOptions, Sealer, ShareSecret},
    wallet::{Cosigner, Wallet},
};

/// Whether `build` ran DKG or reopened an existing share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// A new key was generated and committed by every party.
    Created,
    /// The stored share was opened (completing an interrupted commit if needed); no DKG ran.
    Restored,
}

impl std::fmt::Display for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provisioned::Created => "created",
            Provisioned::Restored => "restored",
        })
    }
}

/// A step of provisioning, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Finding the local state and asking each cosigner for its view.
    Plan,
    /// Getting this party's Paillier prime pair (from the pool, or generating one).
    Primes,
    /// Threshold key generation.
    Keygen,
    /// Aux info generation (the slow part of DKG).
    AuxInfo,
    /// The two-phase commit.
    Commit,
    /// Opening the stored share.
    Restore,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Plan => "plan",
            Phase::Primes => "primes",
            Phase::Keygen => "keygen",
            Phase::AuxInfo => "aux info",
            Phase::Commit => "commit",
            Phase::Restore => "restore",
        })
    }
}

/// A progress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A phase began.
    Started(Phase),
    /// A phase ended after the given time.
    Finished(Phase, Duration),
}

type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Builds a [`Wallet`]: resolves the store and the cosigners, then runs DKG or restores.
///
/// ```no_run
/// # async fn f() -> wallet_traits::Result<()> {
/// let (wallet, provisioned) = wallet_engine::WalletBuilder::from_env()?.build().await?;
/// println!("{provisioned}: {}", wallet.identity_key());
/// # Ok(()) }
/// ```
pub struct WalletBuilder {
    wallet_id: Option<String>,
    key_index: u32,
    threshold: u16,
    secret: Option<ShareSecret>,
    seal: SealOptions,
    store: Option<Arc<dyn ShareStore>>,
    store_url: Option<String>,
    store_options: wallet_traits::Options,
    cosigners: Vec<Arc<dyn CosignerTransport>>,
    cosigner_urls: Vec<String>,
    primes: Option<Arc<dyn PrimeSource>>,
    keyring: Option<Keyring>,
    transport_options: wallet_traits::Options,
    network: Network,
    progress: Option<ProgressFn>,
    idle_timeout: Duration,
    pause_before_local_commit: Option<Duration>,
    derivation_cache_max: usize,
    plugins: Option<wallet_traits::Plugins>,
}

impl std::fmt::Debug for WalletBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletBuilder")
            .field("wallet_id", &self.wallet_id)
            .field("key_index", &self.key_index)
            .field("threshold", &self.threshold)
            .field("secret", &self.secret)
            .field("store", &self.store)
            .field("store_url", &self.store_url.as_deref().map(wallet_traits::redact_url))
            .field(
                "cosigner_urls",
                &self.cosigner_urls.iter().map(|u| wallet_traits::redact_url(u)).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for WalletBuilder {
    fn default() -> Self {
        Self {
            wallet_id: None,
            key_index: 0,
            threshold: 2,
            secret: None,
            seal: SealOptions::default(),
            store: None,
            store_url: None,
            store_options: Default::default(),
            cosigners: Vec::new(),
            cosigner_urls: Vec::new(),
            primes: None,
            keyring: None,
            transport_options: Default::default(),
            network: Network::default(),
            progress: None,
            // Long enough for a cosigner that must generate primes before its first aux message.
            idle_timeout: Duration::from_secs(600),
            pause_before_local_commit: None,
            derivation_cache_max: crate::DEFAULT_DERIVATION_CACHE_MAX,
            plugins: None,
        }
    }
}

impl WalletBuilder {
    /// An empty builder; set at least the wallet id, secret, store and cosigners.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the `MPC_*` environment variables.
    pub fn from_env() -> Result<Self> {
        Self::from_config(WalletConfig::from_env()?)
    }

    /// A builder from a parsed configuration; nothing is parsed again here.
    pub fn from_config(cfg: WalletConfig) -> Result<Self> {
        let mut b = Self::new();
        b.transport_options = cfg.transport_options();
        b.store_options = cfg.store_options;
        b.wallet_id = cfg.wallet_id.map(|w| w.as_str().to_string());
        b.secret = cfg.share_secret;
        b.store_url = cfg.store.map(|s| s.url());
        b.cosigner_urls = cfg.cosigner_endpoints;
        b.threshold = cfg.threshold;
        b.network = cfg.network;
        b.seal.cipher = cfg.cipher;
        b.derivation_cache_max = cfg.derivation_cache_max;
        if let Some(key) = cfg.party_key {
            b.keyring = Some(Keyring::new(AGENT_INDEX, key, cfg.peer_keys));
        }
        Ok(b)
    }

    /// The wallet id (MPC_WALLET_ID).
    pub fn wallet_id(mut self, id: impl Into<String>) -> Self {
        self.wallet_id = Some(id.into());
        self
    }

    /// Which key of the wallet (default 0).
    pub fn key_index(mut self, index: u32) -> Self {
        self.key_index = index;
        self
    }

    /// Signing threshold t (default 2).
    pub fn threshold(mut self, t: u16) -> Self {
        self.threshold = t;
        self
    }

    /// The secret sealing the agent's share (MPC_SHARE_SECRET).
    pub fn share_secret(mut self, secret: ShareSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// How new records are sealed.
    pub fn seal_options(mut self, options: SealOptions) -> Self {
        self.seal = options;
        self
    }

    /// The agent's store.
    pub fn store(mut self, store: Arc<dyn ShareStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The agent's store by URL, through the registry.
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = Some(url.into());
        self
    }

    /// Options for the store given by [`store_url`](Self::store_url) (MPC_STORAGE__<KEY>), such as
    /// a Postgres `namespace` or `password`.
    pub fn store_options(mut self, options: wallet_traits::Options) -> Self {
        self.store_options = options;
        self
    }

    /// Adds a cosigner transport; cosigners take party indexes 1, 2, ... in the order added
    /// (after those given by URL).
    pub fn cosigner(mut self, transport: Arc<dyn CosignerTransport>) -> Self {
        self.cosigners.push(transport);
        self
    }

    /// Adds a cosigner by endpoint URL, through the registry.
    pub fn cosigner_url(mut self, url: impl Into<String>) -> Self {
        self.cosigner_urls.push(url.into());
        self
    }

    /// Where the agent's prime pairs come from (default: a sealed pool in its store).
    pub fn prime_source(mut self, source: Arc<dyn PrimeSource>) -> Self {
        self.primes = Some(source);
        self
    }

    /// The agent's party key and the cosigners' pinned public keys (MPC_PARTY_KEY, MPC_PEER_KEYS).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Options handed to every transport factory (JWT secret, CA file...).
    pub fn transport_options(mut self, options: wallet_traits::Options) -> Self {
        self.transport_options = options;
        self
    }

    /// Fault injection for crash tests (feature `fault-injection`): wait this long after the
    /// cosigners committed a new key and before the agent flips its own share to Active.
    #[cfg(feature = "fault-injection")]
    pub fn pause_before_local_commit(mut self, pause: Duration) -> Self {
        self.pause_before_local_commit = Some(pause);
        self
    }

    /// The network.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// How long a protocol run may go without any message before it fails.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Most entries the derivation cache keeps (MPC_DERIVATION_CACHE_MAX, default
    /// [`DEFAULT_DERIVATION_CACHE_MAX`](crate::DEFAULT_DERIVATION_CACHE_MAX)); beyond it the least
    /// recently used are evicted. At least 1: `build` refuses 0.
    pub fn derivation_cache_max(mut self, entries: usize) -> Self {
        self.derivation_cache_max = entries;
        self
    }

    /// The factories store and cosigner URLs are opened with (default: those `inventory`
    /// collected from the crates linked in).
    pub fn plugins(mut self, plugins: wallet_traits::Plugins) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// Called for each provisioning phase.
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Provisions: restores the stored share, completes or rolls back an interrupted commit, or
    /// runs DKG with every cosigner. Never runs DKG while any party holds a committed share.
    pub async fn build(self) -> Result<(Wallet, Provisioned)> {
        let wallet_id = WalletId::new(
            self.wallet_id.clone().ok_or_else(|| Error::new(ErrorKind::Config, "no wallet id; set MPC_WALLET_ID"))?,
        )
        .map_err(|e| Error::new(ErrorKind::Config, format!("MPC_WALLET_ID is invalid: {}", e.message())))?;
        if self.derivation_cache_max == 0 {
            return Err(Error::new(ErrorKind::Config, "the derivation cache maximum must be at least 1 entry")
                .with_context("variable", "MPC_DERIVATION_CACHE_MAX"));
        }
        let secret = self
            .secret
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Config, "no share secret; set MPC_SHARE_SECRET"))?;
        let plugins = self.plugins.clone().unwrap_or_default();
        let store = match (&self.store, &self.store_url) {
            (Some(s), _) => s.clone(),
            (None, Some(url)) => plugins.open_store(url, self.store_options.clone()).await?,
            (None, None) => {
                return Err(Error::new(ErrorKind::Config, "no share store; set MPC_STORAGE_PATH or MPC_STORAGE_URL"))
            }
        };
        let mut transports = Vec::new();
        for url in &self.cosigner_urls {
            transports.push(plugins.connect_transport(url, self.transport_options.clone()).await?);
        }
        transports.extend(self.cosigners.iter().cloned());
        let n = u16::try_from(transports.len() + 1).unwrap_or(u16::MAX);
        let t = self.threshold;
        if transports.is_empty() || !(2..=n).contains(&t) || n > crate::cosigner::MAX_PARTIES {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{} cosigner(s) with threshold {t}: need at least one cosigner in MPC_COSIGNER_ENDPOINTS, \
                     2 <= MPC_THRESHOLD <= cosigners + 1, and at most 15 cosigners",
                    transports.len()
                ),
            ));
        }
        let cosigners: Vec<Cosigner> = transports
            .into_iter()
            .enumerate()
            .map(|(i, transport)| Cosigner { index: u16::try_from(i + 1).unwrap_or(u16::MAX), transport })
            .collect();
        let keyring = self.keyring.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "no party key; set MPC_PARTY_KEY and MPC_PEER_KEYS (`mpc-wallet keys` makes a key pair)",
            )
        })?;
        if keyring.party_index() != AGENT_INDEX {
            return Err(Error::new(ErrorKind::Config, "the agent's keyring must be party 0's"));
        }
        keyring.require(&(0..n).collect::<Vec<_>>())?;
        let keyring = Arc::new(keyring);
        let sealer = Sealer::new(secret, self.seal);
        let primes = self
            .primes
            .clone()
            .unwrap_or_else(|| Arc::new(StorePrimePool::new(store.clone(), sealer.clone(), "agent")));
        let run = Provisioner {
            key: KeyId::new(wallet_id, self.key_index),
            t,
            n,
            store,
            sealer,
            primes,
            keyring,
            cosigners,
            progress: self.progress.clone(),
            idle: self.idle_timeout,
            pause_before_local_commit: self.pause_before_local_commit,
            derivation_cache_max: self.derivation_cache_max,
        };
        let (share, cache, provisioned) = run.provision().await?;
        let wallet = Wallet::new(run.key, share, run.keyring, run.cosigners, cache, self.network, self.idle_timeout);
        Ok((wallet, provisioned))
    }
}

struct Provisioner {
    key: KeyId,
    t: u16,
    n: u16,
    store: Arc<dyn ShareStore>,
    sealer: Sealer,
    primes: Arc<dyn PrimeSource>,
    keyring: Arc<Keyring>,
    cosigners: Vec<Cosigner>,
    progress: Option<ProgressFn>,
    idle: Duration,
    pause_before_local_commit: Option<Duration>,
    derivation_cache_max: usize,
}

impl Provisioner {
    fn report(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(p);
        }
    }

    async fn timed<T>(&self, phase: Phase, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.report(Progress::Started(phase));
        let t0 = Instant::now();
        let out = f.await?;
        self.report(Progress::Finished(phase, t0.elapsed()));
        Ok(out)
    }

    async fn provision(&self) -> Result<(Share, Option<DerivationCache>, Provisioned)> {
        let (local, views) = self.timed(Phase::Plan, self.look()).await?;
        let opened = match &local {
            Some(record) => Some(self.timed(Phase::Restore, self.open(record)).await?),
            None => None,
        };
        match plan(local.as_ref().map(|r| &r.meta), &views)? {
            Plan::Restore { degraded } => {
                self.warn_degraded(&degraded);
                let (share, cache) = opened.expect("restore implies a local share");
                Ok((share, cache, Provisioned::Restored))
            }
            Plan::CompleteCommit { commit_on, degraded } => {
                let record = local.expect("commit implies a local share");
                tracing::info!(key = %self.key, "completing an interrupted commit");
                self.timed(Phase::Commit, self.commit(&record, &commit_on)).await?;
                self.warn_degraded(&degraded);
                let (share, cache) = opened.expect("commit implies a local share");
                Ok((share, cache, Provisioned::Restored))
            }
            Plan::RollBack { rollback_on } => {
                let record = local.expect("rollback implies a local share");
                tracing::warn!(key = %self.key, "rolling back an unfinished provisioning run");
                self.rollback(&rollback_on, &record.meta.execution_id).await?;
                self.store.delete_share(&self.key, record.version).await?;
                self.created().await
            }
            Plan::Dkg { rollback_first } => {
                for (i, eid) in &rollback_first {
                    self.rollback(&[*i], eid).await?;
                }
                self.created().await
            }
        }
    }

    /// Runs DKG, then opens the committed record once more for its derivation-cache keys.
    async fn created(&self) -> Result<(Share, Option<DerivationCache>, Provisioned)> {
        let share = self.dkg().await?;
        let record = self
            .store
            .load_share(&self.key)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the committed share vanished from the store"))?;
        let (_, cache) = self.open(&record).await?;
        Ok((share, cache, Provisioned::Created))
    }

    fn warn_degraded(&self, degraded: &[PartyIndex]) {
        for i in degraded {
            tracing::warn!(cosigner = i, key = %self.key, "cosigner is unreachable or lost its share; signing uses the others");
        }
    }

    fn cosigner(&self, i: PartyIndex) -> &Cosigner {
        &self.cosigners[usize::from(i - 1)]
    }

    /// The local record and every cosigner's view of the key.
    async fn look(&self) -> Result<(Option<StoredShare>, Vec<(PartyIndex, CosignerView)>)> {
        let local = self.store.load_share(&self.key).await?;
        if let Some(r) = &local {
            if r.meta.party_index != AGENT_INDEX || r.meta.parties != self.n || r.meta.threshold != self.t {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the stored share is party {} of a {}-of-{} key, but the configuration describes a {}-of-{} agent; \
                         fix MPC_THRESHOLD / MPC_COSIGNER_ENDPOINTS",
                        r.meta.party_index, r.meta.threshold, r.meta.parties, self.t, self.n
                    ),
                ));
            }
        }
        let views = join_all(self.cosigners.iter().map(|c| async move {
            let view = match tokio::time::timeout(self.idle.min(Duration::from_secs(30)), c.transport.key_info(&self.key)).await {
                Ok(Ok(Some(info))) if info.party_index != c.index => {
                    return Err(c.name(Error::new(
                        ErrorKind::Config,
                        format!(
                            "the cosigner at position {} reports party index {}; list MPC_COSIGNER_ENDPOINTS in party order",
                            c.index, info.party_index
                        ),
                    )))
                }
                Ok(Ok(Some(info))) => CosignerView::Holds(info),
                Ok(Ok(None)) => CosignerView::Missing,
                Ok(Err(e)) if e.kind() == ErrorKind::CosignerUnavailable || e.kind() == ErrorKind::Timeout => {
                    CosignerView::Unreachable(e.to_string())
                }
                Ok(Err(e)) => return Err(c.name(e)),
                Err(_) => CosignerView::Unreachable("no answer".into()),
            };
            Ok((c.index, view))
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Ok((local, views))
    }

    /// Opens the local share; a wrong secret fails here, before anything is written anywhere.
    async fn open(&self, record: &StoredShare) -> Result<(Share, Option<DerivationCache>)> {
        let (sealer, key, rec) = (self.sealer.clone(), self.key.clone(), record.clone());
        let (share, keys) = tokio::task::spawn_blocking(move || -> Result<_> {
            let (plain, keys) =
                sealer.open_share_with_cache_keys(&key, AGENT_INDEX, &rec.meta.public_key, &rec.sealed)?;
            Ok((protocol::decode_share(&plain)?, keys))
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("share opening task: {e}")))??;
        if share.core.i != AGENT_INDEX || protocol::public_key_of(&share).as_bytes()[..] != record.meta.public_key[..] {
            return Err(Error::new(ErrorKind::Corrupted, "the opened share does not match its record's metadata"));
        }
        Ok((share, DerivationCache::new(self.store.clone(), self.key.clone(), &keys, self.derivation_cache_max)))
    }

    async fn rollback(&self, on: &[PartyIndex], eid: &ExecutionId) -> Result<()> {
        for &i in on {
            let c = self.cosigner(i);
            c.transport.rollback(&self.key, eid).await.map_err(|e| c.name(e))?;
        }
        Ok(())
    }

    /// Steps 3 and 4 of the DKG commit: cosigners flip to Active, then the agent does.
    async fn commit(&self, record: &StoredShare, on: &[PartyIndex]) -> Result<()> {
        let eid = record.meta.execution_id;
        for &i in on {
            let c = self.cosigner(i);
            c.transport.commit(&self.key, &eid).await.map_err(|e| c.name(e))?;
        }
        if let Some(pause) = self.pause_before_local_commit {
            tracing::warn!(?pause, "fault injection: pausing before the agent's own commit");
            tokio::time::sleep(pause).await;
        }
        let mut active = record.clone();
        active.meta.state = ShareState::Active;
        self.store.update_share(&active, record.version).await?;
        Ok(())
    }

    async fn dkg(&self) -> Result<Share> {
        let eid = ExecutionId::random();
        let parties: Vec<PartyIndex> = (0..self.n).collect();
        let request = SessionRequest {
            kind: SessionKind::Dkg,
            key: self.key.clone(),
            execution_id: eid,
            parties,
            threshold: self.t,
            total: self.n,
            digest: None,
            tweak: None,
            point: None,
        };
        let mut remotes = Vec::with_capacity(self.cosigners.len());
        for c in &self.cosigners {
            let channel = c.transport.open_session(request.clone()).await.map_err(|e| c.name(e))?;
            remotes.push(Remote { index: c.index, endpoint: c.transport.endpoint().to_string(), channel });
        }
        // Keygen needs no primes, so it runs while this party's pair is fetched or generated.
        let t0 = Instant::now();
        self.report(Progress::Started(Phase::Keygen));
        self.report(Progress::Started(Phase::Primes));
        let (source, progress) = (self.primes.clone(), self.progress.clone());
        let primes = tokio::spawn(async move {
            let t0 = Instant::now();
            let p = source.take().await;
            if let (Some(f), Ok(_)) = (&progress, &p) {
                f(Progress::Finished(Phase::Primes, t0.elapsed()));
            }
            p
        });
        let primes =
            async move { primes.await.map_err(|e| Error::new(ErrorKind::Internal, format!("prime task: {e}")))? };
        let progress = self.progress.clone();
        let aux_started = Arc::new(std::sync::Mutex::new(None));
        let aux_mark = aux_started.clone();
        let r = request.clone();
        let local = protocol::spawn_party(self.keyring.clone(), &request, move |io| {
            protocol::run_dkg(io, r, primes, move || {
                if let Some(f) = &progress {
                    f(Progress::Finished(Phase::Keygen, t0.elapsed()));
                    f(Progress::Started(Phase::AuxInfo));
                }
                *aux_mark.lock().expect("aux mark") = Some(Instant::now());
            })
        })?;
        let positions: Vec<u16> = self.cosigners.iter().map(|c| c.index).collect();
        let (share, outcomes) = match coordinate(eid, 0, local, remotes, positions, self.idle).await {
            Ok(done) => done,
            // DKG needs every party: there is no other cosigner to go on with.
            Err(RunFailure { error: e, .. }) => {
                // A cosigner that finished before the run failed may have sealed a Pending share.
                for c in &self.cosigners {
                    if let Err(re) = c.transport.rollback(&self.key, &eid).await {
                        tracing::warn!(cosigner = c.index, error = %re, "could not roll back after a failed DKG; the next start will");
                    }
                }
                return Err(e);
            }
        };
        let aux_t0 = aux_started.lock().expect("aux mark").unwrap_or(t0);
        self.report(Progress::Finished(Phase::AuxInfo, aux_t0.elapsed()));
        let pk = protocol::public_key_of(&share);
        if let Some((c, _)) = self.cosigners.iter().zip(&outcomes).find(|(_, o)| o.public_key != pk.as_bytes()) {
            let _ = self.rollback(&positions_all(self.n), &eid).await;
            return Err(c.name(Error::new(
                ErrorKind::ShareMismatch,
                format!("cosigner {} ended DKG with another collective key; the run was rolled back", c.index),
            )));
        }
        self.timed(Phase::Commit, async {
            // Step 2: the agent seals its share as Pending (the cosigners did in their sessions).
            let plain = protocol::encode_share(&share);
            let (sealer, key) = (self.sealer.clone(), self.key.clone());
            let sealed =
                tokio::task::spawn_blocking(move || sealer.seal_share(&key, AGENT_INDEX, pk.as_bytes(), &plain))
                    .await
                    .map_err(|e| Error::new(ErrorKind::Internal, format!("sealing task: {e}")))??;
            let record = StoredShare {
                key: self.key.clone(),
                meta: ShareMeta {
                    public_key: pk.as_bytes().to_vec(),
                    threshold: self.t,
                    parties: self.n,
                    party_index: AGENT_INDEX,
                    state: ShareState::Pending,
                    execution_id: eid,
                },
                version: 1,
                format_version: SHARE_FORMAT_VERSION,
                sealed,
            };
            if let Err(e) = self.store.create_share(&record).await {
                // Nothing committed yet: undo the cosigners' Pending shares so a retry starts clean.
                let _ = self.rollback(&positions_all(self.n), &eid).await;
                return Err(e);
            }
            // Steps 3 and 4. A crash from here on is completed by the next build (Plan::CompleteCommit).
            let all: Vec<PartyIndex> = positions_all(self.n);
            self.commit(&record, &all).await
        })
        .await?;
        Ok(share)
    }
}

fn positions_all(n: u16) -> Vec<PartyIndex> {
    (1..n).collect()
}
