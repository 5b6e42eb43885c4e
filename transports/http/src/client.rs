//! The agent side: a [`CosignerTransport`] that talks to a cosigner server over HTTP(S).

use std::{collections::VecDeque, fmt, future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::{channel::mpsc, SinkExt, StreamExt};
use reqwest::{header, Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use wallet_traits::{
    redact_url, BoxFuture, CosignerTransport, EcdhPartial, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, KeyId,
    KeyInfo, Options, Result, SessionChannel, SessionEvent, SessionRequest, WalletId, WireError, SESSION_CAPACITY,
};
use wallet_transport_common::{audience_of, ca_from_options, minter_from_options, TokenMinter};

use crate::{
    wire::{kind_of_status, ExchangeResponse, ExecutionRef, Format, OpenSessionResponse, CBOR},
    HTTPS_SCHEME, HTTP_SCHEME,
};

/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for any one request, long polls included (servers poll for seconds, not this long).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries of a session open the cosigner refuses as busy (429), and the first pause between them;
/// the pause doubles after each try.
const OPEN_TRIES: u32 = 5;
const OPEN_FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// A batch of envelopes stops growing past this many payload bytes or envelopes, so one request
/// stays well under a server's body limit unless a single envelope is that large.
const BATCH_BYTES: usize = 1024 * 1024;
const BATCH_COUNT: usize = 256;
/// Best-effort session close when the agent gives up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one cosigner server (`http://` or `https://`).
///
/// Every request carries a freshly minted JWT for the wallet it concerns, with the endpoint's
/// `scheme://host:port` as audience.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    /// The endpoint as given (without a trailing slash); holds no credentials.
    endpoint: String,
    audience: String,
    minter: Arc<TokenMinter>,
    client: reqwest::Client,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.endpoint)
            .field("audience", &self.inner.audience)
            .field("minter", &self.inner.minter)
            .finish_non_exhaustive()
    }
}

fn config(message: impl Into<String>, endpoint: &str) -> Error {
    Error::new(ErrorKind::Config, message).with_context("endpoint", redact_url(endpoint))
}

/// `e` and its causes on one line (reqwest puts the useful part, such as "connection refused"
/// or "invalid peer certificate", in the causes).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl HttpTransport {
    /// A client of the cosigner at `endpoint` (`http://host:port` or `https://host:port`, optionally
    /// with a base path). Tokens come from `minter`; `extra_ca_pem` (one or more PEM certificates)
    /// is trusted for https in addition to the built-in web roots.
    pub fn new(endpoint: &str, minter: Arc<TokenMinter>, extra_ca_pem: Option<Vec<u8>>) -> Result<Self> {
        let url = reqwest::Url::parse(endpoint).map_err(|e| {
            config(format!("the cosigner endpoint is not a URL ({e}); expected http(s)://host:port"), endpoint)
        })?;
        if url.scheme() != HTTP_SCHEME && url.scheme() != HTTPS_SCHEME {
            return Err(config("the HTTP transport handles http:// and https:// endpoints", endpoint));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config(
                "put no credentials in a cosigner URL; requests are authenticated with MPC_JWT_SECRET tokens",
                endpoint,
            ));
        }
        if url.host_str().is_none_or(str::is_empty) || url.query().is_some() || url.fragment().is_some() {
            return Err(config(
                "a cosigner endpoint looks like https://host:port, without query or fragment",
                endpoint,
            ));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mpc-wallet/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| config("the CA file (MPC_TLS_CA_FILE) holds no PEM certificate", endpoint))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client =
            builder.build().map_err(|e| config(format!("cannot set up the HTTP client: {}", chain(&e)), endpoint))?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint: endpoint.trim_end_matches('/').to_string(),
                audience: audience_of(endpoint),
                minter,
                client,
            }),
        })
    }

    /// Factory for the registry: reads the token key (`jwt_secret` or
    /// `jwt_ed25519_private_key_file`) and the optional `ca_cert_file` from `options`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn CosignerTransport>>> {
        Box::pin(async move {
            let minter = minter_from_options(&options)?;
            let ca = ca_from_options(&options)?;
            Ok(Arc::new(HttpTransport::new(&url, minter, ca)?) as Arc<dyn CosignerTransport>)
        })
    }
}

/// The path segment of a wallet. `.` and `..` are valid wallet ids but would be folded away
/// as URL dot segments, so they cannot be named in a path.
fn wallet_segment(wallet: &WalletId) -> Result<&str> {
    match wallet.as_str() {
        "." | ".." => Err(Error::new(
            ErrorKind::InvalidInput,
            "the wallet ids '.' and '..' cannot be used with the HTTP transport; choose another wallet id",
        )),
        s => Ok(s),
    }
}

fn key_path(key: &KeyId) -> Result<String> {
    Ok(format!("/v1/wallets/{}/keys/{}", wallet_segment(&key.wallet)?, key.index))
}

impl Inner {
    fn unreachable(&self, e: &reqwest::Error) -> Error {
        let hint = if self.endpoint.starts_with("https") {
            "; check that it runs, that the URL is right and that its certificate is trusted (MPC_TLS_CA_FILE)"
        } else {
            "; check that it runs and that the URL is right"
        };
        Error::new(ErrorKind::CosignerUnavailable, format!("cannot reach the cosigner ({}){hint}", chain(e)))
            .with_context("endpoint", &self.endpoint)
    }

    /// Sends one request, authenticated for `wallet` when given, and returns the response
    /// whatever its status.
    async fn request(
        &self,
        method: Method,
        path: &str,
        wallet: Option<&WalletId>,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response> {
        let mut rb = self.client.request(method, format!("{}{path}", self.endpoint)).header(header::ACCEPT, CBOR);
        if let Some(wallet) = wallet {
            // A fresh token per request: long protocols never meet expiry, replays are refused.
            let token = self.minter.mint(&self.audience, wallet)?;
            rb = rb.bearer_auth(token.as_str());
        }
        if let Some(body) = body {
            rb = rb.header(header::CONTENT_TYPE, CBOR).body(body);
        }
        rb.send().await.map_err(|e| self.unreachable(&e))
    }

    /// The response if it succeeded, else the error it carries.
    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response> {
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.error_of(response).await)
        }
    }

    async fn error_of(&self, response: reqwest::Response) -> Error {
        let status = response.status();
        let format = Format::of_content_type(response.headers().get(header::CONTENT_TYPE));
        let bytes = response.bytes().await.unwrap_or_default();
        let wire = format.and_then(|f| f.decode::<WireError>(&bytes, "error").ok());
        let error = match wire {
            Some(wire) => Error::from(wire),
            // Not from a cosigner of ours (a proxy, another server): say so.
            None if status == StatusCode::NOT_FOUND => Error::new(
                ErrorKind::Config,
                "the endpoint answered 404 without a cosigner error; check the cosigner URL",
            ),
            None => Error::new(kind_of_status(status), format!("the cosigner answered HTTP {status}")),
        };
        error.with_context("endpoint", &self.endpoint).with_context("status", status.as_u16())
    }

    async fn read<T: DeserializeOwned>(&self, response: reqwest::Response, what: &str) -> Result<T> {
        let format = Format::of_content_type(response.headers().get(header::CONTENT_TYPE)).unwrap_or(Format::Cbor);
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        format.decode(&bytes, what).map_err(|e| {
            Error::new(ErrorKind::Corrupted, format!("the cosigner's answer does not parse: {}", e.message()))
                .with_context("endpoint", &self.endpoint)
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        wallet: &WalletId,
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response> {
        let response = self.request(method, path, Some(wallet), body).await?;
        self.check(response).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        wallet: &WalletId,
        body: &B,
        what: &str,
    ) -> Result<T> {
        let response = self.call(Method::POST, path, wallet, Some(Format::Cbor.encode(body)?)).await?;
        self.read(response, what).await
    }

    async fn open(&self, request: &SessionRequest) -> Result<()> {
        let body = Format::Cbor.encode(request)?;
        let mut pause = OPEN_FIRST_BACKOFF;
        for attempt in 1..=OPEN_TRIES {
            let response =
                self.request(Method::POST, "/v1/sessions", Some(&request.key.wallet), Some(body.clone())).await?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                if attempt < OPEN_TRIES {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                continue;
            }
            let response = self.check(response).await?;
            let opened: OpenSessionResponse = self.read(response, "session").await?;
            if opened.session != request.execution_id.to_string() {
                return Err(Error::new(ErrorKind::Corrupted, "the cosigner opened a session with another id")
                    .with_context("endpoint", &self.endpoint));
            }
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::CosignerUnavailable,
            format!(
                "the cosigner is busy: it refused a new session {OPEN_TRIES} times (HTTP 429, too many concurrent \
                 sessions); retry later or raise its session limit (max_sessions)"
            ),
        )
        .with_context("endpoint", &self.endpoint))
    }
}

#[async_trait]
impl CosignerTransport for HttpTransport {
    fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    async fn health(&self) -> Result<()> {
        let response = self.inner.request(Method::GET, "/ready", None, None).await?;
        self.inner.check(response).await.map(drop)
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        match self.inner.call(Method::GET, &key_path(key)?, &key.wallet, None).await {
            Ok(response) => self.inner.read(response, "key info").await.map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        wallet_segment(&request.key.wallet)?;
        self.inner.open(&request).await?;
        let (channel, peer) = SessionChannel::bounded();
        let session = PumpSession { inner: self.inner.clone(), wallet: request.key.wallet, eid: request.execution_id };
        tokio::spawn(session.run(peer.inbound, peer.events));
        Ok(channel)
    }

    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        wallet_segment(&request.key.wallet)?;
        self.inner.post("/v1/ecdh", &request.key.wallet.clone(), &request, "ECDH partial").await
    }

    async fn commit(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let body = Format::Cbor.encode(&ExecutionRef { execution_id: *execution_id })?;
        self.inner.call(Method::POST, &format!("{}/commit", key_path(key)?), &key.wallet, Some(body)).await.map(drop)
    }

    async fn rollback(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let body = Format::Cbor.encode(&ExecutionRef { execution_id: *execution_id })?;
        self.inner.call(Method::POST, &format!("{}/rollback", key_path(key)?), &key.wallet, Some(body)).await.map(drop)
    }

    async fn submit_approval(&self, approval: &[u8]) -> Result<bool> {
        // No token: the approval's signature is what the cosigner checks.
        let response = self.inner.request(Method::POST, "/v1/approvals", None, Some(approval.to_vec())).await?;
        let response = self.inner.check(response).await?;
        Ok(self.inner.read::<crate::server::ApprovalReceipt>(response, "approval receipt").await?.added)
    }
}

impl HttpTransport {
    /// A client that only submits approvals ([`CosignerTransport::submit_approval`]), for a person
    /// who holds an approver key but no agent token: it mints none (a throwaway key it never uses
    /// fills the place). `extra_ca_pem` as for [`HttpTransport::new`].
    pub fn for_approvals(endpoint: &str, extra_ca_pem: Option<Vec<u8>>) -> Result<Self> {
        let unused = wallet_traits::ExecutionId::random();
        Self::new(endpoint, Arc::new(TokenMinter::hs256(unused.as_bytes())?), extra_ca_pem)
    }
}

/// The client half of one open session.
///
/// Two request streams run side by side, each strictly one request at a time so order holds
/// within each direction: envelopes go out as `POST .../messages` batches, events come back by
/// long-polling `POST .../exchange` with an empty batch. Keeping them apart means an envelope
/// never waits behind a long poll.
///
/// Envelopes waiting for the next batch and the channel's queue hold at most
/// [`SESSION_CAPACITY`] each; beyond that the agent's sends wait.
struct PumpSession {
    inner: Arc<Inner>,
    wallet: WalletId,
    eid: ExecutionId,
}

/// Why a pump stopped.
enum End {
    /// The cosigner finished (`Done`/`Failed` delivered) or closed the session.
    Finished,
    /// The agent dropped its sender or receiver.
    AgentGaveUp,
    /// The transport failed; the agent gets a `Failed` event.
    Broken(Error),
}

/// Awaits the future in `slot`, or forever when there is none.
async fn in_flight<T>(slot: &mut Option<BoxFuture<'static, T>>) -> T {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

fn take_batch(queue: &mut VecDeque<Envelope>) -> Vec<Envelope> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(env) = queue.front() {
        if !batch.is_empty() && (bytes + env.payload.len() > BATCH_BYTES || batch.len() >= BATCH_COUNT) {
            break;
        }
        bytes += env.payload.len();
        batch.extend(queue.pop_front());
    }
    batch
}

impl PumpSession {
    fn path(&self, tail: &str) -> String {
        format!("/v1/sessions/{}{tail}", self.eid)
    }

    fn send(&self, batch: Vec<Envelope>) -> BoxFuture<'static, Result<()>> {
        let (inner, wallet, path) = (self.inner.clone(), self.wallet.clone(), self.path("/messages"));
        Box::pin(async move {
            let body = Format::Cbor.encode(&batch)?;
            inner.call(Method::POST, &path, &wallet, Some(body)).await.map(drop)
        })
    }

    fn poll(&self) -> BoxFuture<'static, Result<ExchangeResponse>> {
        let (inner, wallet, path) = (self.inner.clone(), self.wallet.clone(), self.path("/exchange"));
        Box::pin(async move {
            let body = Format::Cbor.encode(&Vec::<Envelope>::new())?;
            let response = inner.call(Method::POST, &path, &wallet, Some(body)).await?;
            inner.read(response, "exchange").await
        })
    }

    fn close(&self) -> impl Future<Output = ()> + Send + 'static {
        let (inner, wallet, path) = (self.inner.clone(), self.wallet.clone(), self.path(""));
        async move {
            let closing = inner.request(Method::DELETE, &path, Some(&wallet), None);
            match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
                Ok(Ok(r)) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {}
                Ok(Ok(r)) => {
                    tracing::debug!(endpoint = %inner.endpoint, status = %r.status(), "closing a session failed")
                }
                Ok(Err(e)) => tracing::debug!(endpoint = %inner.endpoint, "closing a session failed: {e}"),
                Err(_) => tracing::debug!(endpoint = %inner.endpoint, "closing a session timed out"),
            }
        }
    }

    async fn run(self, mut agent_out: mpsc::Receiver<Envelope>, mut agent_in: mpsc::Sender<SessionEvent>) {
        let mut queue = VecDeque::new();
        let mut sending: Option<BoxFuture<'static, Result<()>>> = None;
        let mut polling = Some(self.poll());
        let end = loop {
            if sending.is_none() && !queue.is_empty() {
                sending = Some(self.send(take_batch(&mut queue)));
            }
            tokio::select! {
                next = agent_out.next(), if queue.len() < SESSION_CAPACITY => match next {
                    Some(env) => {
                        queue.push_back(env);
                        while queue.len() < SESSION_CAPACITY {
                            let Ok(env) = agent_out.try_recv() else { break };
                            queue.push_back(env);
                        }
                    }
                    None => break End::AgentGaveUp,
                },
                sent = in_flight(&mut sending) => {
                    sending = None;
                    // NotFound: the session is over on the server (it just delivered Done, or it
                    // expired); the poll reports which.
                    match sent {
                        Err(e) if e.kind() != ErrorKind::NotFound => break End::Broken(e),
                        _ => {}
                    }
                }
                polled = in_flight(&mut polling) => {
                    polling = None;
                    match polled {
                        Ok(response) => match deliver(response, &mut agent_in).await {
                            Some(end) => break end,
                            None => polling = Some(self.poll()),
                        },
                        Err(e) => break End::Broken(poll_failure(e, sending.take()).await),
                    }
                }
            }
        };
        // Cancel what is in flight before closing, so nothing races the DELETE.
        drop((sending, polling));
        match end {
            End::Finished => {}
            End::AgentGaveUp => self.close().await,
            End::Broken(e) => {
                tracing::debug!(endpoint = %self.inner.endpoint, session = %self.eid, "session failed: {e}");
                let _ = agent_in.send(SessionEvent::Failed(e.to_wire())).await;
                // The agent sees the end at once; the close is best effort.
                drop(agent_in);
                self.close().await;
            }
        }
    }
}

/// Why the session failed, given the poll's error `e`: when the server ended the session
/// (NotFound) while a batch was in flight, that batch's refusal (too large, malformed) is the
/// reason to report.
async fn poll_failure(e: Error, sending: Option<BoxFuture<'static, Result<()>>>) -> Error {
    match sending {
        Some(batch) if e.kind() == ErrorKind::NotFound => match batch.await {
            Err(refused) if refused.kind() != ErrorKind::NotFound => refused,
            _ => e,
        },
        _ => e,
    }
}

/// Hands a poll's events to the agent; says whether the session is over.
async fn deliver(response: ExchangeResponse, agent_in: &mut mpsc::Sender<SessionEvent>) -> Option<End> {
    for event in response.events {
        let last = matches!(event, SessionEvent::Done(_) | SessionEvent::Failed(_));
        let _ = agent_in.send(event).await;
        if last {
            return Some(End::Finished);
        }
    }
    if response.ended {
        Some(End::Finished)
    } else if agent_in.is_closed() {
        Some(End::AgentGaveUp)
    } else {
        None
    }
}
