//! Share persistence: the contracts a store implements.
//!
//! Three contracts, each its own trait, shaped like arrow-rs `object_store` (a small core trait;
//! the rest beside it):
//!
//! - [`ShareStore`], which every store implements: sealed key shares with compare-and-swap.
//! - [`DerivationCacheStore`], optional: the sealed derivation cache, bounded by the engine.
//! - [`PrimePoolStore`], optional: the sealed pool of Paillier prime pairs.
//! - [`PolicyStore`](crate::PolicyStore), optional: a cosigner's policy state.
//!
//! A store that keeps an optional part implements its trait and returns itself from
//! [`ShareStore::derivation_cache`] or [`ShareStore::prime_pool`]; one that does not writes
//! nothing for it, and the engine goes without: every derivation asks the cosigners, and DKG
//! generates its primes on the spot. A wrapper implements the traits it wraps, writes what it
//! changes and forwards the rest (the two accessors included, or the wrapped store's optional
//! parts are hidden). [`ContractErrors`] words the errors the contracts prescribe alike for
//! every store.

use async_trait::async_trait;

use crate::{Error, ErrorKind, KeyId, Result, StoredShare};

/// Persists the sealed key shares of one party: the contract every store implements.
///
/// Records arrive sealed; a store never sees plaintext. Each operation is atomic, also against
/// other processes sharing the store.
#[async_trait]
pub trait ShareStore: std::fmt::Debug + Send + Sync + 'static {
    /// The record of `key`, if any.
    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>>;

    /// Inserts a new record with version 1. Fails with [`ErrorKind::AlreadyExists`] when the key
    /// has a record: the guard that keeps DKG from ever overwriting a live share.
    async fn create_share(&self, record: &StoredShare) -> Result<()>;

    /// Replaces the record if its stored version equals `expected_version`; returns the new
    /// version. [`ErrorKind::Conflict`] on another version, [`ErrorKind::NotFound`] when absent.
    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64>;

    /// Deletes the record if its version equals `expected_version`; the same errors as
    /// [`update_share`](Self::update_share).
    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()>;

    /// This store's derivation cache, if it keeps one. Without one (the default) the engine
    /// caches nothing: every derivation asks the cosigners.
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        None
    }

    /// This store's prime pool, if it keeps one. Without one (the default) the engine pools
    /// nothing: each DKG generates its primes on the spot, which takes seconds to minutes.
    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        None
    }

    /// This store's policy state (spending ledger, approvals, audit log, replay sets), if it
    /// keeps it. Without it (the default) a cosigner runs without a policy, and refuses to start
    /// when one is configured: limits it could not count would be no limits.
    fn policy_state(&self) -> Option<&dyn crate::PolicyStore> {
        None
    }
}

/// The sealed derivation cache of a [`ShareStore`]: ECDH results per key, under a lookup key.
///
/// The engine bounds the cache itself: after each [`put_derivation`](Self::put_derivation) it
/// calls [`evict_derivations`](Self::evict_derivations) with its configured maximum. For that a
/// store keeps, per entry, when it was last *used*: a [`get_derivation`](Self::get_derivation)
/// that finds the entry and a `put_derivation` both mark it used now. "Now" is a counter the
/// store advances on every use, not a clock, so two uses order exactly even within one
/// millisecond, and clock steps cannot reorder them. The counter need only order the entries of
/// one key; it survives restarts, and entries a store held before it learned recency get values
/// by their write order where the store knows it.
#[async_trait]
pub trait DerivationCacheStore: Send + Sync {
    /// A sealed entry by its lookup key. A hit marks the entry used (a small write; no scan), so
    /// entries in use survive [`evict_derivations`](Self::evict_derivations).
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Stores a sealed entry (last write wins: entries are deterministic) and marks it used.
    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()>;

    /// Removes all but the `keep` most recently used entries of `key` (all of them when `keep` is
    /// 0) and returns how many it removed. Other keys' entries stay.
    ///
    /// Called after every `put_derivation`, that is on every cache miss, which already cost a
    /// cosigner round trip: a pass over the key's entries in recency order (an index) is fine,
    /// a scan of the whole store is not. With several writers the count may pass `keep` between
    /// a put and its eviction; each eviction brings it back.
    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64>;

    /// How many entries `key` has: what shows that the engine's bound holds (its tests, the
    /// conformance and crash suites) without removing anything.
    async fn count_derivations(&self, key: &KeyId) -> Result<u64>;
}

/// The sealed pool of Paillier prime pairs of a [`ShareStore`]; the engine keeps it filled
/// ahead of DKG.
#[async_trait]
pub trait PrimePoolStore: Send + Sync {
    /// Adds one sealed prime pair to `pool`.
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()>;

    /// Removes and returns one sealed prime pair from `pool`; each pair is handed out once,
    /// also under concurrent takers.
    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>>;

    /// How many pairs `pool` holds: the engine fills the pool up to its target.
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

    /// Why an update or delete expecting version `expected` cannot go ahead, given the version
    /// stored for `key` (`None`: no record): [`not_found`](Self::not_found) or
    /// [`changed_concurrently`](Self::changed_concurrently). For a store whose compare-and-swap
    /// matched nothing and that then read the stored version.
    pub fn version_mismatch(&self, key: &KeyId, expected: u64, stored: Option<impl std::fmt::Display>) -> Error {
        match stored {
            None => self.not_found(key),
            Some(stored) => self.changed_concurrently(key, expected, stored),
        }
    }

    /// The compare-and-swap check of an update or delete: `Ok` when the version stored for `key`
    /// (`None`: no record) is `expected`, else the [`version_mismatch`](Self::version_mismatch).
    pub fn check_version(&self, key: &KeyId, expected: u64, stored: Option<u64>) -> Result<()> {
        match stored {
            Some(stored) if stored == expected => Ok(()),
            stored => Err(self.version_mismatch(key, expected, stored)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WalletId;

    #[test]
    fn check_version_tells_absent_from_changed() {
        let errors = ContractErrors::new("test");
        let key = KeyId::new(WalletId::new("w").unwrap(), 0);
        assert!(errors.check_version(&key, 3, Some(3)).is_ok());
        let e = errors.check_version(&key, 3, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = errors.check_version(&key, 3, Some(4)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.context_value("stored_version"), Some("4"));
        assert_eq!(e.context_value("backend"), Some("test"));
    }
}
