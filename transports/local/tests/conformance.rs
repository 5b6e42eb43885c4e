//! local:// passes the same transport conformance suite as the network transports.

use std::sync::Arc;

use wallet_traits::CosignerTransport;
use wallet_transport_local::{register_local_cosigner, LocalTransport};

#[tokio::test(flavor = "multi_thread")]
async fn local_transport_conformance() {
    let report = wallet_testkit::transport_suite(|service| async move {
        register_local_cosigner("conformance", service);
        Arc::new(LocalTransport::new("conformance")) as Arc<dyn CosignerTransport>
    })
    .await;
    println!("{report:?}");
    assert_eq!(report.passed.len(), 10, "{report:?}");
}

#[tokio::test]
async fn unregistered_name_is_unavailable() {
    let e = LocalTransport::new("nobody-here").health().await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::CosignerUnavailable);
}
