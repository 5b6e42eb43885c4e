//! Share persistence.

use async_trait::async_trait;

use crate::{ErrorKind, KeyId, Result, StoredShare, WalletId};

/// What a store supports beyond the required share operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreCapabilities {
    /// `get_derivation` / `put_derivation` work.
    pub derivation_cache: bool,
    /// `add_primes` / `take_primes` work.
    pub prime_pool: bool,
}

impl StoreCapabilities {
    /// Everything supported.
    pub const fn full() -> Self {
        Self { derivation_cache: true, prime_pool: true }
    }
}

/// Persists sealed key shares, the sealed derivation cache and the sealed prime pool of one party.
///
/// Records arrive sealed; a store never sees plaintext.
#[async_trait]
pub trait ShareStore: std::fmt::Debug + Send + Sync + 'static {
    /// What this store supports.
    fn capabilities(&self) -> StoreCapabilities;

    /// The record of `key`, if any.
    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>>;

    /// Inserts a new record with version 1. Fails with [`ErrorKind::AlreadyExists`] when the key
    /// has a record: the guard that keeps DKG from ever overwriting a live share.
    async fn create_share(&self, record: &StoredShare) -> Result<()>;

    /// Replaces the record if its stored version equals `expected_version`; returns the new
    /// version. [`ErrorKind::Conflict`] on another version, [`ErrorKind::NotFound`] when absent.
    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64>;

    /// Deletes the record if its version equals `expected_version`.
    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()>;

    /// Keys of `wallet` held here, ordered by index.
    async fn list_keys(&self, wallet: &WalletId) -> Result<Vec<KeyId>>;

    /// A sealed derivation-cache entry by its lookup key.
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Stores a sealed derivation-cache entry (last write wins: entries are deterministic).
    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()>;

    /// Adds one sealed prime pair to `pool`.
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()>;

    /// Removes and returns one sealed prime pair from `pool`; each pair is handed out once,
    /// also under concurrent takers.
    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>>;

    /// How many pairs `pool` holds.
    async fn count_primes(&self, pool: &str) -> Result<u64>;
}

/// Conveniences over [`ShareStore`]. Implemented for every store; do not implement it yourself.
#[async_trait]
pub trait ShareStoreExt: ShareStore {
    /// Whether `key` has a record.
    async fn exists(&self, key: &KeyId) -> Result<bool> {
        Ok(self.load_share(key).await?.is_some())
    }

    /// Creates the record unless one exists; returns whether it was created.
    async fn put_if_absent(&self, record: &StoredShare) -> Result<bool> {
        match self.create_share(record).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<S: ShareStore + ?Sized> ShareStoreExt for S {}
