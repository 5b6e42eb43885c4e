//! The BSV signature hash: BIP143's preimage with SIGHASH_FORKID, for ALL, NONE and SINGLE, each
//! with or without ANYONECANPAY. The digest a signature signs is `hash256(preimage)`.

use wallet_traits::{Error, ErrorKind, Result};

use crate::{encoding::write_var_bytes, hash::hash256, tx::Transaction};

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

/// The preimage that input `index` signs with `sighash_type`, spending `satoshis` locked by
/// `script_code` (the source locking script, from its last executed OP_CODESEPARATOR on).
///
/// Refused: an index out of range, and a type without [`FORKID`] (the legacy algorithm, which
/// BSV no longer accepts for new transactions). Like the node, SINGLE for an input without an
/// output at its index signs no outputs (`hashOutputs` of zeros).
pub fn preimage(
    tx: &Transaction,
    index: usize,
    script_code: &[u8],
    satoshis: u64,
    sighash_type: u32,
) -> Result<Vec<u8>> {
    let input = tx.inputs.get(index).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("input {index} does not exist; the transaction has {}", tx.inputs.len()),
        )
    })?;
    if sighash_type & FORKID == 0 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("sighash type {sighash_type:#x} lacks SIGHASH_FORKID (0x40); BSV signs with the FORKID algorithm"),
        ));
    }
    let (hash_prevouts, hash_sequence, hash_outputs) = commitments(tx, index, sighash_type);
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

/// The preimage's three commitments to the rest of the transaction: its outpoints, its
/// sequences and its outputs, each zeros where `sighash_type` leaves that part unsigned.
fn commitments(tx: &Transaction, index: usize, sighash_type: u32) -> ([u8; 32], [u8; 32], [u8; 32]) {
    let base = sighash_type & BASE_MASK;
    let anyone = sighash_type & ANYONECANPAY != 0;
    let zero = [0u8; 32];
    let hash_prevouts = if anyone {
        zero
    } else {
        let mut b = Vec::with_capacity(36 * tx.inputs.len());
        for i in &tx.inputs {
            b.extend_from_slice(&i.source_txid.0);
            b.extend_from_slice(&i.source_vout.to_le_bytes());
        }
        hash256(&b)
    };
    let hash_sequence = if anyone || base == SINGLE || base == NONE {
        zero
    } else {
        let b: Vec<u8> = tx.inputs.iter().flat_map(|i| i.sequence.to_le_bytes()).collect();
        hash256(&b)
    };
    // NONE signs no outputs, and so does SINGLE for an input without an output at its index.
    let outputs = match base {
        NONE => None,
        SINGLE => tx.outputs.get(index..=index),
        _ => Some(&tx.outputs[..]),
    };
    let hash_outputs = outputs.map_or(zero, |outputs| {
        let mut b = Vec::new();
        for o in outputs {
            b.extend_from_slice(&o.satoshis.to_le_bytes());
            write_var_bytes(&mut b, o.locking_script.as_bytes());
        }
        hash256(&b)
    });
    (hash_prevouts, hash_sequence, hash_outputs)
}

/// `hash256(preimage(..))`: the 32 bytes an ECDSA signature of input `index` signs.
pub fn digest(
    tx: &Transaction,
    index: usize,
    script_code: &[u8],
    satoshis: u64,
    sighash_type: u32,
) -> Result<[u8; 32]> {
    Ok(hash256(&preimage(tx, index, script_code, satoshis, sighash_type)?))
}

/// The digest of input `index` from what the transaction itself carries: the source output's
/// amount and locking script (Extended Format). Refused when the input has no source output.
pub fn input_digest(tx: &Transaction, index: usize, sighash_type: u32) -> Result<[u8; 32]> {
    let source = tx.inputs.get(index).and_then(|i| i.source_output.as_ref()).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("input {index} has no source output; signing needs the amount and locking script it spends"),
        )
    })?;
    digest(tx, index, source.locking_script.as_bytes(), source.satoshis, sighash_type)
}
