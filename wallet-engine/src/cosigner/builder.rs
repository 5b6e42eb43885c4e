//! From a [`CosignerConfig`] (or values set by hand) to a running [`CosignerService`], so a
//! cosigner can be embedded in any program; serving it over HTTP or gRPC is the transports' part.

use std::sync::Arc;

use wallet_traits::{Error, ErrorKind, Options, Plugins, Result, ShareStore};

use super::policy::{AllOf, DenyOutputScripts, SigningPolicy, TransactionsOnly};
use crate::{
    config::StoreLocation, CosignerConfig, CosignerService, Keyring, PrimeSource, SealOptions, Sealer, ShareSecret,
    StorePrimePool,
};

/// Builds a [`CosignerService`]: opens its store, seals with its secret, keeps a prime pool.
///
/// ```no_run
/// # async fn f() -> wallet_traits::Result<()> {
/// let config = wallet_engine::CosignerConfig::load(None)?;
/// config.validate()?;
/// let service = wallet_engine::CosignerBuilder::from_config(&config)?.build().await?;
/// # drop(service); Ok(()) }
/// ```
#[derive(Default)]
pub struct CosignerBuilder {
    keyring: Option<Keyring>,
    secret: Option<ShareSecret>,
    seal: SealOptions,
    store: Option<Arc<dyn ShareStore>>,
    store_location: Option<StoreLocation>,
    store_options: Options,
    primes: Option<Arc<dyn PrimeSource>>,
    prime_pool_target: u64,
    plugins: Option<Plugins>,
    policy: Option<Arc<dyn SigningPolicy>>,
    /// `None`: the default (on).
    multiexp_tables: Option<bool>,
    spending: Option<wallet_policy::Policy>,
}

impl std::fmt::Debug for CosignerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignerBuilder")
            .field("party_index", &self.keyring.as_ref().map(Keyring::party_index))
            .field("store", &self.store_location.as_ref().map(ToString::to_string))
            .field("prime_pool_target", &self.prime_pool_target)
            .finish_non_exhaustive()
    }
}

impl CosignerBuilder {
    /// An empty builder: set at least the keyring, the secret and the store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from a parsed configuration (its listen addresses, tokens and limits are for
    /// the program that serves the cosigner).
    pub fn from_config(config: &CosignerConfig) -> Result<Self> {
        let mut b = Self::new().prime_pool_target(config.prime_pool_target).multiexp_tables(config.multiexp_tables);
        b.spending = config.policy.clone();
        b.keyring = Some(config.keyring()?);
        b.secret = config.share_secret.clone();
        b.store_location = config.store.clone();
        b.store_options = config.store_options.clone();
        let mut policies: Vec<Arc<dyn SigningPolicy>> = Vec::new();
        if !config.policy_deny_scripts.is_empty() {
            policies.push(Arc::new(DenyOutputScripts::new(config.policy_deny_scripts.iter().cloned())));
        }
        if !config.policy_raw_digests {
            policies.push(Arc::new(TransactionsOnly));
        }
        if !policies.is_empty() {
            b.policy = Some(Arc::new(AllOf(policies)));
        }
        Ok(b)
    }

    /// This party's keyring (party index 1 or more, the other parties' pinned keys).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The secret that seals this cosigner's shares.
    pub fn share_secret(mut self, secret: ShareSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// How new records are sealed.
    pub fn seal_options(mut self, options: SealOptions) -> Self {
        self.seal = options;
        self
    }

    /// The store, as a value.
    pub fn store(mut self, store: Arc<dyn ShareStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The store by location, opened through the registry with `options`.
    pub fn store_location(mut self, location: StoreLocation, options: Options) -> Self {
        self.store_location = Some(location);
        self.store_options = options;
        self
    }

    /// Where DKG takes this party's primes (default: the sealed pool in its store).
    pub fn prime_source(mut self, source: Arc<dyn PrimeSource>) -> Self {
        self.primes = Some(source);
        self
    }

    /// Aux info runs (DKG or migration; two prime pairs each) to keep primes ready for in the
    /// store's pool, filled in the background after `build` (default 0: generated on demand).
    pub fn prime_pool_target(mut self, runs: u64) -> Self {
        self.prime_pool_target = runs;
        self
    }

    /// Whether aux info generation precomputes this share's multiexponentiation tables (default
    /// yes; [`CosignerService::with_multiexp_tables`]).
    pub fn multiexp_tables(mut self, on: bool) -> Self {
        self.multiexp_tables = Some(on);
        self
    }

    /// What reviews each transaction before this cosigner signs inputs of it (default:
    /// [`AllowAll`](super::AllowAll); from configuration, a deny list of output scripts).
    pub fn policy(mut self, policy: Arc<dyn SigningPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The spending policy this cosigner enforces, counted in its store (MPC_POLICY_FILE; see
    /// [`SpendingPolicy`](super::SpendingPolicy)). `build` fails when the store keeps no policy
    /// state.
    pub fn spending_policy(mut self, policy: wallet_policy::Policy) -> Self {
        self.spending = Some(policy);
        self
    }

    /// The factories a store location is opened with (default: those `inventory` collected).
    pub fn plugins(mut self, plugins: Plugins) -> Self {
        self.plugins = Some(plugins);
        self
    }

    /// Opens the store and starts the service (and, with a pool target, the task that fills
    /// the pool; it needs a tokio runtime).
    pub async fn build(self) -> Result<CosignerService> {
        let keyring = self.keyring.ok_or_else(|| Error::new(ErrorKind::Config, "no keyring; set MPC_PARTY_KEY"))?;
        let secret =
            self.secret.ok_or_else(|| Error::new(ErrorKind::Config, "no share secret; set MPC_SHARE_SECRET"))?;
        let store = match (self.store, &self.store_location) {
            (Some(s), _) => s,
            (None, Some(location)) => {
                let plugins = self.plugins.unwrap_or_default();
                plugins.open_store(&location.url(), self.store_options.clone()).await?
            }
            (None, None) => {
                return Err(Error::new(ErrorKind::Config, "no share store; set MPC_STORAGE_PATH or MPC_STORAGE_URL"))
            }
        };
        let sealer = Sealer::new(secret, self.seal);
        let pool = StorePrimePool::new(store.clone(), sealer.clone(), "cosigner");
        let primes = self.primes.unwrap_or_else(|| Arc::new(pool.clone()));
        let party = keyring.party_index();
        let spending = match self.spending {
            Some(policy) => Some(super::SpendingPolicy::new(policy, store.clone(), party)?),
            None => None,
        };
        let mut service = CosignerService::new(keyring, store, sealer, primes)?;
        if let Some(spending) = spending {
            service = service.with_spending_policy(spending);
        }
        if let Some(policy) = self.policy {
            service = service.with_policy(policy);
        }
        if let Some(on) = self.multiexp_tables {
            service = service.with_multiexp_tables(on);
        }
        if self.prime_pool_target > 0 {
            let target = self.prime_pool_target;
            tokio::spawn(async move {
                if let Err(e) = pool.fill(target).await {
                    tracing::warn!(error = %e, "could not fill the prime pool; DKG will generate primes on demand");
                }
            });
        }
        Ok(service)
    }
}
