//! Assembling BEEFs from what the store recorded: each transaction with its merkle path when
//! proven, else with the BEEF of its unproven ancestors (its `input_beef`), which reaches back to
//! proven ones.

use std::collections::HashSet;

use wallet_bsv::{AtomicBeef, Beef, BeefTx, BeefVersion, MerklePath, Transaction, TxId};
use wallet_traits::{ActionRecord, Error, ErrorKind, OutputStore, Result};

use super::internal;

/// A BEEF under construction: entries without repeats, identical merkle paths once.
#[derive(Debug, Default)]
pub(crate) struct BeefBuilder {
    bumps: Vec<MerklePath>,
    txs: Vec<BeefTx>,
    seen: HashSet<TxId>,
}

impl BeefBuilder {
    fn bump_index(&mut self, path: MerklePath) -> usize {
        if let Some(i) = self.bumps.iter().position(|p| *p == path) {
            return i;
        }
        self.bumps.push(path);
        self.bumps.len() - 1
    }

    /// Adds `tx`, proven by `path` if given; a transaction already present is kept as it is,
    /// unless the new entry brings the proof it lacked.
    pub(crate) fn add(&mut self, tx: Transaction, path: Option<MerklePath>) {
        let txid = tx.txid();
        if !self.seen.insert(txid) {
            let Some(path) = path else { return };
            let bump = Some(self.bump_index(path));
            for entry in &mut self.txs {
                if let BeefTx::Full { tx: t, bump: b @ None } = entry {
                    if t.txid() == txid {
                        *b = bump;
                    }
                }
            }
            return;
        }
        let bump = path.map(|p| self.bump_index(p));
        self.txs.push(BeefTx::Full { tx, bump });
    }

    /// Adds every entry of `beef` (a txid-only entry only while the transaction is not here).
    pub(crate) fn merge(&mut self, beef: Beef) {
        let Beef { bumps, txs, .. } = beef;
        for entry in txs {
            match entry {
                BeefTx::Full { tx, bump } => self.add(tx, bump.and_then(|i| bumps.get(i).cloned())),
                BeefTx::TxidOnly(txid) => {
                    if self.seen.insert(txid) {
                        self.txs.push(BeefTx::TxidOnly(txid));
                    }
                }
            }
        }
    }

    /// Adds the recorded transaction of `action` with what proves it.
    pub(crate) fn add_action(&mut self, action: &ActionRecord) -> Result<()> {
        let raw = action.raw_tx.as_deref().ok_or_else(|| corrupt(action, "has no transaction"))?;
        let tx = Transaction::from_bytes(raw)?;
        match action.merkle_path.as_deref() {
            Some(path) => self.add(tx, Some(MerklePath::from_bytes(path)?)),
            None => {
                if let Some(ancestors) = action.input_beef.as_deref() {
                    self.merge(Beef::from_bytes(ancestors)?);
                }
                self.add(tx, None);
            }
        }
        Ok(())
    }

    /// Adds the transactions `txids` (display order) with what proves them, from the store.
    pub(crate) async fn add_recorded(&mut self, store: &dyn OutputStore, txids: &[[u8; 32]]) -> Result<()> {
        for txid in txids {
            if self.seen.contains(&internal(txid)) {
                continue;
            }
            let action = store.action_by_txid(txid).await?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, "the wallet has not recorded a transaction it needs")
                    .with_context("txid", hex::encode(txid))
            })?;
            self.add_action(&action)?;
        }
        Ok(())
    }

    /// Marks `known` (the caller's `knownTxids`) as txid-only: a V2 BEEF then carries them by id.
    pub(crate) fn make_txid_only(&mut self, known: &HashSet<TxId>) {
        for entry in &mut self.txs {
            if known.contains(&entry.txid()) {
                *entry = BeefTx::TxidOnly(entry.txid());
            }
        }
    }

    /// The BEEF, parents before children: V1 unless an entry is txid-only.
    pub(crate) fn build(self) -> Result<Beef> {
        let version =
            if self.txs.iter().any(|t| matches!(t, BeefTx::TxidOnly(_))) { BeefVersion::V2 } else { BeefVersion::V1 };
        let mut beef = Beef { version, bumps: self.bumps, txs: self.txs };
        beef.sort_parents_first()?;
        Ok(beef)
    }
}

/// What a broadcaster takes for `atomic`: its BEEF as V1 when it carries every transaction (so
/// unmined ancestors go along), else the subject in Extended Format.
pub(crate) fn for_broadcast(atomic: &AtomicBeef) -> Result<Vec<u8>> {
    if atomic.beef.txs.iter().all(|t| t.tx().is_some()) {
        let mut v1 = atomic.beef.clone();
        v1.version = BeefVersion::V1;
        return v1.to_bytes();
    }
    super::internalize::with_sources(&atomic.beef, atomic.subject_tx(), "tx")?.to_ef()
}

fn corrupt(action: &ActionRecord, what: &str) -> Error {
    Error::new(ErrorKind::Corrupted, format!("the recorded action {what}")).with_context("reference", &action.reference)
}
