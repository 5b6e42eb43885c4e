//! A key share's encoding, collective public key and Lagrange coefficients.

use cggmp21::{
    generic_ec::{NonZero, Point, Scalar},
    key_share::AnyKeyShare,
};
use wallet_traits::{Error, ErrorKind, PublicKey, Result};

use super::{Share, E};

/// Compressed collective public key of a share.
pub(crate) fn public_key_of(share: &Share) -> PublicKey {
    PublicKey::from_slice(&share.shared_public_key().to_bytes(true)).expect("a curve point encodes to 33 bytes")
}

/// Parses a compressed point, refusing the identity and off-curve encodings.
pub(crate) fn parse_point(bytes: &[u8]) -> Result<NonZero<Point<E>>> {
    Point::<E>::from_bytes(bytes)
        .ok()
        .and_then(NonZero::from_point)
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "not a valid compressed secp256k1 point"))
}

/// Lagrange coefficient at zero of `parties[pos]` for the signer set `parties` (keygen indexes).
pub(crate) fn lagrange(share: &Share, parties: &[u16], pos: usize) -> Result<Scalar<E>> {
    let xs: Vec<NonZero<Scalar<E>>> = parties
        .iter()
        .map(|&k| {
            share.core.share_preimage(k).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "unknown party index"))
        })
        .collect::<Result<_>>()?;
    let mut num = Scalar::<E>::one();
    let mut den = Scalar::<E>::one();
    for (j, xj) in xs.iter().enumerate() {
        if j != pos {
            num *= xj;
            den *= *xj - xs[pos];
        }
    }
    Ok(num * den.invert().ok_or_else(|| Error::new(ErrorKind::InvalidInput, "repeated party index"))?)
}

/// Serializes a share for sealing.
pub(crate) fn encode_share(share: &Share) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    ciborium::into_writer(share, &mut *out).expect("a key share always serializes");
    out
}

/// Parses (and validates) an opened share.
pub(crate) fn decode_share(bytes: &[u8]) -> Result<Share> {
    ciborium::from_reader(bytes).map_err(|_| {
        Error::new(
            ErrorKind::Corrupted,
            "the opened share does not parse as a key share; restore the record from backup",
        )
    })
}
