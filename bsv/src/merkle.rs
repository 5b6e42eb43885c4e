//! Merkle paths in the BSV Unified Merkle Path format (BUMP, BRC-74): which transactions a block
//! holds, and the hashes that lead from them to the block's merkle root.

use std::collections::{BTreeMap, HashSet};

use wallet_traits::{Error, ErrorKind, Result};

use crate::{
    encoding::{write_varint, Reader},
    hash::hash256,
    tx::TxId,
};

/// The most levels a path may have: a block of 2^64 transactions.
const MAX_TREE_HEIGHT: u8 = 64;

/// One node of a path at some level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerkleLeaf {
    /// Its position in its level.
    pub offset: u64,
    /// Its hash (internal byte order), or `None` for a duplicate: the last node of an odd level,
    /// which the tree pairs with itself.
    pub hash: Option<[u8; 32]>,
    /// Whether this level-0 node is a transaction the path is meant to prove (flag 2).
    pub txid: bool,
}

impl MerkleLeaf {
    /// A node with a hash.
    pub fn hash(offset: u64, hash: [u8; 32], txid: bool) -> Self {
        Self { offset, hash: Some(hash), txid }
    }

    /// A duplicate node.
    pub fn duplicate(offset: u64) -> Self {
        Self { offset, hash: None, txid: false }
    }
}

/// A merkle path of one block: level 0 holds transactions, each higher level the hashes needed
/// on the way up. One path can prove several transactions of its block (a compound path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerklePath {
    block_height: u64,
    path: Vec<Vec<MerkleLeaf>>,
    /// The root every level-0 transaction computes (checked when the path is made).
    root: [u8; 32],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Hash([u8; 32]),
    Duplicate,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(left);
    b[32..].copy_from_slice(right);
    hash256(&b)
}

impl MerklePath {
    /// A path at `block_height`, its levels sorted by offset and checked as @bsv/sdk checks them:
    /// level 0 is not empty, no level repeats an offset, with `legal_offsets_only` every node
    /// above level 0 is a sibling some level-0 transaction needs, and every level-0 hash
    /// computes the same root.
    pub fn new(block_height: u64, mut path: Vec<Vec<MerkleLeaf>>, legal_offsets_only: bool) -> Result<Self> {
        if path.is_empty() || path[0].is_empty() {
            return Err(invalid("a merkle path needs at least one node at level 0"));
        }
        if path.len() > usize::from(MAX_TREE_HEIGHT) {
            return Err(invalid(format!("a merkle path has at most {MAX_TREE_HEIGHT} levels")));
        }
        for level in &mut path {
            level.sort_by_key(|l| l.offset);
        }
        for (height, level) in path.iter().enumerate() {
            if let Some(w) = level.windows(2).find(|w| w[0].offset == w[1].offset) {
                return Err(invalid(format!("duplicate offset {} at height {height} of a merkle path", w[0].offset)));
            }
        }
        if legal_offsets_only {
            for (height, level) in path.iter().enumerate().skip(1) {
                // The siblings the level-0 transactions need at this height, as a set, so the
                // check is linear in the nodes, not their product (and holds one height at a time).
                let legal: HashSet<u64> =
                    path[0].iter().filter(|l| l.hash.is_some()).map(|l| (l.offset >> height) ^ 1).collect();
                if let Some(leaf) = level.iter().find(|l| !legal.contains(&l.offset)) {
                    return Err(invalid(format!(
                        "offset {} at height {height} of a merkle path is not needed by any of its transactions",
                        leaf.offset
                    )));
                }
            }
        }
        let mut this = Self { block_height, path, root: [0; 32] };
        let nodes = this.nodes();
        let max0 = this.max_offset0();
        let mut root = None;
        for leaf in &this.path[0] {
            let Some(hash) = leaf.hash else { continue };
            let r = this.root_at(&nodes, max0, leaf.offset, hash)?;
            if *root.get_or_insert(r) != r {
                return Err(invalid("the transactions of a merkle path compute different roots"));
            }
        }
        this.root = root.ok_or_else(|| invalid("a merkle path needs a transaction at level 0, not only duplicates"))?;
        Ok(this)
    }

    /// The path that proves a coinbase transaction alone (the single transaction of its block).
    pub fn coinbase(txid: TxId, block_height: u64) -> Self {
        Self { block_height, path: vec![vec![MerkleLeaf::hash(0, txid.0, true)]], root: txid.0 }
    }

    /// The block's height.
    pub fn block_height(&self) -> u64 {
        self.block_height
    }

    /// Its levels, each sorted by offset.
    pub fn levels(&self) -> &[Vec<MerkleLeaf>] {
        &self.path
    }

    /// Reads one path, leaving what follows it.
    pub fn read(r: &mut Reader<'_>, legal_offsets_only: bool) -> Result<Self> {
        let block_height = r.varint()?;
        let tree_height = r.u8()?;
        if tree_height == 0 || tree_height > MAX_TREE_HEIGHT {
            return Err(r.error(format!("a merkle path has 1 to {MAX_TREE_HEIGHT} levels, not {tree_height}")));
        }
        let mut path = Vec::with_capacity(usize::from(tree_height));
        for _ in 0..tree_height {
            // A node takes at least its offset and its flags.
            let n = r.count(2)?;
            let mut level = Vec::with_capacity(n);
            for _ in 0..n {
                let offset = r.varint()?;
                let flags = r.u8()?;
                if flags > 3 {
                    return Err(r.error(format!("unknown merkle path node flags {flags:#x}")));
                }
                if flags & 1 == 1 {
                    level.push(MerkleLeaf::duplicate(offset));
                } else {
                    level.push(MerkleLeaf::hash(offset, r.array()?, flags & 2 == 2));
                }
            }
            path.push(level);
        }
        Self::new(block_height, path, legal_offsets_only).map_err(|e| r.error(e.message()))
    }

    /// Parses one path (BRC-74 binary), refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "merkle path");
        let path = Self::read(&mut r, true)?;
        r.finish()?;
        Ok(path)
    }

    /// Appends the BRC-74 binary form.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_varint(out, self.block_height);
        out.push(self.path.len() as u8);
        for level in &self.path {
            write_varint(out, level.len() as u64);
            for leaf in level {
                write_varint(out, leaf.offset);
                match leaf.hash {
                    None => out.push(1),
                    Some(hash) => {
                        out.push(if leaf.txid { 2 } else { 0 });
                        out.extend_from_slice(&hash);
                    }
                }
            }
        }
    }

    /// The BRC-74 binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Whether level 0 holds `txid`.
    pub fn contains(&self, txid: &TxId) -> bool {
        self.path[0].iter().any(|l| l.hash == Some(txid.0))
    }

    /// The merkle root (internal byte order) that `txid` computes to: the path's root, which
    /// every one of its transactions computes (checked when the path was made).
    pub fn compute_root(&self, txid: &TxId) -> Result<[u8; 32]> {
        if !self.contains(txid) {
            return Err(invalid(format!(
                "transaction {txid} is not in the merkle path of block {}",
                self.block_height
            )));
        }
        Ok(self.root)
    }

    /// The merkle root (internal byte order) of the block.
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// Every node the path gives or implies, level by level: a node missing at some level is
    /// computed from its two children below when both are known. Built bottom-up in one pass, so
    /// the work grows with the nodes given, whatever the tree height claims (a recursive search,
    /// as @bsv/sdk does it, can be made to take 2^height steps).
    fn nodes(&self) -> Vec<BTreeMap<u64, Node>> {
        let height = self.tree_height();
        let single_level = self.path.len() == 1;
        let max0 = self.max_offset0();
        let mut levels: Vec<BTreeMap<u64, Node>> = Vec::with_capacity(height);
        for h in 0..height {
            let mut level: BTreeMap<u64, Node> = self
                .path
                .get(h)
                .map(|l| l.iter().map(|l| (l.offset, l.hash.map_or(Node::Duplicate, Node::Hash))).collect())
                .unwrap_or_default();
            if h > 0 {
                let below = &levels[h - 1];
                for (&offset, node) in below {
                    let Node::Hash(left) = node else { continue };
                    if offset % 2 == 1 || level.contains_key(&(offset >> 1)) {
                        continue;
                    }
                    let parent = match below.get(&(offset + 1)) {
                        Some(Node::Hash(right)) => Some(pair(left, right)),
                        Some(Node::Duplicate) => Some(pair(left, left)),
                        // On a single-level path the last node of a level pairs with itself.
                        None if single_level && offset == max0 >> (h - 1) => Some(pair(left, left)),
                        None => None,
                    };
                    if let Some(p) = parent {
                        level.insert(offset >> 1, Node::Hash(p));
                    }
                }
            }
            levels.push(level);
        }
        levels
    }

    fn max_offset0(&self) -> u64 {
        self.path[0].iter().map(|l| l.offset).max().unwrap_or(0)
    }

    /// The levels a root computation climbs: the path's, or for a path that keeps only level 0,
    /// as many as its highest offset needs.
    fn tree_height(&self) -> usize {
        let bits = 64 - self.max_offset0().leading_zeros() as usize;
        self.path.len().max(bits)
    }

    /// The root the transaction `hash` at level-0 offset `index` computes; `max0` is the highest
    /// level-0 offset.
    fn root_at(&self, nodes: &[BTreeMap<u64, Node>], max0: u64, index: u64, hash: [u8; 32]) -> Result<[u8; 32]> {
        if self.path.len() == 1 && self.path[0].len() == 1 {
            return Ok(hash);
        }
        let mut working = hash;
        for (h, level) in nodes.iter().enumerate() {
            let sibling = (index >> h) ^ 1;
            working = match level.get(&sibling) {
                Some(Node::Duplicate) => pair(&working, &working),
                Some(Node::Hash(s)) if sibling % 2 == 1 => pair(&working, s),
                Some(Node::Hash(s)) => pair(s, &working),
                None if self.path.len() == 1 && index >> h == max0 >> h => pair(&working, &working),
                None => {
                    return Err(invalid(format!(
                        "the merkle path of block {} lacks the hash for transaction {} at height {h}",
                        self.block_height,
                        TxId(hash)
                    )))
                }
            };
        }
        Ok(working)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> [u8; 32] {
        [n; 32]
    }

    /// A block of four transactions; the path proves transaction 2.
    #[test]
    fn a_path_computes_the_root_of_its_block() {
        let (t0, t1, t2, t3) = (h(0), h(1), h(2), h(3));
        let root = pair(&pair(&t0, &t1), &pair(&t2, &t3));
        let path = MerklePath::new(
            100,
            vec![
                vec![MerkleLeaf::hash(3, t3, false), MerkleLeaf::hash(2, t2, true)],
                vec![MerkleLeaf::hash(0, pair(&t0, &t1), false)],
            ],
            true,
        )
        .unwrap();
        assert_eq!(path.compute_root(&TxId(t2)).unwrap(), root);
        // Both level-0 hashes compute the same root, and the bytes round-trip (sorted by offset).
        assert_eq!(path.compute_root(&TxId(t3)).unwrap(), root);
        let bytes = path.to_bytes();
        assert_eq!(MerklePath::from_bytes(&bytes).unwrap(), path);
        assert!(path.compute_root(&TxId(h(9))).unwrap_err().message().contains("not in the merkle path"));
    }

    #[test]
    fn odd_levels_pair_the_last_node_with_itself() {
        // Three transactions: 2 pairs with itself (a duplicate node at level 0).
        let (t0, t1, t2) = (h(0), h(1), h(2));
        let root = pair(&pair(&t0, &t1), &pair(&t2, &t2));
        let path = MerklePath::new(
            7,
            vec![
                vec![MerkleLeaf::hash(2, t2, true), MerkleLeaf::duplicate(3)],
                vec![MerkleLeaf::hash(0, pair(&t0, &t1), false)],
            ],
            true,
        )
        .unwrap();
        assert_eq!(path.compute_root(&TxId(t2)).unwrap(), root);
        // The same block kept as level 0 only: every transaction given, the rest computed.
        let flat =
            MerklePath::new(7, vec![(0..3).map(|i| MerkleLeaf::hash(i, h(i as u8), i == 2)).collect()], true).unwrap();
        assert_eq!(flat.compute_root(&TxId(t0)).unwrap(), root);
    }

    #[test]
    fn inconsistent_and_hostile_paths_are_refused() {
        // Level 1 offset 0 is given, but not as the pair of level 0's first two hashes: the
        // transactions of the path then disagree on the root.
        let (t0, t1, t2, t3) = (h(0), h(1), h(2), h(3));
        let level0 = vec![
            MerkleLeaf::hash(0, t0, true),
            MerkleLeaf::hash(1, t1, false),
            MerkleLeaf::hash(2, t2, true),
            MerkleLeaf::hash(3, t3, false),
        ];
        let bad = MerklePath::new(1, vec![level0.clone(), vec![MerkleLeaf::hash(0, h(5), false)]], false);
        assert!(bad.unwrap_err().message().contains("different roots"));
        let good = MerklePath::new(1, vec![level0, vec![MerkleLeaf::hash(0, pair(&t0, &t1), false)]], false);
        assert_eq!(good.unwrap().compute_root(&TxId(t2)).unwrap(), pair(&pair(&t0, &t1), &pair(&t2, &t3)));
        let dup =
            MerklePath::new(1, vec![vec![MerkleLeaf::hash(0, h(0), true), MerkleLeaf::hash(0, h(1), true)]], true);
        assert!(dup.unwrap_err().message().contains("duplicate offset"));
        // A claimed height of 64 levels with two nodes: refused or answered at once, never 2^64 steps.
        let mut bytes = vec![0x01, 64];
        bytes.extend_from_slice(&[2, 0, 2]);
        bytes.extend_from_slice(&h(1));
        bytes.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x7f, 2]);
        bytes.extend_from_slice(&h(2));
        bytes.extend(std::iter::repeat_n(0u8, 63));
        let e = MerklePath::from_bytes(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
