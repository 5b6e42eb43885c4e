//! cggmp21 wallets on a cggmp24 release: they restore and sign as they are, migrate with every
//! party keeping their key, and a stop at any step of the migration's commit is settled by the
//! next start so that every party signs with one protocol. Real cggmp21 and cggmp24, real SQLite
//! files, in-process cosigners.

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use common::*;
use wallet_engine::{
    insecure_testing::{import_key, reconstruct_secret_key},
    share_labels, InsecureTestPrimes, MigrationStep, PrimeSource, Primes, Protocol, Provisioned, RecordSalt, Sealer,
    Wallet,
};
use wallet_traits::{ErrorKind, PublicKey, ShareStore, StoredShare};

const ROOT: [u8; 32] = [0x5a; 32];

/// A 2-of-3 cggmp21 wallet of the known key [`ROOT`] in `dir`, as a release before cggmp24 kept it.
async fn cggmp21_wallet(dir: &std::path::Path) {
    let s = sealer(SECRET);
    let records = import_key(ROOT, 2, &key(), &[&s, &s, &s], Protocol::Cggmp21).unwrap();
    for (f, r) in ["agent.db", "cosigner-1.db", "cosigner-2.db"].iter().zip(&records) {
        let store = wallet_backend_sqlite::SqliteShareStore::open(dir.join(f)).await.unwrap();
        store.create_share(r).await.unwrap();
        store.close().await;
    }
}

fn protocols(records: &[Option<StoredShare>]) -> Vec<(String, bool)> {
    records
        .iter()
        .map(|r| {
            let l = share_labels(&r.as_ref().unwrap().sealed).unwrap();
            (l.protocol, l.next.is_some())
        })
        .collect()
}

fn settled(p: Protocol) -> Vec<(String, bool)> {
    vec![(p.label().to_string(), false); 3]
}

async fn signs(wallet: &Wallet) {
    let d = digest("after the migration");
    let sig = wallet.sign_digest(&d, None).await.unwrap();
    assert!(k256_verifies(wallet.identity_key().as_bytes(), &d, &sig));
}

fn point() -> PublicKey {
    PublicKey::from_slice(&hex::decode("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5").unwrap())
        .unwrap()
}

/// Every party's record opened with `secret` reassembles [`ROOT`]: the key did not change.
async fn key_is_root(dir: &std::path::Path) {
    let s = sealer(SECRET);
    let records: Vec<StoredShare> = snapshot(dir).await.into_iter().map(Option::unwrap).collect();
    let pairs: Vec<(&StoredShare, &Sealer)> = records.iter().map(|r| (r, &s)).collect();
    assert_eq!(reconstruct_secret_key(&pairs[..2]).unwrap(), ROOT);
    assert_eq!(reconstruct_secret_key(&pairs[1..]).unwrap(), ROOT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cggmp21_wallet_signs_then_migrates_keeping_its_key() {
    let dir = tempfile::tempdir().unwrap();
    cggmp21_wallet(dir.path()).await;
    let cosigners = Cosigners::start_with(dir.path(), SECRET, None, true).await;

    let (old, p) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    assert_eq!((p, old.protocol()), (Provisioned::Restored, Protocol::Cggmp21));
    signs(&old).await;
    let tweak = [7u8; 32];
    let d = digest("a child key");
    let child_sig = old.sign_digest(&d, Some(&tweak)).await.unwrap();
    let child = wallet_engine::tweaked_public_key(&old.identity_key(), &tweak).unwrap();
    assert!(k256_verifies(child.as_bytes(), &d, &child_sig));
    let shared = old.distributed_ecdh(&point()).await.unwrap();
    drop(old);

    // The production path: the tables are made during the migration and sealed with the share.
    let migrating = builder(dir.path(), SECRET, &cosigners).await.multiexp_tables(true).migrate();
    let (new, p) = migrating.build().await.unwrap();
    assert_eq!((p, new.protocol()), (Provisioned::Migrated, Protocol::Cggmp24));
    assert_eq!(new.identity_key(), shared_identity(&ROOT));
    signs(&new).await;
    let child_sig = new.sign_digest(&d, Some(&tweak)).await.unwrap();
    assert!(k256_verifies(child.as_bytes(), &d, &child_sig), "the child key is unchanged");
    assert_eq!(new.distributed_ecdh(&point()).await.unwrap(), shared, "ECDH (so every BRC-42 key) is unchanged");
    assert_eq!(protocols(&snapshot(dir.path()).await)[0], settled(Protocol::Cggmp24)[0]);
    key_is_root(dir.path()).await;
    drop(new);

    // The cosigners migrated too: they refuse a second migration, and the agent restores cggmp24
    // (a builder asked to migrate a current wallet just restores it).
    assert_eq!(protocols(&snapshot(dir.path()).await), settled(Protocol::Cggmp24));
    let (again, p) = builder(dir.path(), SECRET, &cosigners).await.migrate().build().await.unwrap();
    assert_eq!((p, again.protocol()), (Provisioned::Restored, Protocol::Cggmp24));
    signs(&again).await;
}

/// The compressed public key of secret `sk`, computed with k256.
fn shared_identity(sk: &[u8; 32]) -> PublicKey {
    let sk = k256::SecretKey::from_slice(sk).unwrap();
    PublicKey::from_slice(
        k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), true).as_bytes(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_at_each_step_of_the_commit_is_settled_by_the_next_start() {
    // (where the migration stops, the protocol every party signs with after the next start)
    let cases = [
        (MigrationStep::CosignersStaged, Protocol::Cggmp21),
        (MigrationStep::AgentStaged, Protocol::Cggmp24),
        (MigrationStep::FirstCosignerCommitted, Protocol::Cggmp24),
        (MigrationStep::CosignersCommitted, Protocol::Cggmp24),
    ];
    for (step, after) in cases {
        let dir = tempfile::tempdir().unwrap();
        cggmp21_wallet(dir.path()).await;
        let cosigners = Cosigners::start(dir.path(), SECRET).await;
        let e =
            builder(dir.path(), SECRET, &cosigners).await.migrate().stop_migration_at(step).build().await.unwrap_err();
        assert!(e.to_string().contains("fault injection"), "{step:?}: {e}");
        let stopped = protocols(&snapshot(dir.path()).await);
        assert!(
            stopped.iter().any(|(_, staged)| *staged) || step == MigrationStep::CosignersCommitted,
            "{step:?}: {stopped:?}"
        );

        // The agent restarts (the cosigners kept running): every party ends on one protocol.
        let (wallet, p) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
        assert_eq!((p, wallet.protocol()), (Provisioned::Restored, after), "{step:?}");
        assert_eq!(protocols(&snapshot(dir.path()).await), settled(after), "{step:?}");
        signs(&wallet).await;
        key_is_root(dir.path()).await;
        drop(wallet);

        // Whatever was rolled back can migrate again.
        let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.migrate().build().await.unwrap();
        assert_eq!(wallet.protocol(), Protocol::Cggmp24, "{step:?}");
        signs(&wallet).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_lost_during_the_commit_is_settled_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    cggmp21_wallet(dir.path()).await;
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    builder(dir.path(), SECRET, &cosigners)
        .await
        .migrate()
        .stop_migration_at(MigrationStep::AgentStaged)
        .build()
        .await
        .unwrap_err();

    // Cosigner 2 is down when the agent restarts: nobody committed and not every party can be
    // asked, so nothing changes and the old shares (agent and cosigner 1) sign.
    let (wallet, _) = builder_with(dir.path(), SECRET, &cosigners, one_gone(&cosigners)).await.build().await.unwrap();
    assert_eq!(wallet.protocol(), Protocol::Cggmp21);
    signs(&wallet).await;
    assert!(protocols(&snapshot(dir.path()).await).iter().all(|(_, staged)| *staged), "still staged everywhere");
    drop(wallet);

    // Back with both cosigners: the migration completes.
    let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    assert_eq!(wallet.protocol(), Protocol::Cggmp24);
    assert_eq!(protocols(&snapshot(dir.path()).await), settled(Protocol::Cggmp24));
    signs(&wallet).await;
    key_is_root(dir.path()).await;
}

/// Cosigner 1, and for cosigner 2 a name nobody serves.
fn one_gone(cosigners: &Cosigners) -> Vec<Arc<dyn wallet_traits::CosignerTransport>> {
    vec![cosigners.transports().remove(0), Arc::new(wallet_transport_local::LocalTransport::new(&unique("gone")))]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_needs_every_cosigner_and_changes_nothing_without_one() {
    let dir = tempfile::tempdir().unwrap();
    cggmp21_wallet(dir.path()).await;
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let before = snapshot(dir.path()).await;
    let e =
        builder_with(dir.path(), SECRET, &cosigners, one_gone(&cosigners)).await.migrate().build().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
    assert!(e.to_string().contains("every cosigner"), "{e}");
    assert_eq!(snapshot(dir.path()).await, before, "nothing was changed");
}

/// Counts the primes taken, then hands out the fixtures.
#[derive(Debug, Default)]
struct CountingPrimes(AtomicUsize);

#[async_trait::async_trait]
impl PrimeSource for CountingPrimes {
    async fn take(&self) -> wallet_traits::Result<Primes> {
        self.0.fetch_add(1, Ordering::SeqCst);
        InsecureTestPrimes.take().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_further_key_reuses_the_groups_aux_info() {
    let dir = copy_fixture("migration-group");
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let (first, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    let primes = Arc::new(CountingPrimes::default());
    let (second, p) =
        builder(dir.path(), SECRET, &cosigners).await.key_index(1).prime_source(primes.clone()).build().await.unwrap();
    assert_eq!(p, Provisioned::Created);
    assert_eq!(primes.0.load(Ordering::SeqCst), 0, "no aux info ran: no primes were taken");
    assert_ne!(second.identity_key(), first.identity_key());
    assert_eq!(second.protocol(), Protocol::Cggmp24);
    signs(&second).await;
    signs(&first).await;

    // A wallet makes a further key of its group itself, from the share it holds.
    let (third, p) = first.key(2).await.unwrap();
    assert_eq!((p, third.key_id().index), (Provisioned::Created, 2));
    assert!(![first.identity_key(), second.identity_key()].contains(&third.identity_key()));
    signs(&third).await;
    let (again, p) = first.key(1).await.unwrap();
    assert_eq!((p, again.identity_key()), (Provisioned::Restored, second.identity_key()));

    // Every party's further-key record holds only its key part, refers to key 0 and is sealed
    // with key 0's record's salt.
    for f in ["agent.db", "cosigner-1.db", "cosigner-2.db"] {
        let store = wallet_backend_sqlite::SqliteShareStore::open(dir.path().join(f)).await.unwrap();
        let group = store.load_share(&key()).await.unwrap().unwrap();
        for index in [1, 2] {
            let k = wallet_traits::KeyId::new(key().wallet, index);
            let record = store.load_share(&k).await.unwrap().unwrap();
            assert_eq!(share_labels(&record.sealed).unwrap().aux_from, Some(0), "{f} key {index}");
            assert_eq!(RecordSalt::of(&record.sealed).unwrap(), RecordSalt::of(&group.sealed).unwrap());
            assert!(record.sealed.len() * 4 < group.sealed.len(), "{f}: {} bytes", record.sealed.len());
        }
        store.close().await;
    }

    // Everything restores from the files alone: new cosigner services, a new agent.
    drop((first, second, third, again));
    drop(cosigners);
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    for index in [1, 2] {
        let (w, p) = builder(dir.path(), SECRET, &cosigners).await.key_index(index).build().await.unwrap();
        assert_eq!(p, Provisioned::Restored);
        signs(&w).await;
    }
    // A cosigner lends only a group record's aux info: not a further key's.
    let request = wallet_traits::SessionRequest {
        key: wallet_traits::KeyId::new(key().wallet, 3),
        execution_id: wallet_traits::ExecutionId::random(),
        parties: vec![0, 1, 2],
        params: wallet_traits::SessionParams::Keygen { threshold: 2, total: 3, aux_from: 1 },
    };
    let e = cosigners.transports()[0].open_session(request).await.map(drop).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // A wrong secret fails as it does for the group's record, naming the variable.
    let e = builder(dir.path(), "not the secret", &cosigners).await.key_index(1).build().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongSecret, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_dying_during_the_migration_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    cggmp21_wallet(dir.path()).await;
    let cosigners = Cosigners::start(dir.path(), SECRET).await;
    let before = snapshot(dir.path()).await;
    // Cosigner 2 answers the first few messages of every session, then is gone.
    let mut t = cosigners.transports();
    let dying = wallet_testkit::Intercept::new(t.remove(1)).on_session(|real| {
        use futures::StreamExt;
        wallet_traits::SessionChannel::new(real.outgoing, real.incoming.take(3))
    });
    t.push(Arc::new(dying));
    let e = builder_with(dir.path(), SECRET, &cosigners, t).await.migrate().build().await.unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::CosignerUnavailable | ErrorKind::ProtocolAbort | ErrorKind::Timeout), "{e}");
    assert_eq!(snapshot(dir.path()).await, before, "nobody staged or committed anything");

    // The old shares sign; with cosigner 2 healthy again the migration runs.
    let (wallet, _) = builder(dir.path(), SECRET, &cosigners).await.build().await.unwrap();
    assert_eq!(wallet.protocol(), Protocol::Cggmp21);
    signs(&wallet).await;
    drop(wallet);
    let (wallet, p) = builder(dir.path(), SECRET, &cosigners).await.migrate().build().await.unwrap();
    assert_eq!((p, wallet.protocol()), (Provisioned::Migrated, Protocol::Cggmp24));
    signs(&wallet).await;
    key_is_root(dir.path()).await;
}
