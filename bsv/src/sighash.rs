//! The BSV signature hash: BIP143's preimage with SIGHASH_FORKID, for ALL, NONE and SINGLE, each
//! with or without ANYONECANPAY. The digest a signature signs is `hash256(preimage)`.

use wallet_traits::{Error, ErrorKind, Result};

use std::cell::OnceCell;

use crate::{
    encoding::write_var_bytes,
    hash::hash256,
    tx::{Transaction, TxOutput},
};

/// Signs every input and every output.
pub const ALL: u32 = 0x01;
/// Signs every input and no output.
pub const NONE: u32 = 0x02;
/// Signs every input and the output at the same index.
pub const SINGLE: u32 = 0x03;
/// Marks the BSV (BIP143-style) algorithm; required.
pub const FORKID: u32 = 0x40;
/// Signs only this input.
pub const ANYONECANPAY: u32 = 0x80;
/// `ALL | FORKID`, what a wallet signs with unless told otherwise.
pub const ALL_FORKID: u32 = ALL | FORKID;

const BASE_MASK: u32 = 0x1f;

/// The sighash of every input of one transaction: the commitments all inputs share (outpoints,
/// sequences, all outputs) are hashed once, not once per input, so signing n inputs costs one
/// pass over the transaction instead of n.
#[derive(Debug)]
pub struct Sighasher<'a> {
    tx: &'a Transaction,
    prevouts: OnceCell<[u8; 32]>,
    sequences: OnceCell<[u8; 32]>,
    outputs: OnceCell<[u8; 32]>,
}

impl<'a> Sighasher<'a> {
    /// The sighashes of `tx`.
    pub fn new(tx: &'a Transaction) -> Self {
        Self { tx, prevouts: OnceCell::new(), sequences: OnceCell::new(), outputs: OnceCell::new() }
    }

    /// The preimage that input `index` signs with `sighash_type`, spending `satoshis` locked by
    /// `script_code` (the source locking script, from its last executed OP_CODESEPARATOR on).
    ///
    /// Refused: an index out of range, and a type without [`FORKID`] (the legacy algorithm,
    /// which BSV no longer accepts for new transactions). Like the node, SINGLE for an input
    /// without an output at its index signs no outputs (`hashOutputs` of zeros).
    pub fn preimage(&self, index: usize, script_code: &[u8], satoshis: u64, sighash_type: u32) -> Result<Vec<u8>> {
        let tx = self.tx;
        let input = tx.inputs.get(index).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("input {index} does not exist; the transaction has {}", tx.inputs.len()),
            )
        })?;
        if sighash_type & FORKID == 0 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "sighash type {sighash_type:#x} lacks SIGHASH_FORKID (0x40); BSV signs with the FORKID algorithm"
                ),
            ));
        }
        let (hash_prevouts, hash_sequence, hash_outputs) = self.commitments(index, sighash_type);
        let mut p = Vec::with_capacity(156 + script_code.len());
        p.extend_from_slice(&tx.version.to_le_bytes());
        p.extend_from_slice(&hash_prevouts);
        p.extend_from_slice(&hash_sequence);
        p.extend_from_slice(&input.source_txid.0);
        p.extend_from_slice(&input.source_vout.to_le_bytes());
        write_var_bytes(&mut p, script_code);
        p.extend_from_slice(&satoshis.to_le_bytes());
        p.extend_from_slice(&input.sequence.to_le_bytes());
        p.extend_from_slice(&hash_outputs);
        p.extend_from_slice(&tx.lock_time.to_le_bytes());
        p.extend_from_slice(&sighash_type.to_le_bytes());
        Ok(p)
    }

    /// `hash256(preimage(..))`: the 32 bytes an ECDSA signature of input `index` signs.
    pub fn digest(&self, index: usize, script_code: &[u8], satoshis: u64, sighash_type: u32) -> Result<[u8; 32]> {
        Ok(hash256(&self.preimage(index, script_code, satoshis, sighash_type)?))
    }

    /// The digest of input `index` from what the transaction itself carries: the source output's
    /// amount and locking script (Extended Format). Refused when the input has no source output.
    pub fn input_digest(&self, index: usize, sighash_type: u32) -> Result<[u8; 32]> {
        let source = self.tx.inputs.get(index).and_then(|i| i.source_output.as_ref()).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("input {index} has no source output; signing needs the amount and locking script it spends"),
            )
        })?;
        self.digest(index, source.locking_script.as_bytes(), source.satoshis, sighash_type)
    }

    /// The preimage's three commitments to the rest of the transaction: its outpoints, its
    /// sequences and its outputs, each zeros where `sighash_type` leaves that part unsigned.
    fn commitments(&self, index: usize, sighash_type: u32) -> ([u8; 32], [u8; 32], [u8; 32]) {
        let tx = self.tx;
        let base = sighash_type & BASE_MASK;
        let anyone = sighash_type & ANYONECANPAY != 0;
        let zero = [0u8; 32];
        let hash_prevouts = if anyone {
            zero
        } else {
            *self.prevouts.get_or_init(|| {
                let mut b = Vec::with_capacity(36 * tx.inputs.len());
                for i in &tx.inputs {
                    b.extend_from_slice(&i.source_txid.0);
                    b.extend_from_slice(&i.source_vout.to_le_bytes());
                }
                hash256(&b)
            })
        };
        let hash_sequence = if anyone || base == SINGLE || base == NONE {
            zero
        } else {
            *self.sequences.get_or_init(|| {
                let b: Vec<u8> = tx.inputs.iter().flat_map(|i| i.sequence.to_le_bytes()).collect();
                hash256(&b)
            })
        };
        // NONE signs no outputs, and so does SINGLE for an input without an output at its index.
        let hash_outputs = match base {
            NONE => zero,
            SINGLE => tx.outputs.get(index..=index).map_or(zero, hash_outputs),
            _ => *self.outputs.get_or_init(|| hash_outputs(&tx.outputs)),
        };
        (hash_prevouts, hash_sequence, hash_outputs)
    }
}

fn hash_outputs(outputs: &[TxOutput]) -> [u8; 32] {
    let mut b = Vec::new();
    for o in outputs {
        b.extend_from_slice(&o.satoshis.to_le_bytes());
        write_var_bytes(&mut b, o.locking_script.as_bytes());
    }
    hash256(&b)
}

/// [`Sighasher::preimage`] of `tx`, for one input.
pub fn preimage(
    tx: &Transaction,
    index: usize,
    script_code: &[u8],
    satoshis: u64,
    sighash_type: u32,
) -> Result<Vec<u8>> {
    Sighasher::new(tx).preimage(index, script_code, satoshis, sighash_type)
}

/// [`Sighasher::digest`] of `tx`, for one input.
pub fn digest(
    tx: &Transaction,
    index: usize,
    script_code: &[u8],
    satoshis: u64,
    sighash_type: u32,
) -> Result<[u8; 32]> {
    Sighasher::new(tx).digest(index, script_code, satoshis, sighash_type)
}

/// [`Sighasher::input_digest`] of `tx`, for one input.
pub fn input_digest(tx: &Transaction, index: usize, sighash_type: u32) -> Result<[u8; 32]> {
    Sighasher::new(tx).input_digest(index, sighash_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Script, TxId, TxInput};

    #[test]
    fn one_sighasher_gives_each_input_what_a_fresh_one_gives() {
        let tx = Transaction {
            version: 2,
            inputs: (0..3u8)
                .map(|i| TxInput {
                    source_txid: TxId([i; 32]),
                    source_vout: i.into(),
                    sequence: i.into(),
                    ..Default::default()
                })
                .collect(),
            outputs: (0..2u8).map(|i| TxOutput { satoshis: i.into(), locking_script: Script::new(vec![i]) }).collect(),
            lock_time: 7,
        };
        let shared = Sighasher::new(&tx);
        for t in [0x41, 0x42, 0x43, 0xc1, 0xc2, 0xc3] {
            for i in 0..3 {
                let fresh = Sighasher::new(&tx).digest(i, &[0x51], 5, t).unwrap();
                assert_eq!(shared.digest(i, &[0x51], 5, t).unwrap(), fresh, "type {t:#x}, input {i}");
            }
        }
        // SINGLE for input 2, which has no output at its index, commits to zeros.
        assert_eq!(&shared.preimage(2, &[], 0, 0x43).unwrap()[4 + 32 + 32 + 36 + 1 + 8 + 4..][..32], &[0; 32]);
    }
}
