//! Where a party's primes come from. cggmp24's aux info takes two pairs of 1536-bit safe primes
//! per party (a Paillier pair and a Pedersen pair); generating a pair takes 9 to 90 s, so pairs
//! are pooled (sealed in the party's store) and each pooled pair is used exactly once. A pool
//! record is one pair, as releases before cggmp24 wrote them, so an existing pool still serves.

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use cggmp24::{backend::Integer, security_level::SecurityLevel};
use serde::{Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, Result, ShareStore};

use crate::{
    mpc::{Primes, L},
    Sealer,
};

/// Hands out primes for aux info generation; never the same primes twice.
#[async_trait]
pub trait PrimeSource: fmt::Debug + Send + Sync + 'static {
    /// One party's fresh primes for one aux info generation.
    async fn take(&self) -> Result<Primes>;
}

/// Generates primes on demand, on the blocking pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct GeneratePrimes;

/// A pair of safe primes: one pool record.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PrimePair {
    p: Integer,
    q: Integer,
}

impl PrimePair {
    fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self {
            p: Integer::generate_safe_prime(&mut rng, L::RSA_PRIME_BITLEN),
            q: Integer::generate_safe_prime(&mut rng, L::RSA_PRIME_BITLEN),
        }
    }

    /// Two pairs as one party's primes (Paillier, then Pedersen).
    pub(crate) fn join(a: PrimePair, b: PrimePair) -> Result<Primes> {
        Primes::try_from([a.p, a.q, b.p, b.q])
            .map_err(|_| Error::new(ErrorKind::Corrupted, "a prime pair is smaller than 1536 bits"))
    }

    fn split(primes: Primes) -> [PrimePair; 2] {
        let [p, q, p2, q2] = primes.into_primes();
        [PrimePair { p, q }, PrimePair { p: p2, q: q2 }]
    }
}

async fn blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("{what} task failed: {e}")))
}

/// Generates one party's primes (slow: seconds to minutes).
pub async fn generate_primes() -> Result<Primes> {
    blocking("prime generation", || Primes::generate(&mut rand::rngs::OsRng)).await
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

    /// Generates and stores pairs until the pool holds enough for `target` aux info runs (two
    /// pairs each); returns how many runs it holds. Nothing when the store keeps no prime pool.
    pub async fn fill(&self, target: u64) -> Result<u64> {
        let Some(pool) = self.store.prime_pool() else { return Ok(0) };
        let mut have = pool.count_primes(&self.pool).await?;
        while have < 2 * target {
            self.add_pair(blocking("prime generation", PrimePair::generate).await?).await?;
            have += 1;
        }
        Ok(have / 2)
    }

    /// Seals and adds one party's primes (for example generated elsewhere, ahead of time), as two
    /// pairs. Fails with [`ErrorKind::Unsupported`] when the store keeps no prime pool.
    pub async fn add(&self, primes: Primes) -> Result<()> {
        for pair in PrimePair::split(primes) {
            self.add_pair(pair).await?;
        }
        Ok(())
    }

    async fn add_pair(&self, pair: PrimePair) -> Result<()> {
        let Some(store) = self.store.prime_pool() else {
            return Err(Error::new(ErrorKind::Unsupported, "this store keeps no prime pool; DKG generates primes")
                .with_context("pool", &self.pool));
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&pair).map_err(|e| Error::new(ErrorKind::Internal, format!("encode primes: {e}")))?,
        );
        let (sealer, pool) = (self.sealer.clone(), self.pool.clone());
        let sealed = blocking("sealing", move || sealer.seal_primes(&pool, &plain)).await??;
        store.add_primes(&self.pool, &sealed).await
    }

    /// One pooled pair, else a fresh one.
    async fn take_pair(&self) -> Result<PrimePair> {
        let pooled = match self.store.prime_pool() {
            Some(store) => store.take_primes(&self.pool).await?,
            None => None,
        };
        let Some(sealed) = pooled else { return blocking("prime generation", PrimePair::generate).await };
        let (sealer, pool) = (self.sealer.clone(), self.pool.clone());
        blocking("prime opening", move || {
            let plain = sealer.open_primes(&pool, &sealed)?;
            serde_json::from_slice(&plain)
                .map_err(|_| Error::new(ErrorKind::Corrupted, "a pooled prime pair does not parse"))
        })
        .await?
    }
}

#[async_trait]
impl PrimeSource for StorePrimePool {
    async fn take(&self) -> Result<Primes> {
        let a = self.take_pair().await?;
        let b = self.take_pair().await?;
        PrimePair::join(a, b)
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
    pub(crate) const JSON: &'static str = include_str!("../../fixtures/INSECURE-test-primes.json");

    pub(crate) fn all() -> &'static [PrimePair] {
        static P: std::sync::OnceLock<Vec<PrimePair>> = std::sync::OnceLock::new();
        P.get_or_init(|| serde_json::from_str(Self::JSON).expect("fixture primes parse"))
    }
}

#[cfg(feature = "insecure-test-primes")]
#[async_trait]
impl PrimeSource for InsecureTestPrimes {
    async fn take(&self) -> Result<Primes> {
        // Round-robin over the fixture pairs, two at a time, so the parties of one DKG get
        // distinct primes (nine pairs: three parties take six).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let all = Self::all();
        let i = NEXT.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
        PrimePair::join(all[i % all.len()].clone(), all[(i + 1) % all.len()].clone())
    }
}

/// INSECURE fixed primes of one party, for groups whose parties run in separate processes (each
/// process's [`InsecureTestPrimes`] would start at the same fixtures): party `k` always takes
/// fixture pairs `2k` and `2k + 1`. Only compiled with the `insecure-test-primes` feature.
#[cfg(feature = "insecure-test-primes")]
#[derive(Debug, Clone, Copy)]
pub struct InsecureTestPrimesOfParty(pub u16);

#[cfg(feature = "insecure-test-primes")]
#[async_trait]
impl PrimeSource for InsecureTestPrimesOfParty {
    async fn take(&self) -> Result<Primes> {
        let all = InsecureTestPrimes::all();
        let i = 2 * usize::from(self.0);
        PrimePair::join(all[i % all.len()].clone(), all[(i + 1) % all.len()].clone())
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
