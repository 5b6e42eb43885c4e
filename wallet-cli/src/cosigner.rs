//! `mpc-wallet cosigner`: a cosigner service over HTTP and/or gRPC.
//!
//! Configuration: a TOML file (`--config`) with the keys below, overridden by `MPC_*` variables of
//! the same name in upper case (`http_listen` <- `MPC_HTTP_LISTEN`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use wallet_engine::{CosignerService, Keyring, PartyKey, Sealer, ShareSecret, StorePrimePool};
use wallet_traits::CosignerTransport;
use wallet_transport_common::{audience_of, ServerLimits, TlsFiles, TokenVerifier};

/// Everything a cosigner reads. Unknown keys are refused so typos fail at start.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CosignerConfig {
    /// MPC_PARTY_INDEX: 1..n-1.
    party_index: Option<u16>,
    /// MPC_HTTP_LISTEN, e.g. 127.0.0.1:8001 (port 0 picks a free one).
    http_listen: Option<String>,
    /// MPC_GRPC_LISTEN.
    grpc_listen: Option<String>,
    /// MPC_STORAGE_URL (any registered store).
    storage_url: Option<String>,
    /// MPC_STORAGE_PATH (SQLite file).
    storage_path: Option<PathBuf>,
    /// MPC_SHARE_SECRET.
    share_secret: Option<String>,
    /// MPC_JWT_SECRET (HS256).
    jwt_secret: Option<String>,
    /// MPC_JWT_PUBLIC_KEY_FILE (EdDSA: the agent's Ed25519 public key, PEM).
    jwt_public_key_file: Option<PathBuf>,
    /// MPC_JWT_AUDIENCES: comma-separated; default: this cosigner's URLs from the listen addresses.
    jwt_audiences: Option<String>,
    /// MPC_PARTY_KEY: this party's X25519 secret (hex).
    party_key: Option<String>,
    /// MPC_PARTY_KEY_FILE.
    party_key_file: Option<PathBuf>,
    /// MPC_PEER_KEYS: `0=hex,2=hex`, the agent's and the other cosigners' public keys.
    peer_keys: Option<String>,
    /// MPC_TLS_CERT_FILE / MPC_TLS_KEY_FILE: serve https / grpcs.
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    /// MPC_MAX_SESSIONS.
    max_sessions: Option<usize>,
    /// MPC_SESSION_IDLE_SECS.
    session_idle_secs: Option<u64>,
    /// MPC_MAX_MESSAGE_BYTES.
    max_message_bytes: Option<usize>,
    /// MPC_PRIME_POOL_TARGET: prime pairs kept ready in the background (default 1).
    prime_pool_target: Option<u64>,
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &str, v: Option<String>) -> Result<Option<T>> {
    v.map(|s| s.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{name} is invalid"))).transpose()
}

impl CosignerConfig {
    fn load(file: Option<&PathBuf>) -> Result<Self> {
        let mut c: CosignerConfig = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid cosigner configuration", p.display()))?
            }
            None => CosignerConfig::default(),
        };
        macro_rules! over {
            ($field:ident, $var:literal) => {
                if let Some(v) = env($var) {
                    c.$field = Some(v.into());
                }
            };
        }
        over!(http_listen, "MPC_HTTP_LISTEN");
        over!(grpc_listen, "MPC_GRPC_LISTEN");
        over!(storage_url, "MPC_STORAGE_URL");
        over!(storage_path, "MPC_STORAGE_PATH");
        over!(share_secret, "MPC_SHARE_SECRET");
        over!(jwt_secret, "MPC_JWT_SECRET");
        over!(jwt_public_key_file, "MPC_JWT_PUBLIC_KEY_FILE");
        over!(jwt_audiences, "MPC_JWT_AUDIENCES");
        over!(party_key, "MPC_PARTY_KEY");
        over!(party_key_file, "MPC_PARTY_KEY_FILE");
        over!(peer_keys, "MPC_PEER_KEYS");
        over!(tls_cert_file, "MPC_TLS_CERT_FILE");
        over!(tls_key_file, "MPC_TLS_KEY_FILE");
        if let Some(v) = parse("MPC_PARTY_INDEX", env("MPC_PARTY_INDEX"))? {
            c.party_index = Some(v);
        }
        if let Some(v) = parse("MPC_MAX_SESSIONS", env("MPC_MAX_SESSIONS"))? {
            c.max_sessions = Some(v);
        }
        if let Some(v) = parse("MPC_SESSION_IDLE_SECS", env("MPC_SESSION_IDLE_SECS"))? {
            c.session_idle_secs = Some(v);
        }
        if let Some(v) = parse("MPC_MAX_MESSAGE_BYTES", env("MPC_MAX_MESSAGE_BYTES"))? {
            c.max_message_bytes = Some(v);
        }
        if let Some(v) = parse("MPC_PRIME_POOL_TARGET", env("MPC_PRIME_POOL_TARGET"))? {
            c.prime_pool_target = Some(v);
        }
        Ok(c)
    }
}

pub(crate) async fn run(config_file: Option<PathBuf>) -> Result<()> {
    let c = CosignerConfig::load(config_file.as_ref())?;
    let index = c.party_index.context("set MPC_PARTY_INDEX (this cosigner's party index, 1 or more)")?;
    let secret = ShareSecret::new(c.share_secret.clone().context("set MPC_SHARE_SECRET")?)?;
    let party_key = match (&c.party_key, &c.party_key_file) {
        (Some(k), _) => PartyKey::from_hex(k).context("MPC_PARTY_KEY")?,
        (None, Some(p)) => {
            PartyKey::from_hex(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                .context("MPC_PARTY_KEY_FILE")?
        }
        (None, None) => bail!("set MPC_PARTY_KEY or MPC_PARTY_KEY_FILE (`mpc-wallet keys` makes one)"),
    };
    let peers = Keyring::parse_peers(c.peer_keys.as_deref().context("set MPC_PEER_KEYS (0=agent public key,...)")?)
        .context("MPC_PEER_KEYS")?;
    let keyring = Keyring::new(index, party_key, peers);
    let store_url = match (&c.storage_url, &c.storage_path) {
        (Some(u), _) => u.clone(),
        (None, Some(p)) => format!("sqlite://{}", p.display()),
        (None, None) => bail!("set MPC_STORAGE_PATH or MPC_STORAGE_URL"),
    };
    let store = wallet_traits::open_store(&store_url, wallet_engine::store_options_from_env()).await?;
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
        (None, None) => None,
        _ => bail!("set both MPC_TLS_CERT_FILE and MPC_TLS_KEY_FILE, or neither"),
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
    if http.is_none() && grpc.is_none() {
        bail!("set MPC_HTTP_LISTEN and/or MPC_GRPC_LISTEN");
    }
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
        (None, None) => bail!("set MPC_JWT_SECRET (or MPC_JWT_PUBLIC_KEY_FILE)"),
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
