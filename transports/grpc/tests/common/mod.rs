//! What the gRPC server tests share: a server on a free port of 127.0.0.1.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use tokio::{net::TcpListener, sync::oneshot};
use wallet_traits::CosignerTransport;
use wallet_transport_common::{ServerLimits, TlsFiles, TokenVerifier};

/// Serves `service` over plain gRPC with `limits`, accepting HS256 tokens of `secret` for its
/// own URL; the server stops when the returned sender is dropped.
pub async fn spawn_server(
    service: Arc<dyn CosignerTransport>,
    secret: &[u8],
    limits: ServerLimits,
) -> (String, oneshot::Sender<()>) {
    spawn_server_as(service, secret, limits, ("grpc", "127.0.0.1", None)).await
}

/// [`spawn_server`], its URL `scheme://host:port`, with TLS when files are given.
pub async fn spawn_server_as(
    service: Arc<dyn CosignerTransport>,
    secret: &[u8],
    limits: ServerLimits,
    (scheme, host, tls): (&str, &str, Option<TlsFiles>),
) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{scheme}://{host}:{}", listener.local_addr().unwrap().port());
    let verifier = Arc::new(TokenVerifier::hs256(secret, vec![url.clone()]).unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        wallet_transport_grpc::serve(listener, service, verifier, limits, tls, shutdown).await.expect("server runs");
    });
    (url, stop)
}
