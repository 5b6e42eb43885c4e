//! Transactions: raw serialization and Extended Format (BRC-30), txids.

use std::fmt;

use wallet_traits::{Error, ErrorKind, Result};

use crate::{
    encoding::{varint_len, write_var_bytes, write_varint, Reader},
    hash::hash256,
    script::Script,
};

/// A transaction id: the double SHA-256 of the raw transaction. Kept in the byte order that is
/// hashed and written into inputs; shown (hex, `Display`) reversed, as explorers and @bsv/sdk's
/// `id('hex')` show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TxId(pub [u8; 32]);

impl TxId {
    /// The txid shown as `hex` (display order, 64 characters).
    pub fn from_hex(hex: &str) -> Result<Self> {
        let mut bytes: [u8; 32] = hex::decode(hex).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "a txid is 64 hex characters").with_context("txid", hex)
        })?;
        bytes.reverse();
        Ok(Self(bytes))
    }

    /// The display-order hex.
    pub fn to_hex(&self) -> String {
        let mut b = self.0;
        b.reverse();
        hex::encode(b)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxId({self})")
    }
}

/// An output: an amount and the script that locks it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxOutput {
    /// Satoshis.
    pub satoshis: u64,
    /// Who can spend it.
    pub locking_script: Script,
}

/// An input: the output it spends and the script that unlocks it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxInput {
    /// The transaction of the output spent.
    pub source_txid: TxId,
    /// The index of the output spent in that transaction.
    pub source_vout: u32,
    /// The unlocking script (empty before signing).
    pub unlocking_script: Script,
    /// nSequence.
    pub sequence: u32,
    /// The output spent, when known: Extended Format carries it, and signing needs its amount
    /// and locking script.
    pub source_output: Option<TxOutput>,
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    /// nVersion.
    pub version: u32,
    /// Its inputs.
    pub inputs: Vec<TxInput>,
    /// Its outputs.
    pub outputs: Vec<TxOutput>,
    /// nLockTime.
    pub lock_time: u32,
}

/// The six bytes after the version that mark Extended Format (BRC-30).
const EF_MARKER: [u8; 6] = [0, 0, 0, 0, 0, 0xef];
/// The fewest bytes an input takes: outpoint, an empty script, sequence.
const MIN_INPUT_BYTES: usize = 32 + 4 + 1 + 4;
/// The fewest bytes an output takes: amount and an empty script.
const MIN_OUTPUT_BYTES: usize = 8 + 1;

impl Transaction {
    /// Parses a raw transaction or one in Extended Format (told apart by the EF marker), refusing
    /// trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "transaction");
        let tx = Self::read(&mut r)?;
        r.finish()?;
        Ok(tx)
    }

    /// [`Self::from_bytes`] of hex.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes =
            hex::decode(s.trim()).map_err(|_| Error::new(ErrorKind::InvalidInput, "a transaction must be hex"))?;
        Self::from_bytes(&bytes)
    }

    /// Reads one transaction (raw or Extended Format) from `r`, leaving what follows it.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let version = r.u32_le()?;
        let extended = r.remaining() >= 6 && r.clone().bytes(6)? == EF_MARKER;
        if extended {
            r.bytes(6)?;
        }
        let min_input = if extended { MIN_INPUT_BYTES + MIN_OUTPUT_BYTES } else { MIN_INPUT_BYTES };
        let n = r.count(min_input)?;
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            let source_txid = TxId(r.array()?);
            let source_vout = r.u32_le()?;
            let unlocking_script = Script::new(r.var_bytes()?.to_vec());
            let sequence = r.u32_le()?;
            let source_output = if extended { Some(read_output(r)?) } else { None };
            inputs.push(TxInput { source_txid, source_vout, unlocking_script, sequence, source_output });
        }
        let n = r.count(MIN_OUTPUT_BYTES)?;
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            outputs.push(read_output(r)?);
        }
        let lock_time = r.u32_le()?;
        Ok(Self { version, inputs, outputs, lock_time })
    }

    /// The raw transaction (what the txid hashes; no source outputs).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.write(false)
    }

    /// The raw transaction as hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Extended Format (BRC-30): every input followed by the amount and locking script it spends.
    /// Refused when an input's source output is unknown.
    pub fn to_ef(&self) -> Result<Vec<u8>> {
        if let Some(i) = self.inputs.iter().position(|i| i.source_output.is_none()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "input {i} has no source output; Extended Format needs every input's amount and locking script"
                ),
            ));
        }
        Ok(self.write(true))
    }

    fn write(&self, extended: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size() + if extended { 6 + 40 * self.inputs.len() } else { 0 });
        out.extend_from_slice(&self.version.to_le_bytes());
        if extended {
            out.extend_from_slice(&EF_MARKER);
        }
        write_varint(&mut out, self.inputs.len() as u64);
        for input in &self.inputs {
            out.extend_from_slice(&input.source_txid.0);
            out.extend_from_slice(&input.source_vout.to_le_bytes());
            write_var_bytes(&mut out, input.unlocking_script.as_bytes());
            out.extend_from_slice(&input.sequence.to_le_bytes());
            if extended {
                write_output(&mut out, input.source_output.as_ref().expect("checked by to_ef"));
            }
        }
        write_varint(&mut out, self.outputs.len() as u64);
        for output in &self.outputs {
            write_output(&mut out, output);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
        out
    }

    /// The size of the raw transaction in bytes.
    pub fn size(&self) -> usize {
        let inputs: usize = self.inputs.iter().map(|i| 40 + var_len(i.unlocking_script.len())).sum();
        let outputs: usize = self.outputs.iter().map(|o| 8 + var_len(o.locking_script.len())).sum();
        8 + varint_len(self.inputs.len() as u64) + inputs + varint_len(self.outputs.len() as u64) + outputs
    }

    /// The txid.
    pub fn txid(&self) -> TxId {
        TxId(hash256(&self.to_bytes()))
    }
}

/// A script of `n` bytes with its length prefix.
fn var_len(n: usize) -> usize {
    varint_len(n as u64) + n
}

fn read_output(r: &mut Reader<'_>) -> Result<TxOutput> {
    let satoshis = r.u64_le()?;
    Ok(TxOutput { satoshis, locking_script: Script::new(r.var_bytes()?.to_vec()) })
}

fn write_output(out: &mut Vec<u8>, output: &TxOutput) {
    out.extend_from_slice(&output.satoshis.to_le_bytes());
    write_var_bytes(out, output.locking_script.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxInput {
                source_txid: TxId([3; 32]),
                source_vout: 1,
                unlocking_script: Script::new(vec![0x51]),
                sequence: 0xffff_ffff,
                source_output: Some(TxOutput { satoshis: 1000, locking_script: Script::p2pkh_lock(&[9; 20]) }),
            }],
            outputs: vec![TxOutput { satoshis: 900, locking_script: Script::p2pkh_lock(&[8; 20]) }],
            lock_time: 0,
        }
    }

    #[test]
    fn raw_and_extended_format_round_trip() {
        let tx = sample();
        let raw = tx.to_bytes();
        assert_eq!(raw.len(), tx.size());
        let back = Transaction::from_bytes(&raw).unwrap();
        assert_eq!(back.inputs[0].source_output, None);
        assert_eq!(back.to_bytes(), raw);
        let ef = tx.to_ef().unwrap();
        assert_eq!(&ef[4..10], &EF_MARKER);
        let back = Transaction::from_bytes(&ef).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.txid(), tx.txid());
        let e = Transaction::from_bytes(&raw).unwrap().to_ef().unwrap_err();
        assert!(e.message().contains("input 0 has no source output"), "{e}");
    }

    #[test]
    fn the_genesis_coinbase_has_its_txid() {
        let raw = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";
        let tx = Transaction::from_hex(raw).unwrap();
        assert_eq!(tx.txid().to_hex(), "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
        assert_eq!(tx.to_hex(), raw);
    }

    #[test]
    fn truncated_and_padded_transactions_are_refused() {
        let raw = sample().to_bytes();
        for cut in [0, 3, 5, 40, raw.len() - 1] {
            let e = Transaction::from_bytes(&raw[..cut]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "cut at {cut}");
        }
        let mut padded = raw.clone();
        padded.push(0);
        assert!(Transaction::from_bytes(&padded).unwrap_err().message().contains("unexpected bytes"));
    }
}
