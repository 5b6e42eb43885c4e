//! [`JsonFileStore`]: the [`ShareStore`], [`DerivationCacheStore`] and [`PrimePoolStore`] implementation.

use std::{
    collections::HashMap,
    fmt, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex as StdMutex, OnceLock, PoisonError, Weak},
};

use async_trait::async_trait;
use tokio::sync::Mutex;
use wallet_traits::{
    BoxFuture, DerivationCacheStore, Error, ErrorKind, KeyId, Options, PrimePoolStore, Result, ShareStore, StoredShare,
};

use crate::{
    config::OPTIONS,
    file::{self, Derivation, State},
    JsonFileConfig, JSONFILE_SCHEME,
};

/// A [`ShareStore`] in one JSON file: sealed shares, the sealed derivation cache and the sealed
/// prime pool, byte strings hex-encoded.
///
/// Every read parses the whole file; every write reads it, changes it and replaces it whole
/// (temporary file, fsync, rename), under a lock that all stores of this process on the same
/// file share. So each operation is atomic within one process, and a crash leaves the old or the
/// new file, never a mix.
///
/// # Notes
///
/// An example, not a production store: the cost of every write grows with the file, and two
/// processes writing the same file can lose each other's changes (nothing locks the file across
/// processes). Use the SQLite store for real wallets.
pub struct JsonFileStore {
    /// The store file, resolved to an absolute path when the store opened.
    path: PathBuf,
    /// Serializes read-change-replace cycles on this file within the process.
    write_lock: Arc<Mutex<()>>,
}

/// What a change to the state asks of [`JsonFileStore::modify`].
enum Change<T> {
    /// The state changed: replace the file, then return the value.
    Write(T),
    /// Nothing changed: return the value without touching the file.
    Keep(T),
}

impl JsonFileStore {
    /// Opens the store file at `path` with default settings, creating it (and its directory) as an
    /// empty store when missing.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect(&JsonFileConfig::new(path.as_ref())).await
    }

    /// Opens the store file described by `config` and checks that it parses.
    pub async fn connect(config: &JsonFileConfig) -> Result<Self> {
        config.validate()?;
        let config = config.clone();
        let path = blocking(move || {
            let path = &config.path;
            if config.create {
                file::create_parent_dir(path)?;
                file::create_empty(path)?;
            }
            // Resolved once, so a later change of working directory cannot move the store, and a
            // symlinked store file stays a symlink (the rename replaces its target).
            let path = std::fs::canonicalize(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => OPTIONS
                    .error(
                        "the JSON-file store file does not exist and the create option is false; check the path, \
                     or set create=true to start an empty store",
                    )
                    .with_context("path", path.display()),
                _ => file::io_error(
                    "could not resolve the store file's path; check the permissions of its directories",
                    path,
                    e,
                ),
            })?;
            file::read(&path)?;
            Ok(path)
        })
        .await?;
        let write_lock = lock_for(&path);
        Ok(Self { path, write_lock })
    }

    /// The registry constructor: `url` is `jsonfile:///abs/path.json` or
    /// `jsonfile://relative/path.json`, `options` the keys of [`JsonFileConfig`] other than `path`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn ShareStore>>> {
        Box::pin(async move {
            let config = JsonFileConfig::from_url(&url, &options)?;
            let store: Arc<dyn ShareStore> = Arc::new(Self::connect(&config).await?);
            Ok(store)
        })
    }

    /// The store file, as an absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and answers from it.
    async fn read<T: Send + 'static>(&self, answer: impl FnOnce(State) -> T + Send + 'static) -> Result<T> {
        // No lock: the file is only ever replaced by a rename, so a reader sees the old or the
        // new file whole.
        let path = self.path.clone();
        blocking(move || file::read(&path).map(answer)).await
    }

    /// Reads the file, applies `change` and, if it asks to, replaces the file; all under the
    /// write lock.
    async fn modify<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut State) -> Result<Change<T>> + Send + 'static,
    ) -> Result<T> {
        let guard = Arc::clone(&self.write_lock).lock_owned().await;
        let path = self.path.clone();
        blocking(move || {
            // The guard lives in the blocking task, not in the caller's future: a caller that is
            // cancelled mid-write cannot release the lock while its write is still under way.
            let _guard = guard;
            let mut state = file::read(&path)?;
            match change(&mut state)? {
                Change::Write(value) => {
                    file::write_atomically(&path, &state.to_bytes())?;
                    Ok(value)
                }
                Change::Keep(value) => Ok(value),
            }
        })
        .await
    }
}

impl fmt::Debug for JsonFileStore {
    // Only the path: the file holds sealed bytes, which a Debug print has no business showing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The write lock of `path`, shared by every store this process opens on that file, so two
/// stores on one file cannot lose each other's writes.
fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<StdMutex<HashMap<PathBuf, Weak<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(StdMutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = locks.get(path).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(Mutex::new(()));
    locks.insert(path.to_path_buf(), Arc::downgrade(&lock));
    lock
}

/// Runs blocking file I/O on Tokio's blocking pool. Once started it runs to the end even if the
/// caller stops waiting.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        // The panic message is not attached: it could quote anything the task held.
        Error::new(
            ErrorKind::Internal,
            "a JSON-file store task did not finish; the store file holds either the old or the new contents",
        )
        .with_context("backend", JSONFILE_SCHEME)
        .with_context("cause", if e.is_panic() { "panic" } else { "runtime shutdown" })
    })?
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new(JSONFILE_SCHEME);

/// The stored record of `key` if its version is `expected`.
fn current<'s>(state: &'s mut State, key: &KeyId, expected: u64) -> Result<&'s mut StoredShare> {
    match state.shares.get_mut(key) {
        Some(stored) if stored.version == expected => Ok(stored),
        stored => Err(ERRORS.version_mismatch(key, expected, stored.map(|s| s.version))),
    }
}

#[async_trait]
impl ShareStore for JsonFileStore {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        Some(self)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        Some(self)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        let key = key.clone();
        self.read(move |mut state| state.shares.remove(&key)).await
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        // The store owns the version: a new record starts at 1 whatever the caller set.
        let record = StoredShare { version: 1, ..record.clone() };
        self.modify(move |state| {
            if state.shares.contains_key(&record.key) {
                return Err(ERRORS.already_exists(&record.key));
            }
            state.shares.insert(record.key.clone(), record);
            Ok(Change::Write(()))
        })
        .await
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        let record = record.clone();
        self.modify(move |state| {
            let stored = current(state, &record.key, expected_version)?;
            let version = expected_version.checked_add(1).ok_or_else(|| {
                Error::new(ErrorKind::Internal, "the share's version counter is exhausted")
                    .with_context("backend", JSONFILE_SCHEME)
                    .with_context("key", &record.key)
            })?;
            *stored = StoredShare { version, ..record };
            Ok(Change::Write(version))
        })
        .await
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let key = key.clone();
        self.modify(move |state| {
            current(state, &key, expected_version)?;
            state.shares.remove(&key);
            Ok(Change::Write(()))
        })
        .await
    }
}

#[async_trait]
impl DerivationCacheStore for JsonFileStore {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        let entry = (key.clone(), lookup.to_vec());
        // A hit marks the entry used, which here means rewriting the file: the price of a store
        // that replaces its file on every write (a real store updates one row).
        self.modify(move |state| {
            let now = state.next_use();
            match state.derivations.get_mut(&entry) {
                Some(d) => {
                    d.used = now;
                    Ok(Change::Write(Some(d.sealed.clone())))
                }
                None => Ok(Change::Keep(None)),
            }
        })
        .await
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        let (entry, sealed) = ((key.clone(), lookup.to_vec()), sealed.to_vec());
        self.modify(move |state| {
            let used = state.next_use();
            state.derivations.insert(entry, Derivation { sealed, used });
            Ok(Change::Write(()))
        })
        .await
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        let key = key.clone();
        self.modify(move |state| {
            // Entries order by key, then lookup: one key's entries are one range.
            let mut entries: Vec<(u64, Vec<u8>)> = state
                .derivations
                .range((key.clone(), Vec::new())..)
                .take_while(|((k, _), _)| *k == key)
                .map(|((_, lookup), d)| (d.used, lookup.clone()))
                .collect();
            if entries.len() <= keep {
                return Ok(Change::Keep(0));
            }
            entries.sort_unstable_by_key(|(used, _)| std::cmp::Reverse(*used));
            let stale = entries.split_off(keep);
            for (_, lookup) in &stale {
                state.derivations.remove(&(key.clone(), lookup.clone()));
            }
            Ok(Change::Write(stale.len() as u64))
        })
        .await
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        let key = key.clone();
        self.read(move |state| {
            state.derivations.range((key.clone(), Vec::new())..).take_while(|((k, _), _)| *k == key).count() as u64
        })
        .await
    }
}

#[async_trait]
impl PrimePoolStore for JsonFileStore {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        let (pool, sealed) = (pool.to_string(), sealed.to_vec());
        self.modify(move |state| {
            state.primes.entry(pool).or_default().push_back(sealed);
            Ok(Change::Write(()))
        })
        .await
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        let pool = pool.to_string();
        self.modify(move |state| {
            let Some(pairs) = state.primes.get_mut(&pool) else {
                return Ok(Change::Keep(None));
            };
            let pair = pairs.pop_front();
            if pairs.is_empty() {
                state.primes.remove(&pool);
            }
            // Under the write lock, and the file is replaced before the lock is released: each
            // pair leaves the file exactly once.
            Ok(Change::Write(pair))
        })
        .await
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let pool = pool.to_string();
        self.read(move |state| state.primes.get(&pool).map_or(0, |pairs| pairs.len() as u64)).await
    }
}
