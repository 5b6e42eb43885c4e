//! `mpc-wallet mcp`: the wallet's tools for a language-model agent over the Model Context Protocol
//! (`wallet_mcp`), over stdio or, with `--listen`, over streamable HTTP behind the BRC-100 front's
//! door. The wallet starts as `serve` starts it (same configuration, store and background tasks);
//! the server answers at once and a tool waits for the wallet, with progress. Everything it says
//! goes to standard error: in stdio mode standard output is the protocol.

use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::{Context, Result};
use tokio::sync::watch;
use wallet_brc100::FrontPolicy;
use wallet_engine::{Wallet, WalletConfig};
use wallet_mcp::{CancellationToken, CosignerStatus, EngineStatus, Startup, WalletMcp, WalletParts};

/// What `wallet_status` and `get_balance` learn from the engine.
struct Engine(Arc<Wallet>);

#[async_trait::async_trait]
impl EngineStatus for Engine {
    fn protocol(&self) -> String {
        self.0.protocol().to_string()
    }

    fn threshold(&self) -> u16 {
        self.0.threshold()
    }

    async fn cosigners(&self) -> Vec<CosignerStatus> {
        // The reason is the `Unfit` wording; endpoints and details stay in the operator's log.
        self.0
            .cosigner_reports()
            .await
            .into_iter()
            .map(|r| CosignerStatus {
                index: r.index,
                can_serve: r.can_serve(),
                reason: r.unfit.as_ref().map(ToString::to_string),
                policy: r.policy,
            })
            .collect()
    }
}

fn say(line: &str) {
    eprintln!("{line}");
}

/// What the operator allows the model: `--tools`, `--max-fetch-sats`, `--fetch-hosts`,
/// `--max-sessions`.
pub(crate) struct Limits {
    pub(crate) tools: Option<Vec<String>>,
    pub(crate) max_fetch_sats: u64,
    pub(crate) fetch_hosts: Option<Vec<String>>,
    pub(crate) max_sessions: usize,
}

/// `mpc-wallet mcp [--listen ADDR] [--tools NAMES] [--max-fetch-sats N] [--fetch-hosts HOSTS]`.
pub(crate) async fn run(file: Option<&Path>, listen: Option<SocketAddr>, limits: Limits) -> Result<()> {
    let (state, watcher) = watch::channel(Startup::Starting("restoring or provisioning the wallet".into()));
    let mut server = WalletMcp::new(watcher).fetch_cap(limits.max_fetch_sats);
    if let Some(names) = &limits.tools {
        server = server.offering(names).map_err(|e| anyhow::anyhow!("--tools: {e}"))?;
    }
    if let Some(hosts) = &limits.fetch_hosts {
        server = server.fetch_hosts(hosts).map_err(|e| anyhow::anyhow!("--fetch-hosts: {e}"))?;
    }
    let hosts = limits.fetch_hosts.as_ref().map_or("any host".to_string(), |h| h.join(", "));
    let cfg = WalletConfig::load(file)?;
    // Checked before anything starts, as `serve` checks them.
    let policy = listen.map(|_| crate::serve::policy(&cfg)).transpose()?;
    let prepared = crate::agent::prepare(cfg).await?;
    let state = Arc::new(state);
    let phases = state.clone();
    let phase: crate::agent::PhaseHook = Arc::new(move |p: &str| {
        let _ = phases.send(Startup::Starting(p.to_string()));
    });
    tokio::spawn(async move {
        let started = match prepared.start(say, phase).await {
            Ok(agent) => Startup::Ready(Arc::new(WalletParts {
                keys: agent.keys,
                actions: agent.books,
                identity: Some(agent.identity),
                engine: Arc::new(Engine(agent.wallet)),
            })),
            Err(e) => {
                eprintln!("error: the wallet did not start: {e:#}");
                Startup::Failed(format!("{e:#}"))
            }
        };
        let _ = state.send(started);
    });
    eprintln!(
        "mcp: tools offered: {}; fetch reaches {hosts} and pays at most {} satoshis a call",
        server.offered().join(", "),
        limits.max_fetch_sats
    );
    match (listen, policy) {
        (Some(addr), Some(policy)) => http(server, addr, policy, limits.max_sessions).await,
        _ => {
            eprintln!("mcp: serving the wallet's tools over stdio");
            server.serve_stdio().await?;
            Ok(())
        }
    }
}

/// Streamable HTTP at `/mcp` behind the front's door, until Ctrl-C or SIGTERM.
async fn http(server: WalletMcp, listen: SocketAddr, policy: FrontPolicy, max_sessions: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let policy = policy.listening_on(addr);
    crate::serve::announce(&policy, addr, say);
    let cancel = CancellationToken::new();
    let service = server.http_service(policy.limits().max_body_bytes, max_sessions, cancel.clone());
    let health = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let app = wallet_brc100::guarded(axum::Router::new().nest_service("/mcp", service), policy, health);
    eprintln!("listening: http://{addr}/mcp");
    let shutdown = async move {
        crate::shutdown_signal().await;
        // Ends the open event streams, so the server's drain does not wait for them.
        cancel.cancel();
    };
    wallet_transport_http::serve(listener, app, None, shutdown).await?;
    Ok(())
}
