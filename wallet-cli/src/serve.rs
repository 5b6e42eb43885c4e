//! `mpc-wallet serve` starts the BRC-100 front (`wallet_brc100::brc100_router`): who may use
//! the wallet's keys over HTTP (MPC_ALLOWED_ORIGINS, MPC_ALLOWED_HOSTS, MPC_API_TOKEN),
//! `/health`, and the server itself.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context, Result};
use wallet_brc100::{actions::Actions, identity::Identity, FrontPolicy, KeyMethods, HOSTS_VAR, ORIGINS_VAR, TOKEN_VAR};
use wallet_engine::WalletConfig;

/// The front's policy from the configuration; an invalid value fails naming its variable.
pub(crate) fn policy(cfg: &WalletConfig) -> wallet_traits::Result<FrontPolicy> {
    FrontPolicy::parse(cfg.allowed_origins.as_deref(), cfg.allowed_hosts.as_deref(), cfg.api_token.as_deref())
}

/// Binds `listen`, says who may call, and serves the key methods and `/health` until Ctrl-C
/// or SIGTERM.
pub(crate) async fn serve(
    methods: Arc<KeyMethods>,
    actions: Option<Arc<Actions>>,
    certificates: Arc<Identity>,
    identity: String,
    policy: FrontPolicy,
    listen: SocketAddr,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let policy = policy.listening_on(addr);
    announce(&policy, addr, |line| println!("{line}"));
    let health = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let identity = identity.clone();
            async move { axum::Json(serde_json::json!({ "status": "ok", "identity": identity })) }
        }),
    );
    let app = wallet_brc100::brc100_router(methods, actions, Some(certificates), policy, health);
    println!("listening: http://{addr}");
    // The transport's server: header-read timeout and a bounded drain at shutdown.
    wallet_transport_http::serve(listener, app, None, crate::shutdown_signal()).await?;
    Ok(())
}

/// Says (`say`) which origins and hosts are allowed and whether a token is required (never the
/// token), with a warning on standard error for the settings that open the wallet wide.
pub(crate) fn announce(policy: &FrontPolicy, addr: SocketAddr, say: fn(&str)) {
    let origins = policy.origins_summary();
    if origins == "none" {
        say(&format!("front: web origins allowed: none (set {ORIGINS_VAR} to let a web app use the wallet)"));
    } else {
        say(&format!("front: web origins allowed: {origins}"));
    }
    say(&format!("front: hosts accepted: {} (set {HOSTS_VAR} to add names)", policy.hosts_summary()));
    if policy.token_required() {
        say(&format!("front: API token: required ({TOKEN_VAR})"));
    } else {
        say(&format!("front: API token: not required (set {TOKEN_VAR} to require one)"));
    }
    let l = policy.limits();
    say(&format!(
        "front: limits: {} MiB per request, {} MiB buffered at once, {} requests in flight",
        l.max_body_bytes >> 20,
        l.max_buffered_bytes >> 20,
        l.max_in_flight
    ));
    if policy.any_origin() {
        eprintln!(
            "warning: {ORIGINS_VAR}=* lets every web page this machine's user opens ask the wallet to sign, decrypt and reveal linkage{}",
            if policy.token_required() { "" } else { "; set MPC_API_TOKEN or list your app's origins instead" }
        );
    }
    if !addr.ip().is_loopback() && !policy.token_required() {
        eprintln!(
            "warning: the wallet listens on {addr}, beyond this machine, without {TOKEN_VAR}: anyone who can reach it can use its keys"
        );
    }
}
