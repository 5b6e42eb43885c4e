//! Non-interactive distributed ECDH: each party's `x_i * Q` with a DLEQ proof that it used the
//! secret behind its public share.

use cggmp24::generic_ec::{NonZero, Point, SecretScalar};
use rand::rngs::OsRng;
use wallet_traits::{Error, ErrorKind, ExecutionId, Result};

use super::{Share, D, E};

type DleqProof = generic_ec_zkp::dlog_eq::non_interactive::Proof<E>;

/// This party's `x_i * Q` and a DLEQ proof that it used the secret behind its public share.
pub(crate) fn ecdh_partial(share: &Share, q: &NonZero<Point<E>>, context: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    use generic_ec_zkp::dlog_eq::non_interactive;
    let x: &SecretScalar<E> = share.core().x.as_ref();
    let data = non_interactive::Data::from_secret_key(x, q.into_inner());
    let proof: DleqProof = non_interactive::prove::<E, D>(&mut OsRng, &udigest::Bytes(context), x, data);
    let mut proof_bytes = Vec::new();
    ciborium::into_writer(&proof, &mut proof_bytes)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("encode proof: {e}")))?;
    Ok((data.prod2.to_bytes(true).to_vec(), proof_bytes))
}

/// Checks party `k`'s partial against its public share; returns `Z_k` if the proof holds.
pub(crate) fn verify_ecdh_partial(
    share: &Share,
    k: u16,
    q: &NonZero<Point<E>>,
    context: &[u8],
    point: &[u8],
    proof: &[u8],
) -> Option<Point<E>> {
    use generic_ec_zkp::dlog_eq::non_interactive;
    let z = Point::<E>::from_bytes(point).ok()?;
    let proof: DleqProof = ciborium::from_reader(proof).ok()?;
    let x_k = share.core().key_info.public_shares.get(usize::from(k))?;
    let data = non_interactive::Data {
        gen1: Point::generator().into(),
        prod1: x_k.into_inner(),
        gen2: q.into_inner(),
        prod2: z,
    };
    non_interactive::verify::<E, D>(&udigest::Bytes(context), data, proof).ok()?;
    Some(z)
}

/// What a DLEQ proof of an ECDH partial is bound to: the key, the request id and the point.
pub(crate) fn ecdh_context(key: &wallet_traits::KeyId, eid: &ExecutionId, point: &[u8]) -> Vec<u8> {
    let mut c = b"mpc-wallet/ecdh/v1".to_vec();
    c.extend_from_slice(key.wallet.as_str().as_bytes());
    c.push(0);
    c.extend_from_slice(&key.index.to_be_bytes());
    c.extend_from_slice(eid.as_bytes());
    c.extend_from_slice(point);
    c
}
