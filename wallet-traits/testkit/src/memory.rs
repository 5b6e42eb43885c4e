//! An in-memory [`ShareStore`] for tests.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use wallet_traits::{
    Approval, AuditHead, AuditRecord, DerivationCacheStore, Error, ErrorKind, KeyId, Ledger, LedgerEntry, PolicyStore,
    PrimePoolStore, Result, Ruling, ShareStore, StoredShare,
};

/// A [`ShareStore`] with a [`DerivationCacheStore`] and a [`PrimePoolStore`] that keeps
/// everything in memory and forgets it on drop.
///
/// Every operation takes one lock, so each is atomic, as the traits require. For tests only: a
/// wallet whose share lives here loses it when the process exits.
#[derive(Default)]
pub struct MemoryShareStore {
    inner: Mutex<Inner>,
    /// Keeps neither a derivation cache nor a prime pool; `Default` keeps both.
    shares_only: bool,
}

#[derive(Default)]
struct Inner {
    shares: BTreeMap<KeyId, StoredShare>,
    /// Entry to its sealed bytes and when it was last used (a value of `uses`).
    derivations: HashMap<(KeyId, Vec<u8>), (Vec<u8>, u64)>,
    /// Counts derivation-cache uses: an exact order, where a clock could tie.
    uses: u64,
    primes: HashMap<String, VecDeque<Vec<u8>>>,
    policy: PolicyState,
}

/// The [`PolicyStore`] state, under the store's one lock.
#[derive(Default)]
struct PolicyState {
    ledger: HashMap<(String, [u8; 32]), LedgerEntry>,
    approvals: BTreeMap<[u8; 32], (Approval, bool)>,
    audit: Vec<AuditRecord>,
    seen: HashMap<(String, Vec<u8>), u64>,
}

impl PolicyState {
    fn window(&self, wallet: &str, since_ms: u64) -> (u64, u64) {
        self.ledger
            .iter()
            .filter(|((w, _), e)| w == wallet && e.at_ms >= since_ms)
            .fold((0u64, 0u64), |(sats, n), (_, e)| (sats.saturating_add(e.charged), n + 1))
    }
}

impl Inner {
    fn next_use(&mut self) -> u64 {
        self.uses += 1;
        self.uses
    }
}

impl MemoryShareStore {
    /// An empty store with a derivation cache and a prime pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps shares only, like a plugin that implements nothing but
    /// [`ShareStore`]: [`ShareStore::derivation_cache`] and [`ShareStore::prime_pool`] are
    /// `None`. Lets tests exercise the engine without them.
    pub fn shares_only() -> Self {
        Self { inner: Mutex::default(), shares_only: true }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not turn every later call into a second panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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
            .field("shares_only", &self.shares_only)
            .finish()
    }
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new("memory");

#[async_trait]
impl ShareStore for MemoryShareStore {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        (!self.shares_only).then_some(self as &dyn DerivationCacheStore)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        (!self.shares_only).then_some(self as &dyn PrimePoolStore)
    }

    fn policy_state(&self) -> Option<&dyn PolicyStore> {
        (!self.shares_only).then_some(self as &dyn PolicyStore)
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
        ERRORS.check_version(&record.key, expected_version, inner.shares.get(&record.key).map(|s| s.version))?;
        let version = expected_version + 1;
        inner.shares.insert(record.key.clone(), StoredShare { version, ..record.clone() });
        Ok(version)
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let mut inner = self.lock();
        ERRORS.check_version(key, expected_version, inner.shares.get(key).map(|s| s.version))?;
        inner.shares.remove(key);
        Ok(())
    }
}

#[async_trait]
impl DerivationCacheStore for MemoryShareStore {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut inner = self.lock();
        let now = inner.next_use();
        Ok(inner.derivations.get_mut(&(key.clone(), lookup.to_vec())).map(|(sealed, used)| {
            *used = now;
            sealed.clone()
        }))
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        let mut inner = self.lock();
        let now = inner.next_use();
        inner.derivations.insert((key.clone(), lookup.to_vec()), (sealed.to_vec(), now));
        Ok(())
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
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
        let n = self.lock().derivations.keys().filter(|(k, _)| k == key).count();
        Ok(n as u64)
    }
}

#[async_trait]
impl PrimePoolStore for MemoryShareStore {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        self.lock().primes.entry(pool.to_string()).or_default().push_back(sealed.to_vec());
        Ok(())
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().primes.get_mut(pool).and_then(VecDeque::pop_front))
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let n = self.lock().primes.get(pool).map_or(0, VecDeque::len);
        Ok(n as u64)
    }
}

#[async_trait]
impl PolicyStore for MemoryShareStore {
    async fn settle(
        &self,
        wallet: &str,
        tx: &[u8; 32],
        since_ms: u64,
        now_ms: u64,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Ruling + Send + Sync),
    ) -> Result<Ruling> {
        let mut inner = self.lock();
        let p = &mut inner.policy;
        let (window_sats, window_txs) = p.window(wallet, since_ms);
        let head = p.audit.last().map_or(AuditHead::default(), |r| AuditHead { seq: r.seq, hash: r.hash });
        let ledger = Ledger {
            window_sats,
            window_txs,
            entry: (*tx != [0; 32]).then(|| p.ledger.get(&(wallet.to_string(), *tx)).cloned()).flatten(),
            approvals: p
                .approvals
                .values()
                .filter(|(a, spent)| !spent && a.wallet == wallet && a.expires_ms > now_ms)
                .map(|(a, _)| a.clone())
                .collect(),
            head,
        };
        let ruling = decide(&ledger);
        let refuse = |why: &str| Err(Error::new(ErrorKind::Internal, format!("a policy ruling {why}")));
        if ruling.charge.as_ref().is_some_and(|e| e.tx != *tx || *tx == [0; 32]) {
            return refuse("charged another transaction than it was asked about");
        }
        if let Some(id) = &ruling.spend_approval {
            match p.approvals.get(id) {
                Some((a, false)) if a.wallet == wallet && a.expires_ms > now_ms => {}
                _ => return refuse("spent an approval that is not open"),
            }
            p.approvals.get_mut(id).expect("checked").1 = true;
        }
        if let Some(entry) = &ruling.charge {
            p.ledger.insert((wallet.to_string(), *tx), entry.clone());
        }
        p.audit.push(AuditRecord {
            seq: head.seq + 1,
            wallet: wallet.to_string(),
            at_ms: now_ms,
            body: ruling.audit.clone(),
            hash: ruling.audit_hash,
        });
        Ok(ruling)
    }

    async fn window(&self, wallet: &str, since_ms: u64) -> Result<(u64, u64)> {
        Ok(self.lock().policy.window(wallet, since_ms))
    }

    async fn add_approval(&self, approval: &Approval) -> Result<bool> {
        let mut inner = self.lock();
        if inner.policy.approvals.contains_key(&approval.id) {
            return Ok(false);
        }
        inner.policy.approvals.insert(approval.id, (approval.clone(), false));
        Ok(true)
    }

    async fn audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let inner = self.lock();
        Ok(inner
            .policy
            .audit
            .iter()
            .filter(|r| r.seq > after_seq && wallet.is_none_or(|w| r.wallet == w))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool> {
        let mut inner = self.lock();
        inner.policy.seen.retain(|_, expires| *expires > now_ms);
        match inner.policy.seen.entry((kind.to_string(), id.to_vec())) {
            std::collections::hash_map::Entry::Occupied(_) => Ok(false),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(expires_ms);
                Ok(true)
            }
        }
    }
}
