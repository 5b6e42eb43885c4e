#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{collections::HashMap, sync::Arc};

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
        PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    ErrorData, Peer, RoleServer, ServerHandler, ServiceExt,
};
use tokio::sync::watch;
use wallet_brc100::{actions::Actions, identity::Identity, KeyMethods};
use wallet_traits::PolicyReport;

mod sessions;
mod tools;
mod validate;

pub use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
pub use sessions::{CappedSessions, SessionError, DEFAULT_MAX_SESSIONS};
pub use tokio_util::sync::CancellationToken;

/// What only the MPC engine knows about the wallet, which `wallet_status` and `get_balance`
/// report: the key's protocol and threshold, and each cosigner's state and spending policy.
/// The program that links the engine implements it (the CLI); this crate never links it.
#[async_trait::async_trait]
pub trait EngineStatus: Send + Sync + 'static {
    /// The threshold protocol of the key's shares, e.g. `cggmp24`.
    fn protocol(&self) -> String;
    /// How many parties sign together (the agent and t-1 cosigners).
    fn threshold(&self) -> u16;
    /// Each cosigner as it answers now (a probe per cosigner, bounded in time).
    async fn cosigners(&self) -> Vec<CosignerStatus>;
}

/// One cosigner as [`EngineStatus::cosigners`] reports it.
#[derive(Debug, Clone)]
pub struct CosignerStatus {
    /// Its party index.
    pub index: u16,
    /// Whether it can take part in signing now.
    pub can_serve: bool,
    /// Why it cannot, in words for a person (never an endpoint or a credential).
    pub reason: Option<String>,
    /// Its spending policy and what its window has used, when it reported one.
    pub policy: Option<PolicyReport>,
}

/// The provisioned wallet the tools work on.
pub struct WalletParts {
    /// The key methods (signing, encryption, derivation) over the MPC wallet.
    pub keys: Arc<KeyMethods>,
    /// The action methods over the books; `None` when the store keeps no outputs.
    pub actions: Option<Arc<Actions>>,
    /// The identity methods (certificates).
    pub identity: Option<Arc<Identity>>,
    /// What the engine knows.
    pub engine: Arc<dyn EngineStatus>,
}

impl std::fmt::Debug for WalletParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletParts")
            .field("identity_key", &self.keys.identity_key().to_hex())
            .field("actions", &self.actions.is_some())
            .field("identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

/// Where the wallet's start is: the server answers at once (an agent host does not wait a first
/// start's DKG to list tools); a tool called before the wallet is ready waits for it, reporting
/// each phase as progress.
#[derive(Debug, Clone)]
pub enum Startup {
    /// Provisioning or restoring; the phase under way, in words.
    Starting(String),
    /// Ready.
    Ready(Arc<WalletParts>),
    /// The start failed; the reason, in words for a person.
    Failed(String),
}

/// The MCP server: the wallet's tools (see the crate documentation). Cheap to clone; clones share
/// the wallet and the idempotency locks of `pay`.
#[derive(Clone, Debug)]
pub struct WalletMcp {
    state: watch::Receiver<Startup>,
    /// The tools this server offers: all unless its operator chose fewer.
    offered: Arc<Vec<&'static str>>,
    /// The most one `fetch` may pay, whatever `max_sats` a call gives.
    fetch_cap: u64,
    /// The hosts `fetch` may reach (`host` or `*.domain`); empty: any.
    fetch_hosts: Arc<Vec<String>>,
    pay_locks: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl WalletMcp {
    /// A server over the wallet whose start `state` follows.
    pub fn new(state: watch::Receiver<Startup>) -> Self {
        Self {
            state,
            offered: Arc::new(tools::NAMES.to_vec()),
            fetch_cap: DEFAULT_FETCH_CAP,
            fetch_hosts: Arc::default(),
            pay_locks: Arc::default(),
        }
    }

    /// Caps what one `fetch` may pay (default [`DEFAULT_FETCH_CAP`]): a call's `max_sats` comes
    /// from the model, which may have read a page written to make it pay; the cap is the
    /// operator's. The cosigners' spending policies apply on top.
    pub fn fetch_cap(mut self, satoshis: u64) -> Self {
        self.fetch_cap = satoshis;
        self
    }

    /// Lets `fetch` reach only these hosts: a name (`api.example.com`, `127.0.0.1`) or every
    /// subdomain of one (`*.example.com`); none given, any host. A turned model cannot then make
    /// the wallet send requests signed as its identity to services inside the network.
    pub fn fetch_hosts(mut self, patterns: &[String]) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for p in patterns.iter().map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()) {
            let name = p.strip_prefix("*.").unwrap_or(&p);
            let ok = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                && !name.starts_with('.');
            if !ok {
                return Err(format!(
                    "{:?} is not a host: give a name such as api.example.com, *.example.com or 127.0.0.1",
                    validate::echo(&p)
                ));
            }
            hosts.push(p);
        }
        self.fetch_hosts = Arc::new(hosts);
        Ok(self)
    }

    /// Offers only the tools named (an operator's choice: an agent that only reads and fetches
    /// need not hold `pay` or `prove_certificate`). A name that is no tool is refused, with the
    /// names there are.
    pub fn offering(mut self, names: &[String]) -> Result<Self, String> {
        let mut offered = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            let Some(known) = tools::NAMES.iter().find(|t| **t == name) else {
                return Err(format!(
                    "{:?} is not a tool; the tools are {}",
                    validate::echo(name),
                    tools::NAMES.join(", ")
                ));
            };
            if !offered.contains(known) {
                offered.push(*known);
            }
        }
        if offered.is_empty() {
            return Err(format!("name at least one tool of {}", tools::NAMES.join(", ")));
        }
        self.offered = Arc::new(offered);
        Ok(self)
    }

    /// The names of the tools offered, in the order `tools/list` gives them.
    pub fn offered(&self) -> Vec<&'static str> {
        tools::NAMES.iter().copied().filter(|n| self.offered.contains(n)).collect()
    }

    /// The wallet once ready, reporting the start's phases to `progress` meanwhile.
    async fn ready(&self, progress: &Progress) -> Result<Arc<WalletParts>, String> {
        let mut state = self.state.clone();
        loop {
            let now = state.borrow_and_update().clone();
            match now {
                Startup::Ready(parts) => return Ok(parts),
                Startup::Failed(why) => {
                    return Err(format!(
                    "the wallet could not start: {why}. A person must fix its configuration and restart the server; \
                         retrying the tool will not help"
                ))
                }
                Startup::Starting(phase) => progress.say(&format!("the wallet is starting: {phase}")).await,
            }
            if state.changed().await.is_err() {
                return Err("the wallet's start was abandoned; restart the server".into());
            }
        }
    }

    /// Serves MCP over standard input and output until the client closes it. Nothing else may
    /// write to standard output meanwhile.
    pub async fn serve_stdio(self) -> wallet_traits::Result<()> {
        let running = self.serve(rmcp::transport::stdio()).await.map_err(|e| {
            wallet_traits::Error::new(wallet_traits::ErrorKind::Internal, format!("MCP over stdio did not start: {e}"))
        })?;
        running.waiting().await.map_err(|e| {
            wallet_traits::Error::new(wallet_traits::ErrorKind::Internal, format!("MCP over stdio stopped: {e}"))
        })?;
        Ok(())
    }

    /// The streamable HTTP transport as a tower service (mount it at `/mcp`). Host, Origin, token
    /// and body checks are the caller's: put the BRC-100 front's door in front of it
    /// (`wallet_brc100::guarded`); rmcp's own Host check is off so the door's
    /// `MPC_ALLOWED_HOSTS` decides, and its body limit is the door's.
    /// At most `max_sessions` sessions are open at once ([`CappedSessions`]).
    pub fn http_service(
        self,
        max_body_bytes: usize,
        max_sessions: usize,
        cancel: CancellationToken,
    ) -> StreamableHttpService<WalletMcp, CappedSessions> {
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_max_request_body_bytes(max_body_bytes)
            .with_cancellation_token(cancel);
        StreamableHttpService::new(move || Ok(self.clone()), Arc::new(CappedSessions::new(max_sessions)), config)
    }
}

/// What one `fetch` may pay unless the operator says otherwise, as `mpc-wallet fetch --max-pay`.
pub const DEFAULT_FETCH_CAP: u64 = 1000;

/// Progress notifications for one tool call, when its caller asked for them (a progress token
/// in the request's `_meta`); otherwise nothing is sent.
pub(crate) struct Progress {
    target: Option<(Peer<RoleServer>, ProgressToken)>,
    step: std::sync::atomic::AtomicU32,
}

impl Progress {
    fn of(context: &RequestContext<RoleServer>) -> Self {
        let target = context.meta.get_progress_token().map(|t| (context.peer.clone(), t));
        Self { target, step: Default::default() }
    }

    /// Sends `message` as the next step (progress grows by one per message).
    pub(crate) async fn say(&self, message: &str) {
        let step = self.step.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tracing::debug!(step, "{message}");
        if let Some((peer, token)) = &self.target {
            let note = ProgressNotificationParam::new(token.clone(), f64::from(step)).with_message(message);
            // A client that went away is not the tool's failure.
            let _ = peer.notify_progress(note).await;
        }
    }
}

/// What a result moved, for the log line: a transaction and what it paid.
fn outcome(value: &serde_json::Value) -> String {
    let paid = value.get("paid").unwrap_or(value);
    match (paid.get("txid").and_then(|t| t.as_str()), paid.get("satoshis").and_then(|s| s.as_u64())) {
        (Some(txid), Some(sats)) => format!(", {sats} satoshis in {txid}"),
        (Some(txid), None) => format!(", {txid}"),
        _ => String::new(),
    }
}

const INSTRUCTIONS: &str = "An MPC (threshold-ECDSA) BSV wallet: its key is held jointly by this agent and cosigner \
     services, and every payment is checked by the cosigners' spending policy. Use wallet_status and get_balance to see \
     what the wallet can do, receive_info to get paid, pay to send satoshis (always with a fresh idempotency_key per \
     intended payment), and fetch to call paid HTTP APIs. A refusal by the spending policy is final for that payment \
     until a person approves it: report it to the user, do not retry.";

impl ServerHandler for WalletMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mpc-wallet", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let offered = tools::list().into_iter().filter(|t| self.offered.iter().any(|n| t.name == *n)).collect();
        Ok(ListToolsResult::with_all_items(offered))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let progress = Progress::of(&context);
        let name = request.name.to_string();
        // A tool not offered is, to the client, no tool at all.
        if !self.offered.iter().any(|n| *n == name) {
            return Err(ErrorData::invalid_params(
                format!("no tool named {:?}; list the tools", validate::echo(&name)),
                None,
            ));
        }
        // Arguments are checked before the call waits for a wallet still starting.
        let (asked, result) = match tools::Call::parse(&name, request.arguments.unwrap_or_default()) {
            Err(why) => (name.clone(), Err(why)),
            Ok(call) => {
                let asked = call.describe();
                let result = match call.permitted(self.fetch_cap, &self.fetch_hosts) {
                    Err(why) => Err(why),
                    Ok(()) => match self.ready(&progress).await {
                        Err(why) => Err(why),
                        Ok(parts) => call.run(self, &parts, &progress).await,
                    },
                };
                (asked, result)
            }
        };
        // One line per call for the operator: what the model asked and what came of it.
        Ok(match result {
            Ok(value) => {
                tracing::info!("mcp: {asked}: ok{}", outcome(&value));
                CallToolResult::structured(value)
            }
            Err(text) => {
                tracing::info!("mcp: {asked}: refused: {text}");
                CallToolResult::error(vec![ContentBlock::text(text)])
            }
        }
        .into())
    }
}

impl WalletMcp {
    /// The lock that serializes `pay` calls with the same idempotency label in this process.
    pub(crate) fn pay_lock(&self, label: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.pay_locks.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds, so the map stays as small as the calls in flight.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(label.to_string()).or_default().clone()
    }
}
