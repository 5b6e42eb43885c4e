//! `mpc-wallet cosigner`: serves a cosigner (built by the engine's `CosignerBuilder` from its
//! `CosignerConfig`) over HTTP and/or gRPC. The keys are `CosignerConfig::KEYS`: a TOML file
//! (`--config` or `./mpc-wallet.toml`) < `MPC_*` variables of the same name in upper case.

use std::{net::SocketAddr, path::Path, sync::Arc};

use tokio::net::TcpListener;

use anyhow::{Context, Result};
use wallet_engine::{CosignerBuilder, CosignerConfig};
use wallet_traits::CosignerTransport;
use wallet_transport_common::{audience_of, ServerLimits, TlsFiles, TokenVerifier};

pub(crate) async fn run(file: Option<&Path>) -> Result<()> {
    let c = CosignerConfig::load(file)?;
    // Fail before anything is bound or created.
    let plugins = crate::plugins();
    c.validate_with(&plugins)?;
    let keyring = c.keyring()?;
    let (index, public) = (keyring.party_index(), keyring.public());
    let mut builder = CosignerBuilder::from_config(&c)?.keyring(keyring).plugins(plugins);
    if let Some(primes) = crate::embedded::insecure_test_primes(index) {
        builder = builder.prime_source(primes).prime_pool_target(0);
    }
    let service = builder.build().await?;
    let store = service.store();
    let spending = service.spending_policy().map(|s| s.fingerprint());
    let service: Arc<dyn CosignerTransport> = Arc::new(service);
    let tls = tls_files(&c)?;
    let http = bind(c.http_listen, "MPC_HTTP_LISTEN").await?;
    let grpc = bind(c.grpc_listen, "MPC_GRPC_LISTEN").await?;
    let (hs, gs) = if tls.is_some() { ("https", "grpcs") } else { ("http", "grpc") };
    let mut urls = Vec::new();
    if let Some(l) = &http {
        urls.push(format!("{hs}://{}", l.local_addr()?));
    }
    if let Some(l) = &grpc {
        urls.push(format!("{gs}://{}", l.local_addr()?));
    }
    // Token ids kept in the store too: a token captured before a restart is refused after it.
    let verifier = Arc::new(verifier(&c, &urls)?.remembering_in(store));
    println!("cosigner {index}");
    println!("party public key: {public}");
    match spending {
        Some(fingerprint) => {
            println!("spending policy: {fingerprint} (MPC_POLICY_FILE), counted in this cosigner's store")
        }
        None => eprintln!(
            "warning: no spending policy (MPC_POLICY_FILE): this cosigner signs any transaction the agent asks it to"
        ),
    }
    if !c.policy_raw_digests {
        println!("policy: transactions only (MPC_POLICY_RAW_DIGESTS=deny): raw digests are refused");
    }
    for u in &urls {
        println!("listening: {u}");
    }
    let limits = ServerLimits {
        max_sessions: c.max_sessions,
        session_idle_timeout: c.session_idle,
        max_message_bytes: c.max_message_bytes,
        ..ServerLimits::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = http {
        let router = wallet_transport_http::cosigner_router(service.clone(), verifier.clone(), limits.clone())?;
        let (tls, stop) = (tls.clone(), stopped(stop_rx.clone()));
        tasks.spawn(async move { wallet_transport_http::serve(l, router, tls, stop).await });
    }
    if let Some(l) = grpc {
        let (service, verifier, limits, tls, stop) =
            (service.clone(), verifier.clone(), limits.clone(), tls.clone(), stopped(stop_rx.clone()));
        tasks.spawn(async move { wallet_transport_grpc::serve(l, service, verifier, limits, tls, stop).await });
    }
    until_stopped(tasks, stop_tx).await
}

fn tls_files(c: &CosignerConfig) -> Result<Option<TlsFiles>> {
    let (Some(cert), Some(key)) = (&c.tls_cert_file, &c.tls_key_file) else { return Ok(None) };
    Ok(Some(TlsFiles {
        cert_chain_pem: std::fs::read(cert).with_context(|| format!("reading MPC_TLS_CERT_FILE {}", cert.display()))?,
        private_key_pem: std::fs::read(key)
            .with_context(|| format!("reading MPC_TLS_KEY_FILE {}", key.display()))?
            .into(),
    }))
}

async fn bind(address: Option<SocketAddr>, var: &str) -> Result<Option<TcpListener>> {
    match address {
        Some(a) => Ok(Some(TcpListener::bind(a).await.with_context(|| format!("binding {var} {a}"))?)),
        None => Ok(None),
    }
}

/// Tokens must name one of MPC_JWT_AUDIENCES, by default one of the URLs this cosigner listens on.
fn verifier(c: &CosignerConfig, urls: &[String]) -> Result<TokenVerifier> {
    let audiences: Vec<String> = match &c.jwt_audiences {
        Some(a) => a.iter().map(|s| audience_of(s)).collect(),
        None => urls.iter().map(|u| audience_of(u)).collect(),
    };
    Ok(match (&c.jwt_public_key_file, &c.jwt_secret) {
        (Some(p), _) => TokenVerifier::ed25519_pem(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            audiences,
        )?,
        (None, Some(s)) => TokenVerifier::hs256(s.as_bytes(), audiences)?,
        (None, None) => anyhow::bail!("set MPC_JWT_SECRET (or MPC_JWT_PUBLIC_KEY_FILE)"),
    })
}

/// Serves until a shutdown signal (then lets every server finish) or until one server stops.
async fn until_stopped(
    mut tasks: tokio::task::JoinSet<wallet_traits::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
) -> Result<()> {
    tokio::select! {
        _ = crate::shutdown_signal() => {
            let _ = stop.send(true);
            while tasks.join_next().await.is_some() {}
            Ok(())
        }
        Some(done) = tasks.join_next() => {
            let _ = stop.send(true);
            match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(anyhow::anyhow!("a server task failed: {e}")),
            }
        }
    }
}
