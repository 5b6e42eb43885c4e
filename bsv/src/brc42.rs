//! BRC-42/43 key derivation, byte for byte as @bsv/sdk 2.1.0 (its `KeyDeriver`).
//!
//! - Invoice number `"{level}-{protocol}-{keyID}"`, validated with the ts-sdk's rules and messages.
//! - The shared secret with a counterparty is `S = root * C` (distributed ECDH in the MPC wallet),
//!   and the tweak is `h = HMAC-SHA256(key = compressed(S), msg = invoice)`.
//! - Our child key is `root + h` (public `P + h*G`); the counterparty's is `C + h*G`.
//! - The symmetric key is the x-coordinate of `(root + h) * (C + h*G) = S + h*(C + P) + h^2*G`,
//!   so encryption and HMACs need only `S`: one distributed ECDH, then local arithmetic.

use aes_gcm::{
    aead::{generic_array::typenum::U32, Aead, KeyInit, Payload},
    aes::Aes256,
    AesGcm,
};
use hmac::{Hmac, Mac};
use k256::{
    elliptic_curve::{ops::Reduce, sec1::ToEncodedPoint},
    ProjectivePoint, Scalar, U256,
};
use sha2::Sha256;
use wallet_traits::{Error, ErrorKind, PublicKey, Result};
use zeroize::Zeroizing;

/// A BRC-43 protocol: security level (0, 1, 2) and name.
pub type WalletProtocol = (i64, String);

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.to_string())
}

/// JavaScript's `String.length`: UTF-16 code units, which is what the ts-sdk limits count.
fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The BRC-43 invoice number, with the ts-sdk's validation rules and messages.
pub fn invoice_number(security_level: i64, protocol_name: &str, key_id: &str) -> Result<String> {
    if !(0..=2).contains(&security_level) {
        return Err(invalid("Protocol security level must be 0, 1, or 2"));
    }
    let lowered = protocol_name.to_lowercase();
    // JS trim() also drops the byte-order mark, which Rust's whitespace set does not include.
    let name = lowered.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if js_len(key_id) > 800 {
        return Err(invalid("Key IDs must be 800 characters or less"));
    }
    if js_len(key_id) < 1 {
        return Err(invalid("Key IDs must be 1 character or more"));
    }
    if js_len(name) > 400 {
        if name.starts_with("specific linkage revelation ") {
            if js_len(name) > 430 {
                return Err(invalid("Specific linkage revelation protocol names must be 430 characters or less"));
            }
        } else {
            return Err(invalid("Protocol names must be 400 characters or less"));
        }
    }
    if js_len(name) < 5 {
        return Err(invalid("Protocol names must be 5 characters or more"));
    }
    if name.contains("  ") {
        return Err(invalid("Protocol names cannot contain multiple consecutive spaces (\"  \")"));
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ' ') {
        return Err(invalid("Protocol names can only contain letters, numbers and spaces"));
    }
    if name.ends_with(" protocol") {
        return Err(invalid("No need to end your protocol name with \" protocol\""));
    }
    Ok(format!("{security_level}-{name}-{key_id}"))
}

/// Who the other side of a derivation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counterparty {
    /// Our own identity key.
    Me,
    /// Everyone: the public key of private key 1 (the generator).
    Anyone,
    /// Another party's public key.
    Other(PublicKey),
}

impl Counterparty {
    /// Parses `self`, `anyone` or a public key in hex (compressed or uncompressed), with the
    /// ts-sdk's messages for bad keys.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "self" => Ok(Counterparty::Me),
            "anyone" => Ok(Counterparty::Anyone),
            hex_key => Ok(Counterparty::Other(parse_public_key(hex_key)?)),
        }
    }

    /// The counterparty's public key, given ours.
    pub fn public_key(&self, identity: &PublicKey) -> PublicKey {
        match self {
            Counterparty::Me => *identity,
            Counterparty::Anyone => generator(),
            Counterparty::Other(k) => *k,
        }
    }
}

/// The compressed generator, the public key of private key 1 ("anyone").
pub fn generator() -> PublicKey {
    PublicKey::from_slice(ProjectivePoint::GENERATOR.to_affine().to_encoded_point(true).as_bytes())
        .expect("the generator encodes to 33 bytes")
}

/// Parses a hex public key as the ts-sdk's `PublicKey.fromString` does.
pub fn parse_public_key(s: &str) -> Result<PublicKey> {
    let bytes = hex::decode(s).map_err(|_| invalid("Unknown point format"))?;
    let format_ok = match bytes.first() {
        Some(2 | 3) => bytes.len() == 33,
        Some(4 | 6 | 7) => bytes.len() == 65,
        _ => false,
    };
    if !format_ok {
        return Err(invalid("Unknown point format"));
    }
    let point = k256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| invalid("Invalid point"))?;
    PublicKey::from_slice(point.to_encoded_point(true).as_bytes())
}

/// The curve point of a public key.
pub fn point(pk: &PublicKey) -> Result<ProjectivePoint> {
    Ok(k256::PublicKey::from_sec1_bytes(pk.as_bytes()).map_err(|_| invalid("Invalid point"))?.to_projective())
}

/// The compressed public key of a curve point; the point at infinity is refused.
pub fn public_key(p: &ProjectivePoint) -> Result<PublicKey> {
    let k = k256::PublicKey::from_affine(p.to_affine())
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "the derived key is the point at infinity"))?;
    PublicKey::from_slice(k.to_encoded_point(true).as_bytes())
}

/// `h = HMAC-SHA256(key = compressed(S), msg = invoice)`, big-endian.
pub fn tweak(shared_secret: &PublicKey, invoice: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(shared_secret.as_bytes()).expect("any key length");
    mac.update(invoice.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A 32-byte big-endian value as a scalar, reduced modulo the group order.
pub fn scalar(h: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(&(*h).into())
}

/// `base + h*G`: the counterparty's child key (base = C) or ours (base = P).
pub fn child_public_key(base: &PublicKey, h: &[u8; 32]) -> Result<PublicKey> {
    public_key(&(point(base)? + ProjectivePoint::GENERATOR * scalar(h)))
}

/// The symmetric key bytes from `S`, `h`, our identity `P` and the counterparty `C`: the
/// x-coordinate of `S + h*(C + P) + h^2*G` as minimal big-endian bytes (31 when x starts with 0),
/// which is what the ts-sdk's HMACs use; encryption pads it to 32.
pub fn symmetric_key(
    shared_secret: &PublicKey,
    h: &[u8; 32],
    identity: &PublicKey,
    counterparty: &PublicKey,
) -> Result<Zeroizing<Vec<u8>>> {
    let h = scalar(h);
    let p =
        point(shared_secret)? + (point(counterparty)? + point(identity)?) * h + ProjectivePoint::GENERATOR * (h * h);
    let affine = p.to_affine();
    let encoded = affine.to_encoded_point(false);
    let x = encoded.x().ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the shared point is at infinity"))?;
    let start = x.iter().position(|b| *b != 0).unwrap_or(x.len());
    Ok(Zeroizing::new(x[start..].to_vec()))
}

type Aes256Gcm32 = AesGcm<Aes256, U32>;

fn aes_key(key: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    if key.len() > 32 {
        return Err(invalid("a symmetric key is at most 32 bytes"));
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k[32 - key.len()..].copy_from_slice(key);
    Ok(k)
}

/// AES-256-GCM with a 32-byte random IV: `IV || ciphertext || tag`, as the ts-sdk's SymmetricKey.
pub fn encrypt(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut iv = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut iv);
    encrypt_with_iv(key, &iv, plaintext)
}

fn encrypt_with_iv(key: &[u8], iv: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>> {
    let k = aes_key(key)?;
    let ct = Aes256Gcm32::new(k.as_ref().into())
        .encrypt(iv.into(), Payload { msg: plaintext, aad: &[] })
        .map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))?;
    let mut out = Vec::with_capacity(32 + ct.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`encrypt`] produced; the ts-sdk's messages on failure.
pub fn decrypt(key: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() < 32 + 16 {
        return Err(invalid("Ciphertext too short"));
    }
    let k = aes_key(key)?;
    let (iv, rest) = ciphertext.split_at(32);
    Aes256Gcm32::new(k.as_ref().into())
        .decrypt(iv.into(), Payload { msg: rest, aad: &[] })
        .map(Zeroizing::new)
        .map_err(|_| invalid("Decryption failed!"))
}

/// HMAC-SHA256 under a symmetric key (its minimal bytes, as the ts-sdk).
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is the HMAC-SHA256 of `data` under `key`, compared in constant time.
pub fn verify_hmac(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoice_rules_and_messages() {
        assert_eq!(invoice_number(2, "  Hello World ", "1").unwrap(), "2-hello world-1");
        let msg = |l, p: &str, k: &str| invoice_number(l, p, k).unwrap_err().message().to_string();
        assert_eq!(msg(3, "hello world", "1"), "Protocol security level must be 0, 1, or 2");
        assert_eq!(msg(-1, "hello world", "1"), "Protocol security level must be 0, 1, or 2");
        assert_eq!(msg(0, "abcd", "1"), "Protocol names must be 5 characters or more");
        assert_eq!(msg(0, &"a".repeat(401), "1"), "Protocol names must be 400 characters or less");
        assert_eq!(msg(0, "hello  world", "1"), "Protocol names cannot contain multiple consecutive spaces (\"  \")");
        assert_eq!(msg(0, "hello-world", "1"), "Protocol names can only contain letters, numbers and spaces");
        assert_eq!(msg(0, "hello protocol", "1"), "No need to end your protocol name with \" protocol\"");
        assert_eq!(msg(0, "hello world", ""), "Key IDs must be 1 character or more");
        assert_eq!(msg(0, "hello world", &"k".repeat(801)), "Key IDs must be 800 characters or less");
        // Lengths count UTF-16 units, like JavaScript: 400 emoji are 800 units.
        assert!(invoice_number(0, "hello world", &"😀".repeat(400)).is_ok());
        assert!(invoice_number(0, "hello world", &"😀".repeat(401)).is_err());
        let long = format!("specific linkage revelation 2 {}", "a".repeat(380));
        assert!(invoice_number(2, &long, "1").is_ok());
    }

    #[test]
    fn counterparty_parsing() {
        assert_eq!(Counterparty::parse("self").unwrap(), Counterparty::Me);
        assert_eq!(Counterparty::parse("anyone").unwrap().public_key(&generator()), generator());
        assert_eq!(Counterparty::parse("02zz").unwrap_err().message(), "Unknown point format");
        assert_eq!(
            Counterparty::parse(&format!("05{}", "11".repeat(32))).unwrap_err().message(),
            "Unknown point format"
        );
    }

    #[test]
    fn aes_gcm_round_trip_and_tamper() {
        let key = [7u8; 31];
        let ct = encrypt(&key, b"hello").unwrap();
        assert_eq!(ct.len(), 32 + 5 + 16);
        assert_eq!(&decrypt(&key, &ct).unwrap()[..], b"hello");
        let mut bad = ct.clone();
        bad[40] ^= 1;
        assert_eq!(decrypt(&key, &bad).unwrap_err().message(), "Decryption failed!");
        assert_eq!(decrypt(&key, &ct[..40]).unwrap_err().message(), "Ciphertext too short");
    }
}
