//! The derivation cache is bounded: past its maximum the least recently used entries are evicted,
//! so callers choosing ever new counterparties cannot grow the agent's store without end.

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use common::*;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use wallet_engine::Provisioned;
use wallet_traits::{ErrorKind, PublicKey, ShareStore};

/// How many derivation-cache entries the agent's store holds for the key.
async fn cached(store: &dyn ShareStore) -> u64 {
    let entries = store.derivation_cache().expect("the SQLite store keeps a derivation cache");
    entries.count_derivations(&key()).await.unwrap()
}

const CAP: usize = 3;

fn counterparty() -> (k256::SecretKey, PublicKey) {
    let secret = k256::SecretKey::random(&mut rand::rngs::OsRng);
    let public = PublicKey::from_slice(secret.public_key().to_encoded_point(true).as_bytes()).unwrap();
    (secret, public)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_keeps_its_maximum_evicting_the_least_recently_used() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let store = agent_store(dir.path()).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let mut b = wallet_engine::WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
        .store(store.clone())
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(wallet_engine::InsecureTestPrimes))
        .derivation_cache_max(CAP);
    for t in cosigners.transports() {
        b = b.cosigner(Arc::new(wallet_testkit::Intercept::new(t).counting_into(calls.clone())));
    }
    let (wallet, provisioned) = b.build().await.unwrap();
    assert_eq!(provisioned, Provisioned::Restored);
    assert_eq!(cached(&*store).await, 0, "the fixture starts with an empty cache");

    // Each ECDH through the cache; returns how many cosigner calls it made (0: a cache hit).
    let ecdh = |point: PublicKey| {
        let (wallet, calls) = (wallet.clone(), calls.clone());
        async move {
            let before = calls.load(Ordering::SeqCst);
            let shared = wallet.ecdh(&point).await.unwrap();
            (shared, calls.load(Ordering::SeqCst) - before)
        }
    };

    let parties: Vec<_> = (0..CAP + 3).map(|_| counterparty()).collect();
    let mut results = vec![None; parties.len()];
    // Fill to the cap, then use the first (oldest written) entry again.
    for (i, (_, point)) in parties.iter().enumerate().take(CAP) {
        let (shared, made) = ecdh(*point).await;
        assert_eq!(made, 1, "counterparty {i} is new: one distributed ECDH");
        results[i] = Some(shared);
    }
    assert_eq!(cached(&*store).await, CAP as u64);
    let (shared, made) = ecdh(parties[0].1).await;
    assert_eq!((Some(shared), made), (results[0], 0), "a repeated counterparty is a cache hit");

    // Past the cap: entries 1 and 2, now the least recently used, give way to 3 and 4.
    for i in CAP..CAP + 2 {
        let (shared, made) = ecdh(parties[i].1).await;
        assert_eq!(made, 1, "counterparty {i} is new: one distributed ECDH");
        results[i] = Some(shared);
        assert_eq!(cached(&*store).await, CAP as u64, "the store holds exactly the cap");
    }
    let (shared, made) = ecdh(parties[0].1).await;
    assert_eq!((Some(shared), made), (results[0], 0), "the early entry used again survived eviction");
    let (shared, made) = ecdh(parties[1].1).await;
    assert_eq!((Some(shared), made), (results[1], 1), "the least recently used entry was evicted");
    // A new counterparty beyond the cap, then the store is still at the cap.
    let last = parties.len() - 1;
    let (shared, made) = ecdh(parties[last].1).await;
    assert_eq!(made, 1);
    results[last] = Some(shared);
    assert_eq!(cached(&*store).await, CAP as u64, "the store holds exactly the cap");

    // Cached or not, every result is the uncached distributed ECDH, and root * C as k256 says.
    let root = k256::PublicKey::from_sec1_bytes(wallet.identity_key().as_bytes()).unwrap().to_projective();
    for (i, ((secret, point), result)) in parties.iter().zip(&results).enumerate() {
        let Some(result) = result else { continue };
        assert_eq!(result, &wallet.distributed_ecdh(point).await.unwrap(), "counterparty {i}");
        let expected = (root * *secret.to_nonzero_scalar()).to_affine().to_encoded_point(true);
        assert_eq!(result.as_bytes()[..], expected.as_bytes()[..], "counterparty {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_of_zero_entries_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let err = builder(dir.path(), SECRET, &cosigners).await.derivation_cache_max(0).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(err.context_value("variable"), Some("MPC_DERIVATION_CACHE_MAX"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_maximum_applies() {
    // MPC_DERIVATION_CACHE_MAX, resolved into the configuration, reaches the cache.
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let store = agent_store(dir.path()).await;
    let mut cfg = wallet_engine::WalletConfig::default();
    cfg.derivation_cache_max = 1;
    let mut b = wallet_engine::WalletBuilder::from_config(cfg)
        .unwrap()
        .wallet_id(WALLET)
        .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
        .store(store.clone())
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(wallet_engine::InsecureTestPrimes));
    for t in cosigners.transports() {
        b = b.cosigner(t);
    }
    let (wallet, _) = b.build().await.unwrap();
    for _ in 0..3 {
        wallet.ecdh(&counterparty().1).await.unwrap();
        assert_eq!(cached(&*store).await, 1);
    }
}
