//! A repeated derivation for the same counterparty makes no cosigner round trip, also after a
//! restart: the ECDH result is cached, sealed, in the agent's store under an HMAC lookup key.

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use common::*;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use wallet_brc100::{GetPublicKeyArgs, KeyMethods};
use wallet_engine::{Network, Provisioned};
use wallet_traits::PublicKey;

async fn derive(dir: &std::path::Path, counterparty: &str, calls: &Arc<AtomicUsize>) -> (String, String) {
    let cosigners = Cosigners::start(dir, SECRET).await;
    let mut b = wallet_engine::WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
        .store(agent_store(dir).await)
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(wallet_engine::InsecureTestPrimes));
    for t in cosigners.transports() {
        b = b.cosigner(Arc::new(wallet_testkit::Intercept::new(t).counting_into(calls.clone())));
    }
    let (wallet, p) = b.build().await.unwrap();
    assert_eq!(p, Provisioned::Restored);
    let w = Arc::new(wallet.clone());
    let m = KeyMethods::new(w.clone(), w, Network::Mainnet);
    let args = |key_id: &str| GetPublicKeyArgs {
        identity_key: false,
        protocol_id: Some((2, "cache check".into())),
        key_id: Some(key_id.into()),
        counterparty: Some(counterparty.to_string()),
        for_self: Some(false),
    };
    let a = m.get_public_key(args("1")).await.unwrap().public_key;
    // Same counterparty, other invoice: the shared secret is reused.
    let b = m.get_public_key(args("2")).await.unwrap().public_key;
    (a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_derivation_needs_no_cosigner_round_trip_even_after_restart() {
    let dir = copy_fixture("main");
    let their = k256::SecretKey::random(&mut rand::rngs::OsRng);
    let their_pub = their.public_key().to_encoded_point(true).as_bytes().to_vec();
    let counterparty = hex::encode(&their_pub);

    let calls = Arc::new(AtomicUsize::new(0));
    let first = derive(dir.path(), &counterparty, &calls).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one distributed ECDH (t-1 = 1 cosigner) for two derivations");

    let calls_after_restart = Arc::new(AtomicUsize::new(0));
    let second = derive(dir.path(), &counterparty, &calls_after_restart).await;
    assert_eq!(second, first, "same derived keys after the restart");
    assert_eq!(calls_after_restart.load(Ordering::SeqCst), 0, "served from the persistent cache");

    // The store reveals neither the counterparty nor the shared secret.
    let wallet_pub = {
        let s = agent_store(dir.path()).await;
        s.load_share(&key()).await.unwrap().unwrap().meta.public_key
    };
    let shared = k256::PublicKey::from_sec1_bytes(&wallet_pub).unwrap().to_projective() * *their.to_nonzero_scalar();
    let shared = PublicKey::from_slice(shared.to_affine().to_encoded_point(true).as_bytes()).unwrap();
    let mut files = Vec::new();
    for name in ["agent.db", "agent.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(name)) {
            files.extend(b);
        }
    }
    for needle in [&their_pub[..], &shared.as_bytes()[..], &shared.as_bytes()[1..]] {
        assert!(!files.windows(needle.len()).any(|w| w == needle), "the agent's files contain a derivation secret");
    }
}
