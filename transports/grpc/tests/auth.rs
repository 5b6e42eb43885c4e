//! Every RPC but Health needs a valid, fresh token for the wallet it is about; a refused request
//! never reaches the service.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{metadata::MetadataValue, transport::Channel, Code, Request};
use wallet_testkit::{known_key, scripted_request, Script, ScriptedCosigner, COMMIT_EID, KNOWN_WALLET};
use wallet_traits::{
    CosignerTransport, EcdhPartial, EcdhRequest, ErrorKind, ExecutionId, KeyId, KeyInfo, Result, SessionChannel,
    SessionRequest, WalletId,
};
use wallet_transport_common::{ServerLimits, TokenMinter, TokenVerifier};
use wallet_transport_grpc::{
    proto::{self as pb, cosigner_client::CosignerClient},
    serve, GrpcTransport, ERROR_METADATA_KEY,
};

const SECRET: &[u8] = b"auth-test-secret-auth-test-secret-0123";
const OTHER_SECRET: &[u8] = b"not-the-cosigners-secret-not-the-secret";

/// Counts every call that reaches the wrapped scripted cosigner.
#[derive(Debug, Default)]
struct Counting {
    inner: ScriptedCosigner,
    calls: AtomicUsize,
}

impl Counting {
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CosignerTransport for Counting {
    fn endpoint(&self) -> &str {
        "counting"
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        self.hit();
        self.inner.key_info(key).await
    }
    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        self.hit();
        self.inner.open_session(request).await
    }
    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        self.hit();
        self.inner.partial_ecdh(request).await
    }
    async fn commit(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.hit();
        self.inner.commit(key, eid).await
    }
    async fn rollback(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.hit();
        self.inner.rollback(key, eid).await
    }
}

struct Fixture {
    url: String,
    service: Arc<Counting>,
    raw: CosignerClient<Channel>,
    minter: TokenMinter,
    _stop: oneshot::Sender<()>,
}

async fn fixture() -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("grpc://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let verifier = Arc::new(TokenVerifier::hs256(SECRET, vec![url.clone()]).unwrap());
    let service = Arc::new(Counting::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let svc = service.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve(listener, svc, verifier, ServerLimits::default(), None, shutdown).await.unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(url.replace("grpc://", "http://")).unwrap().connect_lazy();
    Fixture {
        url,
        service,
        raw: CosignerClient::new(channel),
        minter: TokenMinter::hs256(SECRET).unwrap(),
        _stop: stop,
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn wallet() -> WalletId {
    WalletId::new(KNOWN_WALLET).unwrap()
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {token}")).unwrap());
    }
    request
}

fn key_info_request(token: Option<&str>) -> Request<pb::KeyInfoRequest> {
    let key = pb::KeyId { wallet: KNOWN_WALLET.into(), index: 0 };
    with_token(pb::KeyInfoRequest { key: Some(key) }, token)
}

fn commit_request(token: Option<&str>) -> Request<pb::CommitRequest> {
    let key = pb::KeyId { wallet: KNOWN_WALLET.into(), index: 0 };
    with_token(pb::CommitRequest { key: Some(key), execution_id: COMMIT_EID.to_vec() }, token)
}

fn open_frame() -> pb::ClientFrame {
    let r = scripted_request(Script::Echo);
    let open = pb::SessionRequest {
        kind: pb::SessionKind::Sign as i32,
        key: Some(pb::KeyId { wallet: r.key.wallet.as_str().into(), index: r.key.index }),
        execution_id: r.execution_id.as_bytes().to_vec(),
        parties: r.parties.iter().map(|&p| p.into()).collect(),
        threshold: r.threshold.into(),
        total: r.total.into(),
        digest: r.digest.map(|d| d.to_vec()),
        tweak: None,
        point: None,
    };
    pb::ClientFrame { frame: Some(pb::client_frame::Frame::Open(open)) }
}

/// Opens a raw session stream with `token` and returns the status it is refused with.
async fn refused_session(raw: &mut CosignerClient<Channel>, token: Option<&str>) -> tonic::Status {
    let frames = futures::stream::iter(vec![open_frame()]).chain(futures::stream::pending());
    match raw.session(with_token(frames, token)).await {
        Ok(_) => panic!("the session was accepted"),
        Err(status) => status,
    }
}

use futures::StreamExt as _;

/// Asserts the call was refused with `code`, with our error attached and no token in it.
fn assert_refused(status: &tonic::Status, code: Code, token: Option<&str>) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.metadata().get_bin(ERROR_METADATA_KEY).is_some(), "the full error travels: {status:?}");
    if let Some(token) = token {
        assert!(!status.message().contains(token), "no token in errors");
        assert!(!format!("{status:?}").contains(token), "no token in errors");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_never_reach_the_service() {
    let mut f = fixture().await;
    let w = wallet();
    let other_wallet = WalletId::new("some-other-wallet").unwrap();
    let foreign = TokenMinter::hs256(OTHER_SECRET).unwrap();

    let cases: Vec<(&str, Option<String>, Code)> = vec![
        ("no token", None, Code::Unauthenticated),
        ("garbage", Some("not-a-jwt".into()), Code::Unauthenticated),
        ("wrong key", Some(foreign.mint(&f.url, &w).unwrap().to_string()), Code::Unauthenticated),
        (
            "expired",
            Some(f.minter.mint_with(&f.url, &w, now() - 600, Duration::from_secs(60)).unwrap().to_string()),
            Code::Unauthenticated,
        ),
        ("wrong aud", Some(f.minter.mint("grpc://127.0.0.1:1", &w).unwrap().to_string()), Code::Unauthenticated),
        ("wrong sub", Some(f.minter.mint(&f.url, &other_wallet).unwrap().to_string()), Code::PermissionDenied),
    ];
    for (name, token, code) in &cases {
        let token = token.as_deref();
        let status = f.raw.key_info(key_info_request(token)).await.unwrap_err();
        assert_refused(&status, *code, token);
        println!("key_info, {name}: {:?} {}", status.code(), status.message());
        // A fresh token of the same kind for each RPC: a replay would hide the real reason.
        let status = f.raw.commit(commit_request(token)).await.unwrap_err();
        assert_refused(&status, *code, token);
        let status = refused_session(&mut f.raw, token).await;
        assert_refused(&status, *code, token);
    }
    assert_eq!(f.service.calls(), 0, "nothing reached the service");

    // A non-bearer scheme is no token at all.
    let mut request = key_info_request(None);
    let token = f.minter.mint(&f.url, &w).unwrap();
    request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Basic {}", *token)).unwrap());
    assert_refused(&f.raw.key_info(request).await.unwrap_err(), Code::Unauthenticated, Some(&token));
    assert_eq!(f.service.calls(), 0, "nothing reached the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_accepted_once() {
    let mut f = fixture().await;
    let token = f.minter.mint(&f.url, &wallet()).unwrap();
    let reply = f.raw.key_info(key_info_request(Some(&token))).await.unwrap().into_inner();
    assert!(reply.info.is_some());
    assert_eq!(f.service.calls(), 1);
    let status = f.raw.key_info(key_info_request(Some(&token))).await.unwrap_err();
    assert_refused(&status, Code::Unauthenticated, Some(&token));
    assert!(status.message().contains("replayed"), "{}", status.message());
    let status = refused_session(&mut f.raw, Some(&token)).await;
    assert_refused(&status, Code::Unauthenticated, Some(&token));
    assert_eq!(f.service.calls(), 1, "the replays never reached the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_no_token() {
    let mut f = fixture().await;
    f.raw.health(pb::HealthRequest {}).await.expect("health without a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_mints_a_fresh_token_per_call() {
    let f = fixture().await;
    let client = GrpcTransport::connect(&f.url, Arc::new(TokenMinter::hs256(SECRET).unwrap()), None).await.unwrap();
    // Each of these would be a replay if a token were reused.
    for _ in 0..3 {
        assert!(client.key_info(&known_key()).await.unwrap().is_some());
    }
    client.commit(&known_key(), &ExecutionId::from_bytes(COMMIT_EID)).await.unwrap();
    assert_eq!(f.service.calls(), 4);

    // Tokens from another secret: Unauthorized, with a hint and without the token.
    let wrong =
        GrpcTransport::connect(&f.url, Arc::new(TokenMinter::hs256(OTHER_SECRET).unwrap()), None).await.unwrap();
    let e = wrong.key_info(&known_key()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("MPC_JWT_SECRET"), "{e}");
    assert!(!e.to_string().contains("eyJ"), "no token in errors: {e}");
    let e = wrong.open_session(scripted_request(Script::Echo)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!format!("{wrong:?}").contains("eyJ"));
    assert_eq!(f.service.calls(), 4, "refused calls never reached the service");
}
