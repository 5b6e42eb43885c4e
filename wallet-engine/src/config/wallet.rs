//! The agent's configuration.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use wallet_traits::{Error, ErrorKind, Options, PartyIndex, Plugins, Result, WalletId};

use super::{
    invalid, missing, require_files, ChainConfig, Network, Reader, SettingKey, Settings, Shown, StoreLocation,
};
use crate::{Cipher, Keyring, PartyKey, PartyPublicKey, ShareSecret};

/// Everything the agent's builder reads, each value already parsed: build one with
/// [`WalletConfig::load`] (file and variables) or by hand, then hand it to
/// [`WalletBuilder::from_config`](crate::WalletBuilder::from_config).
#[derive(Clone)]
#[non_exhaustive]
pub struct WalletConfig {
    /// MPC_WALLET_ID.
    pub wallet_id: Option<WalletId>,
    /// MPC_SHARE_SECRET.
    pub share_secret: Option<ShareSecret>,
    /// MPC_STORAGE_URL, else MPC_STORAGE_PATH (the agent's SQLite file).
    pub store: Option<StoreLocation>,
    /// `MPC_STORAGE__<KEY>` variables: options for the store's factory (`busy_timeout_ms`, ...).
    pub store_options: Options,
    /// MPC_COSIGNER_ENDPOINTS: cosigner URLs in party order (party 1 first).
    pub cosigner_endpoints: Vec<String>,
    /// MPC_THRESHOLD.
    pub threshold: u16,
    /// MPC_NETWORK.
    pub network: Network,
    /// MPC_CIPHER for new records: aes-256-gcm (default) or chacha20-poly1305.
    pub cipher: Cipher,
    /// MPC_PARTY_KEY, or read from MPC_PARTY_KEY_FILE: this party's X25519 secret.
    pub party_key: Option<PartyKey>,
    /// MPC_PEER_KEYS: the other parties' pinned public keys, `1=hex,2=hex`.
    pub peer_keys: BTreeMap<PartyIndex, PartyPublicKey>,
    /// MPC_JWT_SECRET: HS256 secret shared with the cosigners.
    pub jwt_secret: Option<String>,
    /// MPC_JWT_PRIVATE_KEY_FILE: Ed25519 PEM key for EdDSA tokens instead of HS256.
    pub jwt_private_key_file: Option<PathBuf>,
    /// MPC_TLS_CA_FILE: extra CA certificate (PEM) to trust for https/grpcs cosigners.
    pub tls_ca_file: Option<PathBuf>,
    /// MPC_DERIVATION_CACHE_MAX: most entries the derivation cache keeps (least recently used
    /// evicted first); at least 1.
    pub derivation_cache_max: usize,
    /// MPC_ALLOWED_ORIGINS: comma-separated web origins (`scheme://host[:port]`, or `*`) the
    /// BRC-100 front serves; none by default. The front parses it (`FrontPolicy`).
    pub allowed_origins: Option<String>,
    /// MPC_ALLOWED_HOSTS: extra `Host` header values the front accepts besides its listening
    /// address and `localhost`.
    pub allowed_hosts: Option<String>,
    /// MPC_API_TOKEN: when set, every front request needs `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// MPC_BROADCASTER, MPC_ARC_URL, MPC_ARC_API_KEY, MPC_CHAIN_TRACKER, MPC_CHAIN_TRACKER_URL,
    /// MPC_CHAIN_TRACKER_API_KEY.
    pub chain: ChainConfig,
    /// MPC_FEE_SAT_PER_KB: the fee rate of the transactions the wallet makes, in satoshis per
    /// 1000 bytes.
    pub fee_sat_per_kb: u64,
    /// MPC_BACKGROUND_INTERVAL_SECS: how often `serve`'s background task rebroadcasts delayed
    /// transactions and releases abandoned actions.
    pub background_interval: std::time::Duration,
    /// MPC_PROOF_INTERVAL_SECS: how often the background task looks for a new block; at each,
    /// it asks for the merkle proofs of unproven transactions.
    pub proof_interval: std::time::Duration,
    /// MPC_PROOF_ATTEMPTS: new blocks without a proof before an unproven transaction is asked
    /// after on the chain (broadcast again when the chain lost it); default 144, about a day.
    pub proof_attempts: u32,
    /// MPC_REVIEW_INTERVAL_SECS: how often the background task reviews the books against the
    /// chain (failed actions the chain knows, noSend transactions someone broadcast, proofs of
    /// blocks a reorg dropped).
    pub review_interval: std::time::Duration,
    /// MPC_PURGE_INTERVAL_SECS: how often the background task purges old failed actions.
    pub purge_interval: std::time::Duration,
    /// MPC_CONSOLIDATE_INTERVAL_SECS: how often `serve` consolidates small change outputs;
    /// unset (the default), never on its own (`mpc-wallet consolidate` does it on demand).
    pub consolidate_interval: Option<std::time::Duration>,
    /// MPC_BACKUP_DIR: where `serve` writes a sealed backup every
    /// [`backup_interval`](Self::backup_interval), keeping the newest
    /// [`backup_keep`](Self::backup_keep); unset, no scheduled backups.
    pub backup_dir: Option<PathBuf>,
    /// MPC_BACKUP_INTERVAL_SECS: how often `serve` looks whether the wallet changed since its last
    /// backup to MPC_BACKUP_DIR, and writes one if so (default an hour).
    pub backup_interval: std::time::Duration,
    /// MPC_BACKUP_KEEP: how many scheduled backups MPC_BACKUP_DIR keeps (default 7).
    pub backup_keep: usize,
    /// MPC_BACKUP_SECRET: the secret backups are sealed under; unset, MPC_SHARE_SECRET.
    pub backup_secret: Option<ShareSecret>,
    /// MPC_PURGE_FAILED_AFTER_DAYS: how long a failed action keeps its transaction's bytes
    /// (default 14 days, at least 2: the background round looks for failed transactions on the
    /// chain for a day); after that its row stays in the history without them.
    pub purge_failed_after: std::time::Duration,
    /// MPC_CHANGE_TARGET_COUNT: how many spendable change outputs the wallet aims to hold
    /// (default 8, 1 to 1000): payments split their change toward it, consolidation merges down
    /// to it.
    pub change_target_count: u32,
    /// MPC_CHANGE_MIN_SATS: the least value of a change output the wallet makes when it can
    /// choose, below which an output is dust that consolidation folds (default 1000, at least 1).
    pub change_min_sats: u64,
    /// MPC_MULTIEXP_TABLES: whether DKG and migration precompute the agent share's
    /// multiexponentiation tables (default true): seconds once, faster signing after.
    pub multiexp_tables: bool,
    /// MPC_POLICY_FILE: the spending policy of the embedded default's in-process cosigners (a
    /// remote cosigner reads its own), so a policy can be tried with `demo` and `serve`.
    pub policy: Option<wallet_policy::Policy>,
    /// MPC_LOOKUP_URL: the overlay `discoverByIdentityKey` and `discoverByAttributes` ask
    /// (`POST {url}/lookup`); unset, they answer "not supported".
    pub lookup_url: Option<String>,
    /// MPC_TRUSTED_CERTIFIERS: comma-separated `pubkeyhex:trust:name` certifiers discovery
    /// trusts; unset, the wallet toolbox's two defaults. Kept raw: the identity methods parse it.
    pub trusted_certifiers: Option<String>,
    /// MPC_TRUST_LEVEL: the trust a discovered identity's certifiers must add up to; unset, 2.
    pub trust_level: Option<u32>,
}

impl Default for WalletConfig {
    /// The defaults of [`WalletConfig::KEYS`], parsed: each default is written once, in its key.
    fn default() -> Self {
        Self::from_settings(&Settings::defaults(Self::KEYS).expect("the defaults resolve"))
            .expect("the defaults in WalletConfig::KEYS parse (tested)")
    }
}

impl fmt::Debug for WalletConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |set: bool| set.then_some("<redacted>");
        f.debug_struct("WalletConfig")
            .field("wallet_id", &self.wallet_id)
            .field("share_secret", &redacted(self.share_secret.is_some()))
            .field("store", &self.store.as_ref().map(ToString::to_string))
            .field("store_options", &self.store_options.keys().collect::<Vec<_>>())
            .field(
                "cosigner_endpoints",
                &self.cosigner_endpoints.iter().map(|u| wallet_traits::redact_url(u)).collect::<Vec<_>>(),
            )
            .field("threshold", &self.threshold)
            .field("network", &self.network)
            .field("cipher", &self.cipher)
            .field("party_key", &redacted(self.party_key.is_some()))
            .field("peer_keys", &self.peer_keys)
            .field("jwt_secret", &redacted(self.jwt_secret.is_some()))
            .field("jwt_private_key_file", &self.jwt_private_key_file)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("derivation_cache_max", &self.derivation_cache_max)
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("api_token", &redacted(self.api_token.is_some()))
            .field("chain", &self.chain)
            .field("fee_sat_per_kb", &self.fee_sat_per_kb)
            .field("background_interval", &self.background_interval)
            .field("purge_failed_after", &self.purge_failed_after)
            .field("proof_interval", &self.proof_interval)
            .field("proof_attempts", &self.proof_attempts)
            .field("review_interval", &self.review_interval)
            .field("purge_interval", &self.purge_interval)
            .field("consolidate_interval", &self.consolidate_interval)
            .field("backup_dir", &self.backup_dir)
            .field("backup_interval", &self.backup_interval)
            .field("backup_keep", &self.backup_keep)
            .field("backup_secret", &redacted(self.backup_secret.is_some()))
            .field("change_target_count", &self.change_target_count)
            .field("change_min_sats", &self.change_min_sats)
            .field("lookup_url", &self.lookup_url.as_deref().map(wallet_traits::redact_url))
            .field("trusted_certifiers", &self.trusted_certifiers)
            .field("trust_level", &self.trust_level)
            .finish()
    }
}

/// A number of seconds of at least 1, for the background tasks' intervals.
fn seconds(v: &str) -> Result<std::time::Duration> {
    match v.trim().parse::<u64>() {
        Ok(n @ 1..=31_536_000) => Ok(std::time::Duration::from_secs(n)),
        _ => Err(Error::new(ErrorKind::Config, "it must be a number of seconds from 1 to 31536000, such as 30")),
    }
}

impl WalletConfig {
    /// Every key the agent reads, in a file (`share_secret`) and as a variable
    /// (`MPC_SHARE_SECRET`); `party_key_file` stands in for `party_key`.
    pub const KEYS: &'static [SettingKey] = &[
        SettingKey::plain("wallet_id"),
        SettingKey::secret("share_secret"),
        SettingKey::plain("storage_path"),
        SettingKey::plain("storage_url").shown(Shown::Url),
        SettingKey::plain("cosigner_endpoints").shown(Shown::Urls),
        SettingKey::plain("threshold").default("2"),
        SettingKey::plain("network").default("mainnet"),
        SettingKey::plain("cipher").default("aes-256-gcm"),
        SettingKey::secret("party_key"),
        SettingKey::plain("party_key_file"),
        SettingKey::plain("peer_keys"),
        SettingKey::secret("jwt_secret"),
        SettingKey::plain("jwt_private_key_file"),
        SettingKey::plain("tls_ca_file"),
        SettingKey::plain("derivation_cache_max").default("10000"),
        SettingKey::plain("allowed_origins"),
        SettingKey::plain("allowed_hosts"),
        SettingKey::secret("api_token"),
        SettingKey::plain("broadcaster"),
        SettingKey::plain("arc_url").shown(Shown::Url),
        SettingKey::secret("arc_api_key"),
        SettingKey::plain("chain_tracker"),
        SettingKey::plain("chain_tracker_url").shown(Shown::Url),
        SettingKey::secret("chain_tracker_api_key"),
        SettingKey::plain("fee_sat_per_kb").default("1"),
        SettingKey::plain("background_interval_secs").default("30"),
        SettingKey::plain("purge_failed_after_days").default("14"),
        SettingKey::plain("proof_interval_secs").default("60"),
        SettingKey::plain("proof_attempts").default("144"),
        SettingKey::plain("review_interval_secs").default("600"),
        SettingKey::plain("purge_interval_secs").default("3600"),
        SettingKey::plain("consolidate_interval_secs"),
        SettingKey::plain("backup_dir"),
        SettingKey::plain("backup_interval_secs").default("3600"),
        SettingKey::plain("backup_keep").default("7"),
        SettingKey::secret("backup_secret"),
        SettingKey::plain("change_target_count").default("8"),
        SettingKey::plain("change_min_sats").default("1000"),
        SettingKey::plain("multiexp_tables").default("true"),
        SettingKey::plain("policy_file"),
        SettingKey::plain("lookup_url").shown(Shown::Url),
        SettingKey::plain("trusted_certifiers"),
        SettingKey::plain("trust_level"),
    ];

    /// Reads the `MPC_*` variables (no file).
    pub fn from_env() -> Result<Self> {
        Self::from_settings(&Settings::load_from(Self::KEYS, None, std::env::vars())?)
    }

    /// Defaults < `file` (or `./mpc-wallet.toml`) < `MPC_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        Self::from_settings(&Settings::load(Self::KEYS, file)?)
    }

    /// Like [`WalletConfig::from_env`] with any variables (tests pass a list).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        Self::from_settings(&Settings::load_from(Self::KEYS, None, vars)?)
    }

    /// Parses resolved [`Settings`] of [`WalletConfig::KEYS`]: every value once, into its type.
    /// A value that does not parse fails naming its variable; what needs the registry or the
    /// file system is [`validate`](Self::validate)'s.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let r = Reader(settings);
        Ok(Self {
            wallet_id: r.parsed("wallet_id", |s| WalletId::new(s))?,
            share_secret: r.parsed("share_secret", |s| ShareSecret::new(s))?,
            store: r.store(),
            store_options: settings.store_options(),
            cosigner_endpoints: r
                .text("cosigner_endpoints")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            threshold: r.defaulted("threshold", r.number("threshold", "a number such as 2")?)?,
            network: r.defaulted("network", r.parsed("network", str::parse)?)?,
            cipher: r.defaulted("cipher", r.parsed("cipher", str::parse)?)?,
            party_key: r.party_key()?,
            peer_keys: r.parsed("peer_keys", Keyring::parse_peers)?.unwrap_or_default(),
            jwt_secret: r.text("jwt_secret"),
            jwt_private_key_file: r.path("jwt_private_key_file"),
            tls_ca_file: r.path("tls_ca_file"),
            derivation_cache_max: r.defaulted(
                "derivation_cache_max",
                r.parsed("derivation_cache_max", |v| match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        "it must be a number of entries of at least 1, such as 10000",
                    )),
                })?,
            )?,
            allowed_origins: r.text("allowed_origins"),
            allowed_hosts: r.text("allowed_hosts"),
            api_token: r.text("api_token"),
            fee_sat_per_kb: r
                .defaulted("fee_sat_per_kb", r.number("fee_sat_per_kb", "satoshis per 1000 bytes, such as 1")?)?,
            background_interval: r
                .defaulted("background_interval_secs", r.parsed("background_interval_secs", seconds)?)?,
            proof_interval: r.defaulted("proof_interval_secs", r.parsed("proof_interval_secs", seconds)?)?,
            proof_attempts: r.defaulted(
                "proof_attempts",
                r.parsed("proof_attempts", |v| match v.trim().parse::<u32>() {
                    Ok(n @ 1..=100_000) => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        "it must be a number of blocks from 1 to 100000, such as 144",
                    )),
                })?,
            )?,
            review_interval: r.defaulted("review_interval_secs", r.parsed("review_interval_secs", seconds)?)?,
            purge_interval: r.defaulted("purge_interval_secs", r.parsed("purge_interval_secs", seconds)?)?,
            consolidate_interval: r.parsed("consolidate_interval_secs", seconds)?,
            backup_dir: r.path("backup_dir"),
            backup_interval: r.defaulted("backup_interval_secs", r.parsed("backup_interval_secs", seconds)?)?,
            backup_keep: r.defaulted(
                "backup_keep",
                r.parsed("backup_keep", |v| match v.trim().parse::<usize>() {
                    Ok(n @ 1..=10_000) => Ok(n),
                    _ => {
                        Err(Error::new(ErrorKind::Config, "it must be a number of backups from 1 to 10000, such as 7"))
                    }
                })?,
            )?,
            backup_secret: r.parsed("backup_secret", |s| ShareSecret::new(s))?,
            purge_failed_after: r.defaulted(
                "purge_failed_after_days",
                r.parsed("purge_failed_after_days", |v| match v.trim().parse::<u64>() {
                    Ok(n @ 2..=36_500) => Ok(std::time::Duration::from_secs(n * 86_400)),
                    _ => Err(Error::new(ErrorKind::Config, "it must be a number of days from 2 to 36500, such as 14")),
                })?,
            )?,
            change_target_count: r.defaulted(
                "change_target_count",
                r.parsed("change_target_count", |v| match v.trim().parse::<u32>() {
                    Ok(n @ 1..=1000) => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        "it must be a number of change outputs from 1 to 1000, such as 8",
                    )),
                })?,
            )?,
            change_min_sats: r.defaulted(
                "change_min_sats",
                r.parsed("change_min_sats", |v| match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        "it must be a number of satoshis of at least 1, such as 1000",
                    )),
                })?,
            )?,
            multiexp_tables: r.defaulted("multiexp_tables", r.flag("multiexp_tables")?)?,
            policy: r.policy()?,
            lookup_url: r.text("lookup_url"),
            trusted_certifiers: r.text("trusted_certifiers"),
            trust_level: r.number("trust_level", "a whole number such as 2")?,
            chain: ChainConfig {
                broadcaster: r.text("broadcaster"),
                arc_url: r.text("arc_url"),
                arc_api_key: r.text("arc_api_key"),
                chain_tracker: r.text("chain_tracker"),
                chain_tracker_url: r.text("chain_tracker_url"),
                chain_tracker_api_key: r.text("chain_tracker_api_key"),
            },
        })
    }

    /// Options for transport factories (the keys of `wallet-transport-common`'s `option_keys`).
    pub fn transport_options(&self) -> Options {
        let mut o = Options::new();
        if let Some(s) = &self.jwt_secret {
            o.insert("jwt_secret".into(), s.clone());
        }
        if let Some(p) = &self.jwt_private_key_file {
            o.insert("jwt_ed25519_private_key_file".into(), p.display().to_string());
        }
        if let Some(p) = &self.tls_ca_file {
            o.insert("ca_cert_file".into(), p.display().to_string());
        }
        o
    }

    /// [`validate_with`](Self::validate_with) the plugins `inventory` collected.
    pub fn validate(&self) -> Result<()> {
        self.validate_with(&Plugins::from_inventory())
    }

    /// What [`from_settings`](Self::from_settings) cannot see: required keys are set, schemes
    /// are among `plugins`, the store accepts its options, the threshold fits the parties, files
    /// exist. Opens nothing and reaches no cosigner. The error names the variable to fix.
    pub fn validate_with(&self, plugins: &Plugins) -> Result<()> {
        if self.wallet_id.is_none() {
            return Err(missing("MPC_WALLET_ID", "the wallet's id"));
        }
        if self.share_secret.is_none() {
            return Err(missing("MPC_SHARE_SECRET", "the secret that seals shares"));
        }
        if let Some(store) = &self.store {
            store.check(plugins, &self.store_options)?;
        }
        for url in &self.cosigner_endpoints {
            wallet_traits::scheme_of(url)
                .and_then(|scheme| plugins.transports().get(&scheme).map(drop))
                .map_err(|e| invalid("MPC_COSIGNER_ENDPOINTS", e.message()))?;
        }
        let parties = if self.cosigner_endpoints.is_empty() { 3 } else { self.cosigner_endpoints.len() + 1 };
        let t = usize::from(self.threshold);
        if t < 2 || t > parties {
            return Err(invalid(
                "MPC_THRESHOLD",
                &format!("it must be from 2 to the number of parties ({parties}: the agent and its cosigners)"),
            ));
        }
        require_files(&[
            ("MPC_JWT_PRIVATE_KEY_FILE", &self.jwt_private_key_file),
            ("MPC_TLS_CA_FILE", &self.tls_ca_file),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn reads_variables_and_redacts() {
        let c = WalletConfig::from_vars(vars(&[
            ("MPC_WALLET_ID", "agent-7"),
            ("MPC_SHARE_SECRET", "s3cret-value"),
            ("MPC_COSIGNER_ENDPOINTS", "local://1, local://2"),
            ("MPC_NETWORK", "testnet"),
            ("MPC_STORAGE_PATH", "/tmp/agent.db"),
        ]))
        .unwrap();
        assert_eq!(c.cosigner_endpoints, vec!["local://1", "local://2"]);
        assert_eq!(c.network, Network::Testnet);
        assert_eq!(c.threshold, 2);
        assert_eq!(c.store.as_ref().map(StoreLocation::url).as_deref(), Some("sqlite:///tmp/agent.db"));
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (var, value) in [
            ("MPC_NETWORK", "moon"),
            ("MPC_THRESHOLD", "two"),
            ("MPC_WALLET_ID", "bad id"),
            ("MPC_PARTY_KEY", "nothex"),
            ("MPC_DERIVATION_CACHE_MAX", "0"),
            ("MPC_MULTIEXP_TABLES", "maybe"),
            ("MPC_TRUST_LEVEL", "-1"),
            ("MPC_PURGE_FAILED_AFTER_DAYS", "1"),
            ("MPC_PROOF_INTERVAL_SECS", "0"),
            ("MPC_PROOF_ATTEMPTS", "0"),
            ("MPC_CONSOLIDATE_INTERVAL_SECS", "soon"),
            ("MPC_BACKUP_KEEP", "0"),
            ("MPC_CHANGE_TARGET_COUNT", "0"),
            ("MPC_CHANGE_TARGET_COUNT", "1001"),
            ("MPC_CHANGE_MIN_SATS", "0"),
            ("MPC_CHANGE_MIN_SATS", "lots"),
        ] {
            let e = WalletConfig::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert_eq!(e.context_value("variable"), Some(var), "{e}");
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn the_default_is_the_parse_of_the_keys_defaults() {
        let d = WalletConfig::default();
        assert_eq!(
            (d.threshold, d.network, d.derivation_cache_max, d.fee_sat_per_kb),
            (2, Network::Mainnet, 10_000, 1)
        );
        assert_eq!(d.background_interval, std::time::Duration::from_secs(30));
        assert_eq!(d.purge_failed_after, std::time::Duration::from_secs(14 * 86_400));
        let secs = std::time::Duration::from_secs;
        assert_eq!((d.proof_interval, d.review_interval, d.purge_interval), (secs(60), secs(600), secs(3600)));
        assert_eq!((d.consolidate_interval, &d.backup_dir, d.proof_attempts), (None, &None, 144));
        assert_eq!((d.backup_interval, d.backup_keep, d.backup_secret.is_none()), (secs(3600), 7, true));
        assert_eq!((d.change_target_count, d.change_min_sats), (8, 1000));
        assert!(d.multiexp_tables && d.wallet_id.is_none() && d.store.is_none());
        // The builder starts from the same defaults.
        assert!(format!("{:?}", crate::WalletBuilder::new()).contains("threshold: 2"));
    }

    #[test]
    fn change_parameters_are_read_within_their_ranges() {
        let c = WalletConfig::from_vars(vars(&[("MPC_CHANGE_TARGET_COUNT", "1000"), ("MPC_CHANGE_MIN_SATS", " 1 ")]))
            .unwrap();
        assert_eq!((c.change_target_count, c.change_min_sats), (1000, 1));
        let c = WalletConfig::from_vars(vars(&[("MPC_CHANGE_TARGET_COUNT", "1")])).unwrap();
        assert_eq!((c.change_target_count, c.change_min_sats), (1, 1000));
    }

    #[test]
    fn the_tables_are_on_unless_turned_off() {
        assert!(WalletConfig::from_vars(vars(&[])).unwrap().multiexp_tables);
        assert!(!WalletConfig::from_vars(vars(&[("MPC_MULTIEXP_TABLES", "false")])).unwrap().multiexp_tables);
        assert!(!WalletConfig::from_vars(vars(&[("MPC_MULTIEXP_TABLES", " Off ")])).unwrap().multiexp_tables);
    }

    #[test]
    fn the_url_wins_over_the_path() {
        let c =
            WalletConfig::from_vars(vars(&[("MPC_STORAGE_URL", "memory://x"), ("MPC_STORAGE_PATH", "a.db")])).unwrap();
        assert_eq!(c.store, Some(StoreLocation::Url("memory://x".into())));
        assert_eq!(c.store.unwrap().variable(), "MPC_STORAGE_URL");
    }
}
