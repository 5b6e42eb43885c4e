//! The derivation cache: ECDH results `root * C` sealed in the agent's store under an HMAC
//! lookup key (docs/ARCHITECTURE.md, "Derived keys"), so a repeated derivation for a counterparty needs no
//! cosigner round trip, also after a restart, and the table reveals no counterparties.
//!
//! The cache is bounded: any caller of the BRC-100 front picks counterparties, so without a cap
//! it could grow the store without end. After each put the least recently used entries beyond
//! the maximum are evicted (the store tracks use: hits and puts).

use std::sync::Arc;

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use wallet_traits::{KeyId, PublicKey, Result, ShareStore};
use zeroize::Zeroizing;

use crate::at_rest::seal::RecordKeys;

/// One key's derivation cache.
pub(crate) struct DerivationCache {
    store: Arc<dyn ShareStore>,
    key: KeyId,
    encryption: Zeroizing<[u8; 32]>,
    lookup: Zeroizing<[u8; 32]>,
    /// Most entries kept (at least 1).
    max: usize,
}

impl DerivationCache {
    /// The cache of `key` in `store`, with the keys derived from the share record, keeping at
    /// most `max` entries; `None` when the store keeps no derivation cache (every derivation then
    /// asks the cosigners).
    pub(crate) fn new(store: Arc<dyn ShareStore>, key: KeyId, keys: &RecordKeys, max: usize) -> Option<Self> {
        store.derivation_cache().is_some().then(|| Self {
            store,
            key,
            encryption: Zeroizing::new(keys.derivation_encryption),
            lookup: Zeroizing::new(keys.derivation_lookup),
            max: max.max(1),
        })
    }

    fn lookup_key(&self, point: &PublicKey) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.lookup.as_ref()).expect("any key length");
        mac.update(b"mpc-wallet/ecdh/v1");
        mac.update(point.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn aad(&self, lookup: &[u8; 32]) -> Vec<u8> {
        let mut a = lookup.to_vec();
        a.extend_from_slice(self.key.to_string().as_bytes());
        a
    }

    /// The cached `root * point`, if any. An entry that fails to open counts as a miss (the
    /// value can always be recomputed, and the fresh one overwrites it).
    pub(crate) async fn get(&self, point: &PublicKey) -> Result<Option<PublicKey>> {
        let Some(entries) = self.store.derivation_cache() else { return Ok(None) };
        let lookup = self.lookup_key(point);
        let Some(sealed) = entries.get_derivation(&self.key, &lookup).await? else { return Ok(None) };
        if sealed.len() < 12 {
            return Ok(None);
        }
        let (nonce, ct) = sealed.split_at(12);
        let aad = self.aad(&lookup);
        let plain = Aes256Gcm::new(self.encryption.as_ref().into())
            .decrypt(nonce.into(), aes_gcm::aead::Payload { msg: ct, aad: &aad })
            .ok()
            .map(Zeroizing::new);
        match plain.map(|p| PublicKey::from_slice(&p)) {
            Some(Ok(shared)) => Ok(Some(shared)),
            _ => {
                tracing::warn!(key = %self.key, "a derivation-cache entry does not open; recomputing it");
                Ok(None)
            }
        }
    }

    /// Stores `root * point = shared`, then evicts the least recently used entries beyond the
    /// maximum.
    pub(crate) async fn put(&self, point: &PublicKey, shared: &PublicKey) -> Result<()> {
        let Some(entries) = self.store.derivation_cache() else { return Ok(()) };
        let lookup = self.lookup_key(point);
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.aad(&lookup);
        let ct = Aes256Gcm::new(self.encryption.as_ref().into())
            .encrypt((&nonce).into(), aes_gcm::aead::Payload { msg: shared.as_bytes(), aad: &aad })
            .map_err(|_| wallet_traits::Error::new(wallet_traits::ErrorKind::Internal, "cache sealing failed"))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ct);
        entries.put_derivation(&self.key, &lookup, &sealed).await?;
        // Puts happen only on misses, after a cosigner round trip, so evicting on each costs
        // little next to it. A failed eviction leaves the entry stored and is retried by the
        // next miss, so it is not the caller's error.
        match entries.evict_derivations(&self.key, self.max).await {
            Ok(0) => {}
            Ok(evicted) => {
                tracing::debug!(key = %self.key, evicted, max = self.max, "derivation cache full: evicted the least recently used")
            }
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "could not evict derivation-cache entries; the next miss retries")
            }
        }
        Ok(())
    }
}
