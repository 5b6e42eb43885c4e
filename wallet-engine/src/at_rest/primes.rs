//! Where a party's Paillier prime pairs come from. Generating one takes 9 to 90 s, so pairs are
//! pooled (sealed in the party's store) and each pooled pair is used exactly once.

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use wallet_traits::{Error, ErrorKind, Result, ShareStore};

use crate::{mpc::Primes, Sealer};

/// Hands out prime pairs for aux info generation; never the same pair twice.
#[async_trait]
pub trait PrimeSource: fmt::Debug + Send + Sync + 'static {
    /// One fresh pair.
    async fn take(&self) -> Result<Primes>;
}

/// Generates a pair on demand, on the blocking pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct GeneratePrimes;

/// Generates one pair (slow: seconds to minutes).
pub async fn generate_primes() -> Result<Primes> {
    tokio::task::spawn_blocking(|| Primes::generate(&mut rand::rngs::OsRng))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("prime generation task failed: {e}")))
}

#[async_trait]
impl PrimeSource for GeneratePrimes {
    async fn take(&self) -> Result<Primes> {
        generate_primes().await
    }
}

/// A pool of sealed pairs in a [`ShareStore`]; generates a pair when the pool is empty.
#[derive(Debug, Clone)]
pub struct StorePrimePool {
    store: Arc<dyn ShareStore>,
    sealer: Sealer,
    pool: String,
}

impl StorePrimePool {
    /// The pool named `pool` in `store`, sealed with `sealer`.
    pub fn new(store: Arc<dyn ShareStore>, sealer: Sealer, pool: impl Into<String>) -> Self {
        Self { store, sealer, pool: pool.into() }
    }

    /// Generates and stores pairs until the pool holds `target`; nothing when the store keeps
    /// no prime pool.
    pub async fn fill(&self, target: u64) -> Result<u64> {
        let Some(pool) = self.store.prime_pool() else { return Ok(0) };
        let mut have = pool.count_primes(&self.pool).await?;
        while have < target {
            self.add(generate_primes().await?).await?;
            have += 1;
        }
        Ok(have)
    }

    /// Seals and adds one pair (for example one generated elsewhere, ahead of time). Fails with
    /// [`ErrorKind::Unsupported`] when the store keeps no prime pool.
    pub async fn add(&self, primes: Primes) -> Result<()> {
        let Some(store) = self.store.prime_pool() else {
            return Err(Error::new(ErrorKind::Unsupported, "this store keeps no prime pool; DKG generates primes")
                .with_context("pool", &self.pool));
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&primes).map_err(|e| Error::new(ErrorKind::Internal, format!("encode primes: {e}")))?,
        );
        let sealer = self.sealer.clone();
        let pool = self.pool.clone();
        let sealed = tokio::task::spawn_blocking(move || sealer.seal_primes(&pool, &plain))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("sealing task failed: {e}")))??;
        store.add_primes(&self.pool, &sealed).await
    }
}

#[async_trait]
impl PrimeSource for StorePrimePool {
    async fn take(&self) -> Result<Primes> {
        let Some(store) = self.store.prime_pool() else { return generate_primes().await };
        let Some(sealed) = store.take_primes(&self.pool).await? else {
            return generate_primes().await;
        };
        let sealer = self.sealer.clone();
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let plain = sealer.open_primes(&pool, &sealed)?;
            serde_json::from_slice(&plain)
                .map_err(|_| Error::new(ErrorKind::Corrupted, "a pooled prime pair does not parse"))
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("prime opening task failed: {e}")))?
    }
}

/// INSECURE fixed prime pairs that make a DKG take seconds in tests. Every test process shares
/// them, so keys made with them are not secret. Only compiled with the `insecure-test-primes`
/// feature, which only test builds enable.
#[cfg(feature = "insecure-test-primes")]
#[derive(Debug, Default)]
pub struct InsecureTestPrimes;

#[cfg(feature = "insecure-test-primes")]
impl InsecureTestPrimes {
    pub(crate) fn all() -> &'static [Primes] {
        static P: std::sync::OnceLock<Vec<Primes>> = std::sync::OnceLock::new();
        P.get_or_init(|| {
            serde_json::from_str(include_str!("../../fixtures/INSECURE-test-primes.json"))
                .expect("fixture primes parse")
        })
    }
}

#[cfg(feature = "insecure-test-primes")]
#[async_trait]
impl PrimeSource for InsecureTestPrimes {
    async fn take(&self) -> Result<Primes> {
        // Round-robin over the fixtures, so the parties of one DKG get distinct pairs.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let all = Self::all();
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % all.len();
        Ok(all[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wallet_testkit::MemoryShareStore;

    use super::*;
    use crate::{SealOptions, ShareSecret};

    #[tokio::test]
    async fn a_store_without_a_prime_pool_is_not_filled() {
        let store = Arc::new(MemoryShareStore::shares_only());
        let sealer = Sealer::new(ShareSecret::new("s").unwrap(), SealOptions::default());
        // Without a pool nothing is generated or stored (generating a pair takes seconds).
        assert_eq!(StorePrimePool::new(store.clone(), sealer, "p").fill(3).await.unwrap(), 0);
        assert!(store.prime_pool().is_none());
    }
}
