//! The cosigner's side: [`serve`] exposes any [`CosignerTransport`] over gRPC.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::{channel::mpsc, SinkExt, Stream, StreamExt};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tonic::{
    codegen::http,
    transport::{server::TcpIncoming, Identity, Server, ServerTlsConfig},
    Code, Request, Response, Status, Streaming,
};
use wallet_traits::{
    session_queue, CosignerTransport, EnvelopeSink, Error, ErrorKind, Result, SessionChannel, SessionEvent, WalletId,
};
use wallet_transport_common::{AuthLayer, Refusal, ServerLimits, TlsFiles, TokenVerifier, VerifiedToken};

use crate::{
    convert::{self, status_of, status_with_code},
    proto::{
        self as pb,
        client_frame::Frame,
        cosigner_server::{Cosigner, CosignerServer, SERVICE_NAME},
    },
};

/// Serves `service` on `listener` until `shutdown` completes.
///
/// Every RPC except Health must carry `authorization: Bearer <jwt>`. `verifier` checks it on the
/// call's headers, before tonic decodes a message or a session waits for its first frame (the
/// transports' one [`AuthLayer`], which the HTTP server uses too); the handler then checks it was issued for the wallet the request is
/// about, before anything reaches `service`. `limits` bounds concurrent sessions, message sizes
/// and idle sessions. With `tls` the server speaks TLS only (clients use `grpcs://`). On
/// shutdown, running sessions end with `UNAVAILABLE` so the server does not wait for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<dyn CosignerTransport>,
    verifier: Arc<TokenVerifier>,
    limits: ServerLimits,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    limits.check()?;
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some(tls) = &tls {
        let identity = Identity::from_pem(&tls.cert_chain_pem, tls.private_key_pem.as_slice());
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot use the TLS certificate chain and private key (PEM): {e}"))
        })?;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let api =
        Api { service, sessions: Arc::new(Semaphore::new(limits.max_sessions)), limits: limits.clone(), stop: stop_rx };
    let grpc = CosignerServer::new(api)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(addr = %addr, tls = tls.is_some(), max_sessions = limits.max_sessions, "gRPC cosigner listening");
    let signal = async move {
        shutdown.await;
        // Sessions may run for minutes; ending them lets the graceful drain finish promptly.
        let _ = stop_tx.send(true);
    };
    builder
        .layer(AuthLayer::new(verifier, GrpcRefusal))
        .add_service(grpc)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal)
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Internal, format!("the gRPC server stopped: {e}")).with_context("listen", addr)
        })
}

struct Api {
    service: Arc<dyn CosignerTransport>,
    sessions: Arc<Semaphore>,
    limits: ServerLimits,
    stop: watch::Receiver<bool>,
}

/// How the gRPC server answers a call the [`AuthLayer`] refuses: a trailers-only status
/// (UNAUTHENTICATED, or UNAVAILABLE when the replay set is full); the call's body is dropped
/// unread. Health needs no token, nor does a path outside the cosigner service (tonic answers
/// it UNIMPLEMENTED).
///
/// A layer rather than tonic's `with_interceptor`: an interceptor does not see which method is
/// called, and Health must stay open.
#[derive(Debug, Clone, Copy)]
struct GrpcRefusal;

impl Refusal for GrpcRefusal {
    type Body = tonic::body::Body;

    fn exempt(&self, uri: &http::Uri) -> bool {
        match uri.path().strip_prefix('/').and_then(|p| p.strip_prefix(SERVICE_NAME)) {
            // An approval authenticates itself: the service checks its signature.
            Some(method) => method == "/Health" || method == "/SubmitApproval",
            None => true,
        }
    }

    fn refuse(
        &self,
        request: &http::request::Parts,
        _body_announced: bool,
        error: Error,
    ) -> http::Response<Self::Body> {
        tracing::warn!(rpc = request.uri.path(), error = %error, "refused an unauthenticated request");
        status_of(&error).into_http()
    }
}

/// The token the [`AuthLayer`] verified for this call.
fn verified<T>(request: &mut Request<T>) -> std::result::Result<VerifiedToken, Status> {
    request.extensions_mut().remove::<VerifiedToken>().ok_or_else(|| {
        // Only a server built without the `AuthLayer` gets here: refuse, never serve the call.
        status_of(&Error::new(ErrorKind::Internal, "this call did not pass the cosigner's authentication"))
    })
}

impl Api {
    /// Checks the call's verified token was issued for `wallet`; nothing reaches the service
    /// otherwise.
    fn authorize(
        &self,
        rpc: &'static str,
        token: &VerifiedToken,
        wallet: &WalletId,
    ) -> std::result::Result<(), Status> {
        token.for_wallet(wallet).map(drop).map_err(|e| {
            tracing::warn!(rpc, wallet = %wallet, error = %e, "refused a request");
            status_of(&e)
        })
    }

    /// Takes the message of a unary request and authorizes it for the wallet of the key `key_of`
    /// names in it.
    fn admit<T>(
        &self,
        rpc: &'static str,
        mut request: Request<T>,
        key_of: impl FnOnce(&T) -> Option<pb::KeyId>,
    ) -> std::result::Result<(wallet_traits::KeyId, T), Status> {
        let token = verified(&mut request)?;
        let message = request.into_inner();
        let key = convert::key_from_pb(key_of(&message)).map_err(|e| status_of(&e))?;
        self.authorize(rpc, &token, &key.wallet)?;
        Ok((key, message))
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = std::result::Result<pb::ServerFrame, Status>> + Send + 'static>>;

fn invalid(message: impl Into<String>) -> Status {
    status_of(&Error::new(ErrorKind::InvalidInput, message))
}

/// The status for a failed read of a client frame.
fn read_failure(status: Status, max: usize) -> Status {
    if status.code() == Code::OutOfRange {
        invalid(format!("a session frame is larger than this cosigner accepts (max_message_bytes = {max})"))
    } else {
        status
    }
}

#[tonic::async_trait]
impl Cosigner for Api {
    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> std::result::Result<Response<pb::HealthReply>, Status> {
        self.service.health().await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::HealthReply {}))
    }

    async fn key_info(
        &self,
        request: Request<pb::KeyInfoRequest>,
    ) -> std::result::Result<Response<pb::KeyInfoReply>, Status> {
        let (key, _) = self.admit("key_info", request, |m| m.key.clone())?;
        let info = self.service.key_info(&key).await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::KeyInfoReply { info: info.map(convert::key_info_to_pb) }))
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        mut request: Request<Streaming<pb::ClientFrame>>,
    ) -> std::result::Result<Response<SessionStream>, Status> {
        // The token was verified before this handler ran; only its wallet waits for the first frame.
        let token = verified(&mut request)?;
        let mut inbound = request.into_inner();
        let idle = self.limits.session_idle_timeout;
        let max = self.limits.max_message_bytes;
        let first = match tokio::time::timeout(idle, inbound.next()).await {
            Err(_) => {
                let e = Error::new(ErrorKind::Timeout, "no session request arrived within the session idle timeout");
                return Err(status_of(&e));
            }
            Ok(None) => return Err(invalid("the session stream closed before its first frame")),
            Ok(Some(Err(status))) => return Err(read_failure(status, max)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Some(Frame::Open(open)) = first.frame else {
            return Err(invalid("the first frame of a session must be 'open' with the session request"));
        };
        let open = convert::session_request_from_pb(open).map_err(|e| status_of(&e))?;
        self.authorize("session", &token, &open.key.wallet)?;
        open.check().map_err(|e| status_of(&e))?;
        let permit = self.sessions.clone().try_acquire_owned().map_err(|_| {
            let e = Error::new(
                ErrorKind::CosignerUnavailable,
                format!("the cosigner runs its maximum of {} sessions; retry shortly", self.limits.max_sessions),
            );
            status_with_code(Code::ResourceExhausted, &e)
        })?;
        let channel = self.service.open_session(open).await.map_err(|e| status_of(&e))?;
        let (events, stream) = session_queue();
        tokio::spawn(run_session(inbound, channel, events, permit, idle, max, self.stop.clone()));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn partial_ecdh(
        &self,
        request: Request<pb::EcdhRequest>,
    ) -> std::result::Result<Response<pb::EcdhPartial>, Status> {
        let (_, message) = self.admit("partial_ecdh", request, |m| m.key.clone())?;
        let request = convert::ecdh_request_from_pb(message).map_err(|e| status_of(&e))?;
        let partial = self.service.partial_ecdh(request).await.map_err(|e| status_of(&e))?;
        Ok(Response::new(convert::ecdh_partial_to_pb(partial)))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> std::result::Result<Response<pb::CommitReply>, Status> {
        let (key, message) = self.admit("commit", request, |m| m.key.clone())?;
        let eid = convert::eid_from_pb(&message.execution_id).map_err(|e| status_of(&e))?;
        self.service.commit(&key, &eid).await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::CommitReply {}))
    }

    async fn submit_approval(
        &self,
        request: Request<pb::ApprovalRequest>,
    ) -> std::result::Result<Response<pb::ApprovalReply>, Status> {
        let approval = request.into_inner().approval;
        let added = self.service.submit_approval(&approval).await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::ApprovalReply { added }))
    }

    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> std::result::Result<Response<pb::RollbackReply>, Status> {
        let (key, message) = self.admit("rollback", request, |m| m.key.clone())?;
        let eid = convert::eid_from_pb(&message.execution_id).map_err(|e| status_of(&e))?;
        self.service.rollback(&key, &eid).await.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::RollbackReply {}))
    }
}

/// Where a session's events go: the response stream's queue.
type Events = mpsc::Sender<std::result::Result<pb::ServerFrame, Status>>;

/// Queues `item` for the agent; false once the call is over or the agent took nothing for
/// `idle` (a send waits only while the agent is not reading: no honest run fills the queue,
/// wallet_traits::SESSION_CAPACITY).
async fn emit(events: &mut Events, item: std::result::Result<pb::ServerFrame, Status>, idle: Duration) -> bool {
    matches!(tokio::time::timeout(idle, events.send(item)).await, Ok(Ok(())))
}

/// Relays one session between the gRPC stream and the service until it ends, then frees its
/// slot (`_permit`). Dropping the service's sink tells it the agent is gone. A send to the
/// service or to the agent waits only while its queue is full, and at most `idle`.
async fn run_session(
    mut inbound: Streaming<pb::ClientFrame>,
    channel: SessionChannel,
    mut events: Events,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    max_message_bytes: usize,
    mut stop: watch::Receiver<bool>,
) {
    let SessionChannel { outgoing, mut incoming } = channel;
    let mut to_service = Some(outgoing);
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let failure = loop {
        tokio::select! {
            frame = inbound.next(), if to_service.is_some() => {
                match from_agent(frame, &mut to_service, idle, max_message_bytes).await {
                    Ok(true) => idle_timer.as_mut().reset(tokio::time::Instant::now() + idle),
                    Ok(false) => {}
                    Err(status) => break Some(status),
                }
            }
            event = incoming.next() => {
                let Some(event) = event else { break None };
                idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                let last = !matches!(event, SessionEvent::Message(_));
                if !emit(&mut events, Ok(convert::event_to_pb(event)), idle).await || last {
                    break None;
                }
            }
            () = &mut idle_timer => break Some(timed_out(format!(
                "the session had no traffic for {} s and was ended; start a new session",
                idle.as_secs_f32()
            ))),
            _ = stop.changed() => break Some(status_of(&Error::new(
                ErrorKind::CosignerUnavailable,
                "the cosigner is shutting down; retry the session later",
            ))),
        }
    };
    if let Some(status) = failure {
        emit(&mut events, Err(status), idle).await;
    }
}

/// Hands one frame of the agent's to the service: `Ok(true)` once an envelope went in,
/// `Ok(false)` when the agent closed its side (the service's inbox closes with it while its
/// events keep flowing), or the status that ends the session.
async fn from_agent(
    frame: Option<std::result::Result<pb::ClientFrame, Status>>,
    to_service: &mut Option<EnvelopeSink>,
    idle: Duration,
    max_message_bytes: usize,
) -> std::result::Result<bool, Status> {
    let frame = match frame {
        None => {
            *to_service = None;
            return Ok(false);
        }
        // Usually the client went away (the send then fails quietly); an oversized frame gets
        // its INVALID_ARGUMENT.
        Some(Err(status)) => return Err(read_failure(status, max_message_bytes)),
        Some(Ok(frame)) => frame,
    };
    let Some(Frame::Envelope(envelope)) = frame.frame else {
        return Err(invalid("after 'open', every session frame must be an 'envelope'"));
    };
    let envelope = convert::envelope_from_pb(envelope).map_err(|e| status_of(&e))?;
    if let Some(tx) = to_service.as_mut() {
        // The service may have finished already (the send fails); its last events still flow.
        if tokio::time::timeout(idle, tx.send(envelope)).await.is_err() {
            return Err(timed_out(format!(
                "the session took no message for {} s and was ended; start a new session",
                idle.as_secs_f32()
            )));
        }
    }
    Ok(true)
}

fn timed_out(message: String) -> Status {
    status_of(&Error::new(ErrorKind::Timeout, message))
}
