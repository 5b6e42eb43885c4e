//! Scripts as bytes and as chunks, with minimal pushes, and the P2PKH templates.

use std::fmt;

use wallet_traits::Result;

use crate::{encoding::Reader, hash::hash160};

/// The opcodes this crate names.
pub mod op {
    /// Pushes an empty array.
    pub const OP_0: u8 = 0x00;
    /// The next byte is the push length.
    pub const OP_PUSHDATA1: u8 = 0x4c;
    /// The next two bytes (little-endian) are the push length.
    pub const OP_PUSHDATA2: u8 = 0x4d;
    /// The next four bytes (little-endian) are the push length.
    pub const OP_PUSHDATA4: u8 = 0x4e;
    /// Pushes -1.
    pub const OP_1NEGATE: u8 = 0x4f;
    /// Pushes 1; `OP_1 + n - 1` pushes n up to 16.
    pub const OP_1: u8 = 0x51;
    /// Pushes 16.
    pub const OP_16: u8 = 0x60;
    /// Starts a conditional.
    pub const OP_IF: u8 = 0x63;
    /// Starts a negated conditional.
    pub const OP_NOTIF: u8 = 0x64;
    /// Ends a conditional.
    pub const OP_ENDIF: u8 = 0x68;
    /// Outside a conditional, ends the script: what follows is data.
    pub const OP_RETURN: u8 = 0x6a;
    /// Duplicates the top item.
    pub const OP_DUP: u8 = 0x76;
    /// Fails unless the top two items are equal.
    pub const OP_EQUALVERIFY: u8 = 0x88;
    /// Replaces the top item by its HASH160.
    pub const OP_HASH160: u8 = 0xa9;
    /// Checks a signature against a public key.
    pub const OP_CHECKSIG: u8 = 0xac;
}

use op::*;

/// One element of a script: an opcode, with the bytes it pushes if it is a push (for
/// `OP_RETURN` outside a conditional: every byte after it, as @bsv/sdk reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The opcode byte (for a direct push of 1 to 75 bytes, the length).
    pub op: u8,
    /// What the chunk pushes, or the data after an `OP_RETURN`.
    pub data: Option<Vec<u8>>,
}

/// A script, kept as the bytes it was given: a script that does not parse into chunks is still
/// a valid locking script on chain (it is unspendable), so bytes are the source of truth.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Script(Vec<u8>);

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script({})", hex::encode(&self.0))
    }
}

impl From<Vec<u8>> for Script {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Script {
    /// The script of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The script of hex `s`.
    pub fn from_hex(s: &str) -> Result<Self> {
        hex::decode(s).map(Self).map_err(|_| Reader::new(&[], "script").error("not hex"))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Its hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Its chunks; a push whose length runs past the end is refused.
    pub fn chunks(&self) -> Result<Vec<Chunk>> {
        let mut r = Reader::new(&self.0, "script");
        let mut chunks = Vec::new();
        let mut depth = 0usize;
        while !r.is_empty() {
            let op = r.u8()?;
            let len = match op {
                1..=0x4b => Some(usize::from(op)),
                OP_PUSHDATA1 => Some(usize::from(r.u8()?)),
                OP_PUSHDATA2 => Some(usize::from(r.u16_le()?)),
                OP_PUSHDATA4 => Some(usize::try_from(r.u32_le()?).map_err(|_| r.error("a push too large"))?),
                _ => None,
            };
            let data = match len {
                Some(n) => Some(r.bytes(n)?.to_vec()),
                None if op == OP_RETURN && depth == 0 => Some(r.bytes(r.remaining())?.to_vec()),
                None => None,
            };
            match op {
                OP_IF | OP_NOTIF => depth += 1,
                OP_ENDIF => depth = depth.saturating_sub(1),
                _ => {}
            }
            chunks.push(Chunk { op, data });
        }
        Ok(chunks)
    }

    /// The script of `chunks`, each written as its opcode and (for pushes) its length and data.
    pub fn from_chunks(chunks: &[Chunk]) -> Self {
        let mut out = Vec::new();
        for c in chunks {
            out.push(c.op);
            let Some(data) = &c.data else { continue };
            match c.op {
                OP_PUSHDATA1 => out.push(data.len() as u8),
                OP_PUSHDATA2 => out.extend_from_slice(&(data.len() as u16).to_le_bytes()),
                OP_PUSHDATA4 => out.extend_from_slice(&(data.len() as u32).to_le_bytes()),
                _ => {}
            }
            out.extend_from_slice(data);
        }
        Self(out)
    }

    /// Appends an opcode.
    pub fn push_op(mut self, op: u8) -> Self {
        self.0.push(op);
        self
    }

    /// Appends a push of `data` in its minimal form (BIP62): `OP_0` for nothing, `OP_1`..`OP_16`
    /// and `OP_1NEGATE` for those single bytes, a direct push up to 75 bytes, then PUSHDATA1/2/4.
    pub fn push_data(mut self, data: &[u8]) -> Self {
        match data {
            [] => self.0.push(OP_0),
            [n @ 1..=16] => self.0.push(OP_1 + n - 1),
            [0x81] => self.0.push(OP_1NEGATE),
            _ => {
                let n = data.len();
                if n <= 0x4b {
                    self.0.push(n as u8);
                } else if n <= 0xff {
                    self.0.extend_from_slice(&[OP_PUSHDATA1, n as u8]);
                } else if n <= 0xffff {
                    self.0.push(OP_PUSHDATA2);
                    self.0.extend_from_slice(&(n as u16).to_le_bytes());
                } else {
                    self.0.push(OP_PUSHDATA4);
                    self.0.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.0.extend_from_slice(data);
            }
        }
        self
    }

    /// `OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY OP_CHECKSIG`.
    pub fn p2pkh_lock(pubkey_hash: &[u8; 20]) -> Self {
        Self::default()
            .push_op(OP_DUP)
            .push_op(OP_HASH160)
            .push_data(pubkey_hash)
            .push_op(OP_EQUALVERIFY)
            .push_op(OP_CHECKSIG)
    }

    /// The P2PKH locking script of a compressed public key.
    pub fn p2pkh_lock_to(public_key: &[u8; 33]) -> Self {
        Self::p2pkh_lock(&hash160(public_key))
    }

    /// `<DER signature ‖ sighash byte> <33-byte compressed key>`.
    pub fn p2pkh_unlock(signature_with_type: &[u8], public_key: &[u8; 33]) -> Self {
        Self::default().push_data(signature_with_type).push_data(public_key)
    }

    /// The hash a P2PKH locking script locks to, if this is one (exactly the 25 template bytes).
    pub fn p2pkh_hash(&self) -> Option<[u8; 20]> {
        match self.0.as_slice() {
            [OP_DUP, OP_HASH160, 20, hash @ .., OP_EQUALVERIFY, OP_CHECKSIG] if hash.len() == 20 => {
                Some(hash.try_into().expect("20 bytes"))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_pushes() {
        let cases: [(&[u8], &str); 6] =
            [(&[], "00"), (&[5], "55"), (&[16], "60"), (&[0x81], "4f"), (&[17], "0111"), (&[0xab; 76], "4c4c")];
        for (data, prefix) in cases {
            let s = Script::default().push_data(data);
            assert!(s.to_hex().starts_with(prefix), "{data:?}: {}", s.to_hex());
        }
        assert!(Script::default().push_data(&[0; 256]).to_hex().starts_with("4d0001"));
        assert!(Script::default().push_data(&[0; 65536]).to_hex().starts_with("4e00000100"));
    }

    #[test]
    fn p2pkh_round_trips_through_chunks() {
        let hash = [7u8; 20];
        let lock = Script::p2pkh_lock(&hash);
        assert_eq!(lock.len(), 25);
        assert_eq!(lock.p2pkh_hash(), Some(hash));
        let chunks = lock.chunks().unwrap();
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks[2].data.as_deref(), Some(&hash[..]));
        assert_eq!(Script::from_chunks(&chunks), lock);
        // One byte more or less is not P2PKH.
        let mut longer = lock.as_bytes().to_vec();
        longer.push(OP_CHECKSIG);
        assert_eq!(Script::new(longer).p2pkh_hash(), None);
    }

    #[test]
    fn truncated_pushes_are_refused_and_op_return_takes_the_rest() {
        let e = Script::from_hex("4c05aabb").unwrap().chunks().unwrap_err();
        assert!(e.message().contains("needs 5 more bytes"), "{e}");
        let chunks = Script::from_hex("006a4c").unwrap().chunks().unwrap();
        assert_eq!(chunks, vec![Chunk { op: 0, data: None }, Chunk { op: OP_RETURN, data: Some(vec![0x4c]) }]);
        // Inside a conditional an OP_RETURN is an opcode like any other.
        let chunks = Script::from_hex("636a6851").unwrap().chunks().unwrap();
        assert_eq!(chunks.len(), 4);
    }
}
