//! http:// and https:// pass the transport conformance suite through a real server.

mod common;

use std::sync::Arc;

use common::{client, start, tls_files};
use wallet_traits::{connect_transport, CosignerTransport, ErrorKind, Options};
use wallet_transport_common::{option_keys, ServerLimits};

/// A server for `service` and a client connected to it, kept for the case.
async fn fixture(service: Arc<dyn CosignerTransport>, tls: bool) -> wallet_testkit::TransportFixture {
    let (files, ca) = tls.then(tls_files).unzip();
    let server = start(service, ServerLimits::default(), files).await;
    assert_eq!(server.url.starts_with("https://"), tls);
    let c = client(&server.url, ca);
    wallet_testkit::TransportFixture::keeping(c, server)
}

async fn plain(service: Arc<dyn CosignerTransport>) -> wallet_testkit::TransportFixture {
    fixture(service, false).await
}

async fn tls(service: Arc<dyn CosignerTransport>) -> wallet_testkit::TransportFixture {
    fixture(service, true).await
}

// Every conformance case as its own test, over http:// and over https://.
mod http_transport {
    wallet_testkit::transport_tests!(super::plain);
}
mod https_transport {
    wallet_testkit::transport_tests!(super::tls);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_needs_a_trusted_certificate() {
    let (files, _ca) = tls_files();
    let server = start(Arc::new(wallet_testkit::ScriptedCosigner::new()), ServerLimits::default(), Some(files)).await;
    let e = client(&server.url, None).health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert!(e.to_string().contains("MPC_TLS_CA_FILE"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn both_schemes_are_registered() {
    let (files, ca) = tls_files();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let plain = start(Arc::new(wallet_testkit::ScriptedCosigner::new()), ServerLimits::default(), None).await;
    let tls = start(Arc::new(wallet_testkit::ScriptedCosigner::new()), ServerLimits::default(), Some(files)).await;

    let mut options = Options::new();
    options.insert(option_keys::JWT_SECRET.into(), String::from_utf8(common::SECRET.to_vec()).unwrap());
    let t = connect_transport(&plain.url, options.clone()).await.expect("http:// is registered");
    let info = t.key_info(&wallet_testkit::known_key()).await.unwrap();
    assert_eq!(info, Some(wallet_testkit::ScriptedCosigner::known_info()));

    options.insert(option_keys::CA_CERT_FILE.into(), ca_path.display().to_string());
    let t = connect_transport(&tls.url, options.clone()).await.expect("https:// is registered");
    t.health().await.unwrap();
    assert!(format!("{t:?}").contains(&tls.url));
    assert!(!format!("{t:?}").contains("http-transport-tests-secret"), "Debug shows no secret");

    let e = connect_transport(&plain.url, Options::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("MPC_JWT_SECRET"), "{e}");
    let e = connect_transport("http://user:pw@127.0.0.1:1", options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(!e.to_string().contains("pw@"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_cosigner_is_unavailable() {
    let server = start(Arc::new(wallet_testkit::ScriptedCosigner::new()), ServerLimits::default(), None).await;
    let url = server.url.clone();
    drop(server);
    // The server stops in the background; wait for it rather than guess how long that takes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let e = loop {
        match client(&url, None).health().await {
            Err(e) => break e,
            Ok(_) => {
                assert!(tokio::time::Instant::now() < deadline, "the server still answers 10 s after it was stopped")
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert_eq!(e.context_value("endpoint"), Some(url.as_str()));
}
