//! BEEF: a transaction with the ancestors and merkle paths that prove it (BRC-62 V1, BRC-96 V2
//! with txid-only entries), and Atomic BEEF (BRC-95), which names the one transaction it is about.

use std::collections::{BTreeMap, HashMap, HashSet};

use wallet_traits::{Error, ErrorKind, Result};

use crate::{
    encoding::{write_varint, Reader},
    merkle::MerklePath,
    tx::{Transaction, TxId},
};

/// The first four bytes of a V1 BEEF, read as a little-endian u32 (`0100beef` on the wire).
pub const BEEF_V1: u32 = 0xefbe_0001;
/// The first four bytes of a V2 BEEF (`0200beef`).
pub const BEEF_V2: u32 = 0xefbe_0002;
/// The prefix of an Atomic BEEF (`01010101`), followed by the subject txid and a BEEF.
pub const ATOMIC_BEEF: u32 = 0x0101_0101;

/// Which BEEF layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeefVersion {
    /// BRC-62: every entry a raw transaction, its proof flag after it.
    V1,
    /// BRC-96: an entry is a raw transaction (with its proof index first) or a txid only.
    V2,
}

/// One entry of a BEEF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeefTx {
    /// A transaction, with the index of the merkle path that proves it, if it is mined.
    Full {
        /// The transaction.
        tx: Transaction,
        /// The index in [`Beef::bumps`] of its proof.
        bump: Option<usize>,
    },
    /// A transaction the recipient is expected to know already (V2 only).
    TxidOnly(TxId),
}

impl BeefTx {
    /// Its txid.
    pub fn txid(&self) -> TxId {
        match self {
            Self::Full { tx, .. } => tx.txid(),
            Self::TxidOnly(txid) => *txid,
        }
    }

    /// The transaction, unless the entry is a txid only.
    pub fn tx(&self) -> Option<&Transaction> {
        match self {
            Self::Full { tx, .. } => Some(tx),
            Self::TxidOnly(_) => None,
        }
    }
}

/// A BEEF: merkle paths, then transactions, parents before children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beef {
    /// Its layout.
    pub version: BeefVersion,
    /// Merkle paths (BUMPs), each of one block.
    pub bumps: Vec<MerklePath>,
    /// Entries, in the order they were written.
    pub txs: Vec<BeefTx>,
}

/// A BEEF about one transaction, its subject (BRC-95).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicBeef {
    /// The transaction the BEEF is about.
    pub subject: TxId,
    /// The BEEF.
    pub beef: Beef,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

impl Beef {
    /// Reads a V1 or V2 BEEF (not an Atomic BEEF's prefix), leaving what follows it.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let version = match r.u32_le()? {
            BEEF_V1 => BeefVersion::V1,
            BEEF_V2 => BeefVersion::V2,
            ATOMIC_BEEF => return Err(r.error("this is an Atomic BEEF; read it as one")),
            other => {
                return Err(r.error(format!("a BEEF starts with 0100beef or 0200beef, not {:08x}", other.swap_bytes())))
            }
        };
        // A path takes at least its height, levels and one node (offset, flags, hash).
        let n = r.count(1 + 1 + 1 + 1 + 1 + 32)?;
        let mut bumps = Vec::with_capacity(n);
        for _ in 0..n {
            bumps.push(MerklePath::read(r, false)?);
        }
        // An entry takes at least a txid (V2) or the smallest transaction.
        let n = r.count(10)?;
        let mut txs = Vec::with_capacity(n);
        for _ in 0..n {
            txs.push(match version {
                BeefVersion::V1 => {
                    let tx = Transaction::read(r)?;
                    let bump = if r.u8()? != 0 { Some(bump_index(r, bumps.len())?) } else { None };
                    BeefTx::Full { tx, bump }
                }
                BeefVersion::V2 => match r.u8()? {
                    0 => BeefTx::Full { tx: Transaction::read(r)?, bump: None },
                    1 => {
                        let bump = Some(bump_index(r, bumps.len())?);
                        BeefTx::Full { tx: Transaction::read(r)?, bump }
                    }
                    2 => BeefTx::TxidOnly(TxId(r.array()?)),
                    other => return Err(r.error(format!("unknown BEEF entry format {other}"))),
                },
            });
        }
        Ok(Self { version, bumps, txs })
    }

    /// Parses a V1 or V2 BEEF, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "BEEF");
        let beef = Self::read(&mut r)?;
        r.finish()?;
        Ok(beef)
    }

    /// Appends its binary form. A V1 BEEF cannot hold txid-only entries.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.version == BeefVersion::V1 && self.txs.iter().any(|t| matches!(t, BeefTx::TxidOnly(_))) {
            return Err(invalid("a V1 BEEF cannot hold txid-only entries; write it as V2"));
        }
        out.extend_from_slice(
            &match self.version {
                BeefVersion::V1 => BEEF_V1,
                BeefVersion::V2 => BEEF_V2,
            }
            .to_le_bytes(),
        );
        write_varint(out, self.bumps.len() as u64);
        for bump in &self.bumps {
            bump.write(out);
        }
        write_varint(out, self.txs.len() as u64);
        for entry in &self.txs {
            match (self.version, entry) {
                (BeefVersion::V1, BeefTx::Full { tx, bump }) => {
                    out.extend_from_slice(&tx.to_bytes());
                    match bump {
                        Some(i) => {
                            out.push(1);
                            write_varint(out, *i as u64);
                        }
                        None => out.push(0),
                    }
                }
                (BeefVersion::V2, BeefTx::Full { tx, bump: Some(i) }) => {
                    out.push(1);
                    write_varint(out, *i as u64);
                    out.extend_from_slice(&tx.to_bytes());
                }
                (BeefVersion::V2, BeefTx::Full { tx, bump: None }) => {
                    out.push(0);
                    out.extend_from_slice(&tx.to_bytes());
                }
                (_, BeefTx::TxidOnly(txid)) => {
                    out.push(2);
                    out.extend_from_slice(&txid.0);
                }
            }
        }
        Ok(())
    }

    /// Its binary form.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The entry of `txid`.
    pub fn find(&self, txid: &TxId) -> Option<&BeefTx> {
        self.txs.iter().find(|t| t.txid() == *txid)
    }

    /// Checks the structure and returns the merkle root each block must have, for a
    /// `ChainTracker` to confirm: no txid twice; every proof index points at a path that holds
    /// the transaction; every path's transactions agree on its root, and paths of one block on
    /// one root (every path's root is returned, also one no entry uses); every unproven transaction spends only transactions of the BEEF, and so chains
    /// back to proven ones. Txid-only entries count as known only with `allow_txid_only`.
    ///
    /// Entries may come in any order, as @bsv/sdk reads them (it writes a child before its
    /// parent after `makeTxidOnly`); [`Self::sort_parents_first`] puts them in dependency order,
    /// which is how this crate writes the BEEFs it assembles.
    pub fn verify_structure(&self, allow_txid_only: bool) -> Result<BTreeMap<u64, [u8; 32]>> {
        // Every path's transactions agree on its root (checked when it was read); paths of one
        // block must agree too.
        let mut roots: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
        for path in &self.bumps {
            let root = path.root();
            if *roots.entry(path.block_height()).or_insert(root) != root {
                return Err(invalid(format!(
                    "two merkle paths of block {} compute different roots",
                    path.block_height()
                )));
            }
        }
        // Each path's transactions, as sets: one lookup per proven entry, however wide the paths.
        let proven: Vec<HashSet<[u8; 32]>> =
            self.bumps.iter().map(|p| p.levels()[0].iter().filter_map(|l| l.hash).collect()).collect();
        for (i, entry) in self.txs.iter().enumerate() {
            match entry {
                BeefTx::TxidOnly(txid) if !allow_txid_only => {
                    return Err(invalid(format!(
                        "BEEF entry {i} is txid {txid} only; this BEEF must carry every transaction it relies on"
                    )))
                }
                BeefTx::Full { tx, bump: Some(b) } => {
                    let txid = tx.txid();
                    if !proven[*b].contains(&txid.0) {
                        return Err(invalid(format!("merkle path {b} of the BEEF does not hold transaction {txid}")));
                    }
                }
                _ => {}
            }
        }
        self.dependency_order()?;
        Ok(roots)
    }

    /// Puts the entries in dependency order: proven and txid-only entries first (in their order),
    /// then every transaction after the transactions it spends. The structure must hold (see
    /// [`Self::verify_structure`]).
    pub fn sort_parents_first(&mut self) -> Result<()> {
        let order = self.dependency_order()?;
        let mut entries: Vec<Option<BeefTx>> = std::mem::take(&mut self.txs).into_iter().map(Some).collect();
        self.txs = order.into_iter().map(|i| entries[i].take().expect("each index once")).collect();
        Ok(())
    }

    /// The entries' indexes in dependency order (Kahn's algorithm: linear in the entries and
    /// inputs, whatever order they come in). Refuses a txid given twice and a transaction that
    /// spends one the BEEF does not hold.
    fn dependency_order(&self) -> Result<Vec<usize>> {
        let txids: Vec<TxId> = self.txs.iter().map(BeefTx::txid).collect();
        let mut index: HashMap<TxId, usize> = HashMap::with_capacity(txids.len());
        for (i, txid) in txids.iter().enumerate() {
            if index.insert(*txid, i).is_some() {
                return Err(invalid(format!("transaction {txid} appears twice in the BEEF")));
            }
        }
        let mut order = Vec::with_capacity(self.txs.len());
        let mut waiting_on = vec![0usize; self.txs.len()];
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, entry) in self.txs.iter().enumerate() {
            let BeefTx::Full { tx, bump: None } = entry else {
                order.push(i);
                continue;
            };
            let parents: HashSet<usize> = tx
                .inputs
                .iter()
                .map(|input| {
                    index.get(&input.source_txid).copied().ok_or_else(|| {
                        invalid(format!(
                            "transaction {} spends {} which is neither proven nor in the BEEF",
                            txids[i], input.source_txid
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            for p in parents.into_iter().filter(|&p| matches!(self.txs[p], BeefTx::Full { bump: None, .. })) {
                waiting_on[i] += 1;
                children.entry(p).or_default().push(i);
            }
        }
        let mut ready: Vec<usize> = (0..self.txs.len())
            .filter(|&i| matches!(self.txs[i], BeefTx::Full { bump: None, .. }) && waiting_on[i] == 0)
            .rev()
            .collect();
        while let Some(i) = ready.pop() {
            order.push(i);
            for &c in children.get(&i).into_iter().flatten() {
                waiting_on[c] -= 1;
                if waiting_on[c] == 0 {
                    ready.push(c);
                }
            }
        }
        if order.len() != self.txs.len() {
            // Txids are hashes of the transactions, so only a broken hash could close a cycle.
            return Err(invalid("the transactions of the BEEF spend each other in a cycle"));
        }
        Ok(order)
    }
}

fn bump_index(r: &mut Reader<'_>, bumps: usize) -> Result<usize> {
    let i = r.varint()?;
    usize::try_from(i)
        .ok()
        .filter(|&i| i < bumps)
        .ok_or_else(|| r.error(format!("proof index {i} is past the {bumps} merkle paths")))
}

impl AtomicBeef {
    /// Parses an Atomic BEEF: the prefix, the subject txid, a V1 or V2 BEEF whose last entry is
    /// the subject in full. Trailing bytes are refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "Atomic BEEF");
        if r.u32_le()? != ATOMIC_BEEF {
            return Err(r.error("an Atomic BEEF starts with 01010101"));
        }
        let subject = TxId(r.array()?);
        let beef = Beef::read(&mut r)?;
        r.finish()?;
        match beef.txs.last() {
            Some(BeefTx::Full { tx, .. }) if tx.txid() == subject => Ok(Self { subject, beef }),
            _ => Err(invalid(format!("the Atomic BEEF does not end with its subject {subject}"))),
        }
    }

    /// Its binary form.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = ATOMIC_BEEF.to_le_bytes().to_vec();
        out.extend_from_slice(&self.subject.0);
        self.beef.write(&mut out)?;
        Ok(out)
    }

    /// The subject transaction.
    pub fn subject_tx(&self) -> &Transaction {
        self.beef.txs.last().and_then(BeefTx::tx).expect("checked when parsed")
    }
}
