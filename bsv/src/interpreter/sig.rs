//! Signature and public-key checks of OP_CHECKSIG and OP_CHECKMULTISIG, as Spend makes them
//! without verify flags: strict DER (always), a defined hash type, low S for version-1
//! transactions, and public keys that are 33-byte compressed or 65-byte uncompressed points.

use k256::ecdsa::{signature::hazmat::PrehashVerifier, Signature, VerifyingKey};

use super::Fail;
use crate::sighash::FORKID;

/// The hash-type bit that selects the original (pre-fork) digest after Chronicle.
const CHRONICLE: u8 = 0x20;
/// n / 2: the largest S a low-S signature may have.
const HALF_ORDER: [u8; 32] = hex32("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
/// The field prime p.
const FIELD_PRIME: [u8; 32] = hex32("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");

const fn hex32(s: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        if c <= b'9' {
            c - b'0'
        } else {
            c - b'a' + 10
        }
    }
    let s = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 64 {
        out[i / 2] = (digit(s[i]) << 4) | digit(s[i + 1]);
        i += 2;
    }
    out
}

/// A signature as a checksig operand carries it, parsed: r and s (big-endian, leading zeros
/// stripped) and the hash-type byte.
#[derive(Debug)]
pub(super) struct TxSignature<'a> {
    r: &'a [u8],
    s: &'a [u8],
    pub(super) scope: u8,
}

/// Checks the encoding of a signature operand (empty passes: it is a signature that fails) and
/// parses it. Refused: anything but strict DER followed by a hash-type byte, an undefined base
/// type, the Chronicle bit (before Chronicle, version 1), and for version 1 a high S.
pub(super) fn check_signature(buf: &[u8], relaxed: bool) -> Result<Option<TxSignature<'_>>, Fail> {
    if buf.is_empty() {
        return Ok(None);
    }
    let invalid = || Fail::new("the signature format is invalid (strict DER and a hash-type byte)");
    let sig = parse_strict_der(buf).ok_or_else(invalid)?;
    if !(1..=3).contains(&(sig.scope & 0x1f)) {
        return Err(Fail::new(format!("the signature hash type {:#04x} is invalid", sig.scope)));
    }
    if sig.scope & CHRONICLE != 0 && !relaxed {
        return Err(Fail::new(format!(
            "the signature hash type {:#04x} is invalid before Chronicle (transaction version 1 or lower)",
            sig.scope
        )));
    }
    if !relaxed && !sig.has_low_s() {
        return Err(Fail::new("the signature must have a low S value (transaction version 1 or lower)"));
    }
    Ok(Some(sig))
}

/// The strict DER check of `isChecksigFormatHelper` and the parse of `Signature.fromDER`.
fn parse_strict_der(buf: &[u8]) -> Option<TxSignature<'_>> {
    let len = buf.len();
    if !(9..=73).contains(&len) || buf[0] != 0x30 || usize::from(buf[1]) != len - 3 || buf[2] != 0x02 {
        return None;
    }
    let r_len = usize::from(buf[3]);
    if r_len == 0 || 5 + r_len >= len {
        return None;
    }
    let s_len = usize::from(buf[5 + r_len]);
    if buf[4 + r_len] != 0x02 || s_len == 0 || r_len + s_len + 7 != len {
        return None;
    }
    let r = integer(&buf[4..4 + r_len])?;
    let s = integer(&buf[6 + r_len..6 + r_len + s_len])?;
    Some(TxSignature { r, s, scope: buf[len - 1] })
}

/// A DER integer's magnitude: refused when negative, padded with a needless zero, or a lone
/// zero byte (which `Signature.fromDER` refuses).
fn integer(bytes: &[u8]) -> Option<&[u8]> {
    match bytes {
        [b, ..] if b & 0x80 != 0 => None,
        [0] => None,
        [0, next, ..] if next & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(bytes),
    }
}

impl TxSignature<'_> {
    /// 1 <= S <= n/2.
    fn has_low_s(&self) -> bool {
        to_32(self.s).is_some_and(|s| s != [0; 32] && s <= HALF_ORDER)
    }

    /// Whether the digest algorithm is the FORKID one (BIP143 with SIGHASH_FORKID), the only one
    /// this interpreter computes.
    pub(super) fn is_forkid(&self) -> bool {
        self.scope & FORKID as u8 != 0 && self.scope & CHRONICLE == 0
    }

    /// Verifies against `digest`. A high S is accepted (normalized first, since k256 refuses
    /// high S), as Spend's ECDSA accepts it where its low-S rule does not apply (version > 1).
    pub(super) fn verify(&self, key: &VerifyingKey, digest: &[u8; 32]) -> bool {
        let (Some(r), Some(s)) = (to_32(self.r), to_32(self.s)) else { return false };
        let Ok(sig) = Signature::from_scalars(r, s) else { return false };
        let sig = sig.normalize_s().unwrap_or(sig);
        key.verify_prehash(digest, &sig).is_ok()
    }
}

/// A magnitude of at most 32 bytes, left-padded to 32.
fn to_32(bytes: &[u8]) -> Option<[u8; 32]> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let mut out = [0u8; 32];
    out.get_mut(32usize.checked_sub(bytes.len())?..)?.copy_from_slice(bytes);
    Some(out)
}

/// Checks a public-key operand and parses it: 33 bytes starting 02/03 or 65 starting 04, a point
/// on the curve. Coordinates of p or more are taken modulo p, as @bsv/sdk reads them.
pub(super) fn check_public_key(buf: &[u8]) -> Result<VerifyingKey, Fail> {
    let why = match (buf.first(), buf.len()) {
        (None, _) => "the public key is empty",
        (_, n) if n < 33 => "the public key is too short, it must be at least 33 bytes",
        (Some(0x04), n) if n != 65 => "the non-compressed public key must be 65 bytes",
        (Some(0x02 | 0x03), n) if n != 33 => "the compressed public key must be 33 bytes",
        (Some(0x02..=0x04), _) => return parse_key(buf).ok_or_else(|| Fail::new("the public key is not a point")),
        _ => "the public key is in an unknown format",
    };
    Err(Fail::new(why))
}

fn parse_key(buf: &[u8]) -> Option<VerifyingKey> {
    let mut key = buf.to_vec();
    for coordinate in key[1..].chunks_mut(32) {
        let c: &mut [u8; 32] = coordinate.try_into().ok()?;
        reduce_mod_p(c);
    }
    VerifyingKey::from_sec1_bytes(&key).ok()
}

/// x - p when x >= p (x < 2^256 < 2p, so once is enough).
fn reduce_mod_p(x: &mut [u8; 32]) {
    if *x < FIELD_PRIME {
        return;
    }
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(x[i]) - i16::from(FIELD_PRIME[i]) - borrow;
        borrow = i16::from(d < 0);
        x[i] = (d + 256 * borrow) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn der(r: &[u8], s: &[u8], scope: u8) -> Vec<u8> {
        let mut out = vec![0x30, (r.len() + s.len() + 4) as u8, 2, r.len() as u8];
        out.extend_from_slice(r);
        out.extend_from_slice(&[2, s.len() as u8]);
        out.extend_from_slice(s);
        out.push(scope);
        out
    }

    #[test]
    fn strict_der_and_hash_types() {
        assert!(check_signature(&[], false).unwrap().is_none());
        assert!(check_signature(&der(&[1], &[1], 0x41), false).is_ok());
        assert!(check_signature(&der(&[0], &[1], 0x41), false).is_err(), "a lone zero r");
        assert!(check_signature(&der(&[0, 1], &[1], 0x41), false).is_err(), "needless padding");
        assert!(check_signature(&der(&[0x80], &[1], 0x41), false).is_err(), "negative r");
        assert!(check_signature(&der(&[0, 0x80], &[1], 0x41), false).is_ok());
        assert!(check_signature(&der(&[1], &[1], 0x44), false).is_err(), "undefined base type");
        assert!(check_signature(&der(&[1], &[1], 0x61), false).is_err(), "Chronicle bit in version 1");
        assert!(check_signature(&der(&[1], &[1], 0x61), true).is_ok());
        let high = [0xff; 32];
        let mut high_s = vec![0];
        high_s.extend_from_slice(&high);
        assert!(check_signature(&der(&[1], &high_s, 0x41), false).is_err(), "high S in version 1");
        assert!(check_signature(&der(&[1], &high_s, 0x41), true).is_ok());
    }

    #[test]
    fn high_s_verifies_and_keys_reduce_mod_p() {
        let key = SigningKey::from_slice(&[7; 32]).unwrap();
        let digest = [9u8; 32];
        let (sig, _) = key.sign_prehash_recoverable(&digest).unwrap();
        let (r, s) = (sig.r().to_bytes(), sig.s().to_bytes());
        let neg_s = (-*sig.s()).to_bytes();
        let vk = check_public_key(&key.verifying_key().to_sec1_bytes()).unwrap();
        for s in [s, neg_s] {
            let s_der: Vec<u8> = if s[0] & 0x80 != 0 { [&[0][..], &s].concat() } else { s.to_vec() };
            let r_der: Vec<u8> = if r[0] & 0x80 != 0 { [&[0][..], &r].concat() } else { r.to_vec() };
            let buf = der(&r_der, &s_der, 0x41);
            let parsed = check_signature(&buf, true).unwrap().unwrap();
            assert!(parsed.verify(&vk, &digest));
            assert!(!parsed.verify(&vk, &[8; 32]));
        }
        let mut x = FIELD_PRIME;
        x[31] += 1;
        reduce_mod_p(&mut x);
        assert_eq!(x, hex32(&format!("{:064x}", 1)));
        assert!(check_public_key(&[2; 32]).is_err());
        assert!(check_public_key(&[6; 65]).is_err());
    }
}
