//! The cosigner's side: [`serve`] exposes any [`CosignerTransport`] over gRPC.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{channel::mpsc, future::BoxFuture, FutureExt, Stream, StreamExt};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tonic::{
    codegen::{http, Service},
    server::NamedService,
    transport::{server::TcpIncoming, Identity, Server, ServerTlsConfig},
    Code, Request, Response, Status, Streaming,
};
use wallet_traits::{CosignerTransport, Error, ErrorKind, Result, SessionChannel, SessionEvent, WalletId};
use wallet_transport_common::{ServerLimits, TlsFiles, TokenVerifier, VerifiedToken};

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
/// `Authenticate` wrapper); the handler then checks it was issued for the wallet the request is
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
    if limits.max_sessions == 0 || limits.max_message_bytes == 0 || limits.session_idle_timeout.is_zero() {
        return Err(Error::new(
            ErrorKind::Config,
            "server limits must allow at least one session, a non-empty message and a non-zero idle timeout",
        )
        .with_context("limits", format!("{limits:?}")));
    }
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
    let grpc = Authenticate {
        inner: CosignerServer::new(api)
            .max_decoding_message_size(limits.max_message_bytes)
            .max_encoding_message_size(limits.max_message_bytes),
        verifier,
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(addr = %addr, tls = tls.is_some(), max_sessions = limits.max_sessions, "gRPC cosigner listening");
    let signal = async move {
        shutdown.await;
        // Sessions may run for minutes; ending them lets the graceful drain finish promptly.
        let _ = stop_tx.send(true);
    };
    builder
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

/// The path of the one RPC that needs no token.
fn is_health(path: &str) -> bool {
    path.strip_prefix('/').and_then(|p| p.strip_prefix(SERVICE_NAME)) == Some("/Health")
}

/// The bearer token of a call's headers; never logged.
fn bearer(headers: &http::HeaderMap) -> std::result::Result<&str, Status> {
    let missing = || {
        status_of(&Error::new(
            ErrorKind::Unauthorized,
            "the request carries no 'authorization: Bearer <token>'; configure the agent with MPC_JWT_SECRET",
        ))
    };
    let value = headers.get("authorization").ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// Wraps the generated service so every call but Health is authenticated on its headers alone
/// (signature, issuer, audience, lifetime, replay of the bearer token) before the inner service
/// sees it: before tonic decodes a unary message and before the session handler waits for its
/// first frame, so an unauthenticated call costs its headers only. A refused call is answered
/// with a trailers-only status and its body is dropped unread. An accepted call carries its
/// [`VerifiedToken`] in the request extensions, where the handler checks its wallet.
///
/// A service wrapper rather than tonic's `with_interceptor`: an interceptor does not see which
/// method is called, and Health must stay open.
#[derive(Clone)]
struct Authenticate<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
}

impl<S: NamedService> NamedService for Authenticate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, std::result::Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if is_health(request.uri().path()) {
            return self.inner.call(request).boxed();
        }
        let verified = bearer(request.headers()).and_then(|token| {
            self.verifier.verify_token(token).map_err(|e| {
                tracing::warn!(rpc = request.uri().path(), error = %e, "refused an unauthenticated request");
                status_of(&e)
            })
        });
        match verified {
            Ok(token) => {
                request.extensions_mut().insert(token);
                self.inner.call(request).boxed()
            }
            Err(status) => {
                drop(request);
                futures::future::ready(Ok(status.into_http())).boxed()
            }
        }
    }
}

/// The token [`Authenticate`] verified for this call.
fn verified<T>(request: &mut Request<T>) -> std::result::Result<VerifiedToken, Status> {
    request.extensions_mut().remove::<VerifiedToken>().ok_or_else(|| {
        // Only a server built without `Authenticate` gets here: refuse, never serve the call.
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
        let permit = self.sessions.clone().try_acquire_owned().map_err(|_| {
            let e = Error::new(
                ErrorKind::CosignerUnavailable,
                format!("the cosigner runs its maximum of {} sessions; retry shortly", self.limits.max_sessions),
            );
            status_with_code(Code::ResourceExhausted, &e)
        })?;
        let channel = self.service.open_session(open).await.map_err(|e| status_of(&e))?;
        let (events, stream) = mpsc::unbounded();
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

/// Relays one session between the gRPC stream and the service until it ends, then frees its
/// slot (`_permit`). Dropping the service's sender tells it the agent is gone.
async fn run_session(
    mut inbound: Streaming<pb::ClientFrame>,
    channel: SessionChannel,
    events: mpsc::UnboundedSender<std::result::Result<pb::ServerFrame, Status>>,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    max_message_bytes: usize,
    mut stop: watch::Receiver<bool>,
) {
    let SessionChannel { outgoing, mut incoming } = channel;
    let mut to_service = Some(outgoing);
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        tokio::select! {
            frame = inbound.next(), if to_service.is_some() => match frame {
                Some(Ok(pb::ClientFrame { frame: Some(Frame::Envelope(envelope)) })) => {
                    match convert::envelope_from_pb(envelope) {
                        Ok(envelope) => {
                            idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                            if let Some(tx) = &to_service {
                                // The service may have finished already; its last events still flow.
                                let _ = tx.unbounded_send(envelope);
                            }
                        }
                        Err(e) => {
                            let _ = events.unbounded_send(Err(status_of(&e)));
                            break;
                        }
                    }
                }
                Some(Ok(_)) => {
                    let e = invalid("after 'open', every session frame must be an 'envelope'");
                    let _ = events.unbounded_send(Err(e));
                    break;
                }
                Some(Err(status)) => {
                    // Usually the client went away (the send then fails quietly); an oversized
                    // frame gets its INVALID_ARGUMENT.
                    let _ = events.unbounded_send(Err(read_failure(status, max_message_bytes)));
                    break;
                }
                // The agent closed its side: close the service's inbox, keep relaying its events.
                None => to_service = None,
            },
            event = incoming.next() => match event {
                Some(event) => {
                    idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                    let last = !matches!(event, SessionEvent::Message(_));
                    if events.unbounded_send(Ok(convert::event_to_pb(event))).is_err() || last {
                        break;
                    }
                }
                None => break,
            },
            () = &mut idle_timer => {
                let e = Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the session had no traffic for {} s and was ended; start a new session",
                        idle.as_secs_f32()
                    ),
                );
                let _ = events.unbounded_send(Err(status_of(&e)));
                break;
            }
            _ = stop.changed() => {
                let e = Error::new(
                    ErrorKind::CosignerUnavailable,
                    "the cosigner is shutting down; retry the session later",
                );
                let _ = events.unbounded_send(Err(status_of(&e)));
                break;
            }
        }
    }
}
