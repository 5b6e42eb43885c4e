//! Configuration: the `MPC_*` environment variables of the TypeScript MPC wallet are the
//! interface (DESIGN.md section 10).

use std::{fmt, path::PathBuf, str::FromStr};

use serde::{Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, Result};

use crate::{
    seal::Cipher,
    settings::{SettingKey, Settings, Shown},
};

/// BSV network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// mainnet (default).
    #[default]
    Mainnet,
    /// testnet.
    Testnet,
}

impl FromStr for Network {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mainnet" | "main" => Ok(Network::Mainnet),
            "testnet" | "test" => Ok(Network::Testnet),
            _ => Err(Error::new(ErrorKind::Config, "MPC_NETWORK must be mainnet or testnet")),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
        })
    }
}

/// Everything the agent's builder reads. Unknown keys are refused so typos fail at start.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct WalletConfig {
    /// MPC_WALLET_ID.
    pub wallet_id: Option<String>,
    /// MPC_SHARE_SECRET. Never printed.
    pub share_secret: Option<String>,
    /// MPC_STORAGE_PATH: the agent's SQLite file.
    pub storage_path: Option<PathBuf>,
    /// MPC_STORAGE_URL: any registered store by scheme; wins over `storage_path`.
    pub storage_url: Option<String>,
    /// MPC_COSIGNER_ENDPOINTS: cosigner URLs in party order (party 1 first).
    pub cosigner_endpoints: Vec<String>,
    /// MPC_THRESHOLD (default 2).
    pub threshold: Option<u16>,
    /// MPC_NETWORK (default mainnet).
    pub network: Network,
    /// MPC_CIPHER for new records: aes-256-gcm (default) or chacha20-poly1305.
    pub cipher: Cipher,
    /// MPC_PARTY_KEY: this party's X25519 secret (hex). Never printed.
    pub party_key: Option<String>,
    /// MPC_PEER_KEYS: the other parties' pinned public keys, `1=hex,2=hex`.
    pub peer_keys: Option<String>,
    /// MPC_JWT_SECRET: HS256 secret shared with the cosigners. Never printed.
    pub jwt_secret: Option<String>,
    /// MPC_JWT_PRIVATE_KEY_FILE: Ed25519 PEM key for EdDSA tokens instead of HS256.
    pub jwt_private_key_file: Option<PathBuf>,
    /// MPC_TLS_CA_FILE: extra CA certificate (PEM) to trust for https/grpcs cosigners.
    pub tls_ca_file: Option<PathBuf>,
    /// `MPC_STORAGE__<KEY>` variables: options for the store's factory (`busy_timeout_ms`, ...).
    pub store_options: wallet_traits::Options,
    /// MPC_DERIVATION_CACHE_MAX: most entries the derivation cache keeps (least recently used
    /// evicted first); default [`DEFAULT_DERIVATION_CACHE_MAX`].
    pub derivation_cache_max: Option<usize>,
    /// MPC_ALLOWED_ORIGINS: comma-separated web origins (`scheme://host[:port]`, or `*`) the
    /// BRC-100 front serves; none by default.
    pub allowed_origins: Option<String>,
    /// MPC_ALLOWED_HOSTS: extra `Host` header values the front accepts besides its listening
    /// address and `localhost`.
    pub allowed_hosts: Option<String>,
    /// MPC_API_TOKEN: when set, every front request needs `Authorization: Bearer <token>`.
    /// Never printed.
    pub api_token: Option<String>,
}

/// Default of [`WalletConfig::derivation_cache_max`].
pub const DEFAULT_DERIVATION_CACHE_MAX: usize = 10_000;

impl fmt::Debug for WalletConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletConfig")
            .field("wallet_id", &self.wallet_id)
            .field("share_secret", &self.share_secret.as_ref().map(|_| "<redacted>"))
            .field("storage_path", &self.storage_path)
            .field("storage_url", &self.storage_url.as_deref().map(wallet_traits::redact_url))
            .field(
                "cosigner_endpoints",
                &self.cosigner_endpoints.iter().map(|u| wallet_traits::redact_url(u)).collect::<Vec<_>>(),
            )
            .field("threshold", &self.threshold)
            .field("network", &self.network)
            .field("cipher", &self.cipher)
            .field("party_key", &self.party_key.as_ref().map(|_| "<redacted>"))
            .field("peer_keys", &self.peer_keys)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("jwt_private_key_file", &self.jwt_private_key_file)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("store_options", &self.store_options.keys().collect::<Vec<_>>())
            .field("derivation_cache_max", &self.derivation_cache_max)
            .field("allowed_origins", &self.allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl WalletConfig {
    /// Options for transport factories (the keys of `wallet-transport-common`'s `option_keys`).
    pub fn transport_options(&self) -> wallet_traits::Options {
        let mut o = wallet_traits::Options::new();
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
    ];

    /// Reads the `MPC_*` variables (no file); a present but invalid value fails naming its
    /// variable.
    pub fn from_env() -> Result<Self> {
        Self::from_settings(&Settings::load_from(Self::KEYS, None, std::env::vars())?)
    }

    /// Defaults < `file` (or `./mpc-wallet.toml`) < `MPC_*` variables.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        Self::from_settings(&Settings::load(Self::KEYS, file)?)
    }

    /// From resolved [`Settings`] of [`WalletConfig::KEYS`]. Reads `party_key_file` when
    /// `party_key` is unset.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let mut c = Self::from_lookup(|var| settings.get_env(var).map(str::to_string))?;
        if c.party_key.is_none() {
            if let Some(path) = settings.get("party_key_file") {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::new(ErrorKind::Config, format!("MPC_PARTY_KEY_FILE cannot be read: {e}"))
                        .with_context("variable", "MPC_PARTY_KEY_FILE")
                        .with_context("path", path)
                })?;
                c.party_key = Some(text.trim().to_string());
            }
        }
        c.store_options = settings.store_options();
        Ok(c)
    }

    /// Like [`WalletConfig::from_env`] with any variable source (tests use a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let bad = |var: &str, e: Error| {
            Error::new(ErrorKind::Config, format!("{var} is invalid: {}", e.message()))
                .with_context("variable", var.to_string())
        };
        Ok(Self {
            wallet_id: get("MPC_WALLET_ID"),
            share_secret: get("MPC_SHARE_SECRET"),
            storage_path: get("MPC_STORAGE_PATH").map(PathBuf::from),
            storage_url: get("MPC_STORAGE_URL"),
            cosigner_endpoints: get("MPC_COSIGNER_ENDPOINTS")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            threshold: get("MPC_THRESHOLD")
                .map(|v| {
                    v.trim().parse::<u16>().map_err(|_| {
                        Error::new(ErrorKind::Config, "MPC_THRESHOLD is invalid: it must be a number such as 2")
                            .with_context("variable", "MPC_THRESHOLD")
                    })
                })
                .transpose()?,
            network: get("MPC_NETWORK")
                .map(|v| v.parse())
                .transpose()
                .map_err(|e| bad("MPC_NETWORK", e))?
                .unwrap_or_default(),
            cipher: get("MPC_CIPHER")
                .map(|v| v.parse())
                .transpose()
                .map_err(|e| bad("MPC_CIPHER", e))?
                .unwrap_or_default(),
            party_key: get("MPC_PARTY_KEY"),
            peer_keys: get("MPC_PEER_KEYS"),
            jwt_secret: get("MPC_JWT_SECRET"),
            jwt_private_key_file: get("MPC_JWT_PRIVATE_KEY_FILE").map(PathBuf::from),
            tls_ca_file: get("MPC_TLS_CA_FILE").map(PathBuf::from),
            store_options: Default::default(),
            derivation_cache_max: get("MPC_DERIVATION_CACHE_MAX")
                .map(|v| match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        "MPC_DERIVATION_CACHE_MAX is invalid: it must be a number of entries of at least 1, such as 10000",
                    )
                    .with_context("variable", "MPC_DERIVATION_CACHE_MAX")),
                })
                .transpose()?,
            allowed_origins: get("MPC_ALLOWED_ORIGINS"),
            allowed_hosts: get("MPC_ALLOWED_HOSTS"),
            api_token: get("MPC_API_TOKEN"),
        })
    }
}

impl WalletConfig {
    /// Checks what can be checked without opening a store or reaching a cosigner: required keys
    /// are set, values parse, schemes are registered, the store accepts its options, files
    /// exist. The error names the offending variable in its `variable` context.
    pub fn validate(&self) -> Result<()> {
        let named = |var: &'static str| move |e: Error| e.with_context("variable", var);
        let wallet = self.wallet_id.as_deref().ok_or_else(|| missing("MPC_WALLET_ID", "the wallet's id"))?;
        wallet_traits::WalletId::new(wallet).map_err(|e| invalid("MPC_WALLET_ID", e.message()))?;
        let secret =
            self.share_secret.clone().ok_or_else(|| missing("MPC_SHARE_SECRET", "the secret that seals shares"))?;
        crate::ShareSecret::new(secret).map_err(|e| invalid("MPC_SHARE_SECRET", e.message()))?;
        let store = self
            .storage_url
            .clone()
            .or_else(|| self.storage_path.as_ref().map(|p| format!("sqlite://{}", p.display())));
        if let Some(url) = store {
            let var = if self.storage_url.is_some() { "MPC_STORAGE_URL" } else { "MPC_STORAGE_PATH" };
            crate::settings::check_store(&url, var, &self.store_options)?;
        }
        for url in &self.cosigner_endpoints {
            wallet_traits::scheme_of(url)
                .and_then(|scheme| wallet_traits::transport_registry().get(&scheme).map(drop))
                .map_err(|e| invalid("MPC_COSIGNER_ENDPOINTS", e.message()))?;
        }
        let parties = if self.cosigner_endpoints.is_empty() { 3 } else { self.cosigner_endpoints.len() + 1 };
        let t = usize::from(self.threshold.unwrap_or(2));
        if t < 2 || t > parties {
            return Err(invalid_owned(
                "MPC_THRESHOLD".into(),
                &format!("it must be from 2 to the number of parties ({parties}: the agent and its cosigners)"),
            ));
        }
        if let Some(k) = &self.party_key {
            crate::PartyKey::from_hex(k).map_err(|e| invalid("MPC_PARTY_KEY", e.message()))?;
        }
        if let Some(p) = &self.peer_keys {
            crate::Keyring::parse_peers(p).map_err(named("MPC_PEER_KEYS"))?;
        }
        for (var, file) in
            [("MPC_JWT_PRIVATE_KEY_FILE", &self.jwt_private_key_file), ("MPC_TLS_CA_FILE", &self.tls_ca_file)]
        {
            if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
                return Err(invalid(var, &format!("{} does not exist or is not a file", f.display())));
            }
        }
        Ok(())
    }
}

fn missing(var: &'static str, what: &str) -> Error {
    Error::new(ErrorKind::Config, format!("{var} is not set: set it to {what}")).with_context("variable", var)
}

fn invalid(var: &'static str, why: &str) -> Error {
    invalid_owned(var.to_string(), why)
}

fn invalid_owned(var: String, why: &str) -> Error {
    Error::new(ErrorKind::Config, format!("{var} is invalid: {why}")).with_context("variable", var)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn reads_variables_and_redacts() {
        let env: HashMap<&str, &str> = [
            ("MPC_WALLET_ID", "agent-7"),
            ("MPC_SHARE_SECRET", "s3cret-value"),
            ("MPC_COSIGNER_ENDPOINTS", "local://1, local://2"),
            ("MPC_NETWORK", "testnet"),
        ]
        .into();
        let c = WalletConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.cosigner_endpoints, vec!["local://1", "local://2"]);
        assert_eq!(c.network, Network::Testnet);
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = WalletConfig::from_lookup(|k| (k == "MPC_NETWORK").then(|| "moon".to_string())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("MPC_NETWORK"));
        let e = WalletConfig::from_lookup(|k| (k == "MPC_THRESHOLD").then(|| "two".to_string())).unwrap_err();
        assert!(e.to_string().contains("MPC_THRESHOLD"));
    }
}
