//! Test support: the SDK fixtures, key methods over a single key, and a small BRC-103 server
//! (the Express middleware's behaviour, with ways to misbehave) for the client's refusals.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::Response,
};
use wallet_brc100::{CreateSignatureArgs, KeyArgs, KeyMethods, SingleKey, VerifySignatureArgs};

use crate::{
    wire::{self, header, EmptyBody},
    SIGNATURE_PROTOCOL,
};

/// Bytes @bsv/sdk 2.1.0 produced (interop/auth-fixtures.mjs).
pub(crate) const FIXTURES: &str = include_str!("../tests/fixtures/sdk.json");

/// Key methods over the single key `hex`.
pub(crate) fn keys(hex: &str) -> Arc<KeyMethods> {
    let key = Arc::new(SingleKey::from_bytes(hex::decode(hex).unwrap().try_into().unwrap()).unwrap());
    Arc::new(KeyMethods::new(key.clone(), key, wallet_bsv::Network::Mainnet))
}

/// A random single key's methods.
pub(crate) fn random_keys() -> Arc<KeyMethods> {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    keys(&hex::encode(b))
}

async fn sign(keys: &KeyMethods, data: Vec<u8>, key_id: String, counterparty: &str) -> Vec<u8> {
    keys.create_signature(CreateSignatureArgs {
        key: KeyArgs { protocol_id: (2, SIGNATURE_PROTOCOL.into()), key_id, counterparty: Some(counterparty.into()) },
        data: Some(data),
        hash_to_directly_sign: None,
    })
    .await
    .unwrap()
}

/// How the test server misbehaves on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trick {
    /// Answers properly.
    None,
    /// Flips a byte of the body after signing.
    FlipBody,
    /// Adds a signed-looking header after signing.
    AddHeader,
    /// Signs with another key and says so.
    OtherIdentity,
    /// Signs properly but claims another identity.
    ClaimOtherIdentity,
    /// Answers with the request id of another request.
    OtherRequestId,
    /// A signature header that is not hex.
    GarbageSignature,
    /// Another protocol version.
    OtherVersion,
    /// No authentication headers at all.
    Unauthenticated,
    /// Answers the first request of each session 401 without authentication (a forgotten
    /// session), properly after.
    ForgetSessionOnce,
}

/// What the server saw and decided.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Client nonce → (client identity, server nonce).
    pub(crate) sessions: HashMap<String, (String, String)>,
    /// (path, identity, body) of every verified general request.
    pub(crate) requests: Vec<(String, String, Vec<u8>)>,
    /// Handshakes answered.
    pub(crate) handshakes: usize,
    /// Clients whose session was forgotten once (ForgetSessionOnce).
    pub(crate) forgotten: Vec<String>,
    /// Payment headers received.
    pub(crate) payments: Vec<String>,
}

/// A BRC-103 server over `keys` at a free port on 127.0.0.1. Routes: `/trick/<name>` misbehave,
/// `/big` answers `big` bytes, `/empty` answers 204 with the middleware's empty body, `/pay`
/// asks 100 satoshis (402) until paid, anything else echoes the request body.
pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) keys: Arc<KeyMethods>,
    pub(crate) seen: Arc<Mutex<Seen>>,
}

/// How the test server is set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerOptions {
    /// The size of `/big`'s answer.
    pub(crate) big: usize,
    /// What the handshake answer asks for.
    pub(crate) requested_certificates: Option<serde_json::Value>,
    /// Sign the handshake with another key than the identity it claims.
    pub(crate) bad_handshake: bool,
}

#[derive(Clone)]
struct App {
    keys: Arc<KeyMethods>,
    other: Arc<KeyMethods>,
    seen: Arc<Mutex<Seen>>,
    options: ServerOptions,
}

impl TestServer {
    pub(crate) async fn start(options: ServerOptions) -> Self {
        let keys = random_keys();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = App { keys: keys.clone(), other: random_keys(), seen: seen.clone(), options };
        let router = axum::Router::new().fallback(handle).with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url: format!("http://{addr}"), keys, seen }
    }
}

fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| wire::latin1(v.as_bytes()))
}

async fn handle(State(app): State<App>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if uri.path() == "/.well-known/auth" {
        return handshake(&app, &body).await;
    }
    general(&app, &method, &uri, &headers, &body).await
}

async fn handshake(app: &App, body: &[u8]) -> Response {
    let message: serde_json::Value = serde_json::from_slice(body).unwrap();
    match message["messageType"].as_str() {
        Some("initialRequest") => {}
        // A certificateResponse: recorded, never answered (as the middleware).
        Some("certificateResponse") => {
            app.seen.lock().unwrap().requests.push((
                "/.well-known/auth".into(),
                message["identityKey"].as_str().unwrap_or_default().into(),
                body.to_vec(),
            ));
            std::future::pending::<()>().await;
        }
        other => panic!("unexpected message {other:?}"),
    }
    let client_nonce = message["initialNonce"].as_str().unwrap().to_string();
    let client = message["identityKey"].as_str().unwrap().to_string();
    let server_nonce = app.keys.create_nonce("self").await.unwrap();
    let data = [
        wallet_bsv::encoding::base64_decode(&client_nonce).unwrap(),
        wallet_bsv::encoding::base64_decode(&server_nonce).unwrap(),
    ]
    .concat();
    let signer = if app.options.bad_handshake { &app.other } else { &app.keys };
    let signature = sign(signer, data, format!("{client_nonce} {server_nonce}"), &client).await;
    {
        let mut seen = app.seen.lock().unwrap();
        seen.sessions.insert(client_nonce.clone(), (client.clone(), server_nonce.clone()));
        seen.handshakes += 1;
    }
    let answer = serde_json::json!({
        "version": "0.1",
        "messageType": "initialResponse",
        "identityKey": app.keys.identity_key().to_hex(),
        "initialNonce": server_nonce,
        "yourNonce": client_nonce,
        "requestedCertificates": app.options.requested_certificates.clone().unwrap_or(serde_json::json!({"certifiers": [], "types": {}})),
        "signature": signature,
    });
    Response::builder().header("content-type", "application/json").body(Body::from(answer.to_string())).unwrap()
}

async fn general(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let trick = match uri.path().strip_prefix("/trick/") {
        Some("flip-body") => Trick::FlipBody,
        Some("add-header") => Trick::AddHeader,
        Some("other-identity") => Trick::OtherIdentity,
        Some("claim-other-identity") => Trick::ClaimOtherIdentity,
        Some("other-request-id") => Trick::OtherRequestId,
        Some("garbage-signature") => Trick::GarbageSignature,
        Some("other-version") => Trick::OtherVersion,
        Some("unauthenticated") => Trick::Unauthenticated,
        Some("forget-session") => Trick::ForgetSessionOnce,
        _ => Trick::None,
    };
    if trick == Trick::Unauthenticated {
        return Response::builder().status(200).body(Body::from("hello")).unwrap();
    }
    // The request, checked as the middleware's buildAuthMessageFromRequest + Peer do.
    let server_nonce = get(headers, header::YOUR_NONCE).unwrap();
    let client_identity = get(headers, header::IDENTITY_KEY).unwrap();
    let client_nonce = {
        let seen = app.seen.lock().unwrap();
        seen.sessions.iter().find(|(_, (_, s))| *s == server_nonce).map(|(c, _)| c.clone())
    };
    let Some(client_nonce) = client_nonce else {
        return Response::builder().status(401).body(Body::from("Session not found for nonce")).unwrap();
    };
    if trick == Trick::ForgetSessionOnce {
        let mut seen = app.seen.lock().unwrap();
        if !seen.forgotten.contains(&client_identity) {
            seen.forgotten.push(client_identity.clone());
            seen.sessions.remove(&client_nonce);
            return Response::builder().status(401).body(Body::from("{\"code\":\"ERR_AUTH_FAILED\"}")).unwrap();
        }
    }
    let request_id_b64 = get(headers, header::REQUEST_ID).unwrap();
    let request_id: [u8; 32] = wallet_bsv::encoding::base64_decode(&request_id_b64).unwrap().try_into().unwrap();
    let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), wire::latin1(v.as_bytes())))
        .filter(|(n, _)| {
            (n.starts_with("x-bsv-") || n == "content-type" || n == "authorization") && !n.starts_with("x-bsv-auth")
        })
        .collect();
    let parts = wire::RequestParts::new(&url, method.as_str(), &pairs, Some(body)).unwrap();
    let signature = hex::decode(get(headers, header::SIGNATURE).unwrap()).unwrap();
    let valid = app
        .keys
        .verify_signature(VerifySignatureArgs {
            key: KeyArgs {
                protocol_id: (2, SIGNATURE_PROTOCOL.into()),
                key_id: format!("{} {}", get(headers, header::NONCE).unwrap(), server_nonce),
                counterparty: Some(client_identity.clone()),
            },
            data: Some(parts.payload(&request_id)),
            hash_to_directly_verify: None,
            signature,
            for_self: None,
        })
        .await
        .is_ok();
    if !valid {
        return Response::builder().status(401).body(Body::from("the request's signature does not verify")).unwrap();
    }
    app.seen.lock().unwrap().requests.push((uri.path().to_string(), client_identity.clone(), body.to_vec()));

    // The answer.
    let mut status = 200u16;
    let mut signed_headers: Vec<(String, String)> = vec![("x-bsv-route".into(), uri.path().into())];
    let mut reply = body.to_vec();
    let mut empty = EmptyBody::Zero;
    match uri.path() {
        "/big" => reply = vec![b'x'; app.options.big],
        "/empty" => {
            status = 204;
            reply.clear();
            empty = EmptyBody::Absent;
        }
        "/pay" => match get(headers, "x-bsv-payment") {
            None => {
                status = 402;
                reply = b"{\"code\":\"ERR_PAYMENT_REQUIRED\"}".to_vec();
                signed_headers.push(("x-bsv-payment-version".into(), "1.0".into()));
                signed_headers.push(("x-bsv-payment-satoshis-required".into(), "100".into()));
                signed_headers
                    .push(("x-bsv-payment-derivation-prefix".into(), app.keys.create_nonce("self").await.unwrap()));
            }
            Some(payment) => {
                app.seen.lock().unwrap().payments.push(payment);
                signed_headers.push(("x-bsv-payment-satoshis-paid".into(), "100".into()));
                reply = b"paid content".to_vec();
            }
        },
        _ => {}
    }
    let signer = if trick == Trick::OtherIdentity { &app.other } else { &app.keys };
    let message_nonce = wallet_bsv::encoding::base64_encode(&[7; 32]);
    let sorted = wire::signed_response_headers(&signed_headers);
    let payload = wire::response_payload(&request_id, status, &sorted, &reply, empty);
    let signature = sign(signer, payload, format!("{message_nonce} {client_nonce}"), &client_identity).await;
    if trick == Trick::FlipBody {
        reply[0] ^= 1;
    }
    let identity = match trick {
        Trick::OtherIdentity | Trick::ClaimOtherIdentity => app.other.identity_key().to_hex(),
        _ => app.keys.identity_key().to_hex(),
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/octet-stream")
        .header(header::VERSION, if trick == Trick::OtherVersion { "0.2" } else { "0.1" })
        .header(header::IDENTITY_KEY, identity)
        .header(header::NONCE, message_nonce)
        .header(header::YOUR_NONCE, client_nonce)
        .header(
            header::SIGNATURE,
            if trick == Trick::GarbageSignature { "zz".to_string() } else { hex::encode(signature) },
        )
        .header(
            header::REQUEST_ID,
            if trick == Trick::OtherRequestId { wallet_bsv::encoding::base64_encode(&[1; 32]) } else { request_id_b64 },
        );
    for (n, v) in &signed_headers {
        response = response.header(n, v);
    }
    if trick == Trick::AddHeader {
        response = response.header("x-bsv-injected", "1");
    }
    response.body(Body::from(reply)).unwrap()
}

/// The client against [`TestServer`]: what it accepts, and every way it refuses.
mod client {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use wallet_brc100::GetPublicKeyArgs;
    use wallet_traits::{ErrorKind, Result};

    use super::*;
    use crate::{AuthClient, AuthRequest, Payer, StaticCertificates};

    async fn setup(options: ServerOptions) -> (TestServer, AuthClient) {
        (TestServer::start(options).await, AuthClient::new(random_keys()))
    }

    #[tokio::test]
    async fn credentials_in_a_url_never_reach_an_error() {
        let client = AuthClient::new(random_keys());
        let e = client.fetch("http://agent:hunter2@127.0.0.1:9/x?token=abc", AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("user name or password"), "{e}");
        assert!(!e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"), "{e:?}");
        // Nothing listens on port 9: the connection error names the URL, its credential hidden.
        let e = client.fetch("http://127.0.0.1:9/x?api_key=s3cret", AuthRequest::get()).await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    }

    #[tokio::test]
    async fn get_and_post_are_authenticated_and_the_session_is_reused() {
        let (server, client) = setup(ServerOptions::default()).await;
        let r = client
            .fetch(&format!("{}/hello?x=1", server.url), AuthRequest::get().header("X-BSV-Tag", "t"))
            .await
            .unwrap();
        assert_eq!((r.status, r.server_identity_key.as_str()), (200, server.keys.identity_key().to_hex().as_str()));
        assert_eq!(r.header("x-bsv-route"), Some("/hello"));
        assert!(r.body.is_empty());
        let post = AuthRequest::with_body("post", "application/json; charset=utf-8", &b"{ \"a\": 1.50 }"[..]);
        let r = client.fetch(&format!("{}/echo", server.url), post).await.unwrap();
        assert_eq!(r.body, b"{\"a\":1.5}", "sent as JSON.stringify re-serializes it");
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.handshakes, 1, "one session for both requests");
        assert_eq!(seen.requests.len(), 2);
        assert!(seen.requests.iter().all(|(_, id, _)| *id == client.identity_key()));
    }

    #[tokio::test]
    async fn an_empty_body_signed_as_the_middleware_writes_it_is_accepted() {
        let (server, client) = setup(ServerOptions::default()).await;
        let r = client
            .fetch(&format!("{}/empty", server.url), AuthRequest::with_body("DELETE", "text/plain", Vec::new()))
            .await
            .unwrap();
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
    }

    #[tokio::test]
    async fn tampered_or_foreign_answers_are_refused() {
        let (server, client) = setup(ServerOptions::default()).await;
        for (trick, words) in [
            ("flip-body", "signature does not verify"),
            ("add-header", "signature does not verify"),
            ("other-identity", "not as the server of this session"),
            ("claim-other-identity", "not as the server of this session"),
            ("other-request-id", "another request"),
            ("garbage-signature", "not hex"),
            ("other-version", "version"),
            ("unauthenticated", "without BRC-103 authentication"),
        ] {
            let e = client
                .fetch(
                    &format!("{}/trick/{trick}", server.url),
                    AuthRequest::with_body("POST", "text/plain", &b"data"[..]),
                )
                .await
                .expect_err(trick);
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{trick}: {e}");
            assert!(e.message().contains(words), "{trick}: {e}");
        }
    }

    #[tokio::test]
    async fn a_handshake_signed_by_another_key_is_refused() {
        let (server, client) = setup(ServerOptions { bad_handshake: true, ..Default::default() }).await;
        let e = client.fetch(&server.url, AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.message().contains("refused the handshake"), "{e}");
        assert!(server.seen.lock().unwrap().requests.is_empty(), "no request after a failed handshake");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let server = TestServer::start(ServerOptions { big: 4096, ..Default::default() }).await;
        let client = AuthClient::new(random_keys()).max_response_bytes(1024);
        let e = client.fetch(&format!("{}/big", server.url), AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("larger than 1024 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_forgotten_session_is_made_again_once() {
        let (server, client) = setup(ServerOptions::default()).await;
        client.fetch(&format!("{}/first", server.url), AuthRequest::get()).await.unwrap();
        let r = client.fetch(&format!("{}/trick/forget-session", server.url), AuthRequest::get()).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(server.seen.lock().unwrap().handshakes, 2);
    }

    #[tokio::test]
    async fn requests_that_cannot_be_sent_authenticated_are_refused_before_anything_is_sent() {
        let (server, client) = setup(ServerOptions::default()).await;
        for (url, request) in [
            (format!("{}/", server.url), AuthRequest::get().header("accept", "text/html")),
            (format!("{}/", server.url), AuthRequest::get().header("x-bsv-auth-nonce", "x")),
            (
                format!("{}/", server.url),
                AuthRequest { method: "POST".into(), headers: vec![], body: Some(b"x".to_vec()) },
            ),
            ("ftp://example.test/".into(), AuthRequest::get()),
            ("not a url".into(), AuthRequest::get()),
            (format!("http://user:pw@{}/", server.url.trim_start_matches("http://")), AuthRequest::get()),
        ] {
            let e = client.fetch(&url, request).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{url}: {e}");
        }
        assert_eq!(server.seen.lock().unwrap().handshakes, 0);
        let e = client.fetch("http://127.0.0.1:9/", AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ServiceUnavailable, "{e}");
    }

    /// Records what it was asked to pay and answers a made-up transaction.
    #[derive(Default)]
    struct RecordingPayer {
        calls: Mutex<Vec<(u64, Vec<u8>, String)>>,
        count: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Payer for RecordingPayer {
        async fn pay(&self, satoshis: u64, locking_script: Vec<u8>, description: &str) -> Result<(String, Vec<u8>)> {
            self.count.fetch_add(1, Ordering::SeqCst);
            self.calls.lock().unwrap().push((satoshis, locking_script, description.into()));
            Ok(("ab".repeat(32), vec![1, 2, 3]))
        }
    }

    #[tokio::test]
    async fn a_402_is_paid_to_the_servers_brc29_key_and_retried_once() {
        let server = TestServer::start(ServerOptions::default()).await;
        let payer = Arc::new(RecordingPayer::default());
        let keys = random_keys();
        let client = AuthClient::new(keys.clone()).with_payer(payer.clone()).max_payment_satoshis(100);
        let r = client.fetch(&format!("{}/pay", server.url), AuthRequest::get()).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"paid content"[..]));
        assert_eq!(r.header("x-bsv-payment-satoshis-paid"), Some("100"));
        let receipt = r.payment.clone().unwrap();
        assert_eq!((receipt.satoshis, receipt.txid.as_str()), (100, "ab".repeat(32).as_str()));
        assert_eq!(receipt.payee, server.keys.identity_key().to_hex());
        // The script pays the key the server derives for itself from the prefix and suffix.
        let (sats, script, description) = payer.calls.lock().unwrap()[0].clone();
        assert_eq!(sats, 100);
        assert!(description.starts_with("Payment for request to http://127.0.0.1:"), "{description}");
        let theirs = server
            .keys
            .get_public_key(GetPublicKeyArgs {
                protocol_id: Some((2, crate::payment::BRC29_PROTOCOL.into())),
                key_id: Some(format!("{} {}", receipt.derivation_prefix, receipt.derivation_suffix)),
                counterparty: Some(client.identity_key().into()),
                for_self: Some(true),
                ..Default::default()
            })
            .await
            .unwrap()
            .public_key;
        let key = wallet_bsv::brc42::parse_public_key(&theirs).unwrap();
        assert_eq!(script, wallet_bsv::Script::p2pkh_lock_to(key.as_bytes()).into_bytes());
        let header: serde_json::Value = serde_json::from_str(&server.seen.lock().unwrap().payments[0]).unwrap();
        assert_eq!(header["derivationPrefix"], receipt.derivation_prefix.as_str());
        assert_eq!(header["derivationSuffix"], receipt.derivation_suffix.as_str());
        assert_eq!(header["transaction"], "AQID");
        assert!(keys.verify_nonce(&receipt.derivation_suffix, "self").await.unwrap(), "the suffix is our nonce");
    }

    #[tokio::test]
    async fn a_price_above_the_limit_is_refused_before_paying() {
        let server = TestServer::start(ServerOptions::default()).await;
        let payer = Arc::new(RecordingPayer::default());
        let client = AuthClient::new(random_keys()).with_payer(payer.clone()).max_payment_satoshis(99);
        let e = client.fetch(&format!("{}/pay", server.url), AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().contains("asks 100 satoshis") && e.message().contains("nothing was paid"), "{e}");
        assert_eq!(payer.count.load(Ordering::SeqCst), 0);
        // Without a payer the 402 is refused the same way, naming the price.
        let e =
            AuthClient::new(random_keys()).fetch(&format!("{}/pay", server.url), AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("100 satoshis"), "{e}");
    }

    #[tokio::test]
    async fn requested_certificates_are_sent_signed_or_the_request_is_refused() {
        let certifier = random_keys().identity_key().to_hex();
        let requested = serde_json::json!({"certifiers": [certifier], "types": {"dHlwZQ==": ["name"]}});
        let server =
            TestServer::start(ServerOptions { requested_certificates: Some(requested), ..Default::default() }).await;
        // None to show: refused before the request goes out.
        let e = AuthClient::new(random_keys()).fetch(&server.url, AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.message().contains("asks for certificates") && e.message().contains(&certifier), "{e}");
        assert!(server.seen.lock().unwrap().requests.is_empty());
        // With one: a certificateResponse signed over JSON.stringify(certificates), then the request.
        let cert = serde_json::json!({
            "type": "dHlwZQ==", "serialNumber": "c2VyaWFs", "subject": "02aa", "certifier": certifier,
            "revocationOutpoint": format!("{}.0", "00".repeat(32)), "fields": {"name": "ZW5j", "age": "MQ=="},
            "signature": "3044", "keyring": {"name": "a2V5"}
        });
        let client =
            AuthClient::new(random_keys()).with_certificates(Arc::new(StaticCertificates::new(vec![cert]).unwrap()));
        let r = client.fetch(&server.url, AuthRequest::get()).await.unwrap();
        assert_eq!(r.status, 200);
        let mut response = None;
        for _ in 0..100 {
            response = server.seen.lock().unwrap().requests.iter().find(|(p, _, _)| p == "/.well-known/auth").cloned();
            if response.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (_, identity, body) = response.expect("a certificateResponse");
        assert_eq!(identity, client.identity_key());
        let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let (client_nonce, server_nonce) = {
            let seen = server.seen.lock().unwrap();
            let (c, (_, s)) = seen.sessions.iter().find(|(_, (id, _))| id == client.identity_key()).unwrap();
            (c.clone(), s.clone())
        };
        assert_eq!(message["initialNonce"], client_nonce.as_str());
        assert_eq!(message["yourNonce"], server_nonce.as_str());
        let text = crate::json::JsValue::parse(std::str::from_utf8(&body).unwrap())
            .unwrap()
            .get("certificates")
            .unwrap()
            .stringify();
        let signature: Vec<u8> = serde_json::from_value(message["signature"].clone()).unwrap();
        let verified = server
            .keys
            .verify_signature(VerifySignatureArgs {
                key: KeyArgs {
                    protocol_id: (2, SIGNATURE_PROTOCOL.into()),
                    key_id: format!("{} {server_nonce}", message["nonce"].as_str().unwrap()),
                    counterparty: Some(client.identity_key().into()),
                },
                data: Some(text.into_bytes()),
                hash_to_directly_verify: None,
                signature,
                for_self: None,
            })
            .await;
        assert!(verified.is_ok(), "the server verifies the certificateResponse: {verified:?}");
    }

    /// A server at 127.0.0.1 that answers every request with `answer` (raw HTTP), or never.
    async fn raw_server(answer: Option<Vec<u8>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = socket.read(&mut buf).await;
                    match answer {
                        Some(a) => {
                            let _ = socket.write_all(&a).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn hostile_handshake_answers_are_bounded_and_refused() {
        // Chunked, so no content-length announces it: cut off while reading.
        let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..8 {
            chunked.extend_from_slice(b"200\r\n");
            chunked.extend_from_slice(&[b'{'; 512]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let url = raw_server(Some(chunked)).await;
        let e =
            AuthClient::new(random_keys()).max_response_bytes(1024).fetch(&url, AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("larger than 1024 bytes"), "{e}");

        for (answer, words) in [
            (&b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nnot json"[..], "not a BRC-103 initialResponse"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]", "not a BRC-103 initialResponse"),
            (b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope", "HTTP 404; it said (unverified): nope"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n{\"version\":\"0.1\",\"messageType\":\"initialResponse\",\"identityKey\":\"zz\",\"yourNonce\":\"x\",\"signature\":[]}",
                "another handshake",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 60\r\n\r\n{\"version\":\"0.1\",\"messageType\":\"x\",\"identityKey\":\"\",\"a\":[1]}",
                "\"x\" message",
            ),
        ] {
            let url = raw_server(Some(answer.to_vec())).await;
            let e = AuthClient::new(random_keys()).fetch(&url, AuthRequest::get()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
            assert!(e.message().contains(words), "{words}: {e}");
        }

        let url = raw_server(None).await;
        let client = AuthClient::new(random_keys()).timeout(std::time::Duration::from_millis(300));
        let e = client.fetch(&url, AuthRequest::get()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    }
}

/// Signatures and keys @bsv/sdk made, checked with the key methods as the client uses them.
mod sdk {
    use wallet_brc100::GetPublicKeyArgs;

    use super::*;

    fn fixtures() -> serde_json::Value {
        serde_json::from_str(FIXTURES).unwrap()
    }

    #[tokio::test]
    async fn a_servers_handshake_signature_from_the_sdk_verifies() {
        let f = fixtures();
        let client = keys(f["clientKey"].as_str().unwrap());
        let h = &f["handshake"];
        let (ours, theirs) = (h["clientNonce"].as_str().unwrap(), h["serverNonce"].as_str().unwrap());
        let data =
            [wallet_bsv::encoding::base64_decode(ours).unwrap(), wallet_bsv::encoding::base64_decode(theirs).unwrap()]
                .concat();
        let args = |data: Vec<u8>| VerifySignatureArgs {
            key: KeyArgs {
                protocol_id: (2, SIGNATURE_PROTOCOL.into()),
                key_id: format!("{ours} {theirs}"),
                counterparty: Some(f["serverIdentity"].as_str().unwrap().into()),
            },
            data: Some(data),
            hash_to_directly_verify: None,
            signature: hex::decode(h["signature"].as_str().unwrap()).unwrap(),
            for_self: None,
        };
        assert!(client.verify_signature(args(data.clone())).await.is_ok());
        let mut altered = data;
        altered[0] ^= 1;
        assert!(client.verify_signature(args(altered)).await.is_err());
    }

    #[tokio::test]
    async fn the_payment_key_and_script_are_the_sdks() {
        let f = fixtures();
        let client = keys(f["clientKey"].as_str().unwrap());
        let p = &f["payment"];
        let key = client
            .get_public_key(GetPublicKeyArgs {
                protocol_id: Some((2, crate::payment::BRC29_PROTOCOL.into())),
                key_id: Some(format!("{} {}", p["prefix"].as_str().unwrap(), p["suffix"].as_str().unwrap())),
                counterparty: Some(f["serverIdentity"].as_str().unwrap().into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .public_key;
        assert_eq!(key, p["key"].as_str().unwrap());
        let key = wallet_bsv::brc42::parse_public_key(&key).unwrap();
        assert_eq!(hex::encode(wallet_bsv::Script::p2pkh_lock_to(key.as_bytes()).into_bytes()), p["lockingScript"]);
        assert_eq!(client.identity_key().to_hex(), f["clientIdentity"].as_str().unwrap());
    }
}

#[test]
fn debug_prints_leave_credentials_out() {
    let request = crate::AuthRequest::get().header("Authorization", "Bearer s3cret").header("x-bsv-a", "shown");
    let printed = format!("{request:?}");
    assert!(!printed.contains("s3cret") && printed.contains("<redacted>") && printed.contains("shown"), "{printed}");
    let url = reqwest::Url::parse("http://a.test/").unwrap();
    let parts = wire::RequestParts::new(&url, "GET", &request.headers, None).unwrap();
    assert!(!format!("{parts:?}").contains("s3cret"));
    let response = crate::AuthResponse {
        status: 200,
        headers: vec![("authorization".into(), "Bearer s3cret".into())],
        body: vec![],
        server_identity_key: String::new(),
        payment: None,
    };
    assert!(!format!("{response:?}").contains("s3cret"));
}
