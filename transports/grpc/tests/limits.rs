//! The server's limits: concurrent sessions, message size, malformed frames, idle sessions.

use std::{sync::Arc, time::Duration};

use futures::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::oneshot, time::Instant};
use tonic::{metadata::MetadataValue, transport::Channel, Code, Request};
use wallet_testkit::{known_key, scripted_request, Script, ScriptedCosigner, FINISH_STAGE, KNOWN_WALLET};
use wallet_traits::{
    CosignerTransport, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, SessionChannel, SessionEvent,
};
use wallet_transport_common::{ServerLimits, TokenMinter, TokenVerifier};
use wallet_transport_grpc::{
    proto::{self as pb, cosigner_client::CosignerClient},
    serve, GrpcTransport, BUSY_ATTEMPTS,
};

mod common;

const SECRET: &[u8] = b"limits-test-secret-limits-test-secret!";

struct Fixture {
    url: String,
    service: Arc<ScriptedCosigner>,
    client: GrpcTransport,
    minter: Arc<TokenMinter>,
    _stop: oneshot::Sender<()>,
}

async fn fixture(limits: ServerLimits) -> Fixture {
    let service = Arc::new(ScriptedCosigner::new());
    let (url, stop) = common::spawn_server(service.clone(), SECRET, limits).await;
    let minter = Arc::new(TokenMinter::hs256(SECRET).unwrap());
    let client = GrpcTransport::connect(&url, minter.clone(), None).await.unwrap();
    Fixture { url, service, client, minter, _stop: stop }
}

/// A well-formed signing session request, as raw protobuf, for run `eid`.
fn raw_sign_request(eid: Vec<u8>) -> pb::SessionRequest {
    pb::SessionRequest {
        kind: pb::SessionKind::Sign as i32,
        key: Some(pb::KeyId { wallet: KNOWN_WALLET.into(), index: 0 }),
        execution_id: eid,
        parties: vec![0, 1],
        digest: Some(vec![0; 32]),
        ..Default::default()
    }
}

fn limits(max_sessions: usize, max_message_bytes: usize, idle: Duration) -> ServerLimits {
    ServerLimits { max_sessions, max_message_bytes, session_idle_timeout: idle, ..ServerLimits::default() }
}

fn envelope(eid: ExecutionId, stage: u16, seq: u64, len: usize) -> Envelope {
    Envelope { execution_id: eid, stage, from: 0, to: 1, broadcast: false, seq, payload: vec![seq as u8; len] }
}

async fn next_event(ch: &mut SessionChannel) -> Option<SessionEvent> {
    tokio::time::timeout(Duration::from_secs(30), ch.incoming.next()).await.expect("an event within 30 s")
}

/// Sends `count` envelopes through an open echo session, checks each echo, then finishes it.
async fn finish_echo(ch: &mut SessionChannel, eid: ExecutionId, count: u64) {
    for seq in 0..count {
        ch.outgoing.send(envelope(eid, 0, seq, 100)).await.unwrap();
        match next_event(ch).await {
            Some(SessionEvent::Message(got)) => assert_eq!((got.seq, got.from, got.to), (seq, 1, 0)),
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    ch.outgoing.send(envelope(eid, FINISH_STAGE, count, 0)).await.unwrap();
    assert!(matches!(next_event(ch).await, Some(SessionEvent::Done(_))));
    assert!(next_event(ch).await.is_none());
}

async fn echo_run(client: &GrpcTransport) {
    let request = scripted_request(Script::Echo);
    let eid = request.execution_id;
    let mut ch = client.open_session(request).await.expect("open an echo session");
    finish_echo(&mut ch, eid, 3).await;
}

fn failure(event: Option<SessionEvent>) -> Error {
    match event {
        Some(SessionEvent::Failed(w)) => w.into(),
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn raw_client(url: &str) -> CosignerClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.replace("grpc://", "http://")).unwrap().connect_lazy();
    CosignerClient::new(channel)
}

fn authorized<T>(minter: &TokenMinter, url: &str, message: T) -> Request<T> {
    let token = minter.mint(url, &wallet_traits::WalletId::new(KNOWN_WALLET).unwrap()).unwrap();
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {}", *token)).unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_too_many_is_refused_then_retried() {
    let f = fixture(limits(2, 1 << 20, Duration::from_secs(60))).await;
    let first = f.client.open_session(scripted_request(Script::Echo)).await.unwrap();
    let second = f.client.open_session(scripted_request(Script::Echo)).await.unwrap();

    // The raw answer is RESOURCE_EXHAUSTED.
    let open = pb::client_frame::Frame::Open(raw_sign_request(vec![9; 32]));
    let frames = futures::stream::iter(vec![pb::ClientFrame { frame: Some(open) }]).chain(futures::stream::pending());
    let status = raw_client(&f.url).session(authorized(&f.minter, &f.url, frames)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // The transport retries with backoff, then says the cosigner is busy.
    let started = Instant::now();
    let e = f.client.open_session(scripted_request(Script::Echo)).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert!(e.message().contains("busy") && e.message().contains("max_sessions"), "{e}");
    assert_eq!(e.context_value("endpoint"), Some(f.url.as_str()));
    assert!(waited >= Duration::from_millis(1400), "backed off 100+200+400+800 ms, waited {waited:?}");
    println!("refused after {BUSY_ATTEMPTS} attempts in {waited:?}: {e}");

    // A slot that frees up while the transport retries is taken.
    drop(first);
    echo_run(&f.client).await;
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_and_the_server_goes_on() {
    let f = fixture(limits(8, 64 * 1024, Duration::from_secs(60))).await;

    // Unary: refused before it reaches the service.
    let big = EcdhRequest { key: known_key(), execution_id: ExecutionId::random(), point: vec![2; 100 * 1024] };
    let e = f.client.partial_ecdh(big).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    println!("oversized request: {e}");

    // In a session: the session fails with InvalidInput.
    let request = scripted_request(Script::Echo);
    let eid = request.execution_id;
    let mut ch = f.client.open_session(request).await.unwrap();
    ch.outgoing.send(envelope(eid, 0, 0, 100 * 1024)).await.unwrap();
    let e = failure(next_event(&mut ch).await);
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("max_message_bytes"), "{e}");
    assert!(next_event(&mut ch).await.is_none(), "nothing follows Failed");
    println!("oversized envelope: {e}");

    // The server still serves.
    f.client.health().await.unwrap();
    echo_run(&f.client).await;
    let small = EcdhRequest { key: known_key(), execution_id: ExecutionId::random(), point: vec![2; 33] };
    f.client.partial_ecdh(small).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_end_only_their_session() {
    let f = fixture(limits(8, 1 << 20, Duration::from_secs(60))).await;
    // A session that stays open across the bad ones.
    let request = scripted_request(Script::Echo);
    let eid = request.execution_id;
    let mut good = f.client.open_session(request).await.unwrap();

    // A first frame that is an envelope, not a session request.
    let env =
        pb::Envelope { execution_id: vec![1; 32], stage: 0, from: 0, to: 1, broadcast: false, seq: 0, payload: vec![] };
    let frames = futures::stream::iter(vec![pb::ClientFrame { frame: Some(pb::client_frame::Frame::Envelope(env)) }])
        .chain(futures::stream::pending());
    let status = raw_client(&f.url).session(authorized(&f.minter, &f.url, frames)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("first frame"), "{}", status.message());

    // An empty first frame.
    let frames = futures::stream::iter(vec![pb::ClientFrame { frame: None }]).chain(futures::stream::pending());
    let status = raw_client(&f.url).session(authorized(&f.minter, &f.url, frames)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // An envelope that does not decode (a 5-byte execution id) in an open session.
    let request = scripted_request(Script::Echo);
    let bad_open = raw_sign_request(request.execution_id.as_bytes().to_vec());
    let bad_env =
        pb::Envelope { execution_id: vec![1; 5], stage: 0, from: 0, to: 1, broadcast: false, seq: 0, payload: vec![] };
    let frames = futures::stream::iter(vec![
        pb::ClientFrame { frame: Some(pb::client_frame::Frame::Open(bad_open)) },
        pb::ClientFrame { frame: Some(pb::client_frame::Frame::Envelope(bad_env)) },
    ])
    .chain(futures::stream::pending());
    let mut stream = raw_client(&f.url).session(authorized(&f.minter, &f.url, frames)).await.unwrap().into_inner();
    let status = tokio::time::timeout(Duration::from_secs(30), stream.message()).await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("execution id"), "{}", status.message());

    // The good session is unharmed, and new ones run.
    finish_echo(&mut good, eid, 5).await;
    echo_run(&f.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_ended_and_freed() {
    // Traffic below comes every 250 ms against a 1 s timeout: wide margins for a loaded machine.
    let f = fixture(limits(1, 1 << 20, Duration::from_secs(1))).await;
    let mut idle = f.client.open_session(scripted_request(Script::Echo)).await.unwrap();
    let e = failure(next_event(&mut idle).await);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(next_event(&mut idle).await.is_none());
    println!("idle session: {e}");

    // The service saw the session close, and its only slot is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.service.closed_sessions() == 0 {
        assert!(Instant::now() < deadline, "the service never saw the idle session close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    echo_run(&f.client).await;

    // Traffic keeps a session alive past the idle timeout.
    let request = scripted_request(Script::Echo);
    let eid = request.execution_id;
    let mut busy = f.client.open_session(request).await.unwrap();
    for seq in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        busy.outgoing.send(envelope(eid, 0, seq, 10)).await.unwrap();
        assert!(matches!(next_event(&mut busy).await, Some(SessionEvent::Message(_))));
    }
    busy.outgoing.send(envelope(eid, FINISH_STAGE, 5, 0)).await.unwrap();
    assert!(matches!(next_event(&mut busy).await, Some(SessionEvent::Done(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_cosigner_fails_the_session_as_unavailable() {
    let f = fixture(limits(4, 1 << 20, Duration::from_secs(60))).await;
    let request = scripted_request(Script::Echo);
    let eid = request.execution_id;
    let mut ch = f.client.open_session(request).await.unwrap();
    ch.outgoing.send(envelope(eid, 0, 0, 10)).await.unwrap();
    assert!(matches!(next_event(&mut ch).await, Some(SessionEvent::Message(_))));
    // Stopping the server ends running sessions instead of waiting for them.
    drop(f._stop);
    let e = failure(next_event(&mut ch).await);
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert!(next_event(&mut ch).await.is_none());
    // Once it is gone, calls say so and name the endpoint.
    let deadline = Instant::now() + Duration::from_secs(10);
    let e = loop {
        match f.client.open_session(scripted_request(Script::Echo)).await {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "the server still opens sessions 10 s after it stopped"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert_eq!(e.context_value("endpoint"), Some(f.url.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_limits_are_refused_before_serving() {
    // The same check as the HTTP server's (ServerLimits::check).
    for bad in
        [limits(0, 1024, Duration::from_secs(1)), limits(1, 0, Duration::from_secs(1)), limits(1, 1024, Duration::ZERO)]
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let verifier = Arc::new(TokenVerifier::hs256(SECRET, vec!["grpc://127.0.0.1:1".into()]).unwrap());
        let service = Arc::new(ScriptedCosigner::new());
        let e = serve(listener, service, verifier, bad.clone(), None, std::future::pending()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}: {e}");
    }
}
