//! The RocksDB calls behind [`RocksDbShareStore`].

mod policy;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use rocksdb::{
    checkpoint::Checkpoint, ColumnFamily, ColumnFamilyDescriptor, DBRawIterator, ReadOptions, WriteBatch, WriteOptions,
    DB,
};
use wallet_traits::{
    BoxFuture, DerivationCacheStore, Error, ErrorKind, KeyId, Options, PolicyStore, PrimePoolStore, Result, ShareStore,
    StoredShare,
};

use crate::{
    codec::{self, CF_DERIVATIONS, CF_DERIVATION_USES, CF_META, CF_PRIMES, CF_SHARES},
    RocksDbConfig, ROCKSDB_SCHEME,
};

/// How many of RocksDB's own info logs (`LOG`, `LOG.old.*`) stay in the directory; its default
/// of 1000 would let them pile up over the years of a wallet.
const KEEP_INFO_LOGS: usize = 10;

/// A [`ShareStore`] in one RocksDB directory: sealed shares, the sealed derivation cache, the
/// sealed prime pool and a cosigner's policy state ([`PolicyStore`]), each in column families
/// of its own.
///
/// Every change is one RocksDB write batch, applied whole or not at all, and by default fsynced
/// before it is reported done. RocksDB lets one process open a directory at a time; within the
/// process a lock serializes the compare-and-swap operations, and another each policy decision
/// from its read to its write, so they are race-free.
///
/// The database closes when the store (and every clone of an `Arc` holding it) is dropped.
pub struct RocksDbShareStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    /// The directory, absolute: RocksDB keeps using the path it was opened with, so a relative
    /// one would move with a later change of the working directory.
    path: PathBuf,
    sync_writes: bool,
    write_options: WriteOptions,
    /// For marking a derivation-cache hit used: never fsynced, so a hit stays cheap. Losing one
    /// to a power cut only ages an entry; RocksDB's log is sequential, so it can only be lost
    /// together with every later write, and the use counter never goes backwards.
    touch_options: WriteOptions,
    /// Held across every read-check-write (create, update, delete, add and take primes, and
    /// every derivation-cache operation but counting).
    ///
    /// A plain mutex rather than a `TransactionDB` or `OptimisticTransactionDB`: RocksDB's LOCK
    /// file admits one process per directory and that process opens it once, so every writer
    /// goes through this store. One lock gives the same atomicity without transaction machinery,
    /// and without the retry loop an optimistic transaction needs when concurrent takers race
    /// for the same head of the prime pool.
    writer: Mutex<Writer>,
    /// Held across every read-decide-write of the policy state (`settle`, `add_approval`,
    /// `mark_seen`). Async, because `settle` calls the policy's decision on the caller's task
    /// between its blocking read and its blocking write; the write takes the owned guard along,
    /// so a caller that stops waiting cannot release the lock before its batch is written.
    /// Apart from `writer`: the policy keys are disjoint from the shares', so signing sessions
    /// never wait behind share or cache writes.
    policy_lock: Arc<tokio::sync::Mutex<()>>,
}

/// State owned by the writer lock.
struct Writer {
    /// The sequence number the next prime pair gets. Persisted in the same batch as the pair,
    /// and advanced here only after that batch is written, so a failed or panicking write
    /// leaves it valid.
    next_prime_seq: u64,
    /// The use number the next derivation-cache use gets; persisted and advanced the same way.
    /// One counter for all keys: it only has to order the entries of each.
    next_derivation_use: u64,
}

const ERRORS: wallet_traits::ContractErrors = wallet_traits::ContractErrors::new(ROCKSDB_SCHEME);

impl RocksDbShareStore {
    /// Opens (creating when missing) the database directory at `path` with default settings.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::connect(&RocksDbConfig::new(path.as_ref())).await
    }

    /// Opens the database described by `config`, creating the directory and its parents when
    /// missing. Fails with a `config` error when another process has the directory open.
    pub async fn connect(config: &RocksDbConfig) -> Result<Self> {
        config.validate()?;
        let config = config.clone();
        let inner = blocking(move || Inner::open(&config)).await?;
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The registry constructor: `url` is `rocksdb:///abs/dir` or `rocksdb://relative/dir`,
    /// `options` the keys of [`RocksDbConfig`] other than `path`.
    pub fn from_url(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn ShareStore>>> {
        Box::pin(async move {
            let config = RocksDbConfig::from_url(&url, &options)?;
            let store: Arc<dyn ShareStore> = Arc::new(Self::connect(&config).await?);
            Ok(store)
        })
    }

    /// The database directory, as an absolute path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the open database to `target`, a directory that must not
    /// exist yet (its parent must). Table files are hard-linked when `target` is on the same
    /// file system, so this is cheap; the copy opens as a store of its own.
    pub async fn checkpoint(&self, target: impl AsRef<Path>) -> Result<()> {
        let target = target.as_ref().to_path_buf();
        self.run(move |inner| {
            // RocksDB refuses it too, but with a bare "Directory exists".
            if target.exists() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "the checkpoint target already exists; name a directory that does not exist yet",
                )
                .with_context("backend", ROCKSDB_SCHEME)
                .with_context("target", target.display()));
            }
            Checkpoint::new(&inner.db)
                .and_then(|checkpoint| checkpoint.create_checkpoint(&target))
                .map_err(|e| storage(e, "write a checkpoint").with_context("target", target.display()))?;
            // RocksDB creates the directory with the umask's mode; the copy is as private as
            // the original.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                    Error::new(ErrorKind::Storage, "could not make the RocksDB checkpoint directory owner-only")
                        .with_context("backend", ROCKSDB_SCHEME)
                        .with_context("target", target.display())
                        .with_source(e)
                })?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `work` on Tokio's blocking pool: every RocksDB call blocks.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&Inner) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        blocking(move || work(&inner)).await
    }
}

impl fmt::Debug for RocksDbShareStore {
    // Settings only: the database holds sealed bytes, which a Debug print has no business showing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbShareStore")
            .field("path", &self.inner.path)
            .field("sync_writes", &self.inner.sync_writes)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn open(config: &RocksDbConfig) -> Result<Self> {
        let path = prepare_dir(&config.path)?;
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // validate() checked that it fits.
        options.set_max_open_files(i32::try_from(config.max_open_files).unwrap_or(i32::MAX));
        options.set_keep_log_file_num(KEEP_INFO_LOGS);
        let families =
            codec::COLUMN_FAMILIES.map(|name| ColumnFamilyDescriptor::new(name, rocksdb::Options::default()));
        let db = DB::open_cf_descriptors(&options, &path, families).map_err(|e| open_error(e, &path))?;

        let mut write_options = WriteOptions::default();
        write_options.set_sync(config.sync_writes);
        let mut touch_options = WriteOptions::default();
        touch_options.set_sync(false);
        let mut inner = Self {
            db,
            path,
            sync_writes: config.sync_writes,
            write_options,
            touch_options,
            writer: Mutex::new(Writer { next_prime_seq: 0, next_derivation_use: 0 }),
            policy_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        inner.check_layout()?;
        let next_prime_seq = inner.stored_seq(codec::META_PRIME_SEQ, "prime_seq")?;
        let next_derivation_use = inner.stored_seq(codec::META_DERIVATION_SEQ, "derivation_seq")?;
        let writer = inner.writer.get_mut().unwrap_or_else(PoisonError::into_inner);
        writer.next_prime_seq = next_prime_seq;
        writer.next_derivation_use = next_derivation_use;
        Ok(inner)
    }

    /// Records the layout version in a new database and refuses one written in another layout.
    fn check_layout(&self) -> Result<()> {
        let meta = self.cf(CF_META)?;
        let stored = self.db.get_cf(meta, codec::META_LAYOUT).map_err(|e| storage(e, "read the layout version"))?;
        match stored.as_deref() {
            None => {
                let mut batch = WriteBatch::default();
                batch.put_cf(meta, codec::META_LAYOUT, [codec::LAYOUT_VERSION]);
                // Always synced: a new directory must not come back without its marker.
                let mut synced = WriteOptions::default();
                synced.set_sync(true);
                self.db.write_opt(batch, &synced).map_err(|e| storage(e, "record the layout version"))
            }
            Some([codec::LAYOUT_VERSION]) => Ok(()),
            // The policy column families were created empty when the database opened; only the
            // marker changes.
            Some([codec::LAYOUT_WITHOUT_POLICY]) => {
                self.set_layout(WriteBatch::default(), "upgrade the directory from layout 2")
            }
            Some([codec::LAYOUT_WITHOUT_RECENCY]) => self.add_recency(),
            Some(&[newer]) if newer > codec::LAYOUT_VERSION => Err(Error::new(
                ErrorKind::Unsupported,
                "a newer release wrote this RocksDB directory; run that release or restore a backup",
            )
            .with_context("backend", ROCKSDB_SCHEME)
            .with_context("path", self.path.display())
            .with_context("layout", newer)),
            Some(_) => Err(codec::corrupted("meta", &"layout", "layout")),
        }
    }

    /// Upgrades a layout-1 directory, whose derivation entries have no recency: numbers them in
    /// key order (layout 1 kept no order of use, and lookups are HMACs, so key order favours no
    /// one), indexes them, and records the current layout, all in one synced batch, so a crash
    /// leaves layout 1 to upgrade again on the next open.
    fn add_recency(&self) -> Result<()> {
        let (derivations, uses, meta) = (self.cf(CF_DERIVATIONS)?, self.cf(CF_DERIVATION_USES)?, self.cf(CF_META)?);
        let mut batch = WriteBatch::default();
        let mut next = 0u64;
        let mut iter = self.db.raw_iterator_cf(derivations);
        iter.seek_to_first();
        while let Some((raw, value)) = iter.item() {
            match (codec::split_derivation_key(raw), codec::decode_blob("derivation-cache", &"layout 1", value)) {
                (Some((share_key, lookup)), Ok(sealed)) => {
                    batch.put_cf(derivations, raw, codec::encode_derivation(next, &sealed));
                    batch.put_cf(uses, codec::derivation_use_key(share_key, next), lookup);
                    next += 1;
                }
                // A cache entry can always be recomputed; a damaged one must not keep the
                // shares from opening.
                _ => batch.delete_cf(derivations, raw),
            }
            iter.next();
        }
        iter.status().map_err(|e| storage(e, "upgrade the directory from layout 1"))?;
        drop(iter);
        batch.put_cf(meta, codec::META_DERIVATION_SEQ, next.to_be_bytes());
        self.set_layout(batch, "upgrade the directory from layout 1")
    }

    /// Writes `batch` with the current layout version, synced: an upgrade is never reported
    /// done before it is durable.
    fn set_layout(&self, mut batch: WriteBatch, action: &str) -> Result<()> {
        batch.put_cf(self.cf(CF_META)?, codec::META_LAYOUT, [codec::LAYOUT_VERSION]);
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        self.db.write_opt(batch, &synced).map_err(|e| storage(e, action))
    }

    /// A u64 counter kept in `meta` under `key` (0 when absent).
    fn stored_seq(&self, key: &'static [u8], name: &'static str) -> Result<u64> {
        let meta = self.cf(CF_META)?;
        let stored = self
            .db
            .get_cf(meta, key)
            .map_err(|e| storage(e, "read a sequence counter").with_context("counter", name))?;
        match stored {
            None => Ok(0),
            Some(bytes) => bytes.try_into().map(u64::from_be_bytes).map_err(|_| codec::corrupted("meta", &name, name)),
        }
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| {
            Error::new(ErrorKind::Internal, "a RocksDB column family is missing although the database opened with it")
                .with_context("backend", ROCKSDB_SCHEME)
                .with_context("column_family", name)
        })
    }

    /// The value of `key` in `cf`; a failure says what the store was doing (`action`).
    fn get(&self, cf: &'static str, key: &[u8], action: &str) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(|e| storage(e, action))
    }

    /// Applies `batch` whole, fsynced when `sync_writes` is on.
    fn write(&self, batch: WriteBatch) -> Result<(), rocksdb::Error> {
        self.db.write_opt(batch, &self.write_options)
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while the lock was held left Writer valid (see next_prime_seq), so poisoning
        // carries no information here.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An iterator over the keys of `cf` that start with `prefix`, positioned on the first.
    fn scan(&self, cf: &'static str, prefix: &[u8]) -> Result<DBRawIterator<'_>> {
        self.scan_from(cf, prefix, prefix)
    }

    /// Like [`scan`](Self::scan), but positioned on the first key at or after `start` (a key
    /// that starts with `prefix`).
    fn scan_from(&self, cf: &'static str, prefix: &[u8], start: &[u8]) -> Result<DBRawIterator<'_>> {
        let mut read = ReadOptions::default();
        if let Some(end) = codec::prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf)?, read);
        iter.seek(start);
        Ok(iter)
    }

    /// Like [`scan`](Self::scan), but positioned on the last key, for walking back with `prev`.
    fn scan_from_last(&self, cf: &'static str, prefix: &[u8]) -> Result<DBRawIterator<'_>> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(prefix.to_vec());
        if let Some(end) = codec::prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(cf)?, read);
        iter.seek_to_last();
        Ok(iter)
    }

    /// Writes derivation entry `raw_key` (of `key`, under `lookup`) as used now, in one batch:
    /// the value with the next use number, its index entry moved from `previous` (its last use,
    /// if it had one), and the counter. Call with the writer lock held.
    #[allow(clippy::too_many_arguments)]
    fn write_use(
        &self,
        writer: &mut Writer,
        key: &KeyId,
        lookup: &[u8],
        previous: Option<u64>,
        sealed: &[u8],
        options: &WriteOptions,
        action: &str,
    ) -> Result<()> {
        let now = writer.next_derivation_use;
        let next = now.checked_add(1).ok_or_else(|| {
            Error::new(ErrorKind::Internal, "the derivation-cache use counter is exhausted")
                .with_context("backend", ROCKSDB_SCHEME)
                .with_context("key", key)
        })?;
        let share_key = codec::share_key(key);
        let uses = self.cf(CF_DERIVATION_USES)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_DERIVATIONS)?,
            codec::derivation_key(key, lookup),
            codec::encode_derivation(now, sealed),
        );
        if let Some(previous) = previous {
            batch.delete_cf(uses, codec::derivation_use_key(&share_key, previous));
        }
        batch.put_cf(uses, codec::derivation_use_key(&share_key, now), lookup);
        batch.put_cf(self.cf(CF_META)?, codec::META_DERIVATION_SEQ, next.to_be_bytes());
        self.db.write_opt(batch, options).map_err(|e| storage(e, action).with_context("key", key))?;
        writer.next_derivation_use = next;
        Ok(())
    }

    /// The stored version of `key`: `NotFound` when absent, `Conflict` when not `expected`.
    fn check_version(&self, key: &KeyId, raw_key: &[u8], expected: u64) -> Result<()> {
        let stored = self
            .get(CF_SHARES, raw_key, "read a share's version")
            .map_err(|e| e.with_context("key", key))?
            .map(|stored| codec::share_version(key, &stored))
            .transpose()?;
        ERRORS.check_version(key, expected, stored)
    }
}

/// Creates the directory and its missing parents, owner-only on Unix, and resolves it to an
/// absolute path. Existing directories keep their permissions.
fn prepare_dir(path: &Path) -> Result<PathBuf> {
    let io_error = |e: std::io::Error, what: &str| {
        Error::new(
            ErrorKind::Storage,
            format!("could not {what} the RocksDB directory; check the permissions of its parent"),
        )
        .with_context("backend", ROCKSDB_SCHEME)
        .with_context("path", path.display())
        .with_source(e)
    };
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(path).map_err(|e| io_error(e, "create"))?;
    std::fs::canonicalize(path).map_err(|e| io_error(e, "resolve"))
}

/// A failed open: another holder of the directory's LOCK file gets a message of its own.
fn open_error(e: rocksdb::Error, path: &Path) -> Error {
    let text = e.as_ref();
    // PosixEnv::LockFile's texts: "While lock file: <dir>/LOCK: ..." when another process holds
    // the lock, "lock hold by current process ..." when this one does.
    let (kind, message) = if text.contains("While lock file") {
        (
            ErrorKind::Config,
            "the RocksDB directory is in use by another process (RocksDB lets one process open a directory at a \
             time); stop that process, or give this party a directory of its own",
        )
    } else if text.contains("lock hold by current process") {
        (
            ErrorKind::Config,
            "the RocksDB directory is already open in this process (RocksDB lets one process open a directory \
             once); drop the other store first, or give this party a directory of its own",
        )
    } else if text.contains("Column families not opened") {
        (
            ErrorKind::Unsupported,
            "the RocksDB directory has column families this release does not know; a newer release or another \
             program wrote it",
        )
    } else {
        return storage(e, "open the database directory").with_context("path", path.display());
    };
    Error::new(kind, message)
        .with_context("backend", ROCKSDB_SCHEME)
        .with_context("path", path.display())
        .with_source(e)
}

/// A failed RocksDB call. RocksDB's texts name files and states, never stored values.
fn storage(e: rocksdb::Error, action: &str) -> Error {
    use rocksdb::ErrorKind as Rocks;
    let (kind, hint) = match e.kind() {
        Rocks::Corruption => {
            (ErrorKind::Corrupted, "RocksDB found damaged data files; restore the directory from a backup")
        }
        Rocks::Busy | Rocks::TimedOut | Rocks::TryAgain => (ErrorKind::Timeout, "RocksDB was busy; retry"),
        _ => (ErrorKind::Storage, "check that the directory is readable and writable and the disk is not full"),
    };
    Error::new(kind, format!("the RocksDB store could not {action}; {hint}"))
        .with_context("backend", ROCKSDB_SCHEME)
        .with_source(e)
}

/// Runs blocking RocksDB work on Tokio's blocking pool. Once started it runs to the end even if
/// the caller stops waiting.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        // The panic message is not attached: it could quote anything the task held.
        Error::new(
            ErrorKind::Internal,
            "a RocksDB store task did not finish; a write it made was applied whole or not at all",
        )
        .with_context("backend", ROCKSDB_SCHEME)
        .with_context("cause", if e.is_panic() { "panic" } else { "runtime shutdown" })
    })?
}

#[async_trait]
impl ShareStore for RocksDbShareStore {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        Some(self)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        Some(self)
    }

    fn policy_state(&self) -> Option<&dyn PolicyStore> {
        Some(self)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        let key = key.clone();
        self.run(move |inner| {
            let value = inner
                .get(CF_SHARES, &codec::share_key(&key), "read a share")
                .map_err(|e| e.with_context("key", &key))?;
            value.map(|value| codec::decode_share(&key, &value)).transpose()
        })
        .await
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        // The store owns the version: a new record starts at 1 whatever the caller set.
        let value = codec::encode_share(record, 1)?;
        let key = record.key.clone();
        self.run(move |inner| {
            let raw_key = codec::share_key(&key);
            let _writer = inner.lock();
            let existing = inner
                .get(CF_SHARES, &raw_key, "check for an existing share")
                .map_err(|e| e.with_context("key", &key))?;
            if existing.is_some() {
                return Err(ERRORS.already_exists(&key));
            }
            let mut batch = WriteBatch::default();
            batch.put_cf(inner.cf(CF_SHARES)?, &raw_key, value);
            inner.write(batch).map_err(|e| storage(e, "write a new share").with_context("key", &key))
        })
        .await
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        let record = record.clone();
        self.run(move |inner| {
            let key = &record.key;
            let raw_key = codec::share_key(key);
            let _writer = inner.lock();
            inner.check_version(key, &raw_key, expected_version)?;
            let version = expected_version.checked_add(1).ok_or_else(|| {
                Error::new(ErrorKind::Internal, "the share's version counter is exhausted")
                    .with_context("backend", ROCKSDB_SCHEME)
                    .with_context("key", key)
            })?;
            let mut batch = WriteBatch::default();
            batch.put_cf(inner.cf(CF_SHARES)?, &raw_key, codec::encode_share(&record, version)?);
            inner.write(batch).map_err(|e| storage(e, "update a share").with_context("key", key))?;
            Ok(version)
        })
        .await
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let key = key.clone();
        self.run(move |inner| {
            let raw_key = codec::share_key(&key);
            let _writer = inner.lock();
            inner.check_version(&key, &raw_key, expected_version)?;
            let mut batch = WriteBatch::default();
            batch.delete_cf(inner.cf(CF_SHARES)?, &raw_key);
            inner.write(batch).map_err(|e| storage(e, "delete a share").with_context("key", &key))
        })
        .await
    }
}

#[async_trait]
impl DerivationCacheStore for RocksDbShareStore {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        let (key, lookup) = (key.clone(), lookup.to_vec());
        self.run(move |inner| {
            // Under the lock: a hit rewrites the entry and moves its index entry, which must not
            // interleave with a put or an eviction of the same entry.
            let mut writer = inner.lock();
            let Some(value) = inner
                .get(CF_DERIVATIONS, &codec::derivation_key(&key, &lookup), "read a derivation-cache entry")
                .map_err(|e| e.with_context("key", &key))?
            else {
                return Ok(None);
            };
            let (used, sealed) = codec::decode_derivation(&key, &value)?;
            let action = "mark a derivation-cache entry used";
            inner.write_use(&mut writer, &key, &lookup, Some(used), &sealed, &inner.touch_options, action)?;
            Ok(Some(sealed))
        })
        .await
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        let (key, lookup, sealed) = (key.clone(), lookup.to_vec(), sealed.to_vec());
        self.run(move |inner| {
            let mut writer = inner.lock();
            let existing = inner
                .get(CF_DERIVATIONS, &codec::derivation_key(&key, &lookup), "read a derivation-cache entry")
                .map_err(|e| e.with_context("key", &key))?;
            // A damaged entry is simply overwritten: the fresh value replaces it.
            let previous = existing.and_then(|v| codec::decode_derivation(&key, &v).ok()).map(|(used, _)| used);
            let action = "write a derivation-cache entry";
            inner.write_use(&mut writer, &key, &lookup, previous, &sealed, &inner.write_options, action)
        })
        .await
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        let key = key.clone();
        self.run(move |inner| {
            let _writer = inner.lock();
            let action = "evict derivation-cache entries";
            let share_key = codec::share_key(&key);
            // Newest use first: skip `keep` index entries, the rest go.
            let mut iter = inner.scan_from_last(CF_DERIVATION_USES, &share_key)?;
            let (mut seen, mut stale) = (0usize, Vec::new());
            while let Some((use_key, lookup)) = iter.item() {
                if seen >= keep {
                    stale.push((use_key.to_vec(), lookup.to_vec()));
                }
                seen += 1;
                iter.prev();
            }
            iter.status().map_err(|e| storage(e, action).with_context("key", &key))?;
            drop(iter);
            if stale.is_empty() {
                return Ok(0);
            }
            let (derivations, uses) = (inner.cf(CF_DERIVATIONS)?, inner.cf(CF_DERIVATION_USES)?);
            let mut batch = WriteBatch::default();
            let mut removed = 0u64;
            for (use_key, lookup) in stale {
                batch.delete_cf(uses, &use_key);
                let raw_key = codec::derivation_key(&key, &lookup);
                let Some(value) =
                    inner.get(CF_DERIVATIONS, &raw_key, action).map_err(|e| e.with_context("key", &key))?
                else {
                    continue;
                };
                // Delete the entry only if this index entry is its last use; a damaged entry
                // goes too (it would only be recomputed).
                let used = use_key.len().checked_sub(8).map(|at| &use_key[at..]);
                let used = used.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
                if codec::decode_derivation(&key, &value).map_or(true, |(last, _)| Some(last) == used) {
                    batch.delete_cf(derivations, &raw_key);
                    removed += 1;
                }
            }
            inner.write(batch).map_err(|e| storage(e, action).with_context("key", &key))?;
            Ok(removed)
        })
        .await
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        let key = key.clone();
        self.run(move |inner| {
            let mut iter = inner.scan(CF_DERIVATIONS, &codec::share_key(&key))?;
            let mut count = 0u64;
            while iter.valid() {
                count += 1;
                iter.next();
            }
            iter.status().map_err(|e| storage(e, "count derivation-cache entries").with_context("key", &key))?;
            Ok(count)
        })
        .await
    }
}

#[async_trait]
impl PrimePoolStore for RocksDbShareStore {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        let (prefix, value, pool) =
            (codec::pool_prefix(pool)?, codec::encode_blob(sealed), pool.escape_default().to_string());
        self.run(move |inner| {
            let mut writer = inner.lock();
            let seq = writer.next_prime_seq;
            let next = seq.checked_add(1).ok_or_else(|| {
                Error::new(ErrorKind::Internal, "the prime-pool sequence is exhausted")
                    .with_context("backend", ROCKSDB_SCHEME)
                    .with_context("pool", &pool)
            })?;
            let mut batch = WriteBatch::default();
            batch.put_cf(inner.cf(CF_PRIMES)?, codec::prime_key(&prefix, seq), value);
            // The counter goes in the same batch, so after a restart new pairs still sort after
            // the ones left over, and never onto their keys.
            batch.put_cf(inner.cf(CF_META)?, codec::META_PRIME_SEQ, next.to_be_bytes());
            inner.write(batch).map_err(|e| storage(e, "add to the prime pool").with_context("pool", &pool))?;
            writer.next_prime_seq = next;
            Ok(())
        })
        .await
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        let (prefix, pool) = (codec::pool_prefix(pool)?, pool.escape_default().to_string());
        self.run(move |inner| {
            // Under the lock, so concurrent takers never read the same head pair.
            let _writer = inner.lock();
            let iter = inner.scan(CF_PRIMES, &prefix)?;
            let Some((raw_key, value)) = iter.item().map(|(k, v)| (k.to_vec(), v.to_vec())) else {
                iter.status().map_err(|e| storage(e, "take from the prime pool").with_context("pool", &pool))?;
                return Ok(None);
            };
            drop(iter);
            // Decoded before the delete: a damaged pair stays for an operator to look at.
            let sealed = codec::decode_blob("prime-pool", &pool, &value)?;
            let mut batch = WriteBatch::default();
            batch.delete_cf(inner.cf(CF_PRIMES)?, raw_key);
            inner.write(batch).map_err(|e| storage(e, "take from the prime pool").with_context("pool", &pool))?;
            Ok(Some(sealed))
        })
        .await
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let (prefix, pool) = (codec::pool_prefix(pool)?, pool.escape_default().to_string());
        self.run(move |inner| {
            let mut iter = inner.scan(CF_PRIMES, &prefix)?;
            let mut count = 0u64;
            while iter.valid() {
                count += 1;
                iter.next();
            }
            iter.status().map_err(|e| storage(e, "count the prime pool").with_context("pool", &pool))?;
            Ok(count)
        })
        .await
    }
}
