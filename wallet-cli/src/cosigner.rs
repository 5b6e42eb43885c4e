//! `mpc-wallet cosigner`: a cosigner service over HTTP and/or gRPC.
//!
//! Configuration: defaults < a TOML file (`--config` or `./mpc-wallet.toml`) with the keys below
//! < `MPC_*` variables of the same name in upper case (`http_listen` <- `MPC_HTTP_LISTEN`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use wallet_engine::{
    settings::{SettingKey, Settings, Shown},
    CosignerService, Keyring, PartyKey, Sealer, ShareSecret, StorePrimePool,
};
use wallet_traits::CosignerTransport;
use wallet_transport_common::{audience_of, ServerLimits, TlsFiles, TokenVerifier};

/// Every key a cosigner reads, in a file (`http_listen`) and as a variable (`MPC_HTTP_LISTEN`).
pub(crate) const KEYS: &[SettingKey] = &[
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
    SettingKey::plain("session_idle_secs").default("120"),
    SettingKey::plain("max_message_bytes").default("8388608"),
    SettingKey::plain("prime_pool_target").default("1"),
];

/// A cosigner's configuration, parsed from [`KEYS`]. Values are checked here so an invalid one
/// fails at start naming its variable.
pub(crate) struct CosignerConfig {
    party_index: Option<u16>,
    http_listen: Option<String>,
    grpc_listen: Option<String>,
    storage_url: Option<String>,
    storage_path: Option<PathBuf>,
    share_secret: Option<String>,
    jwt_secret: Option<String>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_audiences: Option<String>,
    party_key: Option<String>,
    party_key_file: Option<PathBuf>,
    peer_keys: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    max_sessions: Option<usize>,
    session_idle_secs: Option<u64>,
    max_message_bytes: Option<usize>,
    prime_pool_target: Option<u64>,
    store_options: wallet_traits::Options,
}

impl std::fmt::Debug for CosignerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignerConfig")
            .field("party_index", &self.party_index)
            .field("http_listen", &self.http_listen)
            .field("grpc_listen", &self.grpc_listen)
            .finish_non_exhaustive()
    }
}

fn parse<T: std::str::FromStr>(s: &Settings, name: &str, what: &str) -> Result<Option<T>> {
    s.get(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|_| {
                let from = s.resolved(name).map(|r| r.origin.to_string()).unwrap_or_default();
                anyhow::anyhow!("MPC_{} is invalid (from {from}): it must be {what}", name.to_ascii_uppercase())
            })
        })
        .transpose()
}

impl CosignerConfig {
    pub(crate) fn from_settings(s: &Settings) -> Result<Self> {
        let text = |name: &str| s.get(name).map(str::to_string);
        let path = |name: &str| s.get(name).map(PathBuf::from);
        let c = Self {
            party_index: parse(s, "party_index", "a party index from 1 to 15")?,
            http_listen: text("http_listen"),
            grpc_listen: text("grpc_listen"),
            storage_url: text("storage_url"),
            storage_path: path("storage_path"),
            share_secret: text("share_secret"),
            jwt_secret: text("jwt_secret"),
            jwt_public_key_file: path("jwt_public_key_file"),
            jwt_audiences: text("jwt_audiences"),
            party_key: text("party_key"),
            party_key_file: path("party_key_file"),
            peer_keys: text("peer_keys"),
            tls_cert_file: path("tls_cert_file"),
            tls_key_file: path("tls_key_file"),
            max_sessions: parse(s, "max_sessions", "a whole number of sessions")?,
            session_idle_secs: parse(s, "session_idle_secs", "a whole number of seconds")?,
            max_message_bytes: parse(s, "max_message_bytes", "a whole number of bytes")?,
            prime_pool_target: parse(s, "prime_pool_target", "a whole number of prime pairs")?,
            store_options: s.store_options(),
        };
        for (name, addr) in [("MPC_HTTP_LISTEN", &c.http_listen), ("MPC_GRPC_LISTEN", &c.grpc_listen)] {
            if let Some(a) = addr {
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| anyhow::anyhow!("{name} is invalid: it must be an address such as 127.0.0.1:8001"))?;
            }
        }
        Ok(c)
    }

    /// What `run` needs before it binds anything: the party, its keys and its store.
    pub(crate) fn check(&self) -> Result<(Keyring, String)> {
        let index = self.party_index.context("set MPC_PARTY_INDEX (this cosigner's party index, 1 or more)")?;
        ShareSecret::new(self.share_secret.clone().context("set MPC_SHARE_SECRET")?).context("MPC_SHARE_SECRET")?;
        let party_key = match (&self.party_key, &self.party_key_file) {
            (Some(k), _) => PartyKey::from_hex(k).context("MPC_PARTY_KEY is invalid")?,
            (None, Some(p)) => PartyKey::from_hex(
                &std::fs::read_to_string(p).with_context(|| format!("MPC_PARTY_KEY_FILE: reading {}", p.display()))?,
            )
            .context("MPC_PARTY_KEY_FILE is invalid")?,
            (None, None) => bail!("set MPC_PARTY_KEY or MPC_PARTY_KEY_FILE (`mpc-wallet keys` makes one)"),
        };
        let peers =
            Keyring::parse_peers(self.peer_keys.as_deref().context("set MPC_PEER_KEYS (0=agent public key,...)")?)
                .context("MPC_PEER_KEYS is invalid")?;
        let store_url = match (&self.storage_url, &self.storage_path) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => format!("sqlite://{}", p.display()),
            (None, None) => bail!("set MPC_STORAGE_PATH or MPC_STORAGE_URL"),
        };
        let url_var = if self.storage_url.is_some() { "MPC_STORAGE_URL" } else { "MPC_STORAGE_PATH" };
        wallet_engine::settings::check_store(&store_url, url_var, &self.store_options)?;
        if self.http_listen.is_none() && self.grpc_listen.is_none() {
            bail!("set MPC_HTTP_LISTEN and/or MPC_GRPC_LISTEN");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            bail!("set both MPC_TLS_CERT_FILE and MPC_TLS_KEY_FILE, or neither");
        }
        if self.jwt_public_key_file.is_none() && self.jwt_secret.is_none() {
            bail!("set MPC_JWT_SECRET (or MPC_JWT_PUBLIC_KEY_FILE)");
        }
        for (name, file) in [
            ("MPC_JWT_PUBLIC_KEY_FILE", &self.jwt_public_key_file),
            ("MPC_TLS_CERT_FILE", &self.tls_cert_file),
            ("MPC_TLS_KEY_FILE", &self.tls_key_file),
        ] {
            if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
                bail!("{name} is invalid: {} does not exist or is not a file", f.display());
            }
        }
        Ok((Keyring::new(index, party_key, peers), store_url))
    }
}

pub(crate) async fn run(settings: &Settings) -> Result<()> {
    let c = CosignerConfig::from_settings(settings)?;
    let (keyring, store_url) = c.check()?;
    let index = keyring.party_index();
    let secret = ShareSecret::new(c.share_secret.clone().context("set MPC_SHARE_SECRET")?)?;
    let store = wallet_traits::open_store(&store_url, c.store_options.clone()).await?;
    let sealer = Sealer::new(secret, Default::default());
    let pool = StorePrimePool::new(store.clone(), sealer.clone(), "cosigner");
    let service = CosignerService::new(keyring.clone(), store, sealer, Arc::new(pool.clone()))?;
    let service: Arc<dyn CosignerTransport> = Arc::new(service);

    let tls = match (&c.tls_cert_file, &c.tls_key_file) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert_chain_pem: std::fs::read(cert)
                .with_context(|| format!("reading MPC_TLS_CERT_FILE {}", cert.display()))?,
            private_key_pem: std::fs::read(key)
                .with_context(|| format!("reading MPC_TLS_KEY_FILE {}", key.display()))?
                .into(),
        }),
        _ => None,
    };
    let mut limits = ServerLimits::default();
    if let Some(v) = c.max_sessions {
        limits.max_sessions = v;
    }
    if let Some(v) = c.session_idle_secs {
        limits.session_idle_timeout = Duration::from_secs(v);
    }
    if let Some(v) = c.max_message_bytes {
        limits.max_message_bytes = v;
    }

    let http = match &c.http_listen {
        Some(a) => {
            Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding MPC_HTTP_LISTEN {a}"))?)
        }
        None => None,
    };
    let grpc = match &c.grpc_listen {
        Some(a) => {
            Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding MPC_GRPC_LISTEN {a}"))?)
        }
        None => None,
    };
    let (hs, gs) = if tls.is_some() { ("https", "grpcs") } else { ("http", "grpc") };
    let mut urls = Vec::new();
    if let Some(l) = &http {
        urls.push(format!("{hs}://{}", l.local_addr()?));
    }
    if let Some(l) = &grpc {
        urls.push(format!("{gs}://{}", l.local_addr()?));
    }
    let audiences: Vec<String> = match &c.jwt_audiences {
        Some(a) => a.split(',').map(|s| audience_of(s.trim())).collect(),
        None => urls.iter().map(|u| audience_of(u)).collect(),
    };
    let verifier = Arc::new(match (&c.jwt_public_key_file, &c.jwt_secret) {
        (Some(p), _) => TokenVerifier::ed25519_pem(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            audiences,
        )?,
        (None, Some(s)) => TokenVerifier::hs256(s.as_bytes(), audiences)?,
        (None, None) => unreachable!("checked above"),
    });

    println!("cosigner {index}");
    println!("party public key: {}", keyring.public());
    for u in &urls {
        println!("listening: {u}");
    }
    // Keep prime pairs ready so a DKG does not wait a minute for this cosigner's primes.
    let target = c.prime_pool_target.unwrap_or(1);
    tokio::spawn(async move {
        if let Err(e) = pool.fill(target).await {
            tracing::warn!(error = %e, "could not fill the prime pool; DKG will generate primes on demand");
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = http {
        let router = wallet_transport_http::cosigner_router(service.clone(), verifier.clone(), limits.clone());
        let (tls, stop) = (tls.clone(), stopped(stop_rx.clone()));
        tasks.spawn(async move { wallet_transport_http::serve(l, router, tls, stop).await });
    }
    if let Some(l) = grpc {
        let (service, verifier, limits, tls, stop) =
            (service.clone(), verifier.clone(), limits.clone(), tls.clone(), stopped(stop_rx.clone()));
        tasks.spawn(async move { wallet_transport_grpc::serve(l, service, verifier, limits, tls, stop).await });
    }
    tokio::select! {
        _ = crate::shutdown_signal() => {
            let _ = stop_tx.send(true);
            while tasks.join_next().await.is_some() {}
            Ok(())
        }
        Some(done) = tasks.join_next() => {
            let _ = stop_tx.send(true);
            match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(anyhow::anyhow!("a server task failed: {e}")),
            }
        }
    }
}
