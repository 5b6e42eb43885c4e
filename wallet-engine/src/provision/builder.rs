//! From configuration to a provisioned wallet: DKG the first time, restore every time after.

use std::{sync::Arc, time::Duration};

use wallet_traits::{
    Broadcaster, ChainServices, ChainTracker, CosignerTransport, Error, ErrorKind, KeyId, Result, ShareStore, WalletId,
    AGENT_INDEX,
};

pub use super::provisioner::MigrationStep;
use super::provisioner::Provisioner;
use crate::{
    at_rest::primes::{PrimeSource, StorePrimePool},
    at_rest::seal::{SealOptions, Sealer, ShareSecret},
    config::{ChainConfig, Network, WalletConfig},
    keys::Keyring,
    wallet::{Cosigner, Wallet, WalletSettings},
};

/// Whether `build` ran DKG or reopened an existing share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// A new key was generated and committed by every party.
    Created,
    /// The stored share was opened (completing an interrupted commit if needed); no DKG ran.
    Restored,
    /// The stored share was opened and migrated to the current protocol with every party
    /// ([`WalletBuilder::migrate`]); the key is the same.
    Migrated,
}

impl std::fmt::Display for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provisioned::Created => "created",
            Provisioned::Restored => "restored",
            Provisioned::Migrated => "migrated",
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

pub(super) type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

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
    chain: ChainConfig,
    broadcaster: Option<Arc<dyn Broadcaster>>,
    chain_tracker: Option<Arc<dyn ChainTracker>>,
    multiexp_tables: bool,
    migrate: bool,
    stop_migration_at: Option<(MigrationStep, Option<Duration>)>,
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
    /// [`WalletConfig::default`]'s settings: each default is written once, in its setting.
    fn default() -> Self {
        Self::with_config(WalletConfig::default())
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
        Ok(Self::with_config(cfg))
    }

    fn with_config(cfg: WalletConfig) -> Self {
        Self {
            transport_options: cfg.transport_options(),
            store_options: cfg.store_options,
            wallet_id: cfg.wallet_id.map(|w| w.as_str().to_string()),
            key_index: 0,
            threshold: cfg.threshold,
            secret: cfg.share_secret,
            seal: SealOptions { cipher: cfg.cipher, ..SealOptions::default() },
            store: None,
            store_url: cfg.store.map(|s| s.url()),
            cosigners: Vec::new(),
            cosigner_urls: cfg.cosigner_endpoints,
            primes: None,
            keyring: cfg.party_key.map(|key| Keyring::new(AGENT_INDEX, key, cfg.peer_keys)),
            network: cfg.network,
            progress: None,
            // Long enough for a cosigner that must generate primes before its first aux message.
            idle_timeout: Duration::from_secs(600),
            pause_before_local_commit: None,
            derivation_cache_max: cfg.derivation_cache_max,
            plugins: None,
            chain: cfg.chain,
            broadcaster: None,
            chain_tracker: None,
            multiexp_tables: cfg.multiexp_tables,
            migrate: false,
            stop_migration_at: None,
        }
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

    /// Test only (feature `fault-injection`): `build` stops a migration at `step` as a crash
    /// would, leaving every record as it is there, and fails.
    #[cfg(feature = "fault-injection")]
    pub fn stop_migration_at(mut self, step: MigrationStep) -> Self {
        self.stop_migration_at = Some((step, None));
        self
    }

    /// Test only (feature `fault-injection`): like [`WalletBuilder::stop_migration_at`], pausing
    /// there first (logging "fault injection") so a test can kill the process at that step.
    #[cfg(feature = "fault-injection")]
    pub fn pause_migration_at(mut self, step: MigrationStep, pause: Duration) -> Self {
        self.stop_migration_at = Some((step, Some(pause)));
        self
    }

    /// After restoring, migrates a share made with an older protocol (cggmp21) to the current
    /// one (cggmp24) with every party: `mpc-wallet migrate`. The key stays the same; the build
    /// reports [`Provisioned::Migrated`]. Every cosigner must be reachable. A key already on the
    /// current protocol is restored as it is.
    pub fn migrate(mut self) -> Self {
        self.migrate = true;
        self
    }

    /// Whether aux info generation (DKG, migration) precomputes the multiexponentiation tables
    /// that make each signing faster (MPC_MULTIEXP_TABLES; default yes). They take seconds per
    /// share once and are sealed with it, so a restart does not recompute them.
    pub fn multiexp_tables(mut self, on: bool) -> Self {
        self.multiexp_tables = on;
        self
    }

    /// The network (MPC_NETWORK), which decides how addresses and the front's `getNetwork` read.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// How long a protocol run may go without any message before it fails.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Most entries the derivation cache keeps (MPC_DERIVATION_CACHE_MAX, whose default is the
    /// builder's); beyond it the least recently used are evicted. At least 1: `build` refuses 0.
    pub fn derivation_cache_max(mut self, entries: usize) -> Self {
        self.derivation_cache_max = entries;
        self
    }

    /// The broadcaster, as a value (default: the one the configuration names, through the
    /// plugins).
    pub fn broadcaster(mut self, broadcaster: Arc<dyn Broadcaster>) -> Self {
        self.broadcaster = Some(broadcaster);
        self
    }

    /// The chain tracker, as a value (default: the one the configuration names, through the
    /// plugins).
    pub fn chain_tracker(mut self, tracker: Arc<dyn ChainTracker>) -> Self {
        self.chain_tracker = Some(tracker);
        self
    }

    /// The factories store URLs, cosigner URLs and chain services are resolved with (default:
    /// those `inventory` collected from the crates linked in).
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
        let chain = ChainServices {
            broadcaster: match &self.broadcaster {
                Some(b) => Some(b.clone()),
                None => self.chain.broadcaster(&plugins, self.network)?,
            },
            chain_tracker: match &self.chain_tracker {
                Some(t) => Some(t.clone()),
                None => self.chain.chain_tracker(&plugins, self.network)?,
            },
        };
        let store = self.open_store(&plugins).await?;
        let cosigners = self.connect_cosigners(&plugins).await?;
        let n = u16::try_from(cosigners.len() + 1).unwrap_or(u16::MAX);
        let t = self.threshold;
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
            aux: crate::mpc::AuxOptions { multiexp_tables: self.multiexp_tables },
            migrate: self.migrate,
            stop_at: self.stop_migration_at,
            group: None,
        };
        let (share, cache, provisioned) = run.provision().await?;
        let settings = WalletSettings { network: self.network, idle: self.idle_timeout, chain };
        Ok((Wallet::new(share, cache, run, settings), provisioned))
    }

    async fn open_store(&self, plugins: &wallet_traits::Plugins) -> Result<Arc<dyn ShareStore>> {
        match (&self.store, &self.store_url) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(url)) => plugins.open_store(url, self.store_options.clone()).await,
            (None, None) => {
                Err(Error::new(ErrorKind::Config, "no share store; set MPC_STORAGE_PATH or MPC_STORAGE_URL"))
            }
        }
    }

    /// The cosigners by URL, then those given as transports, as parties 1, 2, ...; checks that
    /// their number fits the threshold.
    async fn connect_cosigners(&self, plugins: &wallet_traits::Plugins) -> Result<Vec<Cosigner>> {
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
        Ok(transports
            .into_iter()
            .enumerate()
            .map(|(i, transport)| Cosigner { index: u16::try_from(i + 1).unwrap_or(u16::MAX), transport })
            .collect())
    }
}
