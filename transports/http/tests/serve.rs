//! `serve`: bad TLS files are refused with a clear error; shutdown lets in-flight requests end.

mod common;

use std::{sync::Arc, time::Duration};

use common::{client, tls_files, SECRET};
use tokio::{net::TcpListener, sync::oneshot};
use wallet_testkit::{scripted_request, Script, ScriptedCosigner};
use wallet_traits::ErrorKind;
use wallet_transport_common::{audience_of, ServerLimits, TlsFiles, TokenVerifier};
use wallet_transport_http::{cosigner_router, serve};
use zeroize::Zeroizing;

fn router(url: &str) -> axum::Router {
    let verifier = Arc::new(TokenVerifier::hs256(SECRET, vec![audience_of(url)]).unwrap());
    cosigner_router(Arc::new(ScriptedCosigner::new()), verifier, ServerLimits::default()).expect("default limits")
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tls_files_are_a_config_error() {
    let (good, _) = tls_files();
    let cases = [
        TlsFiles { cert_chain_pem: b"not pem".to_vec(), private_key_pem: good.private_key_pem.clone() },
        TlsFiles { cert_chain_pem: good.cert_chain_pem.clone(), private_key_pem: Zeroizing::new(b"nope".to_vec()) },
        // A key that does not match the certificate.
        TlsFiles { cert_chain_pem: good.cert_chain_pem.clone(), private_key_pem: tls_files().0.private_key_pem },
    ];
    for files in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let e = serve(listener, router("https://127.0.0.1:1"), Some(files), async {}).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("TLS"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_the_server_with_sessions_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(&url), None, async move {
        let _ = stopped.await;
    }));
    let c = client(&url, None);
    let _session = c.open_session(scripted_request(Script::Echo)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(15), server).await.expect("serve returns after shutdown");
    done.unwrap().unwrap();
    assert_eq!(c.health().await.unwrap_err().kind(), ErrorKind::CosignerUnavailable);
}
