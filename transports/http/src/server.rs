//! The cosigner side: an axum router that exposes any [`CosignerTransport`] over HTTP.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, Path, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Router,
};
use futures::{channel::mpsc, FutureExt, SinkExt, StreamExt};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wallet_traits::{
    session_queue, CosignerTransport, EcdhRequest, Envelope, Error, ErrorKind, EventStream, ExecutionId, KeyId,
    SessionChannel, SessionEvent, SessionRequest, WalletId, WireError,
};
use wallet_transport_common::{AuthLayer, Refusal, ServerLimits, TokenVerifier, VerifiedToken};

use crate::wire::{status_of, ExchangeResponse, ExecutionRef, Format, OpenSessionResponse};

/// An error on its way to the client, with the status that carries it.
struct Failure {
    status: StatusCode,
    error: Error,
}

impl Failure {
    fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { status, error: Error::new(kind, message) }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self { status: status_of(error.kind()), error }
    }
}

type Reply = Result<Response, Failure>;

fn body_reply<T: Serialize>(status: StatusCode, format: Format, value: &T) -> Reply {
    let bytes = format.encode(value)?;
    Ok((status, [(header::CONTENT_TYPE, format.header_value())], bytes).into_response())
}

/// Turns a handler's outcome into the response, errors as a [`wallet_traits::WireError`] body.
fn respond(format: Format, reply: Reply) -> Response {
    let f = match reply {
        Ok(r) => return r,
        Err(f) => f,
    };
    if f.status.is_server_error() {
        tracing::warn!(status = %f.status, kind = %f.error.kind(), "cosigner request failed: {}", f.error);
    } else {
        tracing::debug!(status = %f.status, kind = %f.error.kind(), "cosigner request refused: {}", f.error);
    }
    let bytes = format.encode(&f.error.to_wire()).unwrap_or_default();
    let mut response = (f.status, [(header::CONTENT_TYPE, format.header_value())], bytes).into_response();
    if f.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn no_content() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse_wallet(wallet: &str) -> Result<WalletId, Failure> {
    Ok(WalletId::new(wallet)?)
}

fn parse_index(index: &str) -> Result<u32, Failure> {
    index.parse().map_err(|_| {
        Failure::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidInput, "a key index is a number from 0 to 4294967295")
    })
}

fn parse_eid(eid: &str) -> Result<ExecutionId, Failure> {
    Ok(eid.parse::<ExecutionId>()?)
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Failure> {
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InvalidInput,
            format!("the request body is larger than this cosigner accepts ({limit} bytes, its max_message_bytes)"),
        )
    };
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if announced.is_some_and(|n: usize| n > limit) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(_) => {
            Err(Failure::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidInput, "the request body could not be read"))
        }
    }
}

/// One open session: the agent's side of the service's channel.
struct Session {
    wallet: WalletId,
    /// Taken when the session ends, which drops the sender (the service sees its inbound close)
    /// and frees the session slot.
    live: Mutex<Option<Live>>,
    /// One exchange drains events at a time, so they leave in order.
    events: tokio::sync::Mutex<EventStream>,
    activity: Mutex<Activity>,
    /// Why the server ended the session, reported to a poll that sees the service close.
    ended_because: Mutex<Option<WireError>>,
}

struct Live {
    /// Into a bounded queue that a task forwards to the service's sink (a request sends with a
    /// clone, so dropping this one ends the forwarding once the last batch is in).
    to_service: mpsc::Sender<Envelope>,
    _slot: OwnedSemaphorePermit,
}

struct Activity {
    last: Instant,
    in_flight: usize,
}

/// Marks a session busy for the life of a request, so the sweeper never frees a session that
/// is in the middle of a long poll.
struct Busy<'a>(&'a Session);

impl<'a> Busy<'a> {
    fn new(session: &'a Session) -> Self {
        let mut a = session.activity.lock().expect("activity lock");
        a.in_flight += 1;
        a.last = Instant::now();
        Busy(session)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut a = self.0.activity.lock().expect("activity lock");
        a.in_flight -= 1;
        a.last = Instant::now();
    }
}

struct ServerState {
    service: Arc<dyn CosignerTransport>,
    limits: ServerLimits,
    slots: Arc<Semaphore>,
    sessions: Mutex<HashMap<ExecutionId, Arc<Session>>>,
    sweeper_started: AtomicBool,
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerState")
            .field("service", &self.service.endpoint())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

type Shared = Arc<ServerState>;

impl ServerState {
    /// Binds the request's verified token to the wallet the request is about (its `sub`).
    fn authorize(&self, token: &VerifiedToken, wallet: &WalletId) -> Result<(), Failure> {
        token.for_wallet(wallet).map(drop).map_err(|e| {
            tracing::info!(wallet = %wallet, kind = %e.kind(), "refused a request: {}", e.message());
            Failure::from(e)
        })
    }

    fn session(&self, eid: &ExecutionId) -> Result<Arc<Session>, Failure> {
        let sessions = self.sessions.lock().expect("session table lock");
        sessions.get(eid).cloned().ok_or_else(|| {
            Failure::from(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no open session with this id: it ended, was closed, was never opened, or had no traffic for \
                     {} s (session_idle_timeout)",
                    self.limits.session_idle_timeout.as_secs_f32()
                ),
            ))
        })
    }

    /// Forgets a session and drops its channel to the service.
    fn end_session(&self, eid: &ExecutionId, session: &Arc<Session>) {
        {
            let mut sessions = self.sessions.lock().expect("session table lock");
            if sessions.get(eid).is_some_and(|s| Arc::ptr_eq(s, session)) {
                sessions.remove(eid);
            }
        }
        drop(session.live.lock().expect("live lock").take());
    }

    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeper_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        let every = (self.limits.session_idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        tokio::spawn(sweep(weak, every));
    }
}

/// Frees sessions with no traffic for `session_idle_timeout`; ends with the router.
async fn sweep(state: Weak<ServerState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(state) = state.upgrade() else { return };
        let idle = state.limits.session_idle_timeout;
        let stale: Vec<(ExecutionId, Arc<Session>)> = {
            let mut sessions = state.sessions.lock().expect("session table lock");
            let stale: Vec<ExecutionId> = sessions
                .iter()
                .filter(|(_, s)| {
                    let a = s.activity.lock().expect("activity lock");
                    a.in_flight == 0 && a.last.elapsed() >= idle
                })
                .map(|(eid, _)| *eid)
                .collect();
            stale.into_iter().filter_map(|eid| sessions.remove(&eid).map(|s| (eid, s))).collect()
        };
        for (eid, session) in stale {
            tracing::info!(session = %eid, wallet = %session.wallet, "freed a session idle for {:?}", idle);
            drop(session.live.lock().expect("live lock").take());
        }
    }
}

/// The cosigner API over `service`. Every `/v1` route needs a bearer token that `verifier`
/// accepts for the wallet the request is about; `limits` bound sessions, bodies and waits.
///
/// The token is verified on the request's headers, before any handler runs or any body is read
/// (the transports' one [`AuthLayer`], which the gRPC server uses too); each handler then checks
/// that it was issued for the request's wallet.
///
/// The router holds the session table; serve it with [`crate::serve`] or any axum server. Limits
/// no server can work with ([`ServerLimits::check`], as the gRPC server checks them) are `Config`.
pub fn cosigner_router(
    service: Arc<dyn CosignerTransport>,
    verifier: Arc<TokenVerifier>,
    limits: ServerLimits,
) -> wallet_traits::Result<Router> {
    limits.check()?;
    let state = Arc::new(ServerState {
        service,
        slots: Arc::new(Semaphore::new(limits.max_sessions)),
        limits,
        sessions: Mutex::new(HashMap::new()),
        sweeper_started: AtomicBool::new(false),
    });
    // Every route of this router is authenticated by one layer; a route added here cannot
    // forget it, and its handler cannot run without the `Authenticated` it provides.
    let v1 = Router::new()
        .route("/v1/wallets/{wallet}/keys/{index}", get(key_info))
        .route("/v1/wallets/{wallet}/keys/{index}/commit", post(commit))
        .route("/v1/wallets/{wallet}/keys/{index}/rollback", post(rollback))
        .route("/v1/ecdh", post(ecdh))
        .route("/v1/sessions", post(open_session))
        .route("/v1/sessions/{eid}", delete(close_session))
        .route("/v1/sessions/{eid}/messages", post(messages))
        .route("/v1/sessions/{eid}/exchange", post(exchange))
        .route_layer(AuthLayer::new(verifier, HttpRefusal));
    // An approval authenticates itself (a pinned approver key signed it, which the service
    // checks before it keeps anything): no agent token, so a person need not hold one.
    let approvals = Router::new()
        .route("/v1/approvals", post(submit_approval))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_APPROVAL_BODY));
    Ok(Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(approvals)
        .merge(v1)
        .fallback(no_route)
        .with_state(state))
}

/// How the HTTP server answers a request the [`AuthLayer`] refuses: 401 (or 503 when the replay
/// set is full) with a [`WireError`] body and `WWW-Authenticate: Bearer`. The body was never read;
/// whenever one was announced the response says `Connection: close`, so hyper ends the connection
/// after answering instead of draining the body (it only takes what already sits in its read
/// buffer).
#[derive(Debug, Clone, Copy)]
struct HttpRefusal;

impl Refusal for HttpRefusal {
    type Body = Body;

    fn refuse(&self, request: &Parts, body_announced: bool, error: Error) -> Response {
        tracing::info!(method = %request.method, path = %request.uri.path(), kind = %error.kind(),
            "refused a request: {}", error.message());
        let mut response = respond(Format::of_response(&request.headers), Err(Failure::from(error)));
        if body_announced {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The token the [`AuthLayer`] verified for this request, not yet checked against a wallet.
struct Authenticated(VerifiedToken);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<VerifiedToken>().map(Authenticated).ok_or_else(|| {
            // Only a route outside the authenticated router gets here: refuse, never serve it.
            let f = Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::Internal,
                "this route is not behind the cosigner's authentication",
            );
            respond(Format::of_response(&parts.headers), Err(f))
        })
    }
}

/// The largest approval body read; a real one is a few hundred bytes.
const MAX_APPROVAL_BODY: usize = 16 * 1024;

/// What `POST /v1/approvals` answers.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct ApprovalReceipt {
    /// Whether the approval was new to the cosigner.
    pub(crate) added: bool,
}

async fn submit_approval(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let format = Format::of_response(&headers);
    let reply = match s.service.submit_approval(&body).await {
        Ok(added) => body_reply(StatusCode::OK, format, &ApprovalReceipt { added }),
        Err(e) => Err(Failure::from(e)),
    };
    respond(format, reply)
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let format = Format::of_response(&headers);
    let reply = match s.service.health().await {
        Ok(()) => Ok("ready\n".into_response()),
        // Whatever the cause, the cosigner is not ready; the body keeps the service's kind.
        Err(error) => Err(Failure { status: StatusCode::SERVICE_UNAVAILABLE, error }),
    };
    respond(format, reply)
}

async fn no_route(headers: HeaderMap) -> Response {
    let f = Failure::new(
        StatusCode::NOT_FOUND,
        ErrorKind::Unsupported,
        "no such route on this cosigner; check that the endpoint URL is the cosigner's base URL",
    );
    respond(Format::of_response(&headers), Err(f))
}

async fn key_info(
    State(s): State<Shared>,
    Authenticated(token): Authenticated,
    Path((wallet, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let format = Format::of_response(&headers);
    let reply = async {
        let wallet = parse_wallet(&wallet)?;
        s.authorize(&token, &wallet)?;
        let key = KeyId::new(wallet, parse_index(&index)?);
        match s.service.key_info(&key).await? {
            Some(info) => body_reply(StatusCode::OK, format, &info),
            None => Err(Failure::from(
                Error::new(ErrorKind::NotFound, "this cosigner holds no share of the key").with_context("key", &key),
            )),
        }
    }
    .await;
    respond(format, reply)
}

async fn commit(s: State<Shared>, token: Authenticated, path: Path<(String, String)>, req: Request) -> Response {
    commit_or_rollback(s, token, path, req, true).await
}

async fn rollback(s: State<Shared>, token: Authenticated, path: Path<(String, String)>, req: Request) -> Response {
    commit_or_rollback(s, token, path, req, false).await
}

async fn commit_or_rollback(
    State(s): State<Shared>,
    Authenticated(token): Authenticated,
    Path((wallet, index)): Path<(String, String)>,
    req: Request,
    commit: bool,
) -> Response {
    let (parts, body) = req.into_parts();
    let format = Format::of_response(&parts.headers);
    let reply = async {
        let wallet = parse_wallet(&wallet)?;
        s.authorize(&token, &wallet)?;
        let key = KeyId::new(wallet, parse_index(&index)?);
        let in_format = Format::of_request(&parts.headers)?;
        let bytes = read_body(&parts.headers, body, s.limits.max_message_bytes).await?;
        let ExecutionRef { execution_id } = in_format.decode(&bytes, "{\"execution_id\": ...} body")?;
        if commit {
            s.service.commit(&key, &execution_id).await?;
        } else {
            s.service.rollback(&key, &execution_id).await?;
        }
        no_content()
    }
    .await;
    respond(format, reply)
}

async fn ecdh(State(s): State<Shared>, Authenticated(token): Authenticated, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let format = Format::of_response(&parts.headers);
    let reply = async {
        // The wallet is inside the body, which is read (bounded) only now that the token verified.
        let in_format = Format::of_request(&parts.headers)?;
        let bytes = read_body(&parts.headers, body, s.limits.max_message_bytes).await?;
        let request: EcdhRequest = in_format.decode(&bytes, "ECDH request")?;
        s.authorize(&token, &request.key.wallet)?;
        let partial = s.service.partial_ecdh(request).await?;
        body_reply(StatusCode::OK, format, &partial)
    }
    .await;
    respond(format, reply)
}

async fn open_session(State(s): State<Shared>, Authenticated(token): Authenticated, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let format = Format::of_response(&parts.headers);
    let reply = async {
        // The wallet is inside the body, which is read (bounded) only now that the token verified.
        let in_format = Format::of_request(&parts.headers)?;
        let bytes = read_body(&parts.headers, body, s.limits.max_message_bytes).await?;
        let request: SessionRequest = in_format.decode(&bytes, "session request")?;
        s.authorize(&token, &request.key.wallet)?;
        request.check()?;
        let slot = s.slots.clone().try_acquire_owned().map_err(|_| {
            Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::CosignerUnavailable,
                format!("this cosigner already runs {} sessions, its max_sessions; retry later", s.limits.max_sessions),
            )
        })?;
        let eid = request.execution_id;
        let wallet = request.key.wallet.clone();
        let duplicate = || {
            Failure::from(
                Error::new(ErrorKind::AlreadyExists, "a session with this execution id is already open")
                    .with_context("session", eid),
            )
        };
        // A reused execution id is the service's to refuse (with its own kind); the table
        // only guards against two live sessions under one id.
        let SessionChannel { outgoing, incoming } = s.service.open_session(request).await?;
        let (to_service, from_clients) = session_queue();
        // Ends when every sender is gone, then closes the service's sink: the agent gave up.
        tokio::spawn(from_clients.map(Ok).forward(outgoing));
        let session = Arc::new(Session {
            wallet,
            live: Mutex::new(Some(Live { to_service, _slot: slot })),
            events: tokio::sync::Mutex::new(incoming),
            activity: Mutex::new(Activity { last: Instant::now(), in_flight: 0 }),
            ended_because: Mutex::new(None),
        });
        {
            let mut sessions = s.sessions.lock().expect("session table lock");
            if sessions.contains_key(&eid) {
                return Err(duplicate());
            }
            sessions.insert(eid, session);
        }
        s.start_sweeper();
        body_reply(StatusCode::CREATED, format, &OpenSessionResponse { session: eid.to_string() })
    }
    .await;
    respond(format, reply)
}

async fn close_session(
    State(s): State<Shared>,
    Authenticated(token): Authenticated,
    Path(eid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let format = Format::of_response(&headers);
    let reply = async {
        let eid = parse_eid(&eid)?;
        let session = s.session(&eid)?;
        s.authorize(&token, &session.wallet)?;
        s.end_session(&eid, &session);
        no_content()
    }
    .await;
    respond(format, reply)
}

async fn messages(s: State<Shared>, token: Authenticated, eid: Path<String>, req: Request) -> Response {
    session_call(s, token, eid, req, false).await
}

async fn exchange(s: State<Shared>, token: Authenticated, eid: Path<String>, req: Request) -> Response {
    session_call(s, token, eid, req, true).await
}

/// `messages` forwards a batch; `exchange` forwards a batch and returns the cosigner's events.
async fn session_call(
    State(s): State<Shared>,
    Authenticated(token): Authenticated,
    Path(eid): Path<String>,
    req: Request,
    want_events: bool,
) -> Response {
    let (parts, body) = req.into_parts();
    let format = Format::of_response(&parts.headers);
    let reply = async {
        let eid = parse_eid(&eid)?;
        let session = s.session(&eid)?;
        s.authorize(&token, &session.wallet)?;
        let _busy = Busy::new(&session);
        // A batch that cannot be delivered whole leaves the run with a hole; end it rather
        // than let the parties wait for a message that never comes.
        let ended = |mut f: Failure| {
            f.error = Error::new(f.error.kind(), format!("{}; the session was ended", f.error.message()));
            // A concurrent poll sees the service close; it reports this instead of a bare end.
            *session.ended_because.lock().expect("reason lock") = Some(f.error.to_wire());
            s.end_session(&eid, &session);
            f
        };
        let in_format = Format::of_request(&parts.headers).map_err(|e| ended(e.into()))?;
        let bytes = read_body(&parts.headers, body, s.limits.max_message_bytes).await.map_err(ended)?;
        let batch: Vec<Envelope> = in_format.decode(&bytes, "batch of envelopes").map_err(|e| ended(e.into()))?;
        if batch.iter().any(|e| e.execution_id != eid) {
            return Err(ended(Failure::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                "an envelope carries another execution id than its session",
            )));
        }
        let to_service = session.live.lock().expect("live lock").as_ref().map(|live| live.to_service.clone());
        let Some(to_service) = to_service else {
            return Err(Failure::from(Error::new(ErrorKind::NotFound, "the session has just ended")));
        };
        send_all(to_service, batch, s.limits.session_idle_timeout).await.map_err(ended)?;
        if !want_events {
            return no_content();
        }
        let response = collect_events(&session, s.limits.long_poll, s.limits.max_message_bytes).await;
        if response.ended {
            s.end_session(&eid, &session);
        }
        body_reply(StatusCode::OK, format, &response)
    }
    .await;
    respond(format, reply)
}

/// Puts `batch` into the service's queue. A send waits only while the queue is full, which no
/// honest run fills (wallet_traits::SESSION_CAPACITY), and at most `idle`. A closed queue means
/// the service is done with the run; its events say why.
async fn send_all(mut to_service: mpsc::Sender<Envelope>, batch: Vec<Envelope>, idle: Duration) -> Result<(), Failure> {
    for env in batch {
        if tokio::time::timeout(idle, to_service.send(env)).await.is_err() {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::CosignerUnavailable,
                format!("the session took no message for {} s (session_idle_timeout)", idle.as_secs_f32()),
            ));
        }
    }
    Ok(())
}

fn is_final(event: &SessionEvent) -> bool {
    matches!(event, SessionEvent::Done(_) | SessionEvent::Failed(_))
}

fn size_of(event: &SessionEvent) -> usize {
    match event {
        SessionEvent::Message(env) => env.payload.len(),
        _ => 0,
    }
}

/// What the service produced since the last exchange; waits up to `long_poll` for the first
/// event when none is ready. Stops early at about `max_bytes` of payload so responses stay
/// bounded; the rest waits for the next exchange.
async fn collect_events(session: &Session, long_poll: Duration, max_bytes: usize) -> ExchangeResponse {
    let mut rx = session.events.lock().await;
    let mut events = Vec::new();
    let mut ended = false;
    match tokio::time::timeout(long_poll, rx.next()).await {
        Err(_) => {} // Nothing yet: the client polls again.
        Ok(None) => ended = true,
        Ok(Some(first)) => {
            let mut bytes = size_of(&first);
            ended = is_final(&first);
            events.push(first);
            while !ended && bytes < max_bytes {
                match rx.next().now_or_never() {
                    Some(Some(event)) => {
                        bytes += size_of(&event);
                        ended = is_final(&event);
                        events.push(event);
                    }
                    Some(None) => ended = true,
                    None => break,
                }
            }
        }
    }
    if ended && !events.last().is_some_and(is_final) {
        if let Some(reason) = session.ended_because.lock().expect("reason lock").clone() {
            events.push(SessionEvent::Failed(reason));
        }
    }
    ExchangeResponse { events, ended }
}
