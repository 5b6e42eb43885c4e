//! Every /v1 route needs a valid, fresh token for the wallet it concerns; nothing reaches the
//! service otherwise.

mod common;

use std::{sync::Arc, time::Duration};

use common::{cbor, echo_on, envelope, raw, start, OTHER_SECRET, SECRET};
use reqwest::{Method, StatusCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use wallet_testkit::{known_key, scripted_request, CountingCosigner, Script, COMMIT_EID, KNOWN_WALLET};
use wallet_traits::{CosignerTransport, EcdhRequest, ErrorKind, ExecutionId, WalletId, WireError};
use wallet_transport_common::{audience_of, testing::BadToken, ServerLimits, TokenMinter};
use wallet_transport_http::HttpTransport;

fn wire_error(body: &[u8]) -> WireError {
    ciborium::from_reader(body).expect("a WireError body")
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_never_reach_the_service() {
    let service = Arc::new(CountingCosigner::default());
    let server = start(service.clone(), ServerLimits::default(), None).await;
    let url = server.url.clone();
    let aud = audience_of(&url);
    let good = TokenMinter::hs256(SECRET).unwrap();
    let wallet = WalletId::new(KNOWN_WALLET).unwrap();

    let key_url = format!("{url}/v1/wallets/{KNOWN_WALLET}/keys/0");
    let eid_body = cbor(&ExecutionRef { execution_id: ExecutionId::from_bytes(COMMIT_EID) });
    let ecdh = EcdhRequest { key: known_key(), execution_id: ExecutionId::random(), point: vec![2; 33] };
    for case in BadToken::cases() {
        let name = case.name;
        let expected =
            if case.kind == ErrorKind::PolicyDenied { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
        let mint = || case.mint(&good, &aud, &wallet);
        let requests: Vec<(Method, String, Option<Vec<u8>>)> = vec![
            (Method::GET, key_url.clone(), None),
            (Method::POST, format!("{key_url}/commit"), Some(eid_body.clone())),
            (Method::POST, format!("{key_url}/rollback"), Some(eid_body.clone())),
            (Method::POST, format!("{url}/v1/ecdh"), Some(cbor(&ecdh))),
            (Method::POST, format!("{url}/v1/sessions"), Some(cbor(&scripted_request(Script::Echo)))),
        ];
        for (method, u, body) in requests {
            let token = mint();
            let (status, bytes) = raw(method.clone(), &u, token.as_deref(), body).await;
            assert_eq!(status, expected, "{name}: {method} {u}");
            let e = wire_error(&bytes);
            assert_eq!(e.kind, case.kind, "{name}: {e:?}");
            if let Some(t) = token {
                assert!(!e.message.contains(&t), "{name}: the token is not echoed");
            }
        }
    }
    assert_eq!(service.calls(), 0, "no refused request reached the service");

    // The same token twice: the second is a replay.
    let token = good.mint(&aud, &wallet).unwrap();
    let (status, _) = raw(Method::GET, &key_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, bytes) = raw(Method::GET, &key_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed token");
    assert!(wire_error(&bytes).message.contains("already used"));
    assert_eq!(service.calls(), 1, "only the first of the two reached the service");

    // /health and /ready need no token.
    assert_eq!(raw(Method::GET, &format!("{url}/health"), None, None).await.0, StatusCode::OK);
    assert_eq!(raw(Method::GET, &format!("{url}/ready"), None, None).await.0, StatusCode::OK);
}

/// The body of the commit and rollback routes.
#[derive(serde::Serialize)]
struct ExecutionRef {
    execution_id: ExecutionId,
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_wallet() {
    let service = Arc::new(CountingCosigner::default());
    let server = start(service.clone(), ServerLimits::default(), None).await;
    let url = server.url.clone();
    let aud = audience_of(&url);
    let good = TokenMinter::hs256(SECRET).unwrap();
    let client = HttpTransport::new(&url, Arc::new(TokenMinter::hs256(SECRET).unwrap()), None).unwrap();

    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = client.open_session(req).await.unwrap();
    let batch = cbor(&vec![envelope(eid, 0, 0, 10)]);
    for tail in ["exchange", "messages"] {
        let u = format!("{url}/v1/sessions/{eid}/{tail}");
        let (status, _) = raw(Method::POST, &u, None, Some(batch.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{tail} without a token");
        let intruder = good.mint(&aud, &WalletId::new("another-wallet").unwrap()).unwrap();
        let (status, _) = raw(Method::POST, &u, Some(&intruder), Some(batch.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{tail} for another wallet");
    }
    let intruder = good.mint(&aud, &WalletId::new("another-wallet").unwrap()).unwrap();
    let (status, _) = raw(Method::DELETE, &format!("{url}/v1/sessions/{eid}"), Some(&intruder), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "close for another wallet");
    assert_eq!(service.envelopes(), 0, "no refused envelope reached the service");

    // The refused requests did not disturb the session.
    echo_on(&mut ch, eid, 3).await;
    assert_eq!(service.envelopes(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_the_wrong_secret_is_told_what_to_fix() {
    let server = start(Arc::new(CountingCosigner::default()), ServerLimits::default(), None).await;
    let client = HttpTransport::new(&server.url, Arc::new(TokenMinter::hs256(OTHER_SECRET).unwrap()), None).unwrap();
    let e = client.key_info(&known_key()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains("MPC_JWT_SECRET"), "{e}");
    let e = client.open_session(scripted_request(Script::Echo)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let debug = format!("{client:?}");
    assert!(!debug.contains("some-other-secret"), "{debug}");
}

/// What a raw request got back: the status, the headers (names lower-cased), the body, and
/// whether the server then closed the connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    closed: bool,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The largest body the cosigner accepts by default; every raw request announces that much.
const ANNOUNCED: usize = 8 * 1024 * 1024;

/// Sends only the request line and headers of a request announcing an 8 MiB CBOR body, never a
/// byte of the body, and reads the answer. Fails (instead of hanging) when the server has not
/// answered within 10 s, which is what a server waiting for the body does.
async fn headers_only(url: &str, method: &str, path: &str, extra: &[(&str, &str)]) -> RawReply {
    let addr = url.strip_prefix("http://").expect("a plain-http test server");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/cbor\r\nAccept: application/cbor\r\n\
         Content-Length: {ANNOUNCED}\r\n"
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("send the headers");
    let read = async {
        let mut buf = Vec::new();
        let (head_len, status, headers, body_len) = loop {
            if stream.read_buf(&mut buf).await.expect("read the answer") == 0 {
                panic!("the server closed the connection without answering: {:?}", String::from_utf8_lossy(&buf));
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let text = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = text.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status line");
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body_len = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .expect("a sized answer");
            break (end + 4, status, headers, body_len);
        };
        while buf.len() < head_len + body_len {
            assert!(stream.read_buf(&mut buf).await.expect("read the answer") > 0, "the answer was cut short");
        }
        let body = buf[head_len..head_len + body_len].to_vec();
        // Then the server either closes the connection or waits for the announced body; a short
        // look tells them apart (an open connection is reported, not waited for).
        let closed = match tokio::time::timeout(Duration::from_secs(2), stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) => panic!("the server sent more than one answer: {:?}", String::from_utf8_lossy(&buf)),
            Err(_) => false,
        };
        RawReply { status, headers, body, closed }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s while the body was held back"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_refused_on_its_headers_before_its_body_is_read() {
    let service = Arc::new(CountingCosigner::default());
    let server = start(service.clone(), ServerLimits::default(), None).await;
    let url = server.url.clone();
    let aud = audience_of(&url);
    let good = TokenMinter::hs256(SECRET).unwrap();
    let forged = TokenMinter::hs256(OTHER_SECRET).unwrap();
    let wallet = WalletId::new(KNOWN_WALLET).unwrap();

    // A live session, so its routes exist; refusals must not disturb it.
    let client = HttpTransport::new(&url, Arc::new(TokenMinter::hs256(SECRET).unwrap()), None).unwrap();
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = client.open_session(req).await.unwrap();

    let paths = [
        "/v1/sessions".to_string(),
        "/v1/ecdh".to_string(),
        format!("/v1/sessions/{eid}/messages"),
        format!("/v1/sessions/{eid}/exchange"),
        format!("/v1/wallets/{KNOWN_WALLET}/keys/0/commit"),
    ];
    let used = good.mint(&aud, &wallet).unwrap().to_string();
    assert_eq!(
        raw(Method::GET, &format!("{url}/v1/wallets/{KNOWN_WALLET}/keys/0"), Some(&used), None).await.0,
        StatusCode::OK
    );
    let calls_before = service.calls();
    for path in &paths {
        let forged_token = format!("Bearer {}", *forged.mint(&aud, &wallet).unwrap());
        let replayed = format!("Bearer {used}");
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("no token", vec![]),
            ("no token, expecting 100-continue", vec![("Expect", "100-continue")]),
            ("not bearer", vec![("Authorization", "Basic dXNlcjpwdw==")]),
            ("forged", vec![("Authorization", forged_token.as_str())]),
            ("replayed", vec![("Authorization", replayed.as_str())]),
        ];
        for (name, extra) in cases {
            let reply = headers_only(&url, "POST", path, &extra).await;
            assert_eq!(reply.status, 401, "{name}: POST {path}: {reply:?}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{name}: {path}");
            assert_eq!(wire_error(&reply.body).kind, ErrorKind::Unauthorized, "{name}: {path}");
            // The connection ends with the answer: nothing waits for (or drains) the body.
            assert_eq!(reply.header("connection"), Some("close"), "{name}: {path}");
            assert!(reply.closed, "{name}: POST {path}: the connection was left open for the body");
        }
    }

    // A valid token for another wallet is refused for a session's batch before the batch is read.
    for tail in ["messages", "exchange"] {
        let intruder = good.mint(&aud, &WalletId::new("another-wallet").unwrap()).unwrap();
        let bearer = format!("Bearer {}", *intruder);
        let reply =
            headers_only(&url, "POST", &format!("/v1/sessions/{eid}/{tail}"), &[("Authorization", &bearer)]).await;
        assert_eq!(reply.status, 403, "{tail}: {reply:?}");
        assert_eq!(wire_error(&reply.body).kind, ErrorKind::PolicyDenied);
    }

    assert_eq!(service.calls(), calls_before, "no refused request reached the service");
    assert_eq!(service.envelopes(), 0, "no refused envelope reached the service");
    echo_on(&mut ch, eid, 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_unauthenticated_large_requests_are_refused_promptly() {
    let service = Arc::new(CountingCosigner::default());
    let server = start(service.clone(), ServerLimits::default(), None).await;
    let url = server.url.clone();
    // Concurrently, as an attacker would: each costs its headers only, so all are answered at once
    // rather than one after another as the server reads bodies that never come.
    let attempts = (0..32).map(|i| {
        let url = url.clone();
        async move {
            let path = if i % 2 == 0 { "/v1/sessions" } else { "/v1/ecdh" };
            headers_only(&url, "POST", path, &[("Authorization", "Bearer not.a.jwt")]).await
        }
    });
    for reply in futures::future::join_all(attempts).await {
        assert_eq!(reply.status, 401, "{reply:?}");
        assert!(reply.closed);
    }
    assert_eq!(service.calls(), 0);
    // The server still serves its agent.
    common::echo_run(&HttpTransport::new(&url, common::minter(), None).unwrap(), 2).await;
}
