//! ECDSA signatures as scripts carry them: DER, followed by the sighash byte.

use wallet_traits::{EcdsaSignature, PublicKey};

/// The DER encoding of `sig` (whose S is low, as [`EcdsaSignature`] keeps it) followed by the
/// low byte of `sighash_type`: the signature push of an unlocking script.
pub fn checksig_format(sig: &EcdsaSignature, sighash_type: u32) -> Vec<u8> {
    let mut out = sig.to_der();
    out.push(sighash_type as u8);
    out
}

/// Verifies a DER ECDSA signature over a 32-byte digest; high-S signatures are accepted, as the
/// ts-sdk's verifier does.
pub fn verify_der(key: &PublicKey, digest: &[u8; 32], der: &[u8]) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()) else { return false };
    let Ok(sig) = k256::ecdsa::Signature::from_der(der) else { return false };
    let sig = sig.normalize_s().unwrap_or(sig);
    vk.verify_prehash(digest, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_then_the_type_byte() {
        let sig = EcdsaSignature { r: [0x80; 32], s: [1; 32] };
        let bytes = checksig_format(&sig, 0x41);
        assert_eq!(bytes.last(), Some(&0x41));
        // r has its high bit set, so DER pads it with a zero byte.
        assert_eq!(&bytes[..5], &[0x30, 0x45, 0x02, 0x21, 0x00]);
        assert_eq!(bytes[..bytes.len() - 1], sig.to_der()[..]);
    }
}
