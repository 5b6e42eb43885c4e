//! The BRC-100 front's door, against a real server on 127.0.0.1: web origins, CORS preflight,
//! DNS rebinding, content type, the API token, input checks and the buffering budgets. Each
//! test also checks that a refused request ran no key operation.

mod common;

use std::{sync::Arc, time::Duration};

use common::Counting;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use wallet_brc100::{brc100_router, FrontLimits, FrontPolicy, KeyMethods, SingleKey};
use wallet_bsv::Network;
use wallet_transport_http::serve;

const EVIL: &str = "https://evil.example";
const APP: &str = "http://localhost:3000";
const TOKEN: &str = "front-test-token-0123456789abcdef";

/// A front on 127.0.0.1:0 until dropped.
struct Front {
    addr: String,
    url: String,
    key: Arc<Counting>,
    _stop: oneshot::Sender<()>,
}

impl Front {
    fn ops(&self) -> usize {
        self.key.ops()
    }
}

async fn start(policy: FrontPolicy) -> Front {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let key = Arc::new(Counting::new([42; 32]));
    let methods = Arc::new(KeyMethods::new(key.clone(), key.clone(), Network::Mainnet));
    let health = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let router = brc100_router(methods, None, None, policy.listening_on(addr), health);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, router, None, async move {
        let _ = stopped.await;
    }));
    Front { addr: addr.to_string(), url: format!("http://{addr}"), key, _stop: stop }
}

fn policy(origins: Option<&str>, hosts: Option<&str>, token: Option<&str>) -> FrontPolicy {
    FrontPolicy::parse(origins, hosts, token).unwrap()
}

/// A raw HTTP/1.1 exchange: full control over Host, Origin and framing.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    /// Asserts the front's JSON error shape with `code`; returns the message.
    fn refusal(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{:?}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert_eq!(v["isError"], true, "{v}");
        assert_eq!(v["code"], code, "{v}");
        v["message"].as_str().expect("a message").to_string()
    }
}

async fn exchange(addr: &str, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await.expect("a reply").unwrap();
    parse(&out)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let len = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16).unwrap();
        if len == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + len]);
        raw = &raw[line_end + 2 + len + 2..];
    }
}

/// `POST /{method}` with `Host` = the listening address and these extra header lines.
async fn post(f: &Front, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    post_to(&f.addr, &f.addr, method, headers, body).await
}

async fn post_to(addr: &str, host: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut head = format!("POST /{method} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    exchange(addr, &head, body.as_bytes()).await
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn sign_args(hash: Option<Vec<u8>>) -> String {
    let mut args = json!({ "protocolID": [0, "front door test"], "keyID": "1" });
    match hash {
        Some(h) => args["hashToDirectlySign"] = json!(h),
        None => args["data"] = json!([1, 2, 3]),
    }
    args.to_string()
}

fn other_key() -> String {
    SingleKey::from_bytes([5; 32]).unwrap().public_key().to_hex()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_on_another_origin_cannot_use_the_keys() {
    let f = start(policy(None, None, None)).await;
    // The attack: a "simple" request (no preflight) from any page the user opens.
    let r =
        post(&f, "createSignature", &[("Origin", EVIL), ("Content-Type", "text/plain")], &sign_args(Some(vec![7; 32])))
            .await;
    let message = r.refusal(403, "ERR_ORIGIN_NOT_ALLOWED");
    assert!(message.contains("MPC_ALLOWED_ORIGINS") && message.contains(EVIL), "{message}");
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS grant");
    assert!(!String::from_utf8_lossy(&r.body).contains("signature\""), "no signature");

    // With a JSON body too, and for the other secret-bearing methods.
    let cp = other_key();
    let calls = [
        ("createSignature", sign_args(None)),
        (
            "decrypt",
            json!({ "protocolID": [0, "front door test"], "keyID": "1", "counterparty": cp, "ciphertext": vec![0u8; 64] })
                .to_string(),
        ),
        ("revealCounterpartyKeyLinkage", json!({ "counterparty": cp, "verifier": cp }).to_string()),
        (
            "revealSpecificKeyLinkage",
            json!({ "counterparty": cp, "verifier": cp, "protocolID": [0, "front door test"], "keyID": "1" })
                .to_string(),
        ),
        ("getPublicKey", json!({ "identityKey": true }).to_string()),
    ];
    for (method, body) in &calls {
        for origin in [EVIL, "null", "http://localhost:3000", f.url.as_str()] {
            let r = post(&f, method, &[("Origin", origin), JSON], body).await;
            r.refusal(403, "ERR_ORIGIN_NOT_ALLOWED");
            assert!(r.header("access-control-allow-origin").is_none());
        }
    }
    assert_eq!(f.ops(), 0, "no key operation ran");

    // Local programs send no Origin: they are served.
    let r = post(&f, "createSignature", &[JSON], &sign_args(None)).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["signature"].is_array());
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS header without an Origin");
    assert_eq!(f.ops(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_is_echoed_and_star_only_when_configured() {
    let f = start(policy(Some("HTTP://LOCALHOST:3000/, https://app.example:443"), None, None)).await;
    let r = post(&f, "createSignature", &[("Origin", APP), JSON], &sign_args(None)).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert!(r.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    assert!(r.json()["signature"].is_array());
    // Default ports are normalized; an error answer to an allowed origin is readable by it.
    let r = post(&f, "getPublicKey", &[("Origin", "https://app.example"), JSON], r#"{"keyID":"1"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.json()["code"], 6);
    // Another port or scheme is another origin.
    for origin in ["http://localhost:3001", "https://localhost:3000", "http://app.example", EVIL] {
        post(&f, "getPublicKey", &[("Origin", origin), JSON], r#"{"identityKey":true}"#)
            .await
            .refusal(403, "ERR_ORIGIN_NOT_ALLOWED");
    }
    assert_eq!(f.ops(), 1);

    let star = start(policy(Some("*"), None, None)).await;
    let r = post(&star, "getPublicKey", &[("Origin", EVIL), JSON], r#"{"identityKey":true}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Two Origin headers are no browser's: refused even with `*`.
    post(&star, "getPublicKey", &[("Origin", APP), ("Origin", EVIL), JSON], r#"{"identityKey":true}"#)
        .await
        .refusal(403, "ERR_ORIGIN_NOT_ALLOWED");
}

async fn preflight(f: &Front, origin: &str) -> Reply {
    let head = format!(
        "OPTIONS /createSignature HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type, authorization\r\nAccess-Control-Request-Private-Network: true\r\n\
         Connection: close\r\n\r\n",
        f.addr
    );
    exchange(&f.addr, &head, b"").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preflight_is_granted_only_to_an_allowed_origin() {
    let f = start(policy(Some(APP), None, Some(TOKEN))).await;
    let r = preflight(&f, EVIL).await;
    r.refusal(403, "ERR_ORIGIN_NOT_ALLOWED");
    for h in ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-private-network"] {
        assert!(r.header(h).is_none(), "{h}");
    }
    let r = preflight(&f, APP).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert!(r.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    assert!(r.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    let allowed = r.header("access-control-allow-headers").unwrap();
    assert!(allowed.contains("content-type") && allowed.contains("authorization"), "{allowed}");
    assert_eq!(r.header("access-control-allow-private-network"), Some("true"));

    // Without a token configured, authorization is not offered.
    let open = start(policy(Some(APP), None, None)).await;
    let r = preflight(&open, APP).await;
    assert!(!r.header("access-control-allow-headers").unwrap().contains("authorization"));
    // The default allows no origin at all.
    let closed = start(policy(None, None, None)).await;
    assert!(preflight(&closed, APP).await.header("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebound_host_name_is_refused() {
    let f = start(policy(None, Some("wallet.internal"), None)).await;
    let port = f.addr.rsplit_once(':').unwrap().1;
    let body = r#"{"identityKey":true}"#;
    for host in
        [format!("attacker.example:{port}"), "attacker.example".into(), format!("localhost.attacker.example:{port}")]
    {
        let r = post_to(&f.addr, &host, "getPublicKey", &[JSON], body).await;
        let message = r.refusal(403, "ERR_HOST_NOT_ALLOWED");
        assert!(message.contains("MPC_ALLOWED_HOSTS"), "{message}");
        // Also with the attacker's own origin, as a rebound page sends it.
        let origin = format!("http://{host}");
        post_to(&f.addr, &host, "createSignature", &[("Origin", &origin), JSON], &sign_args(None))
            .await
            .refusal(403, "ERR_HOST_NOT_ALLOWED");
        // /health too.
        let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        exchange(&f.addr, &head, b"").await.refusal(403, "ERR_HOST_NOT_ALLOWED");
    }
    // No Host at all (HTTP/1.0).
    let r = exchange(
        &f.addr,
        "POST /getPublicKey HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        b"{}",
    )
    .await;
    r.refusal(403, "ERR_HOST_NOT_ALLOWED");
    assert_eq!(f.ops(), 0);

    for host in
        [f.addr.clone(), format!("localhost:{port}"), format!("LocalHost:{port}"), format!("wallet.internal:{port}")]
    {
        let r = post_to(&f.addr, &host, "getPublicKey", &[JSON], body).await;
        assert_eq!(r.status, 200, "{host}: {:?}", String::from_utf8_lossy(&r.body));
    }
    let r =
        exchange(&f.addr, &format!("GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", f.addr), b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_json_bodies_are_read() {
    let f = start(policy(None, None, None)).await;
    let body = sign_args(None);
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data"), None] {
        let headers: Vec<(&str, &str)> = ct.map(|c| vec![("Content-Type", c)]).unwrap_or_default();
        let message = post(&f, "createSignature", &headers, &body).await.refusal(415, "ERR_UNSUPPORTED_MEDIA_TYPE");
        assert!(message.contains("application/json"), "{message}");
    }
    assert_eq!(f.ops(), 0);
    let r = post(&f, "createSignature", &[("Content-Type", "Application/JSON; charset=utf-8")], &body).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_every_key_request_needs_it() {
    let f = start(policy(Some(APP), None, Some(TOKEN))).await;
    let body = sign_args(None);
    let wrong = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    for auth in [None, Some(wrong.as_str()), Some(basic.as_str()), Some("Bearer"), Some(TOKEN)] {
        let mut headers = vec![JSON];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let r = post(&f, "createSignature", &headers, &body).await;
        let message = r.refusal(401, "ERR_UNAUTHORIZED");
        assert!(message.contains("MPC_API_TOKEN") && !message.contains(TOKEN), "{message}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        // An allowed page can read why.
        let mut headers = headers.clone();
        headers.push(("Origin", APP));
        let r = post(&f, "createSignature", &headers, &body).await;
        r.refusal(401, "ERR_UNAUTHORIZED");
        assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    }
    assert_eq!(f.ops(), 0);
    let right = format!("Bearer {TOKEN}");
    let r = post(&f, "createSignature", &[JSON, ("Authorization", &right)], &body).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(f.ops(), 1);
    // /health stays reachable without it.
    let r =
        exchange(&f.addr, &format!("GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", f.addr), b"").await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hash_to_sign_is_exactly_32_bytes() {
    let f = start(policy(None, None, None)).await;
    for hash in [vec![], vec![1; 31], vec![1; 33]] {
        let r = post(&f, "createSignature", &[JSON], &sign_args(Some(hash.clone()))).await;
        assert_eq!(r.status, 400);
        let v = r.json();
        assert_eq!((v["isError"].clone(), v["code"].clone()), (json!(true), json!(6)), "{v}");
        assert_eq!(v["parameter"], "hashToDirectlySign", "{v}");
        assert!(v["message"].as_str().unwrap().contains("32 bytes"), "{v}");
    }
    let body = json!({ "protocolID": [0, "front door test"], "keyID": "1", "hashToDirectlyVerify": vec![1u8; 33], "signature": [48, 0] });
    let v = post(&f, "verifySignature", &[JSON], &body.to_string()).await.json();
    assert_eq!((v["code"].clone(), v["parameter"].clone()), (json!(6), json!("hashToDirectlyVerify")), "{v}");
    assert_eq!(f.ops(), 0, "nothing was signed");
    let r = post(&f, "createSignature", &[JSON], &sign_args(Some(vec![1; 32]))).await;
    assert_eq!(r.status, 200);
}

fn small_limits(in_flight: usize) -> FrontLimits {
    FrontLimits {
        max_body_bytes: 1024,
        max_buffered_bytes: 2048,
        max_in_flight: in_flight,
        body_timeout: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_413_json() {
    let f = start(policy(None, None, None).with_limits(small_limits(8)).unwrap()).await;
    let big = format!(r#"{{"protocolID":[0,"front door test"],"keyID":"1","data":[{}1]}}"#, "1,".repeat(600));
    let message = post(&f, "createSignature", &[JSON], &big).await.refusal(413, "ERR_BODY_TOO_LARGE");
    assert!(message.contains("1024"), "{message}");
    // Chunked, without a Content-Length: counted as it arrives.
    let mut chunked = format!(
        "POST /createSignature HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        f.addr
    )
    .into_bytes();
    for part in big.as_bytes().chunks(300) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    exchange(&f.addr, "", &chunked).await.refusal(413, "ERR_BODY_TOO_LARGE");
    assert_eq!(f.ops(), 0);
    // A chunked body within the limit is served.
    let small = sign_args(None);
    let head = format!(
        "POST /createSignature HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{small}\r\n0\r\n\r\n",
        f.addr,
        small.len()
    );
    assert_eq!(exchange(&f.addr, &head, b"").await.status, 200);
}

/// A request whose body never finishes: it holds its slot and its declared bytes. It asks for
/// `100 Continue`, which the server sends once it reads the body, so by the time this returns
/// the request has passed every check and holds its reservation (a probe sent before that
/// would race it for the budget).
async fn stalled(f: &Front, declared: usize, chunk: Option<usize>) -> TcpStream {
    let mut s = TcpStream::connect(&f.addr).await.unwrap();
    let framing = match chunk {
        None => format!("Content-Length: {declared}"),
        Some(_) => "Transfer-Encoding: chunked".to_string(),
    };
    let head = format!(
        "POST /createSignature HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n{framing}\r\n\r\n",
        f.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let want = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0; want.len()];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut got)).await.expect("100 Continue").unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want), "the stalled request was not admitted");
    let first = match chunk {
        None => "{".to_string(),
        Some(n) => format!("{n:x}\r\n{}\r\n", " ".repeat(n)),
    };
    s.write_all(first.as_bytes()).await.unwrap();
    s
}

/// A cheap request (no key operation) declaring a 100-byte body.
async fn probe(f: &Front) -> Reply {
    post(f, "getVersion", &[JSON], &format!("{{}}{}", " ".repeat(98))).await
}

/// The refusal of a [`probe`] sent while stalled requests hold the front: 503, retry in 1 s.
async fn busy(f: &Front) -> String {
    let r = probe(f).await;
    let message = r.refusal(503, "ERR_BUSY");
    assert_eq!(r.header("retry-after"), Some("1"));
    message
}

/// [`busy`], once the front has read what stalled chunked uploads sent: a chunk is reserved as
/// it is read, which may come after the probe that follows its write.
async fn until_busy(f: &Front) -> String {
    for _ in 0..500 {
        let r = probe(f).await;
        if r.status != 200 {
            let message = r.refusal(503, "ERR_BUSY");
            assert_eq!(r.header("retry-after"), Some("1"));
            return message;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the stalled uploads never held the budget");
}

async fn until_served(f: &Front) {
    for _ in 0..500 {
        if probe(f).await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never served again");
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_in_flight_answer_503_json() {
    let f = start(policy(None, None, None).with_limits(small_limits(2)).unwrap()).await;
    let a = stalled(&f, 10, None).await;
    let b = stalled(&f, 10, None).await;
    let message = busy(&f).await;
    assert!(message.contains("in flight"), "{message}");
    let r = post(&f, "createSignature", &[JSON], &sign_args(None)).await;
    r.refusal(503, "ERR_BUSY");
    assert_eq!(f.ops(), 0);
    drop((a, b));
    until_served(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_buffered_bytes_budget_answers_503_json() {
    let f = start(policy(None, None, None).with_limits(small_limits(16)).unwrap()).await;
    // Two requests declare 1000 bytes each: 48 of the 2048 remain.
    let a = stalled(&f, 1000, None).await;
    let b = stalled(&f, 1000, None).await;
    let message = busy(&f).await;
    assert!(message.contains("buffered"), "{message}");
    // A declared body beyond what remains is refused at once, without reading it.
    let r = post(&f, "createSignature", &[JSON], &sign_args(None)).await;
    r.refusal(503, "ERR_BUSY");
    // So is a chunked body that grows beyond it.
    let head = format!(
        "POST /createSignature HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n{}\r\n0\r\n\r\n",
        f.addr,
        " ".repeat(100)
    );
    exchange(&f.addr, &head, b"").await.refusal(503, "ERR_BUSY");
    assert_eq!(f.ops(), 0);
    drop((a, b));
    until_served(&f).await;
    // A stalled chunked upload holds what it sent.
    let c = stalled(&f, 0, Some(1000)).await;
    let d = stalled(&f, 0, Some(1000)).await;
    let message = until_busy(&f).await;
    assert!(message.contains("buffered"), "{message}");
    drop((c, d));
    until_served(&f).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_times_out_with_json() {
    let limits = FrontLimits { body_timeout: Duration::from_millis(300), ..small_limits(4) };
    let f = start(policy(None, None, None).with_limits(limits).unwrap()).await;
    let mut s = stalled(&f, 100, None).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await.unwrap().unwrap();
    parse(&out).refusal(408, "ERR_BODY_TIMEOUT");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_paths_and_verbs_answer_json() {
    let f = start(policy(None, None, None)).await;
    let r = exchange(
        &f.addr,
        &format!("GET /createSignature HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", f.addr),
        b"",
    )
    .await;
    r.refusal(405, "ERR_METHOD_NOT_ALLOWED");
    post(&f, "a/b", &[JSON], "{}").await.refusal(404, "ERR_NOT_FOUND");
    let v = post(&f, "listOutputs", &[JSON], "{}").await.json();
    assert!(v["message"].as_str().unwrap().contains("needs the wallet's output store"), "{v}");
    let v = post(&f, "acquireCertificate", &[JSON], "{}").await.json();
    assert!(v["message"].as_str().unwrap().contains("needs the wallet's identity methods"), "{v}");
    let v = post(&f, "noSuchMethod", &[JSON], "{}").await.json();
    assert!(v["message"].as_str().unwrap().contains("not supported"), "{v}");
    // A method error that is neither 6 nor 7 is BRC-100's code 1, named as the toolbox names it.
    assert_eq!(
        (v["code"].clone(), v["name"].clone(), v["kind"].clone()),
        (json!(1), json!("WERR_NOT_IMPLEMENTED"), json!("unsupported")),
        "{v}"
    );
}
