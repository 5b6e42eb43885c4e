//! Signing and key derivation traits, with the small value types they exchange.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// A compressed SEC1 secp256k1 public key (33 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "pk_hex")] [u8; 33]);

impl PublicKey {
    /// Wraps 33 compressed bytes. Only checks the length and prefix; curve membership is checked
    /// by the code that uses the point.
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let arr: [u8; 33] = b.try_into().map_err(|_| {
            Error::new(ErrorKind::InvalidInput, "a public key is 33 bytes (compressed SEC1)")
                .with_context("length", b.len())
        })?;
        if arr[0] != 2 && arr[0] != 3 {
            return Err(Error::new(ErrorKind::InvalidInput, "a compressed public key starts with 02 or 03"));
        }
        Ok(Self(arr))
    }

    /// The 33 bytes.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

mod pk_hex {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 33], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 33], D::Error> {
        let v = hex::decode(String::deserialize(d)?).map_err(D::Error::custom)?;
        v.try_into().map_err(|_| D::Error::custom("expected 33 bytes"))
    }
}

/// An ECDSA signature (r, s), s normalized low.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaSignature {
    /// r, big-endian.
    pub r: [u8; 32],
    /// s, big-endian, at most n/2.
    pub s: [u8; 32],
}

impl EcdsaSignature {
    /// r || s.
    pub fn to_compact(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }

    /// DER encoding, as Bitcoin scripts and BRC-100 expect.
    pub fn to_der(&self) -> Vec<u8> {
        fn int(v: &[u8; 32]) -> Vec<u8> {
            let start = v.iter().position(|b| *b != 0).unwrap_or(31);
            let mut out = Vec::with_capacity(34);
            if v[start] & 0x80 != 0 {
                out.push(0);
            }
            out.extend_from_slice(&v[start..]);
            out
        }
        let (r, s) = (int(&self.r), int(&self.s));
        let mut out = Vec::with_capacity(6 + r.len() + s.len());
        out.push(0x30);
        // At most 2 * (2 + 33) = 70 bytes: always fits one length byte.
        out.push(u8::try_from(4 + r.len() + s.len()).unwrap_or(u8::MAX));
        for part in [r, s] {
            out.push(0x02);
            out.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&part);
        }
        out
    }
}

impl fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaSignature({})", hex::encode(self.to_compact()))
    }
}

/// Signs 32-byte digests with the root key or an additively tweaked child key.
#[async_trait]
pub trait Signer: fmt::Debug + Send + Sync + 'static {
    /// The root public key.
    fn public_key(&self) -> PublicKey;

    /// Signs `digest` with the root key, or with the child key `root + tweak` (public key
    /// `P + tweak*G`) when a tweak is given. The tweak is reduced modulo the group order.
    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature>;

    /// Signs SHA-256 of `data` like [`sign_digest`](Self::sign_digest). An MPC signer's cosigners
    /// hash the data themselves, so they know what they sign (a raw digest they cannot read);
    /// the default hashes it here and signs the digest.
    async fn sign_data(&self, data: &[u8], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(data).into();
        self.sign_digest(&digest, tweak).await
    }

    /// Signs `inputs` of the transaction `tx_ef` (Extended Format: every input carries the output
    /// it spends), in increasing index order, returning one signature per input. The signer
    /// computes each digest from the transaction itself (an MPC signer's cosigners recompute them
    /// too and may refuse by policy), so no party signs a digest it was merely handed. `change`
    /// names the outputs that pay the wallet itself, with the tweak of each one's key: a
    /// cosigner checks each claim and counts every other output as money leaving the wallet.
    async fn sign_transaction(
        &self,
        tx_ef: &[u8],
        inputs: &[crate::InputToSign],
        change: &[crate::ChangeClaim],
    ) -> Result<Vec<EcdsaSignature>> {
        let _ = (tx_ef, inputs, change);
        Err(Error::new(ErrorKind::Unsupported, "this signer does not sign transactions"))
    }
}

/// A Schnorr proof that `shared = root * counterparty`, in the form of @bsv/sdk's `Schnorr`:
/// `R = r*G`, `S' = r*B`, `z = r + e*root` with `e = SHA-256(A || B || S || S' || R) mod n`.
/// `Debug` hides the shared secret: it reveals the link between two parties.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LinkageProof {
    /// `S = root * B`.
    pub shared: PublicKey,
    /// `R = sum r_i * G`, the joint nonce commitment.
    pub r: PublicKey,
    /// `S' = sum r_i * B`, the nonce commitment on the counterparty's point.
    pub s_prime: PublicKey,
    /// The response `z = r + e * root`, big-endian, with `e` the challenge over `A, B, S, S', R`.
    pub z: [u8; 32],
}

impl fmt::Debug for LinkageProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkageProof").field("shared", &"<redacted>").field("r", &self.r).finish_non_exhaustive()
    }
}

/// The key-agreement half of BRC-42/43 derivation: ECDH with the root key.
///
/// The MPC implementation asks cosigners for verified partial results; a single-key
/// implementation serves tests.
#[async_trait]
pub trait KeyDeriver: fmt::Debug + Send + Sync + 'static {
    /// The root (identity) public key.
    fn identity_key(&self) -> PublicKey;

    /// `root * point`, compressed.
    async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey>;

    /// `root * counterparty` with a Schnorr proof of it (the proof is computed without ever
    /// assembling the root key).
    async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_pads_high_bit_and_strips_zeros() {
        let mut r = [0u8; 32];
        r[0] = 0x80;
        let mut s = [0u8; 32];
        s[31] = 1;
        let der = EcdsaSignature { r, s }.to_der();
        assert_eq!(der[0], 0x30);
        assert_eq!(der[1] as usize, der.len() - 2);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 1]);
    }

    #[test]
    fn public_key_rejects_bad_length() {
        assert_eq!(PublicKey::from_slice(&[2; 32]).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
