//! Share persistence.

use async_trait::async_trait;

use crate::{Error, ErrorKind, KeyId, Result, StoredShare, WalletId};

/// What a store supports beyond the required share operations. The engine decides on it: without
/// a derivation cache every derivation asks the cosigners, without a prime pool DKG generates
/// its primes on the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoreCapabilities {
    /// `get_derivation` / `put_derivation` / `evict_derivations` / `count_derivations` work.
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
///
/// # The derivation cache
///
/// The engine caches ECDH results per key and bounds the cache itself: after each
/// [`put_derivation`](Self::put_derivation) it calls [`evict_derivations`](Self::evict_derivations)
/// with its configured maximum. For that a store keeps, per entry, when it was last *used*: a
/// [`get_derivation`](Self::get_derivation) that finds the entry and a `put_derivation` both mark
/// it used now. "Now" is a counter the store advances on every use, not a clock, so two uses
/// order exactly even within one millisecond, and clock steps cannot reorder them. The counter
/// need only order the entries of one key; it survives restarts, and entries a store held before
/// it learned recency get values by their write order where the store knows it.
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

    /// A sealed derivation-cache entry by its lookup key. A hit marks the entry used (a small
    /// write; no scan), so entries in use survive [`evict_derivations`](Self::evict_derivations).
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Stores a sealed derivation-cache entry (last write wins: entries are deterministic) and
    /// marks it used.
    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()>;

    /// Removes all but the `keep` most recently used derivation-cache entries of `key` (all of
    /// them when `keep` is 0) and returns how many it removed. Other keys' entries stay.
    ///
    /// Called after every `put_derivation`, that is on every cache miss, which already cost a
    /// cosigner round trip: a pass over the key's entries in recency order (an index) is fine,
    /// a scan of the whole store is not. With several writers the count may pass `keep` between
    /// a put and its eviction; each eviction brings it back.
    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64>;

    /// How many derivation-cache entries `key` has: for tests and operators.
    async fn count_derivations(&self, key: &KeyId) -> Result<u64>;

    /// Adds one sealed prime pair to `pool`.
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()>;

    /// Removes and returns one sealed prime pair from `pool`; each pair is handed out once,
    /// also under concurrent takers.
    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>>;

    /// How many pairs `pool` holds.
    async fn count_primes(&self, pool: &str) -> Result<u64>;
}

/// The errors of the [`ShareStore`] contract, worded alike by every store: a store names itself
/// once (`ContractErrors::new("sqlite")`) and raises these, so callers and operators see one
/// message per broken expectation whichever backend is behind it.
#[derive(Debug, Clone, Copy)]
pub struct ContractErrors {
    backend: &'static str,
}

impl ContractErrors {
    /// The errors of the store called `backend` (its URL scheme) in the `backend` context.
    pub const fn new(backend: &'static str) -> Self {
        Self { backend }
    }

    fn error(&self, kind: ErrorKind, message: &str, key: &KeyId) -> Error {
        Error::new(kind, message.to_string()).with_context("backend", self.backend).with_context("key", key)
    }

    /// [`ShareStore::create_share`] over an existing record.
    pub fn already_exists(&self, key: &KeyId) -> Error {
        self.error(
            ErrorKind::AlreadyExists,
            "a share already exists for this key; DKG will not overwrite it (restore the wallet instead, or delete \
             the share deliberately)",
            key,
        )
    }

    /// An update or delete of a key that has no record.
    pub fn not_found(&self, key: &KeyId) -> Error {
        self.error(ErrorKind::NotFound, "no share is stored for this key", key)
    }

    /// An update or delete whose expected version is not the stored one (`stored` may be `?`
    /// when it could not be read).
    pub fn changed_concurrently(&self, key: &KeyId, expected: u64, stored: impl std::fmt::Display) -> Error {
        self.error(ErrorKind::Conflict, "the share was changed concurrently; reload it and retry", key)
            .with_context("expected_version", expected)
            .with_context("stored_version", stored)
    }
}
