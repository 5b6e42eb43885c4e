//! An in-memory [`ShareStore`] for tests.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use wallet_traits::{Error, ErrorKind, KeyId, Result, ShareStore, StoreCapabilities, StoredShare, WalletId};

/// A [`ShareStore`] that keeps everything in memory and forgets it on drop.
///
/// Every operation takes one lock, so each is atomic, as the trait requires. For tests only: a
/// wallet whose share lives here loses it when the process exits.
#[derive(Default)]
pub struct MemoryShareStore {
    inner: Mutex<Inner>,
    /// `None` means full capabilities; `Default` must not be able to produce a crippled store.
    capabilities: Option<StoreCapabilities>,
}

#[derive(Default)]
struct Inner {
    shares: BTreeMap<KeyId, StoredShare>,
    /// Entry to its sealed bytes and when it was last used (a value of `uses`).
    derivations: HashMap<(KeyId, Vec<u8>), (Vec<u8>, u64)>,
    /// Counts derivation-cache uses: an exact order, where a clock could tie.
    uses: u64,
    primes: HashMap<String, VecDeque<Vec<u8>>>,
}

impl Inner {
    fn next_use(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }
}

impl MemoryShareStore {
    /// An empty store with full capabilities.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that claims only `capabilities`; the unsupported operations fail with
    /// [`ErrorKind::Unsupported`]. Lets tests exercise callers of a limited store.
    pub fn with_capabilities(capabilities: StoreCapabilities) -> Self {
        Self { inner: Mutex::default(), capabilities: Some(capabilities) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not turn every later call into a second panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn require(&self, supported: bool, what: &'static str) -> Result<()> {
        if supported {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Unsupported, format!("this memory store was built without {what}"))
                .with_context("backend", "memory"))
        }
    }
}

impl fmt::Debug for MemoryShareStore {
    // Counts only: the records are sealed, but a Debug print has no business showing them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryShareStore")
            .field("shares", &inner.shares.len())
            .field("derivations", &inner.derivations.len())
            .field("prime_pools", &inner.primes.len())
            .field("capabilities", &self.capabilities())
            .finish()
    }
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new("memory");

fn not_found(key: &KeyId) -> Error {
    ERRORS.not_found(key)
}

fn conflict(key: &KeyId, expected: u64, actual: u64) -> Error {
    ERRORS.changed_concurrently(key, expected, actual)
}

#[async_trait]
impl ShareStore for MemoryShareStore {
    fn capabilities(&self) -> StoreCapabilities {
        self.capabilities.unwrap_or_else(StoreCapabilities::full)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        Ok(self.lock().shares.get(key).cloned())
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        let mut inner = self.lock();
        if inner.shares.contains_key(&record.key) {
            return Err(ERRORS.already_exists(&record.key));
        }
        inner.shares.insert(record.key.clone(), StoredShare { version: 1, ..record.clone() });
        Ok(())
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        let mut inner = self.lock();
        let stored = inner.shares.get_mut(&record.key).ok_or_else(|| not_found(&record.key))?;
        if stored.version != expected_version {
            return Err(conflict(&record.key, expected_version, stored.version));
        }
        let version = expected_version + 1;
        *stored = StoredShare { version, ..record.clone() };
        Ok(version)
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let mut inner = self.lock();
        let stored = inner.shares.get(key).ok_or_else(|| not_found(key))?;
        if stored.version != expected_version {
            return Err(conflict(key, expected_version, stored.version));
        }
        inner.shares.remove(key);
        Ok(())
    }

    async fn list_keys(&self, wallet: &WalletId) -> Result<Vec<KeyId>> {
        // The map iterates in (wallet, index) order, so the keys come out sorted by index.
        let inner = self.lock();
        Ok(inner.shares.keys().filter(|k| &k.wallet == wallet).cloned().collect())
    }

    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        self.require(self.capabilities().derivation_cache, "a derivation cache")?;
        let mut inner = self.lock();
        let now = inner.next_use();
        Ok(inner.derivations.get_mut(&(key.clone(), lookup.to_vec())).map(|(sealed, used)| {
            *used = now;
            sealed.clone()
        }))
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        self.require(self.capabilities().derivation_cache, "a derivation cache")?;
        let mut inner = self.lock();
        let now = inner.next_use();
        inner.derivations.insert((key.clone(), lookup.to_vec()), (sealed.to_vec(), now));
        Ok(())
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        self.require(self.capabilities().derivation_cache, "a derivation cache")?;
        let mut inner = self.lock();
        // A full scan: fine for a test store.
        let mut entries: Vec<(u64, Vec<u8>)> = inner
            .derivations
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|((_, lookup), (_, used))| (*used, lookup.clone()))
            .collect();
        entries.sort_unstable_by_key(|(used, _)| std::cmp::Reverse(*used));
        let mut removed = 0;
        for (_, lookup) in entries.into_iter().skip(keep) {
            inner.derivations.remove(&(key.clone(), lookup));
            removed += 1;
        }
        Ok(removed)
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        self.require(self.capabilities().derivation_cache, "a derivation cache")?;
        let n = self.lock().derivations.keys().filter(|(k, _)| k == key).count();
        Ok(n as u64)
    }

    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        self.require(self.capabilities().prime_pool, "a prime pool")?;
        self.lock().primes.entry(pool.to_string()).or_default().push_back(sealed.to_vec());
        Ok(())
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        self.require(self.capabilities().prime_pool, "a prime pool")?;
        Ok(self.lock().primes.get_mut(pool).and_then(VecDeque::pop_front))
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        self.require(self.capabilities().prime_pool, "a prime pool")?;
        let n = self.lock().primes.get(pool).map_or(0, VecDeque::len);
        Ok(n as u64)
    }
}
