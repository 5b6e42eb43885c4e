//! Helpers shared by the integration tests: a server on 127.0.0.1:0, clients, certificates.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::{net::TcpListener, sync::oneshot};
use wallet_testkit::{scripted_request, Script, FINISH_STAGE};
use wallet_traits::{CosignerTransport, Envelope, ExecutionId, SessionChannel, SessionEvent};
use wallet_transport_common::{audience_of, ServerLimits, TlsFiles, TokenMinter, TokenVerifier};
use wallet_transport_http::{cosigner_router, serve, HttpTransport};
use zeroize::Zeroizing;

pub(crate) const SECRET: &[u8] = b"http-transport-tests-secret-0123456789";
pub(crate) const OTHER_SECRET: &[u8] = b"some-other-secret-that-is-long-enough-xx";

/// A cosigner server running until dropped.
pub(crate) struct TestServer {
    pub(crate) url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn start(
    service: Arc<dyn CosignerTransport>,
    limits: ServerLimits,
    tls: Option<TlsFiles>,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{port}");
    let verifier = Arc::new(TokenVerifier::hs256(SECRET, vec![audience_of(&url)]).unwrap());
    let router = cosigner_router(service, verifier, limits).expect("usable limits");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, router, tls, async move {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    TestServer { url, stop: Some(stop) }
}

pub(crate) fn minter() -> Arc<TokenMinter> {
    Arc::new(TokenMinter::hs256(SECRET).unwrap())
}

pub(crate) fn client(url: &str, ca_pem: Option<Vec<u8>>) -> Arc<dyn CosignerTransport> {
    Arc::new(HttpTransport::new(url, minter(), ca_pem).expect("client"))
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it; returns the
/// server's files and the CA certificate (PEM) for the client to trust.
pub(crate) fn tls_files() -> (TlsFiles, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "mpc-wallet test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf_params.distinguished_name.push(DnType::CommonName, "mpc-wallet test cosigner");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let files = TlsFiles {
        cert_chain_pem: leaf.pem().into_bytes(),
        private_key_pem: Zeroizing::new(leaf_key.serialize_pem().into_bytes()),
    };
    (files, ca.pem().into_bytes())
}

pub(crate) fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// A raw request with an optional bearer token and CBOR body; returns the status and body.
pub(crate) async fn raw(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (reqwest::StatusCode, Vec<u8>) {
    let mut rb = reqwest::Client::new().request(method, url).header("accept", "application/cbor");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/cbor").body(b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    (status, r.bytes().await.unwrap().to_vec())
}

pub(crate) fn envelope(eid: ExecutionId, stage: u16, seq: u64, len: usize) -> Envelope {
    Envelope { execution_id: eid, stage, from: 0, to: 1, broadcast: false, seq, payload: vec![seq as u8; len] }
}

pub(crate) async fn next_event(ch: &mut SessionChannel) -> Option<SessionEvent> {
    tokio::time::timeout(Duration::from_secs(30), ch.incoming.next()).await.expect("an event within 30 s")
}

/// Runs a short echo session through `client` and checks it ends with Done.
pub(crate) async fn echo_run(client: &dyn CosignerTransport, count: u64) {
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = client.open_session(req).await.expect("open an echo session");
    echo_on(&mut ch, eid, count).await;
}

pub(crate) async fn echo_on(ch: &mut SessionChannel, eid: ExecutionId, count: u64) {
    for seq in 0..count {
        ch.outgoing.send(envelope(eid, 0, seq, 100)).await.unwrap();
        match next_event(ch).await {
            Some(SessionEvent::Message(e)) => assert_eq!((e.seq, e.from, e.to), (seq, 1, 0)),
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    ch.outgoing.send(envelope(eid, FINISH_STAGE, count, 0)).await.unwrap();
    assert!(matches!(next_event(ch).await, Some(SessionEvent::Done(_))));
    assert!(next_event(ch).await.is_none(), "nothing follows Done");
}
