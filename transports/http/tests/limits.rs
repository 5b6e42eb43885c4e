//! Server limits: concurrent sessions, body size, malformed batches, idle sessions.

mod common;

use std::{sync::Arc, time::Duration};

use common::{cbor, client, echo_on, echo_run, envelope, minter, next_event, raw, start};
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use wallet_testkit::{scripted_request, Script, ScriptedCosigner, KNOWN_WALLET};
use wallet_traits::{ErrorKind, SessionEvent, WalletId, WireError};
use wallet_transport_common::{audience_of, ServerLimits};

fn token(url: &str) -> String {
    minter().mint(&audience_of(url), &WalletId::new(KNOWN_WALLET).unwrap()).unwrap().to_string()
}

fn wire_error(body: &[u8]) -> WireError {
    ciborium::from_reader(body).expect("a WireError body")
}

/// Opens an echo session with a raw request; returns its exchange URL.
async fn raw_open(url: &str) -> (String, wallet_traits::ExecutionId) {
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let (status, body) = raw(Method::POST, &format!("{url}/v1/sessions"), Some(&token(url)), Some(cbor(&req))).await;
    assert_eq!(status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&body));
    (format!("{url}/v1/sessions/{eid}/exchange"), eid)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_session_too_many_is_refused_then_retried() {
    let limits = ServerLimits { max_sessions: 2, ..ServerLimits::default() };
    let server = start(Arc::new(ScriptedCosigner::new()), limits, None).await;
    let c = client(&server.url, None);
    let first = c.open_session(scripted_request(Script::Echo)).await.unwrap();
    let _second = c.open_session(scripted_request(Script::Echo)).await.unwrap();

    let req = cbor(&scripted_request(Script::Echo));
    let (status, body) =
        raw(Method::POST, &format!("{}/v1/sessions", server.url), Some(&token(&server.url)), Some(req)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(wire_error(&body).kind, ErrorKind::CosignerUnavailable);

    let started = tokio::time::Instant::now();
    let e = c.open_session(scripted_request(Script::Echo)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert!(e.message().contains("busy"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "the client backed off between tries");

    // Closing a session frees its slot.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c.open_session(scripted_request(Script::Echo)).await {
            Ok(_) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "slot never freed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused() {
    let limits = ServerLimits { max_message_bytes: 64 * 1024, ..ServerLimits::default() };
    let server = start(Arc::new(ScriptedCosigner::new()), limits, None).await;
    let url = &server.url;

    let big = vec![0u8; 256 * 1024];
    let (status, body) = raw(Method::POST, &format!("{url}/v1/sessions"), Some(&token(url)), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(wire_error(&body).message.contains("max_message_bytes"));

    // Through the client, an envelope too large for the server fails the session.
    let c = client(url, None);
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = c.open_session(req).await.unwrap();
    ch.outgoing.send(envelope(eid, 0, 0, 100 * 1024)).await.unwrap();
    match next_event(&mut ch).await {
        Some(SessionEvent::Failed(w)) => assert_eq!(w.kind, ErrorKind::InvalidInput, "{w:?}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(next_event(&mut ch).await.is_none(), "nothing follows Failed");

    // Smaller messages still pass.
    echo_run(c.as_ref(), 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_batch_ends_only_its_session() {
    let server = start(Arc::new(ScriptedCosigner::new()), ServerLimits::default(), None).await;
    let url = &server.url;
    let c = client(url, None);
    let other = scripted_request(Script::Echo);
    let other_eid = other.execution_id;
    let mut other = c.open_session(other).await.unwrap();

    let (exchange, _) = raw_open(url).await;
    let (status, body) = raw(Method::POST, &exchange, Some(&token(url)), Some(b"\xff\x00 not cbor".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let e = wire_error(&body);
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("session was ended"), "{e:?}");
    let (status, _) = raw(Method::POST, &exchange, Some(&token(url)), Some(cbor(&Vec::<u8>::new()))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the session is gone");

    // An envelope of another run is refused the same way.
    let (exchange, _) = raw_open(url).await;
    let stray = cbor(&vec![envelope(other_eid, 0, 0, 1)]);
    assert_eq!(raw(Method::POST, &exchange, Some(&token(url)), Some(stray)).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(raw(Method::POST, &exchange, Some(&token(url)), Some(cbor(&[0u8; 0]))).await.0, StatusCode::NOT_FOUND);

    echo_on(&mut other, other_eid, 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_are_freed() {
    let limits = ServerLimits {
        max_sessions: 1,
        // Polls come every 100 ms against a 1 s timeout: wide margins for a loaded machine.
        session_idle_timeout: Duration::from_secs(1),
        long_poll: Duration::from_millis(100),
        ..ServerLimits::default()
    };
    let service = Arc::new(ScriptedCosigner::new());
    let server = start(service.clone(), limits, None).await;
    let url = &server.url;

    let (exchange, _) = raw_open(url).await;
    // Polled with a generous deadline: a loaded machine may run the reaper late, never early.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.closed_sessions() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the service never saw the idle session's channel close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(service.closed_sessions(), 1);
    assert_eq!(raw(Method::POST, &exchange, Some(&token(url)), Some(cbor(&[0u8; 0]))).await.0, StatusCode::NOT_FOUND);

    // Its slot is free again, and a session the client keeps polling outlives the idle timeout.
    let c = client(url, None);
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = c.open_session(req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    echo_on(&mut ch, eid, 2).await;
}

#[test]
fn unusable_limits_are_refused_before_serving() {
    // The same check as the gRPC server's (ServerLimits::check).
    let verifier = Arc::new(
        wallet_transport_common::TokenVerifier::hs256(b"limits-test-secret-limits-test-secret!", vec!["x".into()])
            .unwrap(),
    );
    let fine = ServerLimits::default();
    for bad in [
        ServerLimits { max_sessions: 0, ..fine.clone() },
        ServerLimits { max_message_bytes: 0, ..fine.clone() },
        ServerLimits { session_idle_timeout: Duration::ZERO, ..fine.clone() },
    ] {
        let e =
            wallet_transport_http::cosigner_router(Arc::new(ScriptedCosigner::new()), verifier.clone(), bad.clone())
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}: {e}");
    }
}
