//! The overlay client against a tiny HTTP server in the test: the request it sends, and the
//! bounds in size and time it keeps whatever the server does.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use wallet_brc100::identity::discover::{Lookup, LookupOutput};
use wallet_service_overlay::{Limits, OverlayLookup, URL_VAR};
use wallet_traits::ErrorKind;

/// What the server does with a request.
#[derive(Clone)]
enum Behaviour {
    /// Answers `status` with this body and Content-Length.
    Reply { status: u16, body: Vec<u8> },
    /// Declares a Content-Length of `declared` and sends nothing.
    Declare { declared: usize },
    /// Sends a chunked body of `total` bytes, 64 KiB at a time.
    Stream { total: usize },
    /// Reads the request and never answers.
    Hang,
    /// Sends the headers, then a byte of a chunked body every 100 ms, forever.
    Drip,
}

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, String, Vec<u8>)>>,
    written: AtomicUsize,
    done: AtomicBool,
}

async fn start(behaviour: Behaviour) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            tokio::spawn(handle(socket, behaviour.clone(), s.clone()));
        }
    });
    (url, seen)
}

async fn handle(mut socket: TcpStream, behaviour: Behaviour, seen: Arc<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = socket.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request_line = head.lines().next().unwrap_or_default().to_string();
    seen.requests.lock().unwrap().push((request_line, head, buf[header_end..].to_vec()));
    match behaviour {
        Behaviour::Reply { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nlocation: http://127.0.0.1:1/\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
        Behaviour::Declare { declared } => {
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Behaviour::Stream { total } => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let piece = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
                frame.extend_from_slice(&piece);
                frame.extend_from_slice(b"\r\n");
                if socket.write_all(&frame).await.is_err() {
                    break;
                }
                sent += piece.len();
                seen.written.store(sent, Ordering::SeqCst);
            }
            seen.done.store(true, Ordering::SeqCst);
        }
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
        Behaviour::Drip => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            loop {
                if socket.write_all(b"1\r\n \r\n").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn limits() -> Limits {
    Limits { max_body_bytes: 1024 * 1024, connect_timeout: Duration::from_secs(2), timeout: Duration::from_millis(800) }
}

async fn ask(url: &str) -> wallet_traits::Result<Vec<LookupOutput>> {
    let lookup = OverlayLookup::with_limits(url, limits()).unwrap();
    lookup.lookup("ls_identity", json!({ "identityKey": "02ab", "certifiers": ["03cd"] })).await
}

fn assert_unavailable(e: &wallet_traits::Error, url: &str, what: &str) {
    assert_eq!(e.kind(), ErrorKind::ServiceUnavailable, "{e}");
    let m = e.message();
    assert!(m.contains(url) && m.contains(URL_VAR) && m.contains(what), "{m}");
}

#[tokio::test]
async fn sends_the_sdks_request_and_reads_the_outputs() {
    let body = json!({
        "type": "output-list",
        "outputs": [{ "beef": [1, 2, 3], "outputIndex": 0 }, { "beef": [9], "outputIndex": 7 }]
    });
    let (url, seen) = start(Behaviour::Reply { status: 200, body: body.to_string().into_bytes() }).await;
    let got = ask(&format!("{url}/")).await.unwrap();
    assert_eq!(
        got,
        vec![LookupOutput { beef: vec![1, 2, 3], output_index: 0 }, LookupOutput { beef: vec![9], output_index: 7 }]
    );
    let requests = seen.requests.lock().unwrap();
    let (line, head, sent) = &requests[0];
    assert_eq!(line, "POST /lookup HTTP/1.1");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let sent: Value = serde_json::from_slice(sent).unwrap();
    assert_eq!(sent, json!({ "service": "ls_identity", "query": { "identityKey": "02ab", "certifiers": ["03cd"] } }));
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_reading() {
    let (url, _) = start(Behaviour::Declare { declared: 8 * 1024 * 1024 }).await;
    // The body never comes: only the Content-Length can have been refused.
    let e = ask(&url).await.unwrap_err();
    assert_unavailable(&e, &url, "more than 1048576 bytes");
}

#[tokio::test]
async fn a_streamed_oversized_body_is_refused_while_reading() {
    let total = 256 * 1024 * 1024;
    let (url, seen) = start(Behaviour::Stream { total }).await;
    let e = ask(&url).await.unwrap_err();
    assert_unavailable(&e, &url, "more than 1048576 bytes");
    // The client hung up: the server's writes fail long before the whole body.
    for _ in 0..100 {
        if seen.done.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.done.load(Ordering::SeqCst));
    assert!(seen.written.load(Ordering::SeqCst) < 32 * 1024 * 1024, "read was stopped at the cap");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (url, _) = start(Behaviour::Hang).await;
    let t = Instant::now();
    let e = ask(&url).await.unwrap_err();
    assert_unavailable(&e, &url, "did not answer in time");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_body_that_drips_times_out() {
    let (url, _) = start(Behaviour::Drip).await;
    let t = Instant::now();
    let e = ask(&url).await.unwrap_err();
    assert_unavailable(&e, &url, "did not answer in time");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn an_overlay_that_is_down_is_service_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = ask(&url).await.unwrap_err();
    assert_unavailable(&e, &url, "could not be reached");
}

#[tokio::test]
async fn errors_redirects_and_garbage_are_service_unavailable() {
    for (status, body, what) in [
        (500, b"{}".to_vec(), "HTTP 500"),
        (302, Vec::new(), "HTTP 302"),
        (200, b"<html>hello</html>".to_vec(), "did not answer a lookup answer"),
        (200, br#"{"type":"output-list"}"#.to_vec(), "did not answer a lookup answer"),
    ] {
        let (url, _) = start(Behaviour::Reply { status, body }).await;
        let e = ask(&url).await.unwrap_err();
        assert_unavailable(&e, &url, what);
    }
}
