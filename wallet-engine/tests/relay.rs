//! The agent relays every message between cosigners but cannot alter or forge them: payloads are
//! sealed pairwise. A relay that tampers makes the run fail with a named error, and no party keeps
//! a share.

mod common;

use std::sync::Arc;

use common::*;
use futures::SinkExt;
use wallet_traits::{CosignerTransport, Envelope, ErrorKind, SessionChannel};

#[derive(Debug, Clone, Copy)]
enum Tamper {
    FlipPayloadByte,
    ClaimAgentAsSender,
}

/// A cosigner connection through which the first relayed (cosigner-to-cosigner) envelope is
/// tampered with on its way in.
fn tampering_relay(inner: Arc<dyn CosignerTransport>, how: Tamper) -> wallet_testkit::Intercept {
    wallet_testkit::Intercept::new(inner).on_session(move |real| {
        let mut done = false;
        let tampering = real.outgoing.with(move |mut env: Envelope| {
            // Protocol position 0 is the agent; anything else was relayed from a cosigner.
            if !done && env.from != 0 {
                match how {
                    Tamper::FlipPayloadByte => env.payload[0] ^= 0x01,
                    Tamper::ClaimAgentAsSender => env.from = 0,
                }
                done = true;
            }
            futures::future::ready(Ok::<_, wallet_traits::Error>(env))
        });
        SessionChannel::new(tampering, real.incoming)
    })
}

async fn tampered_dkg_fails_and_stores_nothing(how: Tamper) {
    let dir = tempfile::tempdir().unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let t = cosigners.transports();
    let err = wallet_engine::WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
        .store(agent_store(dir.path()).await)
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(wallet_engine::InsecureTestPrimes))
        .cosigner(t[0].clone())
        .cosigner(Arc::new(tampering_relay(t[1].clone(), how)))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProtocolAbort, "{how:?}: {err}");
    let text = err.to_string();
    assert!(text.contains("cosigner 2") && text.contains("failed authentication"), "{how:?}: {text}");
    drop(cosigners);
    // Give an abandoned cosigner task time to finish, then check every store.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(snapshot(dir.path()).await.iter().all(Option::is_none), "{how:?}: no party keeps a share");
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_flipping_a_payload_byte_is_detected() {
    tampered_dkg_fails_and_stores_nothing(Tamper::FlipPayloadByte).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_claiming_another_sender_is_detected() {
    tampered_dkg_fails_and_stores_nothing(Tamper::ClaimAgentAsSender).await;
}
