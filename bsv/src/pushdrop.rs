//! PushDrop tokens, as @bsv/sdk 2.1.0's `PushDrop` template writes them: data fields pushed and
//! dropped, locked with `<public key> OP_CHECKSIG` before them (the default) or after them.
//! Identity tokens on an overlay (`ls_identity`) are PushDrop outputs whose first field is a
//! certificate's JSON.
//!
//! Decoding refuses what the template never writes (a missing key or `OP_CHECKSIG`, a field that
//! is not a push, drops that do not remove exactly the fields), so a hostile script is an error,
//! never a panic.

use wallet_traits::{Error, ErrorKind, PublicKey, Result};

use crate::{
    brc42,
    script::{
        op::{OP_0, OP_1, OP_16, OP_1NEGATE, OP_CHECKSIG, OP_PUSHDATA4},
        Chunk, Script,
    },
};

/// Drops the top stack item.
pub const OP_DROP: u8 = 0x75;
/// Drops the top two stack items.
pub const OP_2DROP: u8 = 0x6d;

/// Where the locking key and `OP_CHECKSIG` sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockPosition {
    /// `<key> OP_CHECKSIG <fields> <drops>`: the template's default.
    #[default]
    Before,
    /// `<fields> <drops> <key> OP_CHECKSIG`.
    After,
}

/// A decoded PushDrop script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDrop {
    /// The key the output is locked to (compressed).
    pub locking_public_key: PublicKey,
    /// The fields in script order; when the token was signed, the signature is the last.
    pub fields: Vec<Vec<u8>>,
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("not a PushDrop script: {}", msg.into()))
}

/// The locking script of `fields` locked to `key`, each field pushed as the template pushes it
/// (minimally; a single zero byte as `OP_0`), then `OP_2DROP`s and an `OP_DROP` for an odd count.
pub fn lock(key: &PublicKey, fields: &[Vec<u8>], position: LockPosition) -> Script {
    let locking = Script::default().push_data(key.as_bytes()).push_op(OP_CHECKSIG);
    let mut data = Script::default();
    for field in fields {
        data = if field.as_slice() == [0] { data.push_op(OP_0) } else { data.push_data(field) };
    }
    for _ in 0..fields.len() / 2 {
        data = data.push_op(OP_2DROP);
    }
    if fields.len() % 2 == 1 {
        data = data.push_op(OP_DROP);
    }
    let (first, second) = match position {
        LockPosition::Before => (locking, data),
        LockPosition::After => (data, locking),
    };
    Script::new([first.into_bytes(), second.into_bytes()].concat())
}

/// Reads a PushDrop script as `PushDrop.decode` does: the locking key and the fields up to the
/// first drop. A small number pushed by opcode reads as its byte (`OP_0` as `[0]`, `OP_1`..
/// `OP_16` as 1..16, `OP_1NEGATE` as `0x81`), the inverse of the template's minimal pushes.
/// (@bsv/sdk 2.1.0 itself reads `OP_16` as an empty field, an off-by-one the template never meets
/// for the JSON and signatures of identity tokens.)
pub fn decode(script: &Script, position: LockPosition) -> Result<PushDrop> {
    let chunks = script.chunks().map_err(|e| malformed(e.message().to_string()))?;
    let (key_chunk, body) = match position {
        LockPosition::Before => match chunks.as_slice() {
            [key, Chunk { op: OP_CHECKSIG, .. }, rest @ ..] => (key, rest),
            _ => return Err(malformed("it does not start with <public key> OP_CHECKSIG")),
        },
        LockPosition::After => match chunks.as_slice() {
            [rest @ .., key, Chunk { op: OP_CHECKSIG, .. }] => (key, rest),
            _ => return Err(malformed("it does not end with <public key> OP_CHECKSIG")),
        },
    };
    let key = match (&key_chunk.data, key_chunk.op) {
        (Some(bytes), 1..=OP_PUSHDATA4) => brc42::parse_public_key(&hex::encode(bytes))
            .map_err(|_| malformed("the locking key is not a public key"))?,
        _ => return Err(malformed("the locking key is not a push")),
    };
    let first_drop = body.iter().position(|c| c.op == OP_DROP || c.op == OP_2DROP).unwrap_or(body.len());
    let (pushes, drops) = body.split_at(first_drop);
    if pushes.is_empty() {
        return Err(malformed("it carries no field"));
    }
    let fields = pushes.iter().map(field).collect::<Result<Vec<_>>>()?;
    let mut dropped = 0usize;
    for c in drops {
        dropped += match c.op {
            OP_DROP => 1,
            OP_2DROP => 2,
            _ => return Err(malformed("something other than drops follows the fields")),
        };
    }
    if dropped != fields.len() {
        return Err(malformed(format!("its drops remove {dropped} items, not its {} fields", fields.len())));
    }
    Ok(PushDrop { locking_public_key: key, fields })
}

fn field(c: &Chunk) -> Result<Vec<u8>> {
    match (c.op, &c.data) {
        (OP_0, _) => Ok(vec![0]),
        (OP_1NEGATE, _) => Ok(vec![0x81]),
        (OP_1..=OP_16, _) => Ok(vec![c.op - OP_1 + 1]),
        (1..=OP_PUSHDATA4, Some(data)) => Ok(data.clone()),
        (op, _) => Err(malformed(format!("a field is opcode {op:#04x}, not a push"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        brc42::generator()
    }

    #[test]
    fn round_trips_in_both_positions() {
        let fields: Vec<Vec<u8>> = vec![
            b"{\"type\":\"x\"}".to_vec(),
            vec![],
            vec![0],
            vec![7],
            vec![16],
            vec![0x81],
            vec![0xab; 300],
            vec![0xcd; 70_000],
        ];
        for position in [LockPosition::Before, LockPosition::After] {
            let script = lock(&key(), &fields, position);
            let decoded = decode(&script, position).unwrap();
            assert_eq!(decoded.locking_public_key, key());
            // An empty field is pushed as OP_0, which reads back as [0], as in @bsv/sdk.
            let mut expected = fields.clone();
            expected[1] = vec![0];
            assert_eq!(decoded.fields, expected);
        }
    }

    #[test]
    fn reads_what_the_sdk_template_writes() {
        // PushDrop.lock([[1,2,3], 'hi'], ...) without a signature, key = the generator:
        // <key> OP_CHECKSIG 03010203 02 6869 OP_2DROP.
        let hex = format!("21{}ac 03010203 026869 6d", key().to_hex()).replace(' ', "");
        let decoded = decode(&Script::from_hex(&hex).unwrap(), LockPosition::Before).unwrap();
        assert_eq!(decoded.fields, vec![vec![1, 2, 3], b"hi".to_vec()]);
        // An odd count ends with OP_DROP.
        let hex = format!("21{}ac03010203 75", key().to_hex()).replace(' ', "");
        assert_eq!(decode(&Script::from_hex(&hex).unwrap(), LockPosition::Before).unwrap().fields.len(), 1);
    }

    #[test]
    fn refuses_what_the_template_never_writes() {
        let k = key().to_hex();
        for (hex, why) in [
            (String::new(), "empty"),
            (format!("21{k}"), "no OP_CHECKSIG"),
            (format!("21{k}ac"), "no field"),
            (format!("21{k}ac0101"), "no drop"),
            (format!("21{k}ac01010101 6d6d"), "too many drops"),
            (format!("21{k}ac0101 75 0101"), "a push after the drops"),
            (format!("21{k}ac0101 76 75"), "OP_DUP as a field"),
            (format!("76a914{}88ac", "00".repeat(20)), "P2PKH"),
            (format!("2105{}ac0101 75", "11".repeat(32)), "not a public key"),
            (format!("21{k}ac4dff"), "truncated push"),
            ("00ac0101 75".to_string(), "OP_0 as the key"),
        ] {
            let script = Script::from_hex(&hex.replace(' ', "")).unwrap();
            assert!(decode(&script, LockPosition::Before).is_err(), "{why}");
        }
    }

    #[test]
    fn an_uncompressed_locking_key_reads_as_its_compressed_form() {
        let uncompressed = hex::decode(
            "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
             483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8",
        )
        .unwrap();
        let script = Script::default().push_data(&uncompressed).push_op(OP_CHECKSIG).push_data(b"x").push_op(OP_DROP);
        assert_eq!(decode(&script, LockPosition::Before).unwrap().locking_public_key, key());
    }
}
