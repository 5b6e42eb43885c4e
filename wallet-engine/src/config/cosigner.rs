//! A cosigner's configuration.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

use wallet_traits::{Error, ErrorKind, Options, PartyIndex, Plugins, Result};

use super::{invalid, missing, require_files, Reader, SettingKey, Settings, Shown, StoreLocation};
use crate::{Keyring, PartyKey, PartyPublicKey, ShareSecret, MAX_PARTIES};

/// Everything a cosigner reads, each value already parsed: from [`CosignerConfig::load`] or by
/// hand, for [`CosignerBuilder::from_config`](crate::CosignerBuilder::from_config) and for the
/// program that serves it (listen addresses, TLS, tokens, limits).
#[derive(Clone)]
#[non_exhaustive]
pub struct CosignerConfig {
    /// MPC_PARTY_INDEX: 1 to 15.
    pub party_index: Option<PartyIndex>,
    /// MPC_HTTP_LISTEN.
    pub http_listen: Option<SocketAddr>,
    /// MPC_GRPC_LISTEN.
    pub grpc_listen: Option<SocketAddr>,
    /// MPC_STORAGE_URL, else MPC_STORAGE_PATH.
    pub store: Option<StoreLocation>,
    /// `MPC_STORAGE__<KEY>` options for the store's factory.
    pub store_options: Options,
    /// MPC_SHARE_SECRET.
    pub share_secret: Option<ShareSecret>,
    /// MPC_JWT_SECRET: HS256 secret shared with the agent.
    pub jwt_secret: Option<String>,
    /// MPC_JWT_PUBLIC_KEY_FILE: the agent's Ed25519 PEM public key, for EdDSA tokens.
    pub jwt_public_key_file: Option<PathBuf>,
    /// MPC_JWT_AUDIENCES: the audiences tokens must name; default the cosigner's own URLs.
    pub jwt_audiences: Option<Vec<String>>,
    /// MPC_PARTY_KEY, or read from MPC_PARTY_KEY_FILE.
    pub party_key: Option<PartyKey>,
    /// MPC_PEER_KEYS: the other parties' pinned public keys (`0=agent key,...`).
    pub peer_keys: Option<BTreeMap<PartyIndex, PartyPublicKey>>,
    /// MPC_TLS_CERT_FILE (PEM chain), with MPC_TLS_KEY_FILE.
    pub tls_cert_file: Option<PathBuf>,
    /// MPC_TLS_KEY_FILE (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// MPC_MAX_SESSIONS: concurrent protocol sessions.
    pub max_sessions: usize,
    /// MPC_SESSION_IDLE_SECS: a session silent this long is dropped.
    pub session_idle: Duration,
    /// MPC_MAX_MESSAGE_BYTES: the largest protocol message accepted.
    pub max_message_bytes: usize,
    /// MPC_PRIME_POOL_TARGET: prime pairs kept ready so a DKG does not wait for this cosigner.
    pub prime_pool_target: u64,
    /// MPC_POLICY_DENY_SCRIPTS: locking scripts (hex, comma-separated) this cosigner refuses to
    /// sign a transaction paying to.
    pub policy_deny_scripts: Vec<Vec<u8>>,
    /// MPC_POLICY_RAW_DIGESTS: `allow` (default) or `deny`; `deny` makes this cosigner sign
    /// transactions only (see `TransactionsOnly`).
    pub policy_raw_digests: bool,
    /// MPC_MULTIEXP_TABLES: whether DKG and migration precompute this cosigner share's
    /// multiexponentiation tables (default true): seconds once, faster signing after.
    pub multiexp_tables: bool,
    /// MPC_POLICY_FILE: the spending policy this cosigner enforces (limits, allowlist,
    /// approvers; a TOML file, read and checked at load), counted in its store.
    pub policy: Option<wallet_policy::Policy>,
}

impl Default for CosignerConfig {
    /// The defaults of [`CosignerConfig::KEYS`], parsed: each default is written once, in its key.
    fn default() -> Self {
        Self::from_settings(&Settings::defaults(Self::KEYS).expect("the defaults resolve"))
            .expect("the defaults in CosignerConfig::KEYS parse (tested)")
    }
}

impl fmt::Debug for CosignerConfig {
    // Secrets stay out; the rest is what identifies the cosigner in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listen = [self.http_listen, self.grpc_listen];
        f.debug_struct("CosignerConfig")
            .field("party_index", &self.party_index)
            .field("listen", &listen.iter().flatten().collect::<Vec<_>>())
            .field("store", &self.store.as_ref().map(ToString::to_string))
            .finish_non_exhaustive()
    }
}

impl CosignerConfig {
    /// Every key a cosigner reads, in a file (`http_listen`) and as a variable (`MPC_HTTP_LISTEN`).
    pub const KEYS: &'static [SettingKey] = &[
        SettingKey::plain("party_index"),
        SettingKey::plain("http_listen"),
        SettingKey::plain("grpc_listen"),
        SettingKey::plain("storage_url").shown(Shown::Url),
        SettingKey::plain("storage_path"),
        SettingKey::secret("share_secret"),
        SettingKey::secret("jwt_secret"),
        SettingKey::plain("jwt_public_key_file"),
        SettingKey::plain("jwt_audiences"),
        SettingKey::secret("party_key"),
        SettingKey::plain("party_key_file"),
        SettingKey::plain("peer_keys"),
        SettingKey::plain("tls_cert_file"),
        SettingKey::plain("tls_key_file"),
        SettingKey::plain("max_sessions").default("64"),
        // As the agent's: a DKG's aux info waits while each party gets its primes (two pairs of
        // safe primes when no pool is ready: minutes on a small machine).
        SettingKey::plain("session_idle_secs").default("600"),
        SettingKey::plain("max_message_bytes").default("8388608"),
        SettingKey::plain("prime_pool_target").default("1"),
        SettingKey::plain("policy_deny_scripts"),
        SettingKey::plain("policy_raw_digests").default("allow"),
        SettingKey::plain("multiexp_tables").default("true"),
        SettingKey::plain("policy_file"),
    ];

    /// Defaults < `file` (or `./mpc-wallet.toml`) < `MPC_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        Self::from_settings(&Settings::load(Self::KEYS, file)?)
    }

    /// Like [`load`](Self::load) with any variables and no file (tests pass a list).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        Self::from_settings(&Settings::load_from(Self::KEYS, None, vars)?)
    }

    /// Parses resolved [`Settings`] of [`CosignerConfig::KEYS`], every value once.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let r = Reader(settings);
        let address = |name: &str| {
            r.parsed(name, |v| {
                v.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| Error::new(ErrorKind::Config, "it must be an address such as 127.0.0.1:8001"))
            })
        };
        let party_index = r.parsed("party_index", |v| match v.trim().parse::<PartyIndex>() {
            Ok(i) if (1..MAX_PARTIES).contains(&i) => Ok(i),
            _ => Err(Error::new(ErrorKind::Config, format!("it must be a party index from 1 to {}", MAX_PARTIES - 1))),
        })?;
        Ok(Self {
            party_index,
            http_listen: address("http_listen")?,
            grpc_listen: address("grpc_listen")?,
            store: r.store(),
            store_options: settings.store_options(),
            share_secret: r.parsed("share_secret", |s| ShareSecret::new(s))?,
            jwt_secret: r.text("jwt_secret"),
            jwt_public_key_file: r.path("jwt_public_key_file"),
            jwt_audiences: r
                .text("jwt_audiences")
                .map(|a| a.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
            party_key: r.party_key()?,
            peer_keys: r.parsed("peer_keys", Keyring::parse_peers)?,
            tls_cert_file: r.path("tls_cert_file"),
            tls_key_file: r.path("tls_key_file"),
            max_sessions: r.defaulted("max_sessions", r.number("max_sessions", "a whole number of sessions")?)?,
            session_idle: Duration::from_secs(
                r.defaulted("session_idle_secs", r.number("session_idle_secs", "a whole number of seconds")?)?,
            ),
            max_message_bytes: r
                .defaulted("max_message_bytes", r.number("max_message_bytes", "a whole number of bytes")?)?,
            prime_pool_target: r
                .defaulted("prime_pool_target", r.number("prime_pool_target", "a whole number of prime pairs")?)?,
            policy_deny_scripts: r
                .parsed("policy_deny_scripts", |v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            hex::decode(s).map_err(|_| {
                                Error::new(
                                    ErrorKind::Config,
                                    "it must list locking scripts in hex, separated by commas",
                                )
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })?
                .unwrap_or_default(),
            policy_raw_digests: r.defaulted(
                "policy_raw_digests",
                r.parsed("policy_raw_digests", |v| match v.trim() {
                    "allow" => Ok(true),
                    "deny" => Ok(false),
                    _ => Err(Error::new(ErrorKind::Config, "it must be allow or deny")),
                })?,
            )?,
            multiexp_tables: r.defaulted("multiexp_tables", r.flag("multiexp_tables")?)?,
            policy: r.policy()?,
        })
    }

    /// [`validate_with`](Self::validate_with) the plugins `inventory` collected.
    pub fn validate(&self) -> Result<()> {
        self.validate_with(&Plugins::from_inventory())
    }

    /// What a cosigner needs before it binds or creates anything: its party, keys, secret and a
    /// store whose scheme (among `plugins`) and options check out, something to listen on, a way
    /// to verify tokens, and the files it names. The error says what to set.
    pub fn validate_with(&self, plugins: &Plugins) -> Result<()> {
        if self.party_index.is_none() {
            return Err(missing("MPC_PARTY_INDEX", "this cosigner's party index, 1 or more"));
        }
        if self.share_secret.is_none() {
            return Err(missing("MPC_SHARE_SECRET", "the secret that seals this cosigner's shares"));
        }
        if self.party_key.is_none() {
            return Err(missing(
                "MPC_PARTY_KEY",
                "this party's key, or set MPC_PARTY_KEY_FILE (`mpc-wallet keys` makes one)",
            ));
        }
        if self.peer_keys.is_none() {
            return Err(missing("MPC_PEER_KEYS", "the other parties' public keys (0=agent public key,...)"));
        }
        let store =
            self.store.as_ref().ok_or_else(|| missing("MPC_STORAGE_PATH", "a SQLite file, or set MPC_STORAGE_URL"))?;
        store.check(plugins, &self.store_options)?;
        if self.http_listen.is_none() && self.grpc_listen.is_none() {
            return Err(missing("MPC_HTTP_LISTEN", "an address such as 127.0.0.1:8001, and/or set MPC_GRPC_LISTEN"));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(invalid("MPC_TLS_KEY_FILE", "set both MPC_TLS_CERT_FILE and MPC_TLS_KEY_FILE, or neither"));
        }
        if self.jwt_public_key_file.is_none() && self.jwt_secret.is_none() {
            return Err(missing("MPC_JWT_SECRET", "the secret shared with the agent (or set MPC_JWT_PUBLIC_KEY_FILE)"));
        }
        require_files(&[
            ("MPC_JWT_PUBLIC_KEY_FILE", &self.jwt_public_key_file),
            ("MPC_TLS_CERT_FILE", &self.tls_cert_file),
            ("MPC_TLS_KEY_FILE", &self.tls_key_file),
        ])
    }

    /// This cosigner's keyring, once [`validate`](Self::validate) passed.
    pub fn keyring(&self) -> Result<Keyring> {
        match (self.party_index, &self.party_key, &self.peer_keys) {
            (Some(i), Some(key), Some(peers)) => Ok(Keyring::new(i, key.clone(), peers.clone())),
            _ => Err(missing("MPC_PARTY_KEY", "this party's key with MPC_PARTY_INDEX and MPC_PEER_KEYS")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn parses_once_and_names_bad_values() {
        let key = "11".repeat(32);
        let peers = format!("0={}", "22".repeat(32));
        let good = [
            ("MPC_PARTY_INDEX", "1"),
            ("MPC_SHARE_SECRET", "secret"),
            ("MPC_JWT_SECRET", "jwt"),
            ("MPC_HTTP_LISTEN", "127.0.0.1:0"),
            ("MPC_STORAGE_PATH", "c.db"),
            ("MPC_PARTY_KEY", key.as_str()),
            ("MPC_PEER_KEYS", peers.as_str()),
        ];
        let c = CosignerConfig::from_vars(vars(&good)).unwrap();
        assert_eq!(c.max_sessions, 64);
        // `Default` is the parse of the keys' defaults.
        let d = CosignerConfig::default();
        assert_eq!((d.max_sessions, d.session_idle, d.max_message_bytes), (64, Duration::from_secs(600), 8 << 20));
        assert!(d.policy_raw_digests && d.multiexp_tables && d.party_index.is_none());
        assert_eq!(c.keyring().unwrap().party_index(), 1);
        for (var, value) in [("MPC_PARTY_INDEX", "0"), ("MPC_MAX_SESSIONS", "lots"), ("MPC_GRPC_LISTEN", "nowhere")] {
            let e = CosignerConfig::from_vars(vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.context_value("variable"), Some(var), "{e}");
        }
        let e = CosignerConfig::from_vars(vars(&good[1..])).unwrap().validate().unwrap_err();
        assert_eq!(e.context_value("variable"), Some("MPC_PARTY_INDEX"), "{e}");
    }
}
