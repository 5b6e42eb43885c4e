//! Script numbers: little-endian sign-magnitude byte strings of any length, read and written as
//! @bsv/sdk's `BigNumber.fromScriptNum` / `toScriptNum` do.

use num_bigint::{BigInt, BigUint, Sign};

use super::{Fail, MAX_NUMBER_SIZE};

/// Reads a number operand. `minimal` refuses encodings with a needless last byte (version-1
/// transactions, as Spend's MINIMALDATA default); longer than [`MAX_NUMBER_SIZE`] is refused.
pub(super) fn decode(bytes: &[u8], minimal: bool) -> Result<BigInt, Fail> {
    if bytes.len() > MAX_NUMBER_SIZE {
        return Err(Fail::new(format!(
            "a number operand of {} bytes is longer than the {MAX_NUMBER_SIZE} bytes allowed",
            bytes.len()
        )));
    }
    let Some((&last, _)) = bytes.split_last() else { return Ok(BigInt::ZERO) };
    if minimal && !is_minimal(bytes) {
        return Err(Fail::new("a number operand is not minimally encoded"));
    }
    let mut magnitude = bytes.to_vec();
    *magnitude.last_mut().expect("not empty") &= 0x7f;
    let sign = if last & 0x80 != 0 { Sign::Minus } else { Sign::Plus };
    Ok(BigInt::from_biguint(sign, BigUint::from_bytes_le(&magnitude)))
}

/// Writes a number in its minimal encoding (zero is the empty string).
pub(super) fn encode(n: &BigInt) -> Vec<u8> {
    if n.sign() == Sign::NoSign {
        return Vec::new();
    }
    let mut out = n.magnitude().to_bytes_le();
    let negative = n.sign() == Sign::Minus;
    if out.last().is_some_and(|b| b & 0x80 != 0) {
        out.push(if negative { 0x80 } else { 0 });
    } else if negative {
        *out.last_mut().expect("not zero") |= 0x80;
    }
    out
}

/// A small non-negative number's encoding (sizes, depths, booleans).
pub(super) fn encode_usize(n: usize) -> Vec<u8> {
    encode(&BigInt::from(n))
}

/// Whether `bytes` has no needless last byte: the last byte carries more than the sign, or the
/// one before it needs its high bit.
pub(super) fn is_minimal(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [.., last] if last & 0x7f != 0 => true,
        [.., before, _] => before & 0x80 != 0,
        [_] => false,
    }
}

/// `bytes` re-encoded minimally with the same value (`minimallyEncode`, for OP_BIN2NUM and
/// OP_NUM2BIN); any length.
pub(super) fn minimally_encode(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(&last) = bytes.last() else { return bytes };
    if is_minimal(&bytes) {
        return bytes;
    }
    let sign = last & 0x80;
    bytes.pop();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    match bytes.last_mut() {
        None => {}
        Some(b) if *b & 0x80 != 0 => bytes.push(sign),
        Some(b) => *b |= sign,
    }
    bytes
}

/// True unless every byte is zero, the last possibly 0x80 (negative zero).
pub(super) fn cast_to_bool(bytes: &[u8]) -> bool {
    match bytes.iter().position(|b| *b != 0) {
        None => false,
        Some(i) => !(i == bytes.len() - 1 && bytes[i] == 0x80),
    }
}

/// Bytes of the magnitude (`BigNumber.byteLength`): what Spend's memory pre-check uses.
pub(super) fn byte_length(n: &BigInt) -> usize {
    (n.bits() as usize).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_minimality() {
        for v in [0i64, 1, -1, 127, 128, -128, 255, -255, 256, i64::from(i32::MAX), -(1 << 40)] {
            let n = BigInt::from(v);
            let e = encode(&n);
            assert!(is_minimal(&e), "{v}");
            assert_eq!(decode(&e, true).unwrap(), n, "{v}");
        }
        assert_eq!(encode(&BigInt::from(-1)), vec![0x81]);
        assert_eq!(encode(&BigInt::from(128)), vec![0x80, 0]);
        assert_eq!(encode(&BigInt::from(-128)), vec![0x80, 0x80]);
        assert!(decode(&[0x80], true).is_err(), "negative zero");
        assert!(decode(&[1, 0], true).is_err());
        assert_eq!(decode(&[1, 0], false).unwrap(), BigInt::from(1));
        assert_eq!(decode(&[0x80], false).unwrap(), BigInt::ZERO);
        assert!(decode(&vec![1; MAX_NUMBER_SIZE + 1], false).is_err());
    }

    #[test]
    fn minimally_encode_keeps_value_and_sign() {
        assert_eq!(minimally_encode(vec![]), Vec::<u8>::new());
        assert_eq!(minimally_encode(vec![0x80]), Vec::<u8>::new());
        assert_eq!(minimally_encode(vec![0, 0, 0]), Vec::<u8>::new());
        assert_eq!(minimally_encode(vec![1, 0, 0, 0x80]), vec![0x81]);
        assert_eq!(minimally_encode(vec![0x81, 0, 0, 0x80]), vec![0x81, 0x80]);
        assert_eq!(minimally_encode(vec![0x81, 0, 0, 0]), vec![0x81, 0]);
        assert_eq!(minimally_encode(vec![0x7f, 0x80]), vec![0xff]);
    }

    #[test]
    fn truth() {
        assert!(!cast_to_bool(&[]));
        assert!(!cast_to_bool(&[0, 0]));
        assert!(!cast_to_bool(&[0, 0x80]));
        assert!(cast_to_bool(&[0x80, 0]));
        assert!(cast_to_bool(&[0, 1]));
    }
}
