//! [`AuthClient`]: @bsv/sdk's `AuthFetch` (with `Peer` and `SimplifiedFetchTransport`) for one
//! wallet, with every answer checked before it is returned.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use wallet_brc100::{CreateSignatureArgs, GetPublicKeyArgs, KeyArgs, KeyMethods, VerifySignatureArgs, CODE};
use wallet_bsv::encoding::{base64_decode, base64_encode};
use wallet_traits::{redact_url, Error, ErrorKind, PublicKey, Result};

use crate::{
    certificates::{asks_for_certificates, describe, CertificateSource},
    json::{self, JsValue},
    payment::{self, Payer, PaymentHeader, PaymentReceipt, PaymentRequest, BRC29_PROTOCOL},
    wire::{self, header, EmptyBody, RequestParts, AUTH_VERSION},
};

/// The protocol every BRC-103 signature uses (security level 2).
pub const SIGNATURE_PROTOCOL: &str = "auth message signature";

/// The most a response body (or a handshake answer) may hold unless set otherwise: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;
/// How long one HTTP exchange (connect, send, the whole answer) may take unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take unless set otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a request pays without the caller raising it: 1000 satoshis.
pub const DEFAULT_MAX_PAYMENT_SATOSHIS: u64 = 1000;
/// How many `certificateRequest`s a session answers: a server that keeps asking is not obeyed
/// forever.
const MAX_CERTIFICATE_ANSWERS: u32 = 4;

fn unauthorized(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unauthorized, msg.into())
}

/// At most 80 characters of server-chosen text, for a message.
fn clip(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// `e` with `prefix` before its message, keeping its kind and context.
fn prefixed(e: Error, prefix: &str) -> Error {
    let context = e.context().to_vec();
    context.into_iter().fold(Error::new(e.kind(), format!("{prefix}{}", e.message())), |e, (k, v)| e.with_context(k, v))
}

/// An HTTP request to send authenticated.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The method (`GET` unless set).
    pub method: String,
    /// Headers: `content-type`, `authorization` and `x-bsv-*` only (see [`RequestParts::new`]).
    pub headers: Vec<(String, String)>,
    /// The body, if any; a body needs a `content-type` header.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("method", &self.method)
            .field("headers", &wire::redacted(&self.headers))
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

impl Default for AuthRequest {
    fn default() -> Self {
        Self { method: "GET".into(), headers: Vec::new(), body: None }
    }
}

impl AuthRequest {
    /// A GET.
    pub fn get() -> Self {
        Self::default()
    }

    /// `method` with `body` of `content_type`.
    pub fn with_body(method: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: method.into(),
            headers: vec![("content-type".into(), content_type.into())],
            body: Some(body.into()),
        }
    }

    /// This request with one more header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A response whose signature, request id and server identity were checked.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers the server signed (`x-bsv-*` but `x-bsv-auth-*`, and `authorization`),
    /// lowercase, as `AuthFetch`'s response holds them. Other headers were not signed, and are
    /// left out.
    pub headers: Vec<(String, String)>,
    /// The body, as signed.
    pub body: Vec<u8>,
    /// The server's identity key (compressed hex), which signed this response.
    pub server_identity_key: String,
    /// What the request paid, when the server asked for payment (402) and was paid.
    pub payment: Option<PaymentReceipt>,
}

impl std::fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResponse")
            .field("status", &self.status)
            .field("headers", &wire::redacted(&self.headers))
            .field("body_bytes", &self.body.len())
            .field("server_identity_key", &self.server_identity_key)
            .field("payment", &self.payment)
            .finish()
    }
}

impl AuthResponse {
    /// The value of a signed header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A mutually authenticated session with one server (one origin).
#[derive(Debug, Clone)]
struct Session {
    /// Our session nonce (made by our wallet).
    nonce: String,
    /// The server's session nonce.
    peer_nonce: String,
    peer_identity: PublicKey,
    /// How many certificate requests of this session were answered.
    certificate_answers: Arc<std::sync::atomic::AtomicU32>,
}

impl Session {
    fn peer_hex(&self) -> String {
        self.peer_identity.to_hex()
    }
}

/// The URL of a request, checked.
#[derive(Debug, Clone)]
struct Target {
    url: reqwest::Url,
    /// `scheme://host[:port]`, the session's key and where `/.well-known/auth` lives.
    origin: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        // Never the URL as given: its user info or a query parameter may be a credential.
        let bad = |why: &str| Error::new(ErrorKind::InvalidInput, format!("{:?} {why}", redact_url(url)));
        let mut url = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not an http:// or https:// URL"));
        }
        if url.host().is_none() {
            return Err(bad("names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // reqwest would turn them into an Authorization header the signature does not cover.
            return Err(bad("carries a user name or password; pass credentials as an authorization header"));
        }
        url.set_fragment(None);
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(Self { origin: url.origin().ascii_serialization(), url })
    }
}

/// An HTTP answer as it arrived: status, headers (lowercase names, values read as Latin-1), body.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    /// The header as fetch's `Headers.get` reads it: repeated values joined with ", ".
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// [`Raw::header`], absent when blank too, as the SDK treats a blank auth header.
    fn auth_header(&self, name: &str) -> Option<String> {
        self.header(name).filter(|v| !v.trim().is_empty())
    }

    /// The start of the body, for a message about a refused answer: short, one line, and said
    /// to be unverified, since whoever answered chose it.
    fn preview(&self) -> String {
        let cut = &self.body[..self.body.len().min(160)];
        let text: String = String::from_utf8_lossy(cut).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if text.trim().is_empty() {
            String::new()
        } else {
            format!("; it said (unverified): {}", text.trim())
        }
    }
}

/// What one general exchange came to.
enum General {
    /// A response checked to be the server's answer to this request.
    Verified(AuthResponse),
    /// An answer without authentication headers (a stale session, or not a BRC-103 server).
    Unauthenticated(Raw),
    /// The server asked for certificates instead of answering; they were sent.
    CertificatesSent,
}

/// A BRC-103 mutual-authentication client over HTTP (BRC-104), with BRC-41 payments: @bsv/sdk's
/// `AuthFetch` for a wallet whose key is used only through [`KeyMethods`].
///
/// One session per server origin, made on first use (the handshake at `/.well-known/auth`) and
/// reused by later requests; a session the server forgot (it answers 401 without authentication)
/// is made again once. Every response is checked before it is returned: it must be signed by the
/// session's server over this request's id, its status, its signed headers and its body.
///
/// Options (`with_payer`, `timeout`, ...) are set before the client is cloned; a clone shares the
/// sessions.
#[derive(Clone)]
pub struct AuthClient {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Arc<KeyMethods>,
    identity: String,
    certificates: Option<Arc<dyn CertificateSource>>,
    payer: Option<Arc<dyn Payer>>,
    max_payment_satoshis: u64,
    max_response_bytes: usize,
    timeout: Duration,
    connect_timeout: Duration,
    http: tokio::sync::OnceCell<reqwest::Client>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        f.debug_struct("AuthClient")
            .field("identity", &i.identity)
            .field("certificates", &i.certificates.is_some())
            .field("payer", &i.payer.is_some())
            .field("max_payment_satoshis", &i.max_payment_satoshis)
            .field("max_response_bytes", &i.max_response_bytes)
            .field("timeout", &i.timeout)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    /// A client authenticating as the wallet behind `keys`, showing no certificates and paying
    /// nothing until told to.
    pub fn new(keys: Arc<KeyMethods>) -> Self {
        let identity = keys.identity_key().to_hex();
        Self {
            inner: Arc::new(Inner {
                keys,
                identity,
                certificates: None,
                payer: None,
                max_payment_satoshis: DEFAULT_MAX_PAYMENT_SATOSHIS,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                timeout: DEFAULT_TIMEOUT,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                http: tokio::sync::OnceCell::new(),
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        // Options are set before the first request, while this is the only handle.
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => tracing::warn!("AuthClient options are set before the client is cloned; this one was ignored"),
        }
        self
    }

    /// Where the certificates servers ask for come from. Without one, a server that asks for
    /// certificates is refused before any request is sent to it.
    #[must_use]
    pub fn with_certificates(self, source: Arc<dyn CertificateSource>) -> Self {
        self.configure(|i| i.certificates = Some(source))
    }

    /// Who pays when a server answers 402. Without one, a 402 is returned as it is.
    #[must_use]
    pub fn with_payer(self, payer: Arc<dyn Payer>) -> Self {
        self.configure(|i| i.payer = Some(payer))
    }

    /// The most one request may pay; a server asking more is refused before anything is paid
    /// (default [`DEFAULT_MAX_PAYMENT_SATOSHIS`]).
    #[must_use]
    pub fn max_payment_satoshis(self, satoshis: u64) -> Self {
        self.configure(|i| i.max_payment_satoshis = satoshis)
    }

    /// The most a response body may hold (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    #[must_use]
    pub fn max_response_bytes(self, bytes: usize) -> Self {
        self.configure(|i| i.max_response_bytes = bytes)
    }

    /// How long one HTTP exchange may take, answer included (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.configure(|i| i.timeout = timeout)
    }

    /// How long connecting may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.configure(|i| i.connect_timeout = timeout)
    }

    /// Our identity key (compressed hex), which servers see.
    pub fn identity_key(&self) -> &str {
        &self.inner.identity
    }

    /// Sends `request` to `url` authenticated and returns the server's checked answer; pays and
    /// retries once when the server asks for payment (402 with payment terms) and a payer is set.
    ///
    /// Errors: `InvalidInput` for a request that cannot be sent authenticated (a header other than
    /// content-type, authorization and x-bsv-*; a body without content type), `Unauthorized` for
    /// an answer that is not the server's signed answer to this request (bad or missing signature,
    /// another identity, another request id) or a server that asks for certificates this client
    /// cannot show, `PolicyDenied` for a price above [`AuthClient::max_payment_satoshis`],
    /// `ServiceUnavailable` and `Timeout` for a server out of reach.
    pub async fn fetch(&self, url: &str, request: AuthRequest) -> Result<AuthResponse> {
        let target = Target::parse(url)?;
        let parts = RequestParts::new(&target.url, &request.method, &request.headers, request.body.as_deref())?;
        let response = self.inner.authenticated(&target, &parts).await?;
        if response.status != 402 {
            return Ok(response);
        }
        match PaymentRequest::from_headers(&response.headers) {
            None => Ok(response),
            Some(terms) => self.inner.pay_and_retry(&target, &parts, &response, terms?).await,
        }
    }
}

impl Inner {
    async fn http(&self) -> Result<&reqwest::Client> {
        self.http
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    // A signed answer names its request; a redirect would be another one.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("mpc-wallet-auth/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot start the HTTP client: {e}")))
            })
            .await
    }

    /// Sends `request` and reads the whole answer, bounded in size and time.
    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Raw> {
        // Messages name the URL with credential-like query parameters hidden, and reqwest's error
        // is shown without its own copy of the URL.
        let url = &redact_url(url);
        let failed = |e: reqwest::Error| {
            let e = e.without_url();
            if e.is_timeout() {
                Error::new(ErrorKind::Timeout, format!("{url} did not answer within {} s", self.timeout.as_secs_f64()))
            } else if e.is_connect() {
                Error::new(
                    ErrorKind::ServiceUnavailable,
                    format!("cannot connect to {url}: {e}; check the URL and that the server is running"),
                )
            } else {
                Error::new(ErrorKind::ServiceUnavailable, format!("the exchange with {url} failed: {e}"))
            }
        };
        let mut response = request.timeout(self.timeout).send().await.map_err(failed)?;
        let too_big = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the answer from {url} is larger than {} bytes, the most this client reads (max_response_bytes)",
                    self.max_response_bytes
                ),
            )
        };
        if response.content_length().is_some_and(|n| n > self.max_response_bytes as u64) {
            return Err(too_big());
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), wire::latin1(value.as_bytes())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Raw { status, headers, body })
    }

    /// POSTs a non-general message to `/.well-known/auth`.
    async fn post_auth(&self, origin: &str, message: String) -> Result<Raw> {
        let url = format!("{origin}/.well-known/auth");
        let request = self.http().await?.post(&url).header("content-type", "application/json").body(message);
        self.send(request, &url).await
    }

    async fn sign(&self, data: Vec<u8>, key_id: String, counterparty: String) -> Result<Vec<u8>> {
        self.keys
            .create_signature(CreateSignatureArgs {
                key: KeyArgs { protocol_id: (2, SIGNATURE_PROTOCOL.into()), key_id, counterparty: Some(counterparty) },
                data: Some(data),
                hash_to_directly_sign: None,
            })
            .await
    }

    /// Whether `peer` signed `data` for us under `key_id`.
    async fn verify(&self, data: Vec<u8>, signature: Vec<u8>, key_id: String, peer: &PublicKey) -> Result<bool> {
        let args = VerifySignatureArgs {
            key: KeyArgs { protocol_id: (2, SIGNATURE_PROTOCOL.into()), key_id, counterparty: Some(peer.to_hex()) },
            data: Some(data),
            hash_to_directly_verify: None,
            signature,
            for_self: None,
        };
        match self.keys.verify_signature(args).await {
            Ok(valid) => Ok(valid),
            Err(e) if e.context_value(CODE) == Some("ERR_INVALID_SIGNATURE") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The session with `target`'s server, and whether it was made just now.
    async fn session(self: &Arc<Self>, target: &Target) -> Result<(Session, bool)> {
        if let Some(s) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(&target.origin) {
            return Ok((s.clone(), false));
        }
        let session = self.handshake(target).await?;
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(target.origin.clone(), session.clone());
        Ok((session, true))
    }

    fn forget(&self, target: &Target, session: &Session) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.get(&target.origin).is_some_and(|s| s.nonce == session.nonce) {
            sessions.remove(&target.origin);
        }
    }

    /// BRC-103's handshake: our `initialRequest`, the server's `initialResponse`, checked; then the
    /// certificates the server asks for, if it does.
    async fn handshake(self: &Arc<Self>, target: &Target) -> Result<Session> {
        let nonce = self.keys.create_nonce("self").await?;
        let request = serde_json::json!({
            "version": AUTH_VERSION,
            "messageType": "initialRequest",
            "identityKey": self.identity,
            "initialNonce": nonce,
            "requestedCertificates": { "certifiers": [], "types": {} },
        });
        let raw = self.post_auth(&target.origin, request.to_string()).await?;
        let refused = |why: String| unauthorized(format!("{} refused the handshake: {why}", target.origin));
        if !(200..300).contains(&raw.status) {
            return Err(refused(format!("it answered HTTP {}{}", raw.status, raw.preview())));
        }
        let answer: InitialResponse = serde_json::from_slice(&raw.body)
            .map_err(|e| refused(format!("its answer is not a BRC-103 initialResponse ({e})")))?;
        if answer.version != AUTH_VERSION {
            return Err(refused(format!(
                "it speaks BRC-103 version {:?}; this client speaks {AUTH_VERSION}",
                clip(&answer.version)
            )));
        }
        if answer.message_type != "initialResponse" {
            return Err(refused(format!("it answered with a {:?} message", clip(&answer.message_type))));
        }
        if answer.your_nonce.as_deref() != Some(nonce.as_str()) || !self.keys.verify_nonce(&nonce, "self").await? {
            return Err(refused("its answer is for another handshake (yourNonce is not our nonce)".into()));
        }
        let peer_identity = wallet_bsv::brc42::parse_public_key(&answer.identity_key)
            .map_err(|_| refused(format!("its identity key {:?} is not a public key", clip(&answer.identity_key))))?;
        let peer_nonce =
            answer.initial_nonce.filter(|n| !n.is_empty()).ok_or_else(|| refused("it sent no nonce".into()))?;
        let (Some(ours), Some(theirs)) = (base64_decode(&nonce), base64_decode(&peer_nonce)) else {
            return Err(refused("its nonce is not base64".into()));
        };
        // Peer.processInitialResponse: the server signs both nonces, ours first.
        let data = [ours, theirs].concat();
        let key_id = format!("{nonce} {peer_nonce}");
        if !self.verify(data, answer.signature.unwrap_or_default(), key_id, &peer_identity).await? {
            return Err(refused(format!(
                "its signature over the nonces does not verify with its identity key {}",
                peer_identity.to_hex()
            )));
        }
        tracing::debug!(origin = %target.origin, server = %peer_identity.to_hex(), "BRC-103 session established");
        let session = Session { nonce, peer_nonce, peer_identity, certificate_answers: Default::default() };
        if asks_for_certificates(answer.requested_certificates.as_ref()) {
            let requested = answer.requested_certificates.unwrap_or_default();
            self.show_certificates(target, &session, &requested).await?;
        }
        Ok(session)
    }

    /// Answers a server's request for certificates with a `certificateResponse`. A server that
    /// asks for certificates holds every request until it has them (the auth middleware waits 30 s
    /// and then refuses), so having none to show is an error now rather than a refusal later.
    async fn show_certificates(self: &Arc<Self>, target: &Target, session: &Session, requested: &Value) -> Result<()> {
        let answered = session.certificate_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if answered >= MAX_CERTIFICATE_ANSWERS {
            return Err(unauthorized(format!("{} keeps asking for certificates; giving up", target.origin)));
        }
        let peer = session.peer_hex();
        let certificates = match &self.certificates {
            Some(source) => source.certificates_for(requested, &peer).await?,
            None => Vec::new(),
        };
        if certificates.is_empty() {
            let why = if self.certificates.is_some() {
                "none of the wallet's certificates match"
            } else {
                "this client has no certificates to show"
            };
            return Err(unauthorized(format!(
                "{} ({peer}) asks for certificates ({}) before it answers, and {why}",
                target.origin,
                describe(requested)
            )));
        }
        // The server checks our signature over JSON.stringify of the certificates it parsed.
        let text = serde_json::to_string(&certificates)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write the certificates as JSON: {e}")))?;
        let text = json::restringify(&text)?;
        let message_nonce = random_nonce();
        let signature = self
            .sign(text.clone().into_bytes(), format!("{message_nonce} {}", session.peer_nonce), peer.clone())
            .await?;
        let message = format!(
            "{{\"version\":{},\"messageType\":\"certificateResponse\",\"identityKey\":{},\"nonce\":{},\"initialNonce\":{},\"yourNonce\":{},\"certificates\":{text},\"signature\":{}}}",
            Value::from(AUTH_VERSION),
            Value::from(self.identity.as_str()),
            Value::from(message_nonce),
            Value::from(session.nonce.as_str()),
            Value::from(session.peer_nonce.as_str()),
            Value::from(signature),
        );
        tracing::debug!(origin = %target.origin, count = certificates.len(), "sending certificates");
        // The auth middleware takes the certificates and never answers this request (its handle
        // is dropped once they are validated), while it holds our next request until they are; so
        // this goes out alone, as SimplifiedFetchTransport does, and an answer is read only if one
        // comes (a certificateRequest would be answered).
        let (inner, target, session) = (self.clone(), target.clone(), session.clone());
        tokio::spawn(async move {
            match inner.post_auth(&target.origin, message).await {
                Ok(raw) if (200..300).contains(&raw.status) => {
                    if let Err(e) = inner.answer_auth_message(&target, &session, &raw.body).await {
                        tracing::warn!(origin = %target.origin, error = %e, "could not answer the server's message");
                    }
                }
                Ok(raw) => {
                    tracing::warn!(origin = %target.origin, status = raw.status, "the server refused our certificates{}", raw.preview())
                }
                Err(e) => tracing::debug!(origin = %target.origin, error = %e, "no answer to our certificates"),
            }
        });
        Ok(())
    }

    /// A message a server sent on `/.well-known/auth` in answer to one of ours: only a
    /// `certificateRequest` needs anything.
    ///
    /// Boxed: it answers through [`Inner::show_certificates`], which spawns it, and a cycle of
    /// `async fn`s has no size.
    fn answer_auth_message<'a>(
        self: &'a Arc<Self>,
        target: &'a Target,
        session: &'a Session,
        body: &'a [u8],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(self.answer_auth_message_now(target, session, body))
    }

    async fn answer_auth_message_now(self: &Arc<Self>, target: &Target, session: &Session, body: &[u8]) -> Result<()> {
        let Ok(text) = std::str::from_utf8(body) else { return Ok(()) };
        let Ok(message) = JsValue::parse(text) else { return Ok(()) };
        let field = |name: &str| match message.get(name) {
            Some(JsValue::String(s)) => Some(String::from_utf16_lossy(s)),
            _ => None,
        };
        if field("messageType").as_deref() != Some("certificateRequest") {
            return Ok(());
        }
        let requested = message.get("requestedCertificates").cloned().unwrap_or(JsValue::Null);
        let signature: Vec<u8> = match message.get("signature") {
            Some(JsValue::Array(items)) => items
                .iter()
                .map(|i| match i {
                    JsValue::Number(n) if n.fract() == 0.0 && (0.0..=255.0).contains(n) => Ok(*n as u8),
                    _ => Err(unauthorized("a certificateRequest's signature is not bytes")),
                })
                .collect::<Result<_>>()?,
            _ => return Err(unauthorized("a certificateRequest without a signature")),
        };
        self.certificate_request(target, session, field("nonce"), field("yourNonce"), &requested.stringify(), signature)
            .await
    }

    /// Peer.processCertificateRequest: checks the request is the session's server's, then shows
    /// the certificates it asks for.
    async fn certificate_request(
        self: &Arc<Self>,
        target: &Target,
        session: &Session,
        nonce: Option<String>,
        your_nonce: Option<String>,
        requested_json: &str,
        signature: Vec<u8>,
    ) -> Result<()> {
        if your_nonce.as_deref() != Some(session.nonce.as_str()) {
            return Err(unauthorized(format!("{} sent a certificate request for another session", target.origin)));
        }
        let key_id = format!("{} {}", nonce.unwrap_or_default(), session.nonce);
        if !self.verify(requested_json.as_bytes().to_vec(), signature, key_id, &session.peer_identity).await? {
            return Err(unauthorized(format!(
                "{} sent a certificate request whose signature does not verify",
                target.origin
            )));
        }
        let requested: Value = serde_json::from_str(requested_json).unwrap_or_default();
        if !asks_for_certificates(Some(&requested)) {
            return Ok(());
        }
        self.show_certificates(target, session, &requested).await
    }

    /// Sends `parts` on an authenticated session, making it or making it again when needed.
    async fn authenticated(self: &Arc<Self>, target: &Target, parts: &RequestParts) -> Result<AuthResponse> {
        let (mut remade, mut asked) = (false, false);
        loop {
            let (session, fresh) = self.session(target).await?;
            match self.general(target, &session, parts).await? {
                General::Verified(response) => return Ok(response),
                // AuthFetch's stale session: the server lost it (a restart) and answers 401.
                General::Unauthenticated(raw) if raw.status == 401 && !fresh && !remade => {
                    tracing::debug!(origin = %target.origin, "the server forgot our session; making a new one");
                    self.forget(target, &session);
                    remade = true;
                }
                General::Unauthenticated(raw) => {
                    let missing: Vec<&str> = [header::VERSION, header::IDENTITY_KEY, header::SIGNATURE]
                        .into_iter()
                        .filter(|h| raw.auth_header(h).is_none())
                        .collect();
                    return Err(unauthorized(format!(
                        "{} answered HTTP {} without BRC-103 authentication (no {}){}; the answer was not used",
                        target.url,
                        raw.status,
                        missing.join(", "),
                        raw.preview()
                    )));
                }
                General::CertificatesSent if !asked => asked = true,
                General::CertificatesSent => {
                    return Err(unauthorized(format!(
                        "{} asked for certificates again after getting them",
                        target.origin
                    )))
                }
            }
        }
    }

    /// One general message: the request signed and sent as SimplifiedFetchTransport sends it,
    /// and the answer checked as Peer.processGeneralMessage checks it.
    async fn general(self: &Arc<Self>, target: &Target, session: &Session, parts: &RequestParts) -> Result<General> {
        let mut request_id = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut request_id);
        let message_nonce = random_nonce();
        let signature = self
            .sign(parts.payload(&request_id), format!("{message_nonce} {}", session.peer_nonce), session.peer_hex())
            .await?;
        let url = format!("{}{}", target.origin, parts.path_and_search());
        let method = reqwest::Method::from_bytes(parts.method().as_bytes())
            .map_err(|_| Error::new(ErrorKind::InvalidInput, format!("{:?} is not an HTTP method", parts.method())))?;
        let mut request = self.http().await?.request(method, &url);
        let auth = [
            (header::VERSION, AUTH_VERSION.to_string()),
            (header::IDENTITY_KEY, self.identity.clone()),
            (header::NONCE, message_nonce),
            (header::YOUR_NONCE, session.peer_nonce.clone()),
            (header::SIGNATURE, hex::encode(signature)),
            (header::REQUEST_ID, base64_encode(&request_id)),
        ];
        for (name, value) in parts.headers().iter().map(|(n, v)| (n.as_str(), v.clone())).chain(auth) {
            let value = reqwest::header::HeaderValue::from_bytes(&wire::to_latin1(&value)).map_err(|_| {
                Error::new(ErrorKind::InvalidInput, format!("the value of header {name} cannot be sent"))
            })?;
            request = request.header(name, value);
        }
        if let Some(body) = parts.body() {
            request = request.body(body.to_vec());
        }
        let raw = self.send(request, &url).await?;
        self.check(target, session, &request_id, raw).await
    }

    /// The checks of an answer to a general message.
    async fn check(
        self: &Arc<Self>,
        target: &Target,
        session: &Session,
        request_id: &[u8; 32],
        raw: Raw,
    ) -> Result<General> {
        let refused = |why: String| unauthorized(format!("the answer from {} was refused: {why}", target.url));
        let (Some(version), Some(identity), Some(signature)) = (
            raw.auth_header(header::VERSION),
            raw.auth_header(header::IDENTITY_KEY),
            raw.auth_header(header::SIGNATURE),
        ) else {
            return Ok(General::Unauthenticated(raw));
        };
        if version != AUTH_VERSION {
            return Err(refused(format!(
                "it speaks BRC-103 version {:?}; this client speaks {AUTH_VERSION}",
                clip(&version)
            )));
        }
        let identity = wallet_bsv::brc42::parse_public_key(&identity)
            .map_err(|_| refused(format!("its identity key {:?} is not a public key", clip(&identity))))?;
        if identity != session.peer_identity {
            return Err(refused(format!(
                "it is signed as {}, not as the server of this session ({})",
                identity.to_hex(),
                session.peer_hex()
            )));
        }
        let signature = hex::decode(signature.trim()).map_err(|_| refused("its signature header is not hex".into()))?;
        let nonce = raw.header(header::NONCE);
        if raw.header(header::YOUR_NONCE).as_deref() != Some(session.nonce.as_str()) {
            return Err(refused("it names another session (x-bsv-auth-your-nonce is not our session nonce)".into()));
        }
        let key_id = format!("{} {}", nonce.clone().unwrap_or_default(), session.nonce);
        if raw.header(header::MESSAGE_TYPE).as_deref() == Some("certificateRequest") {
            let requested = raw
                .header(header::REQUESTED_CERTIFICATES)
                .ok_or_else(|| refused("a certificate request without the requested certificates".into()))?;
            let requested = json::restringify(&requested)
                .map_err(|_| refused(format!("{} is not JSON", header::REQUESTED_CERTIFICATES)))?;
            self.certificate_request(target, session, nonce, Some(session.nonce.clone()), &requested, signature)
                .await?;
            return Ok(General::CertificatesSent);
        }
        match raw.header(header::REQUEST_ID).as_deref().and_then(base64_decode) {
            Some(id) if id == request_id => {}
            Some(_) => return Err(refused("it answers another request (x-bsv-auth-request-id)".into())),
            None => return Err(refused("it names no request (x-bsv-auth-request-id missing or not base64)".into())),
        }
        let headers = wire::signed_response_headers(&raw.headers);
        let payload = wire::response_payload(request_id, raw.status, &headers, &raw.body, EmptyBody::Zero);
        let mut valid = self.verify(payload, signature.clone(), key_id.clone(), &identity).await?;
        if !valid && raw.body.is_empty() {
            let payload = wire::response_payload(request_id, raw.status, &headers, &raw.body, EmptyBody::Absent);
            valid = self.verify(payload, signature, key_id, &identity).await?;
        }
        if !valid {
            return Err(refused(format!(
                "its signature does not verify over its status, signed headers and body with the server's key {} \
                 (altered on the way, or not the server's)",
                identity.to_hex()
            )));
        }
        Ok(General::Verified(AuthResponse {
            status: raw.status,
            headers,
            body: raw.body,
            server_identity_key: identity.to_hex(),
            payment: None,
        }))
    }

    /// Pays what a 402 asks and sends the request again, once.
    async fn pay_and_retry(
        self: &Arc<Self>,
        target: &Target,
        parts: &RequestParts,
        unpaid: &AuthResponse,
        terms: PaymentRequest,
    ) -> Result<AuthResponse> {
        let payee = unpaid.server_identity_key.clone();
        let Some(payer) = &self.payer else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} asks {} satoshis for this request and this client has no payer",
                    target.origin, terms.satoshis
                ),
            ));
        };
        if terms.satoshis > self.max_payment_satoshis {
            return Err(Error::new(
                ErrorKind::PolicyDenied,
                format!(
                    "{} asks {} satoshis for this request, more than the most this request may pay ({}); nothing was \
                     paid (raise the limit, e.g. --max-pay {}, to pay it)",
                    target.origin, terms.satoshis, self.max_payment_satoshis, terms.satoshis
                ),
            ));
        }
        let suffix = self.keys.create_nonce("self").await?;
        let key = self
            .keys
            .get_public_key(GetPublicKeyArgs {
                identity_key: false,
                protocol_id: Some((2, BRC29_PROTOCOL.into())),
                key_id: Some(format!("{} {suffix}", terms.derivation_prefix)),
                counterparty: Some(payee.clone()),
                for_self: None,
            })
            .await?
            .public_key;
        let key = wallet_bsv::brc42::parse_public_key(&key)?;
        let script = wallet_bsv::Script::p2pkh_lock_to(key.as_bytes()).into_bytes();
        let (txid, beef) =
            payer.pay(terms.satoshis, script, &format!("Payment for request to {}", target.origin)).await.map_err(
                |e| prefixed(e, &format!("{} asks {} satoshis; paying them failed: ", target.origin, terms.satoshis)),
            )?;
        tracing::info!(origin = %target.origin, satoshis = terms.satoshis, %txid, "paid for a request");
        let receipt = PaymentReceipt {
            satoshis: terms.satoshis,
            txid: txid.clone(),
            payee: payee.clone(),
            derivation_prefix: terms.derivation_prefix.clone(),
            derivation_suffix: suffix.clone(),
        };
        let payment = serde_json::to_string(&PaymentHeader {
            derivation_prefix: &terms.derivation_prefix,
            derivation_suffix: &suffix,
            transaction: base64_encode(&beef),
        })
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write the payment header: {e}")))?;
        let paid = parts.with_header(payment::header::PAYMENT, &payment);
        match self.authenticated(target, &paid).await {
            Ok(mut response) => {
                response.payment = Some(receipt);
                Ok(response)
            }
            Err(e) => Err(prefixed(
                e,
                &format!("paid {} satoshis to {payee} in {txid}, but the paid request failed: ", terms.satoshis),
            )
            .with_context("txid", txid)),
        }
    }
}

/// A message nonce: 32 random bytes, base64 (Peer's `requestNonce`).
fn random_nonce() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64_encode(&b)
}

/// The server's `initialResponse`, the fields the client reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitialResponse {
    version: String,
    message_type: String,
    identity_key: String,
    initial_nonce: Option<String>,
    your_nonce: Option<String>,
    signature: Option<Vec<u8>>,
    requested_certificates: Option<Value>,
}

/// The channel `acquireCertificate`'s issuance reaches a certifier over: a JSON POST as this
/// wallet, the answer with the identity its BRC-103 session authenticated.
#[async_trait::async_trait]
impl wallet_brc100::identity::CertifierChannel for AuthClient {
    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<wallet_brc100::identity::AuthenticatedResponse> {
        let answer = self.fetch(url, AuthRequest::with_body("POST", "application/json", body)).await?;
        Ok(wallet_brc100::identity::AuthenticatedResponse {
            status: answer.status,
            body: answer.body,
            identity_key: answer.server_identity_key,
        })
    }
}
