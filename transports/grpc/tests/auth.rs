//! Every RPC but Health needs a valid, fresh token for the wallet it is about; a refused request
//! never reaches the service.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::oneshot;
use tonic::{metadata::MetadataValue, transport::Channel, Code, Request};
use wallet_testkit::{known_key, scripted_request, CountingCosigner, Script, COMMIT_EID, KNOWN_WALLET};
use wallet_traits::{CosignerTransport, ErrorKind, ExecutionId, SessionParams, WalletId};
use wallet_transport_common::{testing::BadToken, ServerLimits, TokenMinter};

mod common;
use wallet_transport_grpc::{
    proto::{self as pb, cosigner_client::CosignerClient},
    GrpcTransport, ERROR_METADATA_KEY,
};

const SECRET: &[u8] = b"auth-test-secret-auth-test-secret-0123";
const OTHER_SECRET: &[u8] = b"not-the-cosigners-secret-not-the-secret";

struct Fixture {
    url: String,
    service: Arc<CountingCosigner>,
    raw: CosignerClient<Channel>,
    minter: TokenMinter,
    _stop: oneshot::Sender<()>,
}

async fn fixture() -> Fixture {
    fixture_with(ServerLimits::default()).await
}

async fn fixture_with(limits: ServerLimits) -> Fixture {
    let service = Arc::new(CountingCosigner::default());
    let (url, stop) = common::spawn_server(service.clone(), SECRET, limits).await;
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
        digest: match r.params {
            SessionParams::Sign { digest, .. } => Some(digest.to_vec()),
            _ => None,
        },
        ..Default::default()
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

    let (minter, url) = (&f.minter, f.url.clone());
    let mut raw = f.raw.clone();
    for case in BadToken::cases() {
        let (name, code) = (
            case.name,
            if case.kind == ErrorKind::PolicyDenied { Code::PermissionDenied } else { Code::Unauthenticated },
        );
        let mint = || case.mint(minter, &url, &w);
        let token = mint();
        let status = raw.key_info(key_info_request(token.as_deref())).await.unwrap_err();
        assert_refused(&status, code, token.as_deref());
        println!("key_info, {name}: {:?} {}", status.code(), status.message());
        let token = mint();
        let status = raw.commit(commit_request(token.as_deref())).await.unwrap_err();
        assert_refused(&status, code, token.as_deref());
        let token = mint();
        let status = refused_session(&mut raw, token.as_deref()).await;
        assert_refused(&status, code, token.as_deref());
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

/// The bad tokens of the "before the body" tests, each minted fresh; `used` was accepted once.
fn unauthenticated_tokens(f: &Fixture, used: &str) -> Vec<(&'static str, Option<String>)> {
    let w = wallet();
    let foreign = TokenMinter::hs256(OTHER_SECRET).unwrap();
    vec![
        ("no token", None),
        ("garbage", Some("not-a-jwt".into())),
        ("forged", Some(foreign.mint(&f.url, &w).unwrap().to_string())),
        ("expired", Some(f.minter.mint_with(&f.url, &w, now() - 600, Duration::from_secs(60)).unwrap().to_string())),
        ("replayed", Some(used.to_string())),
    ]
}

/// Fails instead of hanging when the server does not answer within 10 s.
async fn within_10s<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_session_is_refused_before_its_first_frame() {
    // Were the server to wait for the first frame, these calls would hang for the idle timeout.
    let limits = ServerLimits { session_idle_timeout: Duration::from_secs(600), ..ServerLimits::default() };
    let mut f = fixture_with(limits).await;
    let used = f.minter.mint(&f.url, &wallet()).unwrap();
    f.raw.key_info(key_info_request(Some(&used))).await.unwrap();
    let calls = f.service.calls();
    for (name, token) in unauthenticated_tokens(&f, &used) {
        let token = token.as_deref();
        // A request stream that never yields a frame.
        let frames = futures::stream::pending::<pb::ClientFrame>();
        let status = match within_10s(name, f.raw.session(with_token(frames, token))).await {
            Ok(_) => panic!("{name}: the session was accepted"),
            Err(status) => status,
        };
        assert_refused(&status, Code::Unauthenticated, token);
    }
    assert_eq!(f.service.calls(), calls, "nothing reached the service");
    // A valid session still opens on the same server.
    let client = GrpcTransport::connect(&f.url, Arc::new(TokenMinter::hs256(SECRET).unwrap()), None).await.unwrap();
    within_10s("a valid session", client.open_session(scripted_request(Script::Echo))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_unary_call_is_refused_before_its_message_is_decoded() {
    const MAX: usize = 64 * 1024;
    let limits = ServerLimits { max_message_bytes: MAX, ..ServerLimits::default() };
    let mut f = fixture_with(limits).await;
    // Far over the server's decoding limit: decoding it would fail with OUT_OF_RANGE, so an
    // UNAUTHENTICATED answer means the token was checked before the message was read.
    let big = |token: Option<&str>| {
        let key = pb::KeyId { wallet: KNOWN_WALLET.into(), index: 0 };
        let message = pb::EcdhRequest {
            key: Some(key),
            execution_id: ExecutionId::random().as_bytes().to_vec(),
            point: vec![2; 16 * MAX],
        };
        with_token(message, token)
    };
    let used = f.minter.mint(&f.url, &wallet()).unwrap();
    f.raw.key_info(key_info_request(Some(&used))).await.unwrap();
    let calls = f.service.calls();
    for (name, token) in unauthenticated_tokens(&f, &used) {
        let token = token.as_deref();
        let status = within_10s(name, f.raw.partial_ecdh(big(token))).await.unwrap_err();
        assert_refused(&status, Code::Unauthenticated, token);
    }
    assert_eq!(f.service.calls(), calls, "nothing reached the service");

    // With a valid token the same message gets as far as decoding, and is refused for its size.
    let token = f.minter.mint(&f.url, &wallet()).unwrap();
    let status = within_10s("valid token", f.raw.partial_ecdh(big(Some(&token)))).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(f.service.calls(), calls, "nothing reached the service");
    // And the connection still serves calls.
    let token = f.minter.mint(&f.url, &wallet()).unwrap();
    assert!(f.raw.key_info(key_info_request(Some(&token))).await.unwrap().into_inner().info.is_some());
}
