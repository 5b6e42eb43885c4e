//! The BRC-100 front's door: which web origins, `Host` names and callers may reach the wallet's
//! key methods, and how much the front buffers at once.
//!
//! Every check is a layer that runs before the body is read or any key method runs, in this
//! order: in-flight cap → `Host` → `Origin` (and the CORS preflight) → bearer token → content
//! type → bounded body read → the method. Every refusal is the JSON error shape
//! `{"isError": true, "code": "ERR_...", "message": "..."}` that `HTTPWalletJSON` reads.

use std::{fmt, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wallet_traits::{Error, ErrorKind, Result};

/// The variable listing the web origins the front serves.
pub const ORIGINS_VAR: &str = "MPC_ALLOWED_ORIGINS";
/// The variable listing extra `Host` names the front answers to.
pub const HOSTS_VAR: &str = "MPC_ALLOWED_HOSTS";
/// The variable holding the bearer token every front request must carry.
pub const TOKEN_VAR: &str = "MPC_API_TOKEN";

/// Largest request body the front accepts by default (32 MiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Default budget of request bytes buffered at once across all requests (64 MiB).
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// Default cap on requests in flight at once.
pub const MAX_IN_FLIGHT: usize = 32;
/// Default longest time a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Shortest accepted `MPC_API_TOKEN`.
const MIN_TOKEN_CHARS: usize = 16;
/// Longest accepted `MPC_API_TOKEN`.
const MAX_TOKEN_CHARS: usize = 1024;
/// Longest echo of a refused header value in an error message.
const ECHO_CHARS: usize = 100;

/// The request headers an allowed web page may send.
const ALLOW_HEADERS: &str = "content-type, accept, origin, originator";
const ALLOW_HEADERS_WITH_TOKEN: &str = "content-type, accept, origin, originator, authorization";

/// How much the front buffers: a per-request body limit, a budget of body bytes buffered at
/// once across requests, a cap on requests in flight, and the longest body upload. Beyond
/// the budget or the cap a request is answered 503 at once rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontLimits {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Request bytes buffered at once across all requests (503 beyond). At least
    /// `max_body_bytes`.
    pub max_buffered_bytes: usize,
    /// Requests in flight at once, `/health` included (503 beyond).
    pub max_in_flight: usize,
    /// Longest time to receive a request body (408 beyond).
    pub body_timeout: Duration,
}

impl Default for FrontLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
            max_in_flight: MAX_IN_FLIGHT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origins {
    /// No web page may call (the default).
    None,
    /// `*`: every web page may call.
    Any,
    /// These normalized origins.
    List(Vec<String>),
}

/// A `Host` the front answers to: `host` with this port, or with any port when `port` is none.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    host: String,
    port: Option<u16>,
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Who may use the BRC-100 front: parsed once from `MPC_ALLOWED_ORIGINS`, `MPC_ALLOWED_HOSTS`
/// and `MPC_API_TOKEN`, plus the listening address ([`FrontPolicy::listening_on`]).
///
/// The default allows no web origin, answers only to the listening address and `localhost`,
/// and needs no token: local programs (no `Origin` header) are served, web pages are not.
#[derive(Clone)]
pub struct FrontPolicy {
    origins: Origins,
    /// From `MPC_ALLOWED_HOSTS`, then `localhost`.
    hosts: Vec<HostRule>,
    listen: Option<SocketAddr>,
    /// SHA-256 of the token: compared in constant time, never shown.
    token: Option<[u8; 32]>,
    limits: FrontLimits,
}

impl fmt::Debug for FrontPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontPolicy")
            .field("origins", &self.origins)
            .field("hosts", &self.hosts)
            .field("listen", &self.listen)
            .field("token", &self.token.map(|_| "<required>"))
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for FrontPolicy {
    fn default() -> Self {
        Self {
            origins: Origins::None,
            hosts: vec![localhost()],
            listen: None,
            token: None,
            limits: FrontLimits::default(),
        }
    }
}

fn localhost() -> HostRule {
    HostRule { host: "localhost".into(), port: None }
}

fn config_error(var: &'static str, message: String) -> Error {
    Error::new(ErrorKind::Config, message).with_context("variable", var)
}

impl FrontPolicy {
    /// Parses the three variables' values (`None` or blank: unset). Errors are of kind
    /// `Config` and name the variable; the token never appears in them.
    ///
    /// - `allowed_origins`: comma-separated `scheme://host[:port]` (http or https, no path;
    ///   case and default ports are normalized), or `*` alone for every origin.
    /// - `allowed_hosts`: comma-separated `host[:port]` the `Host` header may name besides the
    ///   listening address and `localhost`; without a port, any port.
    /// - `api_token`: at least 16 visible ASCII characters, no spaces.
    pub fn parse(allowed_origins: Option<&str>, allowed_hosts: Option<&str>, api_token: Option<&str>) -> Result<Self> {
        let set = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let origins = match set(allowed_origins) {
            None => Origins::None,
            Some(v) => parse_origins(&v)?,
        };
        let mut hosts = match set(allowed_hosts) {
            None => Vec::new(),
            Some(v) => parse_hosts(&v)?,
        };
        hosts.push(localhost());
        let token = match api_token.filter(|t| !t.trim().is_empty()) {
            None => None,
            Some(t) => Some(parse_token(t)?),
        };
        Ok(Self { origins, hosts, listen: None, token, limits: FrontLimits::default() })
    }

    /// The address the front listens on: its `Host` (and, for an unspecified address such as
    /// `0.0.0.0`, the loopback addresses with its port) is accepted.
    pub fn listening_on(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Other limits than [`FrontLimits::default`].
    pub fn with_limits(mut self, limits: FrontLimits) -> Result<Self> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config, format!("front limits: {m}")));
        if limits.max_body_bytes == 0 || limits.max_in_flight == 0 || limits.body_timeout.is_zero() {
            return bad("the body limit, the in-flight cap and the body timeout must be above zero");
        }
        if limits.max_buffered_bytes < limits.max_body_bytes {
            return bad("the buffered-bytes budget must be at least the body limit");
        }
        if limits.max_buffered_bytes > Semaphore::MAX_PERMITS || limits.max_body_bytes > u32::MAX as usize {
            return bad("the body limit or the buffered-bytes budget is too large");
        }
        if limits.max_in_flight > Semaphore::MAX_PERMITS {
            return bad("the in-flight cap is too large");
        }
        self.limits = limits;
        Ok(self)
    }

    /// The limits in force.
    pub fn limits(&self) -> FrontLimits {
        self.limits
    }

    /// Whether every request needs `Authorization: Bearer <MPC_API_TOKEN>`.
    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `MPC_ALLOWED_ORIGINS` is `*` (every web page may use the wallet).
    pub fn any_origin(&self) -> bool {
        self.origins == Origins::Any
    }

    /// The allowed origins for people: `none`, `*` or the normalized list.
    pub fn origins_summary(&self) -> String {
        match &self.origins {
            Origins::None => "none".into(),
            Origins::Any => "* (every web page)".into(),
            Origins::List(list) => list.join(", "),
        }
    }

    /// The accepted `Host` values for people.
    pub fn hosts_summary(&self) -> String {
        let mut out: Vec<String> = self.listen_rules().iter().map(ToString::to_string).collect();
        out.extend(self.hosts.iter().map(|h| if h.port.is_some() { h.to_string() } else { format!("{h}[:any port]") }));
        out.join(", ")
    }

    fn listen_rules(&self) -> Vec<HostRule> {
        let Some(addr) = self.listen else { return Vec::new() };
        let port = Some(addr.port());
        let ips = if addr.ip().is_unspecified() {
            vec!["127.0.0.1".to_string(), "[::1]".to_string()]
        } else {
            vec![match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }]
        };
        ips.into_iter().map(|host| HostRule { host, port }).collect()
    }

    /// Whether a `Host` value (`host[:port]`) is one the front answers to.
    fn host_allowed(&self, value: &str) -> bool {
        let Some((host, port)) = split_host_port(value) else { return false };
        // A Host without a port names the scheme's default: the front itself is plain HTTP.
        let effective = Some(port.unwrap_or(80));
        self.listen_rules().iter().any(|r| r.host == host && r.port == effective)
            || self.hosts.iter().any(|r| r.host == host && (r.port.is_none() || r.port == port))
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn grant(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match &self.origins {
            Origins::None => None,
            Origins::Any => Some(HeaderValue::from_static("*")),
            Origins::List(list) => {
                let normalized = parse_origin(origin.to_str().ok()?)?;
                // Echo the origin as the browser wrote it: that is what it compares.
                list.contains(&normalized).then(|| origin.clone())
            }
        }
    }

    fn token_ok(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else { return true };
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else { return false };
        let value = value.as_bytes();
        let Some(space) = value.iter().position(|b| *b == b' ') else { return false };
        let (scheme, rest) = value.split_at(space);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        let presented = rest.trim_ascii();
        let digest: [u8; 32] = Sha256::digest(presented).into();
        bool::from(digest.ct_eq(expected))
    }
}

fn parse_origins(value: &str) -> Result<Origins> {
    let entries: Vec<&str> = value.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if entries.contains(&"*") {
        if entries.len() > 1 {
            return Err(config_error(
                ORIGINS_VAR,
                format!("{ORIGINS_VAR} is invalid: * stands alone (every web page); otherwise list origins such as http://localhost:3000"),
            ));
        }
        return Ok(Origins::Any);
    }
    let mut list = Vec::new();
    for entry in entries {
        let normalized = parse_origin(entry).ok_or_else(|| {
            config_error(
                ORIGINS_VAR,
                format!(
                    "{ORIGINS_VAR} is invalid: '{}' is not an origin; write scheme://host[:port] with http or https and no path, such as http://localhost:3000 or https://app.example",
                    echo(entry)
                ),
            )
        })?;
        if !list.contains(&normalized) {
            list.push(normalized);
        }
    }
    Ok(Origins::List(list))
}

fn parse_hosts(value: &str) -> Result<Vec<HostRule>> {
    let mut rules = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" {
            return Err(config_error(
                HOSTS_VAR,
                format!("{HOSTS_VAR} is invalid: * would undo the DNS-rebinding protection; list the names the wallet is reached by, such as wallet.internal:3321"),
            ));
        }
        let (host, port) = split_host_port(entry).ok_or_else(|| {
            config_error(
                HOSTS_VAR,
                format!(
                    "{HOSTS_VAR} is invalid: '{}' is not a host; write host[:port] without a scheme or path, such as wallet.internal or 10.0.0.5:3321",
                    echo(entry)
                ),
            )
        })?;
        let rule = HostRule { host, port };
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok(rules)
}

fn parse_token(token: &str) -> Result<[u8; 32]> {
    let chars = token.chars().count();
    if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&chars) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        // The token's value never appears here.
        return Err(config_error(
            TOKEN_VAR,
            format!("{TOKEN_VAR} is invalid: it must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} visible ASCII characters without spaces; generate one with `openssl rand -hex 32`"),
        ));
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

/// `scheme://host[:port]` normalized (lowercase, default port dropped), or `None`. One
/// trailing `/` is tolerated in configuration; anything else after the authority is refused.
fn parse_origin(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = split_host_port(rest)?;
    Some(match port.filter(|p| *p != default_port) {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// `host[:port]` with the host lowercased; IPv6 in brackets. `None` for anything else
/// (paths, user info, empty or bad ports, unexpected characters).
fn split_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(v6) = value.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{inside}]"), port)
    } else {
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        let label_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if host.is_empty() || !host.chars().all(label_char) || host.starts_with('.') {
            return None;
        }
        (host.to_string(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// A refused value, shortened for an error message.
fn echo(value: &str) -> String {
    let mut s: String = value.chars().take(ECHO_CHARS).filter(|c| !c.is_control()).collect();
    if value.chars().count() > ECHO_CHARS {
        s.push('…');
    }
    s
}

/// The JSON error shape with `status`.
pub(crate) fn refusal(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let body = json!({ "isError": true, "code": code, "message": message.into() });
    let mut r = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn busy(what: &str) -> Response {
    let mut r =
        refusal(StatusCode::SERVICE_UNAVAILABLE, "ERR_BUSY", format!("the wallet is busy ({what}); retry in a moment"));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Keeps `permit` until the response body has been sent (or dropped).
fn hold_until_sent(response: Response, permit: OwnedSemaphorePermit) -> Response {
    let (parts, body) = response.into_parts();
    let body = body.inspect_err(move |_| {
        let _ = &permit;
    });
    Response::from_parts(parts, Body::new(body))
}

/// What the layers share: the policy and the two budgets.
#[derive(Debug)]
pub(crate) struct Door {
    policy: FrontPolicy,
    in_flight: Arc<Semaphore>,
    buffered: Arc<Semaphore>,
}

impl Door {
    pub(crate) fn new(policy: FrontPolicy) -> Arc<Self> {
        let limits = policy.limits;
        Arc::new(Self {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            buffered: Arc::new(Semaphore::new(limits.max_buffered_bytes)),
            policy,
        })
    }
}

/// Outermost: at most `max_in_flight` requests at once; the next one is answered 503.
pub(crate) async fn in_flight(State(door): State<Arc<Door>>, req: Request, next: Next) -> Response {
    let Ok(permit) = door.in_flight.clone().try_acquire_owned() else {
        tracing::info!("front: refused a request: {} requests in flight", door.policy.limits.max_in_flight);
        return busy("too many requests in flight");
    };
    hold_until_sent(next.run(req).await, permit)
}

/// The `Host` header (and an absolute request target's authority) must name this wallet:
/// a page on a rebound DNS name (`attacker.example` resolving to 127.0.0.1) is refused.
pub(crate) async fn host(State(door): State<Arc<Door>>, req: Request, next: Next) -> Response {
    let mut values = req.headers().get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok().map(str::to_string),
        _ => None,
    };
    let target = req.uri().authority().map(|a| a.as_str().to_string());
    let ok = match (&host, &target) {
        (Some(h), Some(t)) => door.policy.host_allowed(h) && door.policy.host_allowed(t),
        (Some(h), None) => door.policy.host_allowed(h),
        (None, _) => false,
    };
    if !ok {
        let shown = host.as_deref().map(echo).unwrap_or_else(|| "(none)".into());
        tracing::info!(host = %shown, "front: refused a request for another host");
        return refusal(
            StatusCode::FORBIDDEN,
            "ERR_HOST_NOT_ALLOWED",
            format!(
                "the Host header '{shown}' is not this wallet's address; if you reach the wallet under that name, its operator can add it to {HOSTS_VAR}"
            ),
        );
    }
    next.run(req).await
}

/// A request with an `Origin` (a web page) is served only when that origin is allowed; the
/// CORS preflight is answered here, granting only allowed origins. Requests without `Origin`
/// (local programs) pass.
pub(crate) async fn origin(State(door): State<Arc<Door>>, req: Request, next: Next) -> Response {
    let policy = &door.policy;
    let mut values = req.headers().get_all(header::ORIGIN).iter();
    let origin = match (values.next(), values.next()) {
        (None, _) => {
            let mut r = next.run(req).await;
            r.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
            return r;
        }
        (Some(v), None) => Some(v.clone()),
        // Several origins are no origin a browser sends: refused even with `*`.
        (Some(_), Some(_)) => None,
    };
    let grant = origin.as_ref().and_then(|o| policy.grant(o));
    let Some(grant) = grant else {
        let shown =
            origin.as_ref().map_or_else(|| "(several)".to_string(), |o| echo(&String::from_utf8_lossy(o.as_bytes())));
        tracing::info!(origin = %shown, "front: refused a request from a web origin that is not allowed");
        let mut r = refusal(
            StatusCode::FORBIDDEN,
            "ERR_ORIGIN_NOT_ALLOWED",
            format!(
                "the web origin '{shown}' may not use this wallet; its operator can allow it by adding it to {ORIGINS_VAR}"
            ),
        );
        r.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
        return r;
    };
    let mut r = if req.method() == Method::OPTIONS { preflight(policy, req.headers()) } else { next.run(req).await };
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, grant);
    h.append(header::VARY, HeaderValue::from_static("origin"));
    r
}

/// The answer to an allowed origin's preflight.
fn preflight(policy: &FrontPolicy, request: &HeaderMap) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    let headers = if policy.token_required() { ALLOW_HEADERS_WITH_TOKEN } else { ALLOW_HEADERS };
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(headers));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    // Chrome's Private Network Access: a public page asking for a loopback address.
    let private = HeaderName::from_static("access-control-request-private-network");
    if request.get(&private).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")) {
        h.insert(HeaderName::from_static("access-control-allow-private-network"), HeaderValue::from_static("true"));
    }
    r
}

/// With `MPC_API_TOKEN` set, `Authorization: Bearer <token>` (compared in constant time).
pub(crate) async fn token(State(door): State<Arc<Door>>, req: Request, next: Next) -> Response {
    if door.policy.token_ok(req.headers()) {
        return next.run(req).await;
    }
    tracing::info!("front: refused a request without the right API token");
    let mut r = refusal(
        StatusCode::UNAUTHORIZED,
        "ERR_UNAUTHORIZED",
        format!("this wallet needs the header Authorization: Bearer <token>, with the token its operator set in {TOKEN_VAR}"),
    );
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// POST bodies are `application/json` (a web page cannot send that without a preflight).
pub(crate) async fn content_type(req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let mut values = req.headers().get_all(header::CONTENT_TYPE).iter();
    let json = match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")),
        _ => false,
    };
    if !json {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ERR_UNSUPPORTED_MEDIA_TYPE",
            "send the arguments as a JSON body with Content-Type: application/json",
        );
    }
    next.run(req).await
}

fn too_large(limit: usize) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ERR_BODY_TOO_LARGE",
        format!("the request body is larger than this wallet accepts ({limit} bytes); send less data per call"),
    )
}

/// `n` bytes of the shared budget, if that many are left. Within the body limit, so it fits in
/// a u32.
fn reserve(door: &Door, n: usize) -> Option<OwnedSemaphorePermit> {
    door.buffered.clone().try_acquire_many_owned(n as u32).ok()
}

fn budget_spent() -> Response {
    tracing::info!("front: refused a request: the buffered-bytes budget is spent");
    busy("too much request data buffered at once")
}

/// The body's frames, at most `max` bytes, growing `permit` (which holds `declared` bytes) as
/// frames beyond it arrive.
async fn read_frames(
    body: &mut Body,
    declared: usize,
    max: usize,
    door: &Door,
    permit: &mut OwnedSemaphorePermit,
) -> std::result::Result<Vec<u8>, Response> {
    let mut buf = Vec::with_capacity(declared);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(refusal(StatusCode::BAD_REQUEST, "ERR_BAD_REQUEST", "the request body could not be read"));
        };
        let Ok(data) = frame.into_data() else { continue };
        let needed = buf.len() + data.len();
        if needed > max {
            return Err(too_large(max));
        }
        if needed > permit.num_permits() {
            let Some(more) = reserve(door, needed - permit.num_permits()) else { return Err(budget_spent()) };
            permit.merge(more);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// Reads a POST body under the per-request limit, reserving its bytes from the shared budget
/// first (by `Content-Length`, or frame by frame for a chunked body); the reservation is
/// held until the response has been sent.
pub(crate) async fn read_body(State(door): State<Arc<Door>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let limits = door.policy.limits;
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => {
                return refusal(StatusCode::BAD_REQUEST, "ERR_BAD_REQUEST", "the Content-Length header is not a number")
            }
        },
    };
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return too_large(limits.max_body_bytes);
    }
    let declared = declared.unwrap_or(0) as usize;
    let Some(mut permit) = reserve(&door, declared) else { return budget_spent() };
    let (parts, mut body) = req.into_parts();
    let read = read_frames(&mut body, declared, limits.max_body_bytes, &door, &mut permit);
    let buf = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(buf)) => buf,
        Ok(Err(refused)) => return refused,
        Err(_) => {
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                "ERR_BODY_TIMEOUT",
                format!("the request body did not arrive within {} s", limits.body_timeout.as_secs()),
            )
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(buf))).await;
    hold_until_sent(response, permit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized() {
        for (input, want) in [
            ("http://localhost:3000", "http://localhost:3000"),
            ("HTTP://LocalHost:3000/", "http://localhost:3000"),
            ("http://localhost:80", "http://localhost"),
            ("https://app.example:443", "https://app.example"),
            ("https://app.example:8443", "https://app.example:8443"),
            ("http://[::1]:3000", "http://[::1]:3000"),
            ("http://127.0.0.1", "http://127.0.0.1"),
        ] {
            assert_eq!(parse_origin(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "localhost:3000",
            "ftp://x.example",
            "http://",
            "http://x.example/path",
            "http://user@x.example",
            "http://x.example:0",
            "http://x.example:99999",
            "http://x.example:",
            "http://x.example?q",
            "http://*.example",
            "null",
            "file://",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn configuration_errors_name_the_variable() {
        let cases = [
            (Some("http://ok.example, nope"), None, None, ORIGINS_VAR),
            (Some("*, http://a.example"), None, None, ORIGINS_VAR),
            (Some("http://a.example/app"), None, None, ORIGINS_VAR),
            (None, Some("*"), None, HOSTS_VAR),
            (None, Some("http://wallet.internal"), None, HOSTS_VAR),
            (None, None, Some("short"), TOKEN_VAR),
            (None, None, Some("has a space in the middle"), TOKEN_VAR),
        ];
        for (origins, hosts, token, var) in cases {
            let e = FrontPolicy::parse(origins, hosts, token).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert_eq!(e.context_value("variable"), Some(var), "{e}");
            assert!(e.message().contains(var), "{e}");
            if let Some(t) = token {
                assert!(!e.to_string().contains(t), "the token is not in the error: {e}");
            }
        }
    }

    #[test]
    fn defaults_allow_no_origin_and_only_local_hosts() {
        let p = FrontPolicy::parse(None, None, None).unwrap().listening_on("127.0.0.1:3321".parse().unwrap());
        assert_eq!(p.origins_summary(), "none");
        assert!(!p.token_required());
        assert!(p.grant(&HeaderValue::from_static("http://localhost")).is_none());
        for ok in ["127.0.0.1:3321", "localhost:3321", "LOCALHOST", "localhost:5173"] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in
            ["127.0.0.1:3322", "127.0.0.1", "attacker.example:3321", "localhost.attacker.example", "", "[::1]:3321"]
        {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        let any = FrontPolicy::parse(None, None, None).unwrap().listening_on("0.0.0.0:3321".parse().unwrap());
        assert!(any.host_allowed("127.0.0.1:3321") && any.host_allowed("[::1]:3321"));
        assert!(!any.host_allowed("0.0.0.0:3321") && !any.host_allowed("192.168.1.5:3321"));
        let listed = FrontPolicy::parse(None, Some("wallet.internal, 10.0.0.5:3321"), None).unwrap();
        assert!(listed.host_allowed("wallet.internal:8080") && listed.host_allowed("10.0.0.5:3321"));
        assert!(!listed.host_allowed("10.0.0.5:3322"));
    }

    #[test]
    fn origins_match_after_normalization_and_star_is_explicit() {
        let p = FrontPolicy::parse(Some("HTTP://LOCALHOST:3000/, https://app.example:443"), None, None).unwrap();
        assert_eq!(p.origins_summary(), "http://localhost:3000, https://app.example");
        let v = HeaderValue::from_static("https://app.example");
        assert_eq!(p.grant(&v), Some(v));
        assert!(p.grant(&HeaderValue::from_static("http://localhost:3000")).is_some());
        for bad in ["http://localhost:3001", "https://localhost:3000", "https://evil.example", "null"] {
            assert!(p.grant(&HeaderValue::from_static(bad)).is_none(), "{bad}");
        }
        let star = FrontPolicy::parse(Some("*"), None, None).unwrap();
        assert!(star.any_origin());
        assert_eq!(star.grant(&HeaderValue::from_static("https://evil.example")), Some(HeaderValue::from_static("*")));
    }

    #[test]
    fn the_token_is_compared_and_never_shown() {
        let secret = "0123456789abcdef-secret";
        let p = FrontPolicy::parse(None, None, Some(secret)).unwrap();
        assert!(!format!("{p:?}").contains(secret));
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        assert!(p.token_ok(&with("Bearer 0123456789abcdef-secret")));
        assert!(p.token_ok(&with("bearer 0123456789abcdef-secret")));
        assert!(!p.token_ok(&with("Bearer 0123456789abcdef-secreT")));
        assert!(!p.token_ok(&with("Basic 0123456789abcdef-secret")));
        assert!(!p.token_ok(&with("0123456789abcdef-secret")));
        assert!(!p.token_ok(&HeaderMap::new()));
    }

    #[test]
    fn limits_are_checked() {
        let p = FrontPolicy::default();
        let l = FrontLimits { max_buffered_bytes: 10, max_body_bytes: 11, ..FrontLimits::default() };
        assert_eq!(p.clone().with_limits(l).unwrap_err().kind(), ErrorKind::Config);
        let l = FrontLimits { max_in_flight: 0, ..FrontLimits::default() };
        assert!(p.clone().with_limits(l).is_err());
        assert!(p.with_limits(FrontLimits::default()).is_ok());
    }
}
