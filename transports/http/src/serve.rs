//! Serving a router over plain HTTP or HTTPS (rustls with the ring provider), with one accept
//! loop for both so they share timeouts and graceful shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tokio_rustls::TlsAcceptor;
use wallet_traits::{Error, ErrorKind, Result};
use wallet_transport_common::TlsFiles;

/// Longest TLS handshake; a client that stalls longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request's headers on a connection.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// After shutdown, how long in-flight requests (long polls included) may finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (for at most 10 s).
///
/// With `tls` the server speaks HTTPS only (HTTP/1.1 over TLS 1.2 or 1.3, rustls with ring);
/// without it, plain HTTP/1.1. Build the router with [`crate::cosigner_router`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let acceptor = match tls {
        Some(files) => Some(TlsAcceptor::from(Arc::new(server_tls_config(&files)?))),
        None => None,
    };
    serve_loop(listener, router, acceptor, shutdown).await;
    Ok(())
}

fn tls_config_error(message: &str) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// A rustls server configuration from PEM files, built with the ring provider explicitly so the
/// process-wide default provider is never needed.
pub(crate) fn server_tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(&files.cert_chain_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| tls_config_error("the TLS certificate chain is not valid PEM"))?;
    if certs.is_empty() {
        return Err(tls_config_error("the TLS certificate file holds no PEM certificate"));
    }
    // The key's bytes never reach an error message.
    let key = PrivateKeyDer::from_pem_slice(&files.private_key_pem)
        .map_err(|_| tls_config_error("the TLS private key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::new(ErrorKind::Config, format!("the TLS certificate and private key are unusable: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn serve_loop(
    listener: TcpListener,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Usually out of file descriptors: back off rather than spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Protocol rounds are many small messages: do not let Nagle hold them back.
                let _ = tcp.set_nodelay(true);
                let (acceptor, router, stop) = (acceptor.clone(), router.clone(), stop_rx.clone());
                connections.spawn(async move {
                    let Some(acceptor) = acceptor else {
                        return serve_connection(TokioIo::new(tcp), router, stop).await;
                    };
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), router, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("some connections were still busy {DRAIN_TIMEOUT:?} after shutdown; closing them");
    }
}

async fn serve_connection<I>(io: I, router: Router, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, TowerToHyperService::new(router));
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        r = connection.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("connection ended with an error: {e}");
            }
        }
        () = async {
            // Also fires when the sender is gone, which only happens at shutdown.
            let _ = stop.wait_for(|stop| *stop).await;
        } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
