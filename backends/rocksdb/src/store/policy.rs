//! A cosigner's policy state ([`PolicyStore`]) in the store's eight `policy_*` column families
//! (their keys and values are in `codec`).
//!
//! Atomicity comes from the same place as the shares': RocksDB lets one process open the
//! directory, so every writer goes through this store, and [`Inner::policy_lock`] serializes
//! each read-decide-write of `settle`, `add_approval` and `mark_seen`. Each of their writes is
//! one [`WriteBatch`], so a reader (`window`, `audit`) and a crash see a decision whole or not
//! at all. The indexes (`policy_window`, `policy_open_approvals`, `policy_audit_wallets`,
//! `policy_seen_expiry`) change in the same batch as the records they index.

use std::sync::Arc;

use async_trait::async_trait;
use rocksdb::WriteBatch;
use wallet_traits::{Approval, AuditHead, AuditRecord, Error, ErrorKind, Ledger, PolicyStore, Result, Ruling};

use super::{storage, Inner, RocksDbShareStore};
use crate::{
    codec::{
        self, CF_POLICY_APPROVALS, CF_POLICY_AUDIT, CF_POLICY_AUDIT_WALLETS, CF_POLICY_LEDGER,
        CF_POLICY_OPEN_APPROVALS, CF_POLICY_SEEN, CF_POLICY_SEEN_EXPIRY, CF_POLICY_WINDOW,
    },
    ROCKSDB_SCHEME,
};

/// The transaction id that names no transaction (a refusal before one was read).
const NO_TX: [u8; 32] = [0; 32];

/// At most this many expired seen ids are forgotten by one `mark_seen`, so the first call after
/// a long pause writes a bounded batch; later calls forget the rest. A lookup treats an expired
/// id as unseen whether or not it was forgotten yet, so the bound changes no answer.
const FORGET_SEEN_PER_CALL: usize = 1024;

/// What `settle` read, carried to its write under the same lock.
struct LedgerRead {
    ledger: Ledger,
    /// Open-approval index entries that no longer name an open approval (spent, expired at
    /// `now_ms`, or dangling): dropped in the decision's batch, so the index does not keep
    /// growing with approvals nobody spent.
    stale_open: Vec<Vec<u8>>,
}

/// A wallet (or seen-id kind) as error context: escaped, since it is any string.
fn shown(name: &str) -> String {
    name.escape_default().to_string()
}

/// A ruling the store refuses to write.
fn refused(why: &str, wallet: &str) -> Error {
    Error::new(ErrorKind::Internal, format!("a policy ruling {why}; nothing was written"))
        .with_context("backend", ROCKSDB_SCHEME)
        .with_context("wallet", shown(wallet))
}

/// The ruling's demands checked against what was read, before anything is written: it charges
/// only `tx` (none for all zeros) and spends only an approval that was open.
fn check_ruling(wallet: &str, tx: &[u8; 32], ledger: &Ledger, ruling: &Ruling) -> Result<()> {
    if ruling.charge.as_ref().is_some_and(|entry| entry.tx != *tx || *tx == NO_TX) {
        return Err(refused("charged another transaction than it was asked about", wallet));
    }
    // `ledger.approvals` is exactly the wallet's approvals open at `now_ms`, and the lock keeps
    // them so until the write.
    if let Some(id) = &ruling.spend_approval {
        if !ledger.approvals.iter().any(|a| a.id == *id) {
            return Err(refused("spent an approval that is not open", wallet));
        }
    }
    Ok(())
}

/// The seq of an audit key (`seq: u64 BE`).
fn audit_seq(raw: &[u8]) -> Result<u64> {
    codec::trailing_u64(raw, 0).ok_or_else(|| codec::corrupted("policy audit", &"key", "seq"))
}

impl Inner {
    /// The wallet's window from `since_ms`: one range scan of its window index from `since_ms`
    /// on, so the cost is the entries inside the window, not every entry the wallet ever had.
    fn policy_window(&self, prefix: &[u8], since_ms: u64, wallet: &str) -> Result<(u64, u64)> {
        let start = [prefix, &since_ms.to_be_bytes()].concat();
        let mut iter = self.scan_from(CF_POLICY_WINDOW, prefix, &start)?;
        let (mut sats, mut txs) = (0u64, 0u64);
        while let Some((_, value)) = iter.item() {
            sats = sats.saturating_add(codec::decode_u64("policy window", "charged", &wallet, value)?);
            txs = txs.saturating_add(1);
            iter.next();
        }
        iter.status().map_err(|e| storage(e, "read the policy window").with_context("wallet", wallet))?;
        Ok((sats, txs))
    }

    /// Everything `decide` reads. Call with the policy lock held.
    fn read_ledger(&self, wallet: &str, tx: &[u8; 32], since_ms: u64, now_ms: u64) -> Result<LedgerRead> {
        let action = "read the policy ledger";
        let name = shown(wallet);
        let prefix = codec::policy_prefix("wallet", wallet)?;
        let (window_sats, window_txs) = self.policy_window(&prefix, since_ms, &name)?;
        let entry = if *tx == NO_TX {
            None
        } else {
            self.get(CF_POLICY_LEDGER, &codec::policy_ledger_key(&prefix, tx), action)
                .map_err(|e| e.with_context("wallet", &name))?
                .map(|value| codec::decode_ledger_entry(&name, tx, &value))
                .transpose()?
        };

        let mut index = Vec::new();
        let mut iter = self.scan(CF_POLICY_OPEN_APPROVALS, &prefix)?;
        while let Some((key, _)) = iter.item() {
            index.push(key.to_vec());
            iter.next();
        }
        iter.status().map_err(|e| storage(e, action).with_context("wallet", &name))?;
        drop(iter);
        let (mut approvals, mut stale_open) = (Vec::new(), Vec::new());
        for key in index {
            let Some(id) = key.get(prefix.len()..).and_then(|id| <[u8; 32]>::try_from(id).ok()) else {
                stale_open.push(key);
                continue;
            };
            let stored = self.get(CF_POLICY_APPROVALS, &id, action).map_err(|e| e.with_context("wallet", &name))?;
            match stored.map(|value| codec::decode_approval(&name, &id, &value)).transpose()? {
                Some((approval, false)) if approval.wallet == wallet && approval.expires_ms > now_ms => {
                    approvals.push(approval);
                }
                _ => stale_open.push(key),
            }
        }

        let head = self.audit_head()?;
        Ok(LedgerRead { ledger: Ledger { window_sats, window_txs, entry, approvals, head }, stale_open })
    }

    /// The newest audit record's seq and hash: the head is the last record itself, so it can
    /// never disagree with the log.
    fn audit_head(&self) -> Result<AuditHead> {
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_POLICY_AUDIT)?);
        iter.seek_to_last();
        match iter.item() {
            Some((key, value)) => {
                let seq = audit_seq(key)?;
                Ok(AuditHead { seq, hash: codec::decode_audit(seq, value)?.hash })
            }
            None => {
                iter.status().map_err(|e| storage(e, "read the audit log's head"))?;
                Ok(AuditHead::default())
            }
        }
    }

    /// Writes a checked `ruling` in one batch: the entry and its window index entry, the spent
    /// approval, the audit record and its wallet index entry. Call with the policy lock held
    /// since [`read_ledger`](Self::read_ledger).
    fn write_ruling(&self, wallet: &str, tx: &[u8; 32], now_ms: u64, read: LedgerRead, ruling: &Ruling) -> Result<()> {
        let name = shown(wallet);
        let prefix = codec::policy_prefix("wallet", wallet)?;
        let LedgerRead { ledger, stale_open } = read;
        let seq = ledger.head.seq.checked_add(1).ok_or_else(|| {
            Error::new(ErrorKind::Internal, "the audit log's sequence is exhausted")
                .with_context("backend", ROCKSDB_SCHEME)
        })?;
        let (window, open) = (self.cf(CF_POLICY_WINDOW)?, self.cf(CF_POLICY_OPEN_APPROVALS)?);
        let mut batch = WriteBatch::default();
        if let Some(entry) = &ruling.charge {
            // The entry may move in time (a renewed charge): its index entry moves with it.
            if let Some(old) = &ledger.entry {
                batch.delete_cf(window, codec::policy_window_key(&prefix, old.at_ms, tx));
            }
            batch.put_cf(
                self.cf(CF_POLICY_LEDGER)?,
                codec::policy_ledger_key(&prefix, tx),
                codec::encode_ledger_entry(entry),
            );
            batch.put_cf(window, codec::policy_window_key(&prefix, entry.at_ms, tx), codec::encode_u64(entry.charged));
        }
        for key in &stale_open {
            batch.delete_cf(open, key);
        }
        if let Some(id) = &ruling.spend_approval {
            let approval = ledger
                .approvals
                .iter()
                .find(|a| a.id == *id)
                .ok_or_else(|| refused("spent an approval that is not open", wallet))?;
            batch.put_cf(self.cf(CF_POLICY_APPROVALS)?, id, codec::encode_approval(approval, true)?);
            batch.delete_cf(open, codec::policy_open_approval_key(&prefix, id));
        }
        let record = AuditRecord {
            seq,
            wallet: wallet.to_string(),
            at_ms: now_ms,
            body: ruling.audit.clone(),
            hash: ruling.audit_hash,
        };
        batch.put_cf(self.cf(CF_POLICY_AUDIT)?, seq.to_be_bytes(), codec::encode_audit(&record)?);
        batch.put_cf(self.cf(CF_POLICY_AUDIT_WALLETS)?, codec::policy_audit_wallet_key(&prefix, seq), b"");
        self.write(batch).map_err(|e| storage(e, "record a policy decision").with_context("wallet", &name))
    }

    /// Stores `approval` unless its id is known. Call with the policy lock held.
    fn add_approval(&self, approval: &Approval) -> Result<bool> {
        let name = shown(&approval.wallet);
        let action = "record an approval";
        if self.get(CF_POLICY_APPROVALS, &approval.id, action).map_err(|e| e.with_context("wallet", &name))?.is_some() {
            return Ok(false);
        }
        let prefix = codec::policy_prefix("wallet", &approval.wallet)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_POLICY_APPROVALS)?, approval.id, codec::encode_approval(approval, false)?);
        batch.put_cf(self.cf(CF_POLICY_OPEN_APPROVALS)?, codec::policy_open_approval_key(&prefix, &approval.id), b"");
        self.write(batch).map_err(|e| storage(e, action).with_context("wallet", &name))?;
        Ok(true)
    }

    /// Up to `limit` records after `after_seq`, oldest first: a seek and a walk along the log,
    /// or along the wallet's index with one lookup per record. Records never change once
    /// written, so no lock and no snapshot are needed.
    fn read_audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let action = "read the audit log";
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let Some(start) = after_seq.checked_add(1).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(limit.min(256));
        let Some(wallet) = wallet else {
            let mut iter = self.db.raw_iterator_cf(self.cf(CF_POLICY_AUDIT)?);
            iter.seek(start.to_be_bytes());
            while out.len() < limit {
                let Some((key, value)) = iter.item() else { break };
                out.push(codec::decode_audit(audit_seq(key)?, value)?);
                iter.next();
            }
            iter.status().map_err(|e| storage(e, action))?;
            return Ok(out);
        };

        let name = shown(wallet);
        let prefix = codec::policy_prefix("wallet", wallet)?;
        let mut seqs = Vec::with_capacity(out.capacity());
        let mut iter =
            self.scan_from(CF_POLICY_AUDIT_WALLETS, &prefix, &codec::policy_audit_wallet_key(&prefix, start))?;
        while seqs.len() < limit {
            let Some(key) = iter.key() else { break };
            let seq = codec::trailing_u64(key, prefix.len())
                .ok_or_else(|| codec::corrupted("policy audit index", &name, "seq"))?;
            seqs.push(seq);
            iter.next();
        }
        iter.status().map_err(|e| storage(e, action).with_context("wallet", &name))?;
        drop(iter);
        for seq in seqs {
            // The index entry is written in the record's batch, so a missing record is damage.
            let value = self
                .get(CF_POLICY_AUDIT, &seq.to_be_bytes(), action)?
                .ok_or_else(|| codec::corrupted("policy audit index", &name, "record").with_context("seq", seq))?;
            let record = codec::decode_audit(seq, &value)?;
            if record.wallet != wallet {
                return Err(codec::corrupted("policy audit index", &name, "wallet").with_context("seq", seq));
            }
            out.push(record);
        }
        Ok(out)
    }

    /// Forgets up to [`FORGET_SEEN_PER_CALL`] ids expired at `now_ms`, then records `id` unless
    /// it is seen and unexpired; all in one batch. Call with the policy lock held.
    fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool> {
        let action = "record a seen id";
        let name = shown(kind);
        let (seen, expiry) = (self.cf(CF_POLICY_SEEN)?, self.cf(CF_POLICY_SEEN_EXPIRY)?);
        let mut batch = WriteBatch::default();

        // The expiry index sorts by expiry, so the expired ids are its first keys: the keys
        // below `now_ms + 1` (all of them at `u64::MAX`).
        let mut read = rocksdb::ReadOptions::default();
        if let Some(end) = now_ms.checked_add(1) {
            read.set_iterate_upper_bound(end.to_be_bytes());
        }
        let mut iter = self.db.raw_iterator_cf_opt(expiry, read);
        iter.seek_to_first();
        let mut forgotten = 0;
        while forgotten < FORGET_SEEN_PER_CALL {
            let Some(key) = iter.key() else { break };
            batch.delete_cf(expiry, key);
            if let Some(seen_key) = key.get(8..) {
                batch.delete_cf(seen, seen_key);
            }
            forgotten += 1;
            iter.next();
        }
        iter.status().map_err(|e| storage(e, action).with_context("kind", &name))?;
        drop(iter);

        let seen_key = codec::policy_seen_key(&codec::policy_prefix("kind", kind)?, id);
        let stored = self
            .get(CF_POLICY_SEEN, &seen_key, action)
            .map_err(|e| e.with_context("kind", &name))?
            .map(|value| codec::decode_u64("policy seen-id", "expires_ms", &name, &value))
            .transpose()?;
        let fresh = match stored {
            Some(expires) if expires > now_ms => false,
            // Expired but maybe not forgotten yet (the bound above): replaced, its old index
            // entry removed before the new one is put (they are the same key when the expiry
            // is).
            stale => {
                if let Some(expires) = stale {
                    batch.delete_cf(expiry, codec::policy_seen_expiry_key(expires, &seen_key));
                }
                batch.put_cf(seen, &seen_key, codec::encode_u64(expires_ms));
                batch.put_cf(expiry, codec::policy_seen_expiry_key(expires_ms, &seen_key), b"");
                true
            }
        };
        if !batch.is_empty() {
            self.write(batch).map_err(|e| storage(e, action).with_context("kind", &name))?;
        }
        Ok(fresh)
    }
}

#[async_trait]
impl PolicyStore for RocksDbShareStore {
    async fn settle(
        &self,
        wallet: &str,
        tx: &[u8; 32],
        since_ms: u64,
        now_ms: u64,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Ruling + Send + Sync),
    ) -> Result<Ruling> {
        let guard = Arc::clone(&self.inner.policy_lock).lock_owned().await;
        let (owned, tx) = (wallet.to_string(), *tx);
        let read = self.run(move |inner| inner.read_ledger(&owned, &tx, since_ms, now_ms)).await?;
        // On the caller's task, not the blocking pool: `decide` borrows from the caller. The
        // lock stays held, so nothing the ledger shows can change before the write.
        let ruling = decide(&read.ledger);
        check_ruling(wallet, &tx, &read.ledger, &ruling)?;
        let owned = wallet.to_string();
        self.run(move |inner| {
            // Released when the batch is written, even if the caller stopped waiting.
            let _guard = guard;
            inner.write_ruling(&owned, &tx, now_ms, read, &ruling)?;
            Ok(ruling)
        })
        .await
    }

    async fn window(&self, wallet: &str, since_ms: u64) -> Result<(u64, u64)> {
        let wallet = wallet.to_string();
        // No lock: a decision's batch is seen whole or not at all.
        self.run(move |inner| {
            let prefix = codec::policy_prefix("wallet", &wallet)?;
            inner.policy_window(&prefix, since_ms, &shown(&wallet))
        })
        .await
    }

    async fn add_approval(&self, approval: &Approval) -> Result<bool> {
        let guard = Arc::clone(&self.inner.policy_lock).lock_owned().await;
        let approval = approval.clone();
        self.run(move |inner| {
            let _guard = guard;
            inner.add_approval(&approval)
        })
        .await
    }

    async fn audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let wallet = wallet.map(str::to_string);
        self.run(move |inner| inner.read_audit(wallet.as_deref(), after_seq, limit)).await
    }

    async fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool> {
        let guard = Arc::clone(&self.inner.policy_lock).lock_owned().await;
        let (kind, id) = (kind.to_string(), id.to_vec());
        self.run(move |inner| {
            let _guard = guard;
            inner.mark_seen(&kind, &id, expires_ms, now_ms)
        })
        .await
    }
}
