//! End to end on real cggmp21 and real SQLite files: DKG, persistence, restore, signing, and the
//! failure cases of issue 2 (wrong secret, corruption, moved records, mismatched cosigners,
//! interrupted commits, concurrent signing, verifiable ECDH).

mod common;

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use async_trait::async_trait;
use common::*;
use k256::elliptic_curve::{ops::Reduce, sec1::ToEncodedPoint};
use wallet_engine::{InsecureTestPrimes, Provisioned};
use wallet_traits::{
    DerivationCacheStore, EcdhRequest, ErrorKind, ExecutionId, KeyId, PrimePoolStore, PublicKey, Result, SessionParams,
    SessionRequest, ShareState, ShareStore, StoredShare, WalletId,
};

/// P + h*G with k256 alone.
fn k256_child(pk: &[u8], tweak: &[u8; 32]) -> Vec<u8> {
    let p = k256::PublicKey::from_sec1_bytes(pk).unwrap().to_projective();
    let h = <k256::Scalar as Reduce<k256::U256>>::reduce_bytes(&(*tweak).into());
    let child = (p + k256::ProjectivePoint::GENERATOR * h).to_affine();
    child.to_encoded_point(true).as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn dkg_then_restore_from_files_alone_and_sign() {
    // The fixture ran a 3-party DKG and dropped every in-memory object; only the files remain.
    let dir = copy_fixture("main");
    let before = snapshot(dir.path()).await;
    assert!(before.iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
    let pk = before[0].as_ref().unwrap().meta.public_key.clone();

    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let phases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = phases.clone();
    let (wallet, provisioned) = builder(dir.path(), SECRET, &cosigners)
        .await
        .on_progress(move |p| seen.lock().unwrap().push(p))
        .build()
        .await
        .unwrap();
    assert_eq!(provisioned, Provisioned::Restored);
    assert_eq!(wallet.identity_key().as_bytes()[..], pk[..]);
    let phases = phases.lock().unwrap().clone();
    assert!(phases.contains(&wallet_engine::Progress::Started(wallet_engine::Phase::Restore)), "{phases:?}");
    assert!(!phases.iter().any(|p| matches!(p, wallet_engine::Progress::Started(wallet_engine::Phase::Keygen))));

    let d = digest("restored wallet signs");
    let sig = wallet.sign_digest(&d, None).await.unwrap();
    assert!(k256_verifies(&pk, &d, &sig), "root signature must verify with k256");

    let tweak = digest("a BRC-42 style tweak");
    let sig = wallet.sign_digest(&d, Some(&tweak)).await.unwrap();
    let child = k256_child(&pk, &tweak);
    assert!(k256_verifies(&child, &d, &sig), "tweaked signature must verify against P + h*G");
    assert!(!k256_verifies(&pk, &d, &sig), "and not against P");
    // Nothing about the stored key changed.
    assert_eq!(snapshot(dir.path()).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_is_refused_and_nothing_is_written() {
    let dir = copy_fixture("main");
    let before = snapshot(dir.path()).await;
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let err = builder(dir.path(), "not the secret", &cosigners).await.build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongSecret);
    assert!(err.to_string().contains("MPC_SHARE_SECRET"), "{err}");
    assert!(!err.to_string().contains("not the secret") && !format!("{err:?}").contains("not the secret"));
    drop(cosigners);
    assert_eq!(snapshot(dir.path()).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_byte_in_a_sealed_record_is_corrupted() {
    let dir = copy_fixture("main");
    let store = agent_store(dir.path()).await;
    let mut record = store.load_share(&key()).await.unwrap().unwrap();
    let mid = record.sealed.len() / 2;
    record.sealed[mid] ^= 0x40;
    store.update_share(&record, record.version).await.unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let err = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn record_copied_under_another_wallet_id_fails_to_open() {
    let dir = copy_fixture("main");
    let store = agent_store(dir.path()).await;
    let mut record = store.load_share(&key()).await.unwrap().unwrap();
    let other = KeyId::new(WalletId::new("someone-else").unwrap(), 0);
    record.key = other.clone();
    store.create_share(&record).await.unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let err = builder(dir.path(), SECRET, &cosigners).await.wallet_id("someone-else").build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
    // The cosigners were not asked to create anything for the other wallet.
    for s in &cosigners.stores {
        assert!(s.load_share(&other).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_dkg_over_a_live_share() {
    let dir = copy_fixture("main");
    let before = snapshot(dir.path()).await;
    // The store refuses a second record for the key.
    let store = agent_store(dir.path()).await;
    let existing = store.load_share(&key()).await.unwrap().unwrap();
    assert_eq!(store.create_share(&existing).await.unwrap_err().kind(), ErrorKind::AlreadyExists);
    // A cosigner refuses a DKG session for a key it holds.
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let request = SessionRequest {
        key: key(),
        execution_id: ExecutionId::random(),
        parties: vec![0, 1, 2],
        params: SessionParams::Dkg { threshold: 2, total: 3 },
    };
    let err = cosigners.transports()[0].open_session(request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    // An agent that lost its share does not start a new DKG while the cosigners hold the key.
    store.delete_share(&key(), existing.version).await.unwrap();
    let err = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert!(err.to_string().contains("MPC_WALLET_ID"), "{err}");
    let after = snapshot(dir.path()).await;
    assert_eq!(after[1..], before[1..], "cosigner records unchanged");
}

/// The cosigner files of `parties` now come from another DKG of the same wallet id.
fn swap_in_other_dkg(dir: &std::path::Path, parties: &[u16]) {
    let other = fixture("other");
    for i in parties {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("cosigner-{i}.db{suffix}")));
            let src = other.join(format!("cosigner-{i}.db{suffix}"));
            if src.exists() {
                std::fs::copy(src, dir.join(format!("cosigner-{i}.db{suffix}"))).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_holding_another_key_is_skipped() {
    let dir = copy_fixture("main");
    swap_in_other_dkg(dir.path(), &[2]);
    let before = snapshot(dir.path()).await;
    let pk = before[0].as_ref().unwrap().meta.public_key.clone();
    assert_ne!(pk, before[2].as_ref().unwrap().meta.public_key);
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    // Cosigner 1 still agrees: the wallet restores, degraded, and signs through cosigner 1.
    let (wallet, provisioned) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    assert_eq!(provisioned, Provisioned::Restored);
    let reports = wallet.cosigner_reports().await;
    assert!(reports[0].can_serve(), "{reports:?}");
    assert_eq!(reports[1].unfit, Some(wallet_engine::Unfit::AnotherKey), "{reports:?}");
    let d = digest("signed without cosigner 2");
    assert!(k256_verifies(&pk, &d, &wallet.sign_digest(&d, None).await.unwrap()));
    drop(cosigners);
    assert_eq!(snapshot(dir.path()).await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_cosigner_agreeing_on_the_key_is_share_mismatch() {
    let dir = copy_fixture("main");
    swap_in_other_dkg(dir.path(), &[1, 2]);
    let before = snapshot(dir.path()).await;
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let err = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShareMismatch);
    assert!(err.to_string().contains("cosigner 1"), "{err}");
    drop(cosigners);
    assert_eq!(snapshot(dir.path()).await, before, "nothing changed");
}

/// The agent's store, failing the flip to Active once: a crash after the cosigners committed.
#[derive(Debug)]
struct FailActivation {
    inner: Arc<dyn ShareStore>,
    armed: AtomicBool,
}

/// Only `update_share` changes; the rest, the wrapped store's derivation cache and prime pool
/// included, is the wrapped store's.
#[async_trait]
impl ShareStore for FailActivation {
    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        self.inner.load_share(key).await
    }
    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        self.inner.create_share(record).await
    }
    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        if record.meta.state == ShareState::Active && self.armed.swap(false, Ordering::SeqCst) {
            return Err(wallet_traits::Error::new(ErrorKind::Storage, "simulated crash before the agent committed"));
        }
        self.inner.update_share(record, expected_version).await
    }
    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        self.inner.delete_share(key, expected_version).await
    }
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        self.inner.derivation_cache()
    }
    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        self.inner.prime_pool()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_between_cosigner_commit_and_agent_commit_recovers_without_dkg() {
    let dir = tempfile::tempdir().unwrap();
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let failing = Arc::new(FailActivation { inner: agent_store(dir.path()).await, armed: AtomicBool::new(true) });
    let err = builder(dir.path(), SECRET, &cosigners).await.store(failing).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    let state = snapshot(dir.path()).await;
    assert_eq!(state[0].as_ref().unwrap().meta.state, ShareState::Pending, "agent stopped before its commit");
    assert!(state[1..].iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active), "cosigners committed");
    let pk = state[0].as_ref().unwrap().meta.public_key.clone();

    let started_keygen = Arc::new(AtomicBool::new(false));
    let flag = started_keygen.clone();
    let (wallet, provisioned) = builder(dir.path(), SECRET, &cosigners)
        .await
        .on_progress(move |p| {
            if p == wallet_engine::Progress::Started(wallet_engine::Phase::Keygen) {
                flag.store(true, Ordering::SeqCst);
            }
        })
        .build()
        .await
        .unwrap();
    assert_eq!(provisioned, Provisioned::Restored);
    assert!(!started_keygen.load(Ordering::SeqCst), "no DKG on recovery");
    assert_eq!(wallet.identity_key().as_bytes()[..], pk[..]);
    assert!(snapshot(dir.path()).await.iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
    let d = digest("after recovery");
    assert!(k256_verifies(&pk, &d, &wallet.sign_digest(&d, None).await.unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_concurrent_signatures_all_verify() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    let pk = wallet.identity_key();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let w = wallet.clone();
            tokio::spawn(async move {
                let d = digest(&format!("concurrent message {i}"));
                let tweak = (i % 2 == 1).then(|| digest(&format!("tweak {i}")));
                (d, tweak, w.sign_digest(&d, tweak.as_ref()).await)
            })
        })
        .collect();
    for t in tasks {
        let (d, tweak, sig) = t.await.unwrap();
        let sig = sig.expect("every concurrent signing succeeds");
        let expected = match tweak {
            Some(h) => k256_child(pk.as_bytes(), &h),
            None => pk.as_bytes().to_vec(),
        };
        assert!(k256_verifies(&expected, &d, &sig));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn distributed_ecdh_equals_x_times_q() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();

    let q_secret = k256::SecretKey::random(&mut rand::rngs::OsRng);
    let q = PublicKey::from_slice(q_secret.public_key().to_encoded_point(true).as_bytes()).unwrap();
    let shared = wallet.ecdh(&q).await.unwrap();

    // Test only: reassemble x from two sealed records and compute x*Q directly.
    let records = snapshot(dir.path()).await;
    let s = sealer(SECRET);
    let (r0, r2) = (records[0].clone().unwrap(), records[2].clone().unwrap());
    let x = wallet_engine::insecure_testing::reconstruct_secret_key(&[(&r0, &s), (&r2, &s)]).unwrap();
    let x = <k256::Scalar as Reduce<k256::U256>>::reduce_bytes(&x.into());
    let expected = (q_secret.public_key().to_projective() * x).to_affine();
    assert_eq!(shared.as_bytes()[..], *expected.to_encoded_point(true).as_bytes());
    // The counterparty's view agrees: q * P.
    let p = k256::PublicKey::from_sec1_bytes(wallet.identity_key().as_bytes()).unwrap().to_projective();
    let theirs = (p * *q_secret.to_nonzero_scalar()).to_affine();
    assert_eq!(shared.as_bytes()[..], *theirs.to_encoded_point(true).as_bytes());
}

/// A cosigner connection whose ECDH partials are another valid point: `x_i*Q + G`.
fn lying_ecdh(inner: Arc<dyn wallet_traits::CosignerTransport>) -> Arc<dyn wallet_traits::CosignerTransport> {
    Arc::new(wallet_testkit::Intercept::new(inner).on_partial_ecdh(|mut p| {
        let z = k256::PublicKey::from_sec1_bytes(&p.point).unwrap().to_projective() + k256::ProjectivePoint::GENERATOR;
        p.point = z.to_affine().to_encoded_point(true).as_bytes().to_vec();
        p
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_ecdh_partial_is_rejected_and_the_next_cosigner_used() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let t = cosigners.transports();
    let wallet_with = |first: Arc<dyn wallet_traits::CosignerTransport>,
                       second: Arc<dyn wallet_traits::CosignerTransport>| {
        let dir = dir.path().to_path_buf();
        let keyring = cosigners.agent_keyring.clone();
        async move {
            wallet_engine::WalletBuilder::new()
                .wallet_id(WALLET)
                .share_secret(wallet_engine::ShareSecret::new(SECRET).unwrap())
                .store(agent_store(&dir).await)
                .keyring(keyring)
                .prime_source(Arc::new(InsecureTestPrimes))
                .cosigner(first)
                .cosigner(second)
                .build()
                .await
                .unwrap()
                .0
        }
    };
    let q = PublicKey::from_slice(
        k256::SecretKey::random(&mut rand::rngs::OsRng).public_key().to_encoded_point(true).as_bytes(),
    )
    .unwrap();
    let honest = wallet_with(t[0].clone(), t[1].clone()).await.distributed_ecdh(&q).await.unwrap();

    // Cosigner 1 lies: its partial is discarded and cosigner 2's gives the right result.
    let wallet = wallet_with(lying_ecdh(t[0].clone()), t[1].clone()).await;
    assert_eq!(wallet.distributed_ecdh(&q).await.unwrap(), honest);

    // Both lie: nothing is returned, and the error names both and blames them.
    let wallet = wallet_with(lying_ecdh(t[0].clone()), lying_ecdh(t[1].clone())).await;
    let err = wallet.distributed_ecdh(&q).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CosignerUnavailable, "{err}");
    assert_eq!(err.blamed(), &[1, 2]);
    assert!(err.message().contains("cosigner 1: failed during the run (protocol_abort)"), "{err}");
    assert!(err.message().contains("cosigner 2: failed during the run (protocol_abort)"), "{err}");
    assert!(err.to_string().contains("DLEQ"), "the details say why: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_refuses_a_reused_execution_id() {
    let dir = copy_fixture("main");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let t = &cosigners.transports()[0];
    let q = PublicKey::from_slice(
        k256::SecretKey::random(&mut rand::rngs::OsRng).public_key().to_encoded_point(true).as_bytes(),
    )
    .unwrap();
    let req = EcdhRequest { key: key(), execution_id: ExecutionId::random(), point: q.as_bytes().to_vec() };
    t.partial_ecdh(req.clone()).await.unwrap();
    assert_eq!(t.partial_ecdh(req).await.unwrap_err().kind(), ErrorKind::PolicyDenied);
    let sign = sign_request([7; 32]);
    let first = t.open_session(sign.clone()).await.unwrap();
    drop(first);
    assert_eq!(t.open_session(sign).await.unwrap_err().kind(), ErrorKind::PolicyDenied);
}

#[tokio::test]
async fn unknown_store_scheme_lists_known_schemes() {
    let err = wallet_engine::WalletBuilder::new()
        .wallet_id("w")
        .share_secret(wallet_engine::ShareSecret::new("s").unwrap())
        .store_url("nosuch://x")
        .cosigner_url("local://nobody")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("sqlite"), "{err}");
}
