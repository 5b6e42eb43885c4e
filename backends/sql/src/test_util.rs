//! Checks the SQL backends' own tests share (feature `test-util`, for their dev-dependencies):
//! what a restart keeps, and what the derivation-recency migration keeps.

use wallet_testkit::sample_record;
use wallet_traits::{DerivationCacheStore, ErrorKind, KeyId, PrimePoolStore, ShareStore, StoredShare, WalletId};

/// Writes, as before a restart, a share under `wallet` (updated once, to 9000 sealed bytes), a
/// derivation-cache entry and a prime pair; returns the share as stored.
///
/// ### Panics
///
/// On any store error.
pub async fn write_before_restart<S>(store: &S, wallet: &WalletId) -> StoredShare
where
    S: ShareStore + DerivationCacheStore + PrimePoolStore,
{
    let mut record = sample_record(wallet, 0, 3);
    store.create_share(&record).await.unwrap();
    record.sealed = vec![9; 9000];
    record.version = store.update_share(&record, 1).await.unwrap();
    store.put_derivation(&record.key, b"lookup", b"cached").await.unwrap();
    store.add_primes("pool", b"pair").await.unwrap();
    record
}

/// Checks that `store`, reopened after [`write_before_restart`] wrote `record`, holds what was
/// written, and that the share still guards its key (errors naming `backend`).
///
/// ### Panics
///
/// When anything is missing or the guard does not hold.
pub async fn check_after_restart<S>(store: &S, record: &StoredShare, backend: &str)
where
    S: ShareStore + DerivationCacheStore + PrimePoolStore,
{
    assert_eq!(store.load_share(&record.key).await.unwrap(), Some(record.clone()));
    assert_eq!(store.get_derivation(&record.key, b"lookup").await.unwrap(), Some(b"cached".to_vec()));
    assert_eq!(store.take_primes("pool").await.unwrap(), Some(b"pair".to_vec()));
    // The guard holds across restarts: DKG cannot overwrite the share written before.
    let e = store.create_share(&sample_record(&record.key.wallet, 0, 4)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.message().contains("DKG will not overwrite"), "{e}");
    assert_eq!(e.context_value("backend"), Some(backend));
}

/// Checks the derivation cache of `key` in a database migrated from before recency was kept, in
/// which `key` had three entries, each sealing its own lookup, `written` least recently written
/// first: the entries keep their write order, and later uses and entries count as newer.
///
/// ### Panics
///
/// When the order is not kept.
pub async fn check_recency_after_migration(store: &impl DerivationCacheStore, key: &KeyId, written: [&[u8]; 3]) {
    let [oldest, middle, newest] = written;
    assert_eq!(store.count_derivations(key).await.unwrap(), 3);
    assert_eq!(store.get_derivation(key, oldest).await.unwrap(), Some(oldest.to_vec()), "old entries still open");
    // The hit made `oldest` the most recent; `middle` is now the least recently used, then `newest`.
    assert_eq!(store.evict_derivations(key, 2).await.unwrap(), 1);
    assert_eq!(store.get_derivation(key, middle).await.unwrap(), None);
    store.put_derivation(key, b"d", b"d").await.unwrap();
    assert_eq!(store.evict_derivations(key, 2).await.unwrap(), 1);
    assert_eq!(store.get_derivation(key, newest).await.unwrap(), None, "a new entry counts as newer than old ones");
    assert_eq!(store.count_derivations(key).await.unwrap(), 2);
}
