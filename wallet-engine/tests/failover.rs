//! Signing, distributed ECDH and linkage take the first t-1 cosigners that can serve the key:
//! a cosigner that is frozen, lost its share, is gone, or fails during a run is skipped, and the
//! operation goes on with the next. When too few can serve, the error lists each and why.

mod common;

use std::sync::Arc;

use common::*;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use wallet_engine::{Unfit, Wallet};
use wallet_traits::{EcdhRequest, ErrorKind, ExecutionId, PublicKey, SessionChannel, ShareState};

fn random_point() -> PublicKey {
    let secret = k256::SecretKey::random(&mut rand::rngs::OsRng);
    PublicKey::from_slice(secret.public_key().to_encoded_point(true).as_bytes()).unwrap()
}

/// Signs (root and child key), derives and proves linkage, checking every result.
async fn every_operation_works(wallet: &Wallet, what: &str) {
    let pk = wallet.identity_key();
    let d = digest(what);
    let sig = wallet.sign_digest(&d, None).await.unwrap_or_else(|e| panic!("{what}: sign: {e}"));
    assert!(k256_verifies(pk.as_bytes(), &d, &sig), "{what}");
    let tweak = digest("child");
    let child = wallet_engine::tweaked_public_key(&pk, &tweak).unwrap();
    let sig = wallet.sign_digest(&d, Some(&tweak)).await.unwrap_or_else(|e| panic!("{what}: tweaked sign: {e}"));
    assert!(k256_verifies(child.as_bytes(), &d, &sig), "{what}");
    let q = random_point();
    let shared = wallet.distributed_ecdh(&q).await.unwrap_or_else(|e| panic!("{what}: ecdh: {e}"));
    let proof = wallet.linkage_proof(&q).await.unwrap_or_else(|e| panic!("{what}: linkage: {e}"));
    assert_eq!(proof.shared, shared, "{what}: the linkage is about the same shared secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_lost_and_gone_cosigners_are_skipped() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    every_operation_works(&wallet, "both cosigners fine").await;

    // Cosigner 1's share is frozen: cosigner 2 serves.
    let store = &cosigners.stores[0];
    let mut record = store.load_share(&key()).await.unwrap().unwrap();
    record.meta.state = ShareState::Frozen;
    store.update_share(&record, record.version).await.unwrap();
    let reports = wallet.cosigner_reports().await;
    assert_eq!(reports[0].unfit, Some(Unfit::NotActive(ShareState::Frozen)), "{reports:?}");
    assert!(reports[1].can_serve(), "{reports:?}");
    every_operation_works(&wallet, "cosigner 1 frozen").await;
    // The frozen cosigner itself refuses, although it opened the share before it was frozen.
    let t = cosigners.transports();
    let sign = sign_request(digest("frozen"));
    assert_eq!(t[0].open_session(sign).await.unwrap_err().kind(), ErrorKind::PolicyDenied);
    let ecdh =
        EcdhRequest { key: key(), execution_id: ExecutionId::random(), point: random_point().as_bytes().to_vec() };
    assert_eq!(t[0].partial_ecdh(ecdh).await.unwrap_err().kind(), ErrorKind::PolicyDenied);

    // Cosigner 1 lost its share.
    let record = store.load_share(&key()).await.unwrap().unwrap();
    store.delete_share(&key(), record.version).await.unwrap();
    assert_eq!(wallet.cosigner_reports().await[0].unfit, Some(Unfit::NoShare));
    every_operation_works(&wallet, "cosigner 1 without a share").await;

    // Cosigner 2 gone as well: nobody can serve, and the error says why for each.
    wallet_transport_local::unregister_local_cosigner(&cosigners.names[1]);
    let err = wallet.sign_digest(&digest("nobody"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CosignerUnavailable, "{err}");
    assert!(err.message().contains("needs 1 of the 2 cosigner(s) but only 0 can serve"), "{err}");
    assert!(err.message().contains("cosigner 1: holds no share of this key"), "{err}");
    assert!(err.message().contains("cosigner 2: unreachable"), "{err}");
    let err = wallet.distributed_ecdh(&random_point()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CosignerUnavailable, "{err}");
    let err = wallet.linkage_proof(&random_point()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CosignerUnavailable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_that_goes_away_mid_run_is_skipped() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let t = cosigners.transports();
    // Cosigner 1 accepts every session and then closes it without a word.
    let vanishing = wallet_testkit::Intercept::new(t[0].clone()).on_session(|real| {
        drop(real.incoming);
        SessionChannel::new(real.outgoing, futures::stream::empty())
    });
    let (wallet, _) = wallet_engine::WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
        .store(agent_store(dir.path()).await)
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(wallet_engine::InsecureTestPrimes))
        .cosigner(Arc::new(vanishing))
        .cosigner(t[1].clone())
        .build()
        .await
        .unwrap();
    // Its key_info answers well, so it is chosen first each time, fails, and cosigner 2 finishes.
    assert!(wallet.cosigner_reports().await.iter().all(|r| r.can_serve()));
    let d = digest("cosigner 1 vanishes");
    let sig = wallet.sign_digest(&d, None).await.unwrap();
    assert!(k256_verifies(wallet.identity_key().as_bytes(), &d, &sig));
    let q = random_point();
    assert_eq!(wallet.linkage_proof(&q).await.unwrap().shared, wallet.distributed_ecdh(&q).await.unwrap());
}
