//! local:// passes the same transport conformance suite as the network transports.

use std::sync::Arc;

use wallet_traits::CosignerTransport;
use wallet_transport_local::{register_local_cosigner, LocalTransport};

/// local:// through every conformance case, each its own test in a hub of its own.
mod local_transport {
    use super::*;

    fn make(service: Arc<dyn CosignerTransport>) -> std::future::Ready<wallet_testkit::TransportFixture> {
        let hub = wallet_transport_local::LocalHub::new();
        hub.register("conformance", service);
        std::future::ready(wallet_testkit::TransportFixture::new(Arc::new(hub.transport("conformance"))))
    }
    wallet_testkit::transport_tests!(make);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_urls_resolve_in_the_global_hub() {
    let report = wallet_testkit::transport_suite(|service| async move {
        register_local_cosigner("conformance", service);
        Arc::new(LocalTransport::new("conformance")) as Arc<dyn CosignerTransport>
    })
    .await;
    assert_eq!(report.passed.len(), 10, "{report:?}");
}

#[tokio::test]
async fn a_hub_of_its_own_is_separate_from_the_global_one() {
    use wallet_transport_local::LocalHub;
    let (mine, other) = (LocalHub::new(), LocalHub::new());
    let service: Arc<dyn CosignerTransport> = Arc::new(LocalTransport::new("nobody-at-all"));
    mine.register("hub-test", service);
    // Registered in `mine` only: unknown to another hub and to local:// URLs.
    let e = other.transport("hub-test").health().await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::CosignerUnavailable);
    let e = LocalTransport::new("hub-test").health().await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::CosignerUnavailable);
    // Reaching it forwards to the registered service (itself a transport to nobody).
    let e = mine.transport("hub-test").health().await.unwrap_err();
    assert!(e.to_string().contains("nobody-at-all") || format!("{e:?}").contains("nobody-at-all"), "{e:?}");
    mine.unregister("hub-test");
    assert!(mine.transport("hub-test").health().await.is_err());
}

#[tokio::test]
async fn unregistered_name_is_unavailable() {
    let e = LocalTransport::new("nobody-here").health().await.unwrap_err();
    assert_eq!(e.kind(), wallet_traits::ErrorKind::CosignerUnavailable);
}
