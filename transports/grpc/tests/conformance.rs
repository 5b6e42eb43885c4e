//! grpc:// and grpcs:// pass the shared transport conformance suite through a real server.

use std::sync::Arc;

use wallet_traits::CosignerTransport;
use wallet_transport_common::{ServerLimits, TlsFiles, TokenMinter};
use wallet_transport_grpc::GrpcTransport;
use zeroize::Zeroizing;

mod common;

const SECRET: &[u8] = b"conformance-secret-conformance-secret";

/// A self-signed certificate for localhost: the server's files and the CA the client trusts.
fn self_signed() -> (TlsFiles, Vec<u8>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let tls = TlsFiles {
        cert_chain_pem: cert.cert.pem().into_bytes(),
        private_key_pem: Zeroizing::new(cert.signing_key.serialize_pem().into_bytes()),
    };
    (tls, cert.cert.pem().into_bytes())
}

/// A server for `service` and a client connected to it, kept for the case.
async fn fixture(service: Arc<dyn CosignerTransport>, tls: bool) -> wallet_testkit::TransportFixture {
    let (scheme, host, files, ca) = match tls {
        true => {
            let (files, ca) = self_signed();
            ("grpcs", "localhost", Some(files), Some(ca))
        }
        false => ("grpc", "127.0.0.1", None, None),
    };
    let (url, stop) = common::spawn_server_as(service, SECRET, ServerLimits::default(), (scheme, host, files)).await;
    let minter = Arc::new(TokenMinter::hs256(SECRET).unwrap());
    let client = Arc::new(GrpcTransport::connect(&url, minter, ca).await.unwrap());
    wallet_testkit::TransportFixture::keeping(client, stop)
}

async fn plain(service: Arc<dyn CosignerTransport>) -> wallet_testkit::TransportFixture {
    fixture(service, false).await
}

async fn tls(service: Arc<dyn CosignerTransport>) -> wallet_testkit::TransportFixture {
    fixture(service, true).await
}

// Every conformance case as its own test, over grpc:// and over grpcs://.
mod grpc_transport {
    wallet_testkit::transport_tests!(super::plain);
}
mod grpcs_transport {
    wallet_testkit::transport_tests!(super::tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcs_refuses_an_untrusted_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = TlsFiles {
        cert_chain_pem: cert.cert.pem().into_bytes(),
        private_key_pem: Zeroizing::new(cert.signing_key.serialize_pem().into_bytes()),
    };
    let service = Arc::new(wallet_testkit::ScriptedCosigner::new());
    let (url, _stop) =
        common::spawn_server_as(service, SECRET, ServerLimits::default(), ("grpcs", "localhost", Some(tls))).await;
    let minter = Arc::new(TokenMinter::hs256(SECRET).unwrap());
    // No extra CA: the self-signed certificate chains to nothing the client trusts.
    let client = GrpcTransport::connect(&url, minter, None).await.unwrap();
    let e = client.health().await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::CosignerUnavailable, "{e}");
    assert_eq!(e.context_value("endpoint"), Some(url.as_str()));
}

#[tokio::test]
async fn registry_builds_both_schemes_and_needs_a_secret() {
    let mut options = wallet_traits::Options::new();
    let e = wallet_traits::connect_transport("grpc://127.0.0.1:1", options.clone()).await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::Config);
    assert!(e.to_string().contains("MPC_JWT_SECRET"), "{e}");
    options
        .insert(wallet_transport_common::option_keys::JWT_SECRET.into(), String::from_utf8(SECRET.to_vec()).unwrap());
    let t = wallet_traits::connect_transport("grpc://127.0.0.1:1", options.clone()).await.unwrap();
    assert_eq!(t.endpoint(), "grpc://127.0.0.1:1");
    assert!(!format!("{t:?}").contains("conformance-secret"));
    // Nothing listens on port 1.
    assert_eq!(t.health().await.unwrap_err().kind(), wallet_traits::ErrorKind::CosignerUnavailable);
    let t = wallet_traits::connect_transport("grpcs://localhost:1", options).await.unwrap();
    assert_eq!(t.endpoint(), "grpcs://localhost:1");
}
