//! The agent's side: [`GrpcTransport`].

use std::{fmt, future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::{channel::mpsc, SinkExt, StreamExt};
use tonic::{
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
    Code, Request, Response, Status, Streaming,
};
use wallet_traits::{
    redact_url, scheme_of, session_queue, BoxFuture, CosignerTransport, EcdhPartial, EcdhRequest, Envelope, Error,
    ErrorKind, ExecutionId, KeyId, KeyInfo, Options, Result, SessionChannel, SessionEvent, SessionRequest, WalletId,
};
use wallet_transport_common::{audience_of, ca_from_options, minter_from_options, TokenMinter};
use zeroize::Zeroizing;

use crate::{
    convert::{self, wire_error_of},
    proto::{self as pb, cosigner_client::CosignerClient},
    GRPCS_SCHEME, GRPC_SCHEME,
};

/// Largest message the client accepts from a cosigner; a bound so a broken cosigner cannot make
/// the agent buffer without limit. Generous: real protocol messages are far smaller.
pub const CLIENT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How long a unary call or the opening of a session may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long establishing the connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to open a session while the cosigner reports it is at its session limit.
pub const BUSY_ATTEMPTS: u32 = 5;
/// Wait before the first retry of a busy cosigner; doubled after each further attempt.
pub const BUSY_FIRST_DELAY: Duration = Duration::from_millis(100);

/// A client of one cosigner over gRPC (`grpc://HOST:PORT` or `grpcs://HOST:PORT`).
///
/// Cheap to clone. Connects lazily: a cosigner that is down makes calls fail with
/// `CosignerUnavailable`, not the construction.
#[derive(Clone)]
pub struct GrpcTransport {
    endpoint: String,
    audience: String,
    minter: Arc<TokenMinter>,
    client: CosignerClient<Channel>,
}

impl fmt::Debug for GrpcTransport {
    // Only the endpoint: the minter's key and the tokens never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTransport").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

fn config_error(message: impl Into<String>, url: &str) -> Error {
    Error::new(ErrorKind::Config, message).with_context("url", redact_url(url))
}

/// Splits `grpc[s]://HOST[:PORT][/]` into (tls, authority, host).
fn parse_endpoint(url: &str) -> Result<(bool, String, String)> {
    const SHAPE: &str = "a gRPC cosigner URL looks like grpc://HOST:PORT or grpcs://HOST:PORT";
    let tls = match scheme_of(url)?.as_str() {
        GRPC_SCHEME => false,
        GRPCS_SCHEME => true,
        _ => return Err(config_error(SHAPE, url)),
    };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    if rest.contains('@') {
        return Err(config_error(
            "a gRPC cosigner URL must not carry credentials; the agent authenticates with MPC_JWT_SECRET",
            url,
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() || !path.is_empty() || authority.contains(['?', '#']) {
        return Err(config_error(SHAPE, url));
    }
    let authority = authority.to_ascii_lowercase();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
        None => authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h).to_string(),
    };
    Ok((tls, authority, host))
}

impl GrpcTransport {
    /// A client of the cosigner at `endpoint` (`grpc://HOST:PORT` or `grpcs://HOST:PORT`), minting
    /// a fresh token per call with `minter`. For `grpcs`, the server certificate must chain to
    /// the public web roots or to `extra_ca_pem` (a PEM CA certificate, from MPC_TLS_CA_FILE).
    /// The connection is made on first use.
    #[allow(clippy::unused_async, reason = "async so a later version may connect eagerly without an API change")]
    pub async fn connect(endpoint: &str, minter: Arc<TokenMinter>, extra_ca_pem: Option<Vec<u8>>) -> Result<Self> {
        let (tls, authority, host) = parse_endpoint(endpoint)?;
        let scheme = if tls { GRPCS_SCHEME } else { GRPC_SCHEME };
        let public = format!("{scheme}://{authority}");
        let http_uri = format!("{}://{authority}", if tls { "https" } else { "http" });
        let mut ep = Endpoint::from_shared(http_uri)
            .map_err(|e| config_error(format!("not a usable gRPC endpoint: {e}"), endpoint))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            // Pings find a dead connection during a long session instead of waiting forever.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        if tls {
            let mut tls_config = ClientTlsConfig::new().with_webpki_roots().domain_name(host);
            if let Some(ca) = extra_ca_pem {
                if !String::from_utf8_lossy(&ca).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(config_error(
                        "MPC_TLS_CA_FILE does not hold a PEM certificate (-----BEGIN CERTIFICATE-----)",
                        endpoint,
                    ));
                }
                tls_config = tls_config.ca_certificate(Certificate::from_pem(ca));
            }
            ep = ep
                .tls_config(tls_config)
                .map_err(|e| config_error(format!("cannot set up TLS for the cosigner: {e}"), endpoint))?;
        } else if extra_ca_pem.is_some() {
            tracing::debug!(endpoint = %public, "MPC_TLS_CA_FILE is ignored for a plaintext grpc:// endpoint");
        }
        let client = CosignerClient::new(ep.connect_lazy())
            .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
            .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES);
        Ok(Self { audience: audience_of(&public), endpoint: public, minter, client })
    }

    /// Factory for the registry: reads the JWT key (`jwt_secret` or
    /// `jwt_ed25519_private_key_file`) and the optional `ca_cert_file` from `options`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn CosignerTransport>>> {
        Box::pin(async move {
            let minter = minter_from_options(&options)?;
            let ca = ca_from_options(&options)?;
            Ok(Arc::new(Self::connect(&url, minter, ca).await?) as Arc<dyn CosignerTransport>)
        })
    }

    /// `message` with a fresh bearer token for `wallet` (none for `None`).
    fn request<T>(&self, message: T, wallet: Option<&WalletId>) -> Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(wallet) = wallet {
            let token = self.minter.mint(&self.audience, wallet)?;
            let header = Zeroizing::new(format!("Bearer {}", token.as_str()));
            let mut value = MetadataValue::try_from(header.as_str())
                .map_err(|_| Error::new(ErrorKind::Internal, "a minted token is not a valid header value"))?;
            // Never-indexed in HPACK, and hidden from the header's Debug output.
            value.set_sensitive(true);
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    /// Awaits a unary call with the request timeout and maps its status.
    async fn call<R>(&self, call: impl Future<Output = std::result::Result<Response<R>, Status>>) -> Result<R> {
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(error_of(status, &self.endpoint)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> Error {
        Error::new(ErrorKind::Timeout, format!("the cosigner did not answer within {} s", REQUEST_TIMEOUT.as_secs()))
            .with_context("endpoint", &self.endpoint)
    }

    fn corrupted(&self, e: Error) -> Error {
        Error::new(ErrorKind::Corrupted, format!("the cosigner sent a reply this agent cannot read: {}", e.message()))
            .with_context("endpoint", &self.endpoint)
    }

    fn busy(&self) -> Error {
        Error::new(
            ErrorKind::CosignerUnavailable,
            format!(
                "the cosigner is busy: it refused a new session {BUSY_ATTEMPTS} times because it runs as many \
                 sessions as it allows; retry later or raise its max_sessions"
            ),
        )
        .with_context("endpoint", &self.endpoint)
    }
}

/// The error a failed call reports: the cosigner's own error when the status carries one, else
/// one chosen by code (a proxy, the network or the gRPC layer failed).
pub(crate) fn error_of(status: Status, endpoint: &str) -> Error {
    if let Some(wire) = wire_error_of(&status) {
        return Error::from(wire).with_context("endpoint", endpoint);
    }
    let detail = status.message();
    let (kind, message) = match status.code() {
        Code::Unauthenticated => (ErrorKind::Unauthorized, format!("the cosigner refused the credentials: {detail}")),
        Code::PermissionDenied => (ErrorKind::PolicyDenied, format!("the cosigner refused the request: {detail}")),
        Code::NotFound => (ErrorKind::NotFound, detail.to_string()),
        Code::AlreadyExists => (ErrorKind::AlreadyExists, detail.to_string()),
        Code::FailedPrecondition => (ErrorKind::Conflict, detail.to_string()),
        Code::InvalidArgument => (ErrorKind::InvalidInput, detail.to_string()),
        Code::OutOfRange => (
            ErrorKind::InvalidInput,
            format!("a message is larger than the other side accepts (the cosigner's max_message_bytes): {detail}"),
        ),
        Code::DeadlineExceeded => (ErrorKind::Timeout, format!("the cosigner did not answer in time: {detail}")),
        Code::Unimplemented => (
            ErrorKind::Unsupported,
            format!("the server does not offer this cosigner API; is the URL a mpc-wallet cosigner? {detail}"),
        ),
        Code::ResourceExhausted => (ErrorKind::CosignerUnavailable, format!("the cosigner is overloaded: {detail}")),
        Code::Internal | Code::DataLoss => (ErrorKind::Internal, format!("the cosigner failed: {detail}")),
        _ => (
            ErrorKind::CosignerUnavailable,
            format!("cannot reach the cosigner; check that it runs and the URL and TLS settings: {detail}"),
        ),
    };
    Error::new(kind, message).with_context("endpoint", endpoint)
}

/// Moves envelopes and events between the agent's channel and the gRPC stream until the session
/// ends. The agent dropping its sender half-closes the request stream, which the server turns
/// into the service's inbound close. Every queue on the way holds [`wallet_traits::SESSION_CAPACITY`]
/// items, so a send here waits only when a side stops reading (see there).
async fn pump(
    endpoint: String,
    requests: mpsc::Sender<pb::ClientFrame>,
    mut from_agent: mpsc::Receiver<Envelope>,
    mut from_cosigner: Streaming<pb::ServerFrame>,
    mut to_agent: mpsc::Sender<SessionEvent>,
) {
    let mut requests = Some(requests);
    loop {
        tokio::select! {
            envelope = from_agent.next(), if requests.is_some() => match envelope {
                Some(envelope) => {
                    let frame = pb::client_frame::Frame::Envelope(convert::envelope_to_pb(envelope));
                    if let Some(tx) = requests.as_mut() {
                        // A send fails only once the call is over; the other branch reports why.
                        let _ = tx.send(pb::ClientFrame { frame: Some(frame) }).await;
                    }
                }
                None => requests = None,
            },
            frame = from_cosigner.next() => {
                let event = match frame {
                    None => break,
                    Some(Ok(frame)) => convert::event_from_pb(frame).unwrap_or_else(|e| {
                        let message = format!("the cosigner sent an unreadable session event: {}", e.message());
                        let e = Error::new(ErrorKind::Corrupted, message).with_context("endpoint", &endpoint);
                        SessionEvent::Failed(e.to_wire())
                    }),
                    Some(Err(status)) => SessionEvent::Failed(session_error_of(status, &endpoint).to_wire()),
                };
                let last = !matches!(event, SessionEvent::Message(_));
                if to_agent.send(event).await.is_err() || last {
                    break;
                }
            }
        }
    }
}

/// The error that ends a running session: the cosigner's own when it sent one, else the stream
/// broke underneath (connection lost, cosigner stopped), which is `CosignerUnavailable`.
fn session_error_of(status: Status, endpoint: &str) -> Error {
    if wire_error_of(&status).is_some() || status.code() == Code::OutOfRange {
        return error_of(status, endpoint);
    }
    Error::new(
        ErrorKind::CosignerUnavailable,
        format!("lost the session stream to the cosigner ({}): {}", status.code(), status.message()),
    )
    .with_context("endpoint", endpoint)
}

#[async_trait]
impl CosignerTransport for GrpcTransport {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn health(&self) -> Result<()> {
        let request = self.request(pb::HealthRequest {}, None)?;
        let mut client = self.client.clone();
        self.call(client.health(request)).await.map(drop)
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        let request = self.request(pb::KeyInfoRequest { key: Some(convert::key_to_pb(key)) }, Some(&key.wallet))?;
        let mut client = self.client.clone();
        let reply = self.call(client.key_info(request)).await?;
        reply.info.map(convert::key_info_from_pb).transpose().map_err(|e| self.corrupted(e))
    }

    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        let open =
            pb::ClientFrame { frame: Some(pb::client_frame::Frame::Open(convert::session_request_to_pb(&request))) };
        let mut delay = BUSY_FIRST_DELAY;
        for attempt in 1..=BUSY_ATTEMPTS {
            let (mut requests, request_stream) = session_queue();
            requests.try_send(open.clone()).map_err(|_| Error::new(ErrorKind::Internal, "request stream closed"))?;
            // A fresh token per attempt: the cosigner accepts each token once.
            let call = self.request(request_stream, Some(&request.key.wallet))?;
            let mut client = self.client.clone();
            // The server answers only after it read the first frame and opened the session, so a
            // refusal arrives here, as the error of open_session.
            match tokio::time::timeout(REQUEST_TIMEOUT, client.session(call)).await {
                Ok(Ok(response)) => {
                    let (channel, peer) = SessionChannel::bounded();
                    let from_cosigner = response.into_inner();
                    tokio::spawn(pump(self.endpoint.clone(), requests, peer.inbound, from_cosigner, peer.events));
                    return Ok(channel);
                }
                // The cosigner runs as many sessions as it allows: wait for one to end.
                Ok(Err(status)) if status.code() == Code::ResourceExhausted => {
                    if attempt < BUSY_ATTEMPTS {
                        tracing::debug!(endpoint = %self.endpoint, attempt, "the cosigner is at its session limit");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
                Ok(Err(status)) => return Err(error_of(status, &self.endpoint)),
                Err(_) => return Err(self.timed_out()),
            }
        }
        Err(self.busy())
    }

    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        let wallet = request.key.wallet.clone();
        let request = self.request(convert::ecdh_request_to_pb(request), Some(&wallet))?;
        let mut client = self.client.clone();
        let reply = self.call(client.partial_ecdh(request)).await?;
        convert::ecdh_partial_from_pb(reply).map_err(|e| self.corrupted(e))
    }

    async fn commit(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let message =
            pb::CommitRequest { key: Some(convert::key_to_pb(key)), execution_id: execution_id.as_bytes().to_vec() };
        let request = self.request(message, Some(&key.wallet))?;
        let mut client = self.client.clone();
        self.call(client.commit(request)).await.map(drop)
    }

    async fn rollback(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let message =
            pb::RollbackRequest { key: Some(convert::key_to_pb(key)), execution_id: execution_id.as_bytes().to_vec() };
        let request = self.request(message, Some(&key.wallet))?;
        let mut client = self.client.clone();
        self.call(client.rollback(request)).await.map(drop)
    }

    async fn submit_approval(&self, approval: &[u8]) -> Result<bool> {
        // No token: the approval's signature is what the cosigner checks.
        let request = self.request(pb::ApprovalRequest { approval: approval.to_vec() }, None)?;
        let mut client = self.client.clone();
        Ok(self.call(client.submit_approval(request)).await?.added)
    }
}

impl GrpcTransport {
    /// A client that only submits approvals ([`CosignerTransport::submit_approval`]), for a person
    /// who holds an approver key but no agent token: it mints none (a throwaway key it never uses
    /// fills the place). `extra_ca_pem` as for [`GrpcTransport::connect`].
    pub async fn for_approvals(endpoint: &str, extra_ca_pem: Option<Vec<u8>>) -> Result<Self> {
        let unused = wallet_traits::ExecutionId::random();
        Self::connect(endpoint, Arc::new(TokenMinter::hs256(unused.as_bytes())?), extra_ca_pem).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("grpc://127.0.0.1:9001").unwrap(),
            (false, "127.0.0.1:9001".to_string(), "127.0.0.1".to_string())
        );
        assert_eq!(
            parse_endpoint("GRPCS://Cosigner.example:443/").unwrap(),
            (true, "cosigner.example:443".to_string(), "cosigner.example".to_string())
        );
        assert_eq!(parse_endpoint("grpcs://[::1]:9001").unwrap().2, "::1");
        for bad in ["http://x:1", "grpc://", "grpc://h:1/v1", "grpc://user:pw@h:1", "nothing"] {
            let e = parse_endpoint(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(!e.to_string().contains("pw"), "{e}");
        }
    }

    #[test]
    fn statuses_without_details_map_by_code() {
        let e = error_of(Status::unavailable("connection refused"), "grpc://h:1");
        assert_eq!(e.kind(), ErrorKind::CosignerUnavailable);
        assert_eq!(e.context_value("endpoint"), Some("grpc://h:1"));
        assert_eq!(error_of(Status::out_of_range("too large"), "e").kind(), ErrorKind::InvalidInput);
        assert_eq!(error_of(Status::unauthenticated("no"), "e").kind(), ErrorKind::Unauthorized);
        let e = session_error_of(Status::unknown("h2 protocol error"), "grpc://h:1");
        assert_eq!(e.kind(), ErrorKind::CosignerUnavailable);
    }
}
