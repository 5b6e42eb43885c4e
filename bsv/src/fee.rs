//! The sat-per-kilobyte fee model: `fee = ceil(size x rate / 1000)`, the size estimated before
//! signing.

use crate::{encoding::varint_len, tx::Transaction};

/// The longest P2PKH unlocking script with a low-S signature: a push of a DER signature of at
/// most 71 bytes plus the sighash byte, and a push of a 33-byte compressed key (1 + 72 + 1 + 33).
/// The size estimate uses it for inputs not yet signed.
pub const P2PKH_UNLOCKING_SCRIPT_LEN: usize = 107;

/// A fee rate in satoshis per 1000 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SatoshisPerKilobyte(pub u64);

impl SatoshisPerKilobyte {
    /// The fee of a transaction of `size` bytes, rounded up so the miner gets the last satoshi.
    /// In integers: @bsv/sdk computes `Math.ceil(size / 1000 * rate)` in floating point, which
    /// can round an exact result up by one satoshi (300 bytes at 10 sat/kB gives it 4, not 3).
    pub fn fee_for_size(&self, size: usize) -> u64 {
        (size as u64).saturating_mul(self.0).div_ceil(1000)
    }

    /// The fee of `tx` once signed: inputs with an empty unlocking script are counted as
    /// `unsigned_len` bytes (for P2PKH, [`P2PKH_UNLOCKING_SCRIPT_LEN`]).
    pub fn fee(&self, tx: &Transaction, unsigned_len: usize) -> u64 {
        self.fee_for_size(estimated_size(tx, unsigned_len))
    }
}

/// The size `tx` will have once every input with an empty unlocking script carries one of
/// `unsigned_len` bytes.
pub fn estimated_size(tx: &Transaction, unsigned_len: usize) -> usize {
    let grown: usize = tx
        .inputs
        .iter()
        .filter(|i| i.unlocking_script.is_empty())
        .map(|_| varint_len(unsigned_len as u64) + unsigned_len - 1)
        .sum();
    tx.size() + grown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Script, TxInput, TxOutput};

    #[test]
    fn fees_round_up_in_integers() {
        let rate = SatoshisPerKilobyte(10);
        assert_eq!(rate.fee_for_size(300), 3);
        assert_eq!(rate.fee_for_size(301), 4);
        assert_eq!(SatoshisPerKilobyte(1).fee_for_size(1), 1);
        assert_eq!(SatoshisPerKilobyte(0).fee_for_size(5000), 0);
    }

    #[test]
    fn unsigned_p2pkh_inputs_are_counted_at_their_longest() {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxInput::default(), TxInput::default()],
            outputs: vec![TxOutput { satoshis: 1, locking_script: Script::p2pkh_lock(&[0; 20]) }],
            lock_time: 0,
        };
        let estimate = estimated_size(&tx, P2PKH_UNLOCKING_SCRIPT_LEN);
        tx.inputs[0].unlocking_script = Script::new(vec![0; P2PKH_UNLOCKING_SCRIPT_LEN]);
        tx.inputs[1].unlocking_script = Script::new(vec![0; P2PKH_UNLOCKING_SCRIPT_LEN]);
        assert_eq!(estimate, tx.size());
        assert_eq!(estimate, 4 + 1 + 2 * (40 + 1 + 107) + 1 + 8 + 1 + 25 + 4);
    }
}
