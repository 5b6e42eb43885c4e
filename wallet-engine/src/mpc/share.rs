//! A key share: which protocol made it, its encoding, collective public key and Lagrange
//! coefficients.

use std::fmt;

use cggmp24::{
    generic_ec::{NonZero, Point, Scalar},
    key_share::IncompleteKeyShare,
};
use wallet_traits::{Error, ErrorKind, ExecutionId, KeyId, PartyIndex, PublicKey, Result};

use super::{Core, Share21, Share24, E};
use crate::at_rest::seal::{NextShare, OpenedShare, RecordKeys, RecordSalt, Sealer, ShareContents};

/// The threshold-ECDSA protocol (and exact release) a share was made with. Sealed records name
/// it in their associated data (docs/ARCHITECTURE.md, "Protocols").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// cggmp21 0.6.3: wallets made before cggmp24. Its maintainers recommend upgrading
    /// (`mpc-wallet migrate`).
    Cggmp21,
    /// cggmp24 0.7.0-alpha.3: every new key.
    Cggmp24,
}

impl Protocol {
    /// The protocol of new keys.
    pub const CURRENT: Protocol = Protocol::Cggmp24;

    /// The label records carry, `name/version`.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Cggmp21 => "cggmp21/0.6.3",
            Protocol::Cggmp24 => "cggmp24/0.7.0-alpha.3",
        }
    }

    /// The protocol a record's label names; a label this release does not know is
    /// `Unsupported` (a newer release made the share).
    pub fn from_label(label: &str) -> Result<Self> {
        [Protocol::Cggmp21, Protocol::Cggmp24].into_iter().find(|p| p.label() == label).ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "the share was made with a protocol this release does not know; upgrade mpc-wallet",
            )
            .with_context("protocol", label.escape_default())
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A complete key share of either protocol.
#[derive(Clone)]
pub(crate) enum Share {
    /// Made before cggmp24; signs with cggmp21 until migrated.
    Cggmp21(Box<Share21>),
    /// cggmp24.
    Cggmp24(Box<Share24>),
}

impl Share {
    pub(crate) fn protocol(&self) -> Protocol {
        match self {
            Share::Cggmp21(_) => Protocol::Cggmp21,
            Share::Cggmp24(_) => Protocol::Cggmp24,
        }
    }

    /// The key part, the same in both protocols.
    pub(crate) fn core(&self) -> &Core {
        match self {
            Share::Cggmp21(s) => &s.core,
            Share::Cggmp24(s) => &s.core,
        }
    }

    /// This share's party (keygen) index.
    pub(crate) fn index(&self) -> u16 {
        self.core().i
    }

    /// Signing threshold t.
    pub(crate) fn min_signers(&self) -> u16 {
        let core = self.core();
        core.vss_setup
            .as_ref()
            .map_or_else(|| u16::try_from(core.public_shares.len()).unwrap_or(u16::MAX), |v| v.min_signers)
    }
}

/// Compressed collective public key of a share.
pub(crate) fn public_key_of(share: &Share) -> PublicKey {
    PublicKey::from_slice(&share.core().key_info.shared_public_key.to_bytes(true))
        .expect("a curve point encodes to 33 bytes")
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
            share.core().share_preimage(k).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "unknown party index"))
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

/// Serializes a share for sealing; the sealed record names its protocol.
pub(crate) fn encode_share(share: &Share) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    match share {
        Share::Cggmp21(s) => ciborium::into_writer(&**s, &mut *out),
        Share::Cggmp24(s) => ciborium::into_writer(&**s, &mut *out),
    }
    .expect("a key share always serializes");
    out
}

/// Parses (and validates) an opened share of `protocol`.
pub(crate) fn decode_share(protocol: Protocol, bytes: &[u8]) -> Result<Share> {
    let corrupt = |_| {
        Error::new(
            ErrorKind::Corrupted,
            "the opened share does not parse as a key share of its protocol; restore the record from backup",
        )
        .with_context("protocol", protocol)
    };
    Ok(match protocol {
        Protocol::Cggmp21 => Share::Cggmp21(Box::new(ciborium::from_reader(bytes).map_err(corrupt)?)),
        Protocol::Cggmp24 => Share::Cggmp24(Box::new(ciborium::from_reader(bytes).map_err(corrupt)?)),
    })
}

/// The group record a further key's record refers to: the key index whose aux info completes
/// it, and that record's salt, which the further key's record is sealed with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupRecord {
    pub(crate) index: u32,
    pub(crate) salt: RecordSalt,
}

/// Seals `share` of `key`, with the successor a migration staged beside it, if any, and returns
/// the keys of the record's derivation cache too. A further key's record (`group` given) keeps
/// only the key part of its share, not the group's aux info.
pub(crate) fn seal_record_with_cache_keys(
    sealer: &Sealer,
    key: &KeyId,
    share: &Share,
    next: Option<(ExecutionId, &Share)>,
    group: Option<GroupRecord>,
) -> Result<(Vec<u8>, RecordKeys)> {
    let pk = public_key_of(share);
    let bytes = match group {
        None => encode_share(share),
        Some(_) if next.is_some() || share.protocol() != Protocol::Cggmp24 => {
            return Err(Error::new(ErrorKind::Internal, "only a cggmp24 share with nothing staged refers to its group"))
        }
        Some(_) => {
            let mut out = zeroize::Zeroizing::new(Vec::new());
            ciborium::into_writer(share.core(), &mut *out).expect("a key share always serializes");
            out
        }
    };
    let next = next.map(|(eid, s)| (eid, s.protocol(), encode_share(s)));
    let contents = ShareContents {
        protocol: share.protocol().label(),
        share: &bytes,
        next: next.as_ref().map(|(eid, p, b)| NextShare { execution_id: *eid, protocol: p.label(), share: b }),
        aux_from: group.map(|g| g.index),
        keyed_like: group.map(|g| g.salt),
    };
    sealer.seal_share_with_cache_keys(key, share.index(), pk.as_bytes(), contents)
}

/// The key part a further key's record holds.
pub(crate) fn decode_key_part(bytes: &[u8]) -> Result<IncompleteKeyShare<E>> {
    ciborium::from_reader(bytes).map_err(|_| {
        Error::new(
            ErrorKind::Corrupted,
            "the opened record does not parse as a further key's key share; restore the record from backup",
        )
    })
}

/// The shares of an opened record.
pub(crate) struct RecordShares {
    /// The share in force.
    pub(crate) share: Share,
    /// The successor a migration staged, and its run.
    pub(crate) next: Option<(ExecutionId, Share)>,
}

/// Parses an opened record's shares and checks each belongs to `party` and to the record's
/// collective key. A further key's record is completed with `group`, its group's share in force
/// (the record's labels say which key that is).
pub(crate) fn decode_record(
    opened: &OpenedShare,
    party: PartyIndex,
    public_key: &[u8],
    group: Option<&Share>,
) -> Result<RecordShares> {
    let check = |share: Share| {
        if share.index() != party || public_key_of(&share).as_bytes()[..] != public_key[..] {
            return Err(Error::new(ErrorKind::Corrupted, "the opened share does not match its record's metadata"));
        }
        Ok(share)
    };
    let protocol = Protocol::from_label(&opened.labels.protocol)?;
    if let Some(index) = opened.labels.aux_from {
        let group = group.ok_or_else(|| {
            Error::new(ErrorKind::Internal, "a further key's record opened without its group's share")
                .with_context("group_key_index", index)
        })?;
        if protocol != Protocol::Cggmp24 || opened.next.is_some() {
            return Err(Error::new(
                ErrorKind::Corrupted,
                "a further key's record names another protocol or a migration",
            ));
        }
        let share = check(super::with_group_aux(decode_key_part(&opened.share)?, group)?)?;
        return Ok(RecordShares { share, next: None });
    }
    let share = check(decode_share(protocol, &opened.share)?)?;
    let next = match (&opened.labels.next, &opened.next) {
        (Some((eid, label)), Some(bytes)) => Some((*eid, check(decode_share(Protocol::from_label(label)?, bytes)?)?)),
        _ => None,
    };
    Ok(RecordShares { share, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_unknown_ones_are_unsupported() {
        for p in [Protocol::Cggmp21, Protocol::Cggmp24] {
            assert_eq!(Protocol::from_label(p.label()).unwrap(), p);
        }
        let e = Protocol::from_label("cggmp27/1.0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().contains("upgrade"));
    }

    #[test]
    fn the_big_integer_backend_is_gmp() {
        // Any default feature of cggmp24, paillier-zk or fast-paillier anywhere in the tree
        // silently switches to the pure-Rust backend, which signs 1.6x slower.
        let backend = std::any::type_name::<cggmp24::backend::Integer>();
        assert!(backend.contains("::rug::"), "cggmp24 runs on {backend}, not GMP (rug)");
    }
}
