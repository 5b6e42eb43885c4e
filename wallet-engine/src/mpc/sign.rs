//! Threshold ECDSA signing, the additive tweak of derived keys, and verification.

use std::sync::Arc;

use cggmp24::generic_ec::{NonZero, Point, Scalar, SecretScalar};
use rand::rngs::OsRng;
use round_based::MpcParty;
use wallet_traits::{EcdsaSignature, Error, ErrorKind, PublicKey, Result, SessionParams, SessionRequest};

use super::{abort, io::PartyIo, parse_point, Core, Share, D, E, STAGE_SIGN};

type SignMsg21 = cggmp21::signing::msg::Msg<E, D>;
type SignMsg24 = cggmp24::signing::msg::Msg<E, D>;

/// Full threshold signing of `request.digest` (or of SHA-256 of its data, hashed here) with
/// `share` (already tweaked if requested).
pub(crate) async fn run_sign(io: PartyIo, request: SessionRequest, share: Arc<Share>) -> Result<EcdsaSignature> {
    let digest = match &request.params {
        SessionParams::Sign { digest, .. } => *digest,
        SessionParams::SignData { data, .. } => {
            use sha2::Digest as _;
            sha2::Sha256::digest(data).into()
        }
        _ => return Err(Error::new(ErrorKind::InvalidInput, "not a signing session")),
    };
    sign_stage(&io, &request, STAGE_SIGN, &share, &digest).await
}

/// Signs each `(tweak, digest)` of `jobs` with `share` (tweaked per job for a child key), all at
/// once: job `k` runs in stage `k` of the session, so the inputs of one transaction share the
/// session's round trips.
pub(crate) async fn run_sign_tx(
    io: PartyIo,
    request: SessionRequest,
    share: Arc<Share>,
    jobs: Vec<(Option<[u8; 32]>, [u8; 32])>,
) -> Result<Vec<EcdsaSignature>> {
    let SessionParams::SignTx { inputs, .. } = &request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a transaction signing session"));
    };
    if jobs.len() != inputs.len() {
        return Err(Error::new(ErrorKind::Internal, "one signing job per input"));
    }
    let shares: Vec<(Arc<Share>, [u8; 32])> = jobs
        .into_iter()
        .map(|(tweak, digest)| match tweak {
            Some(t) => Ok((Arc::new(tweak_share(&share, &t)?), digest)),
            None => Ok((share.clone(), digest)),
        })
        .collect::<Result<_>>()?;
    let runs = shares.iter().enumerate().map(|(k, (share, digest))| {
        let stage = u16::try_from(k).expect("inputs per session fit in 16 bits");
        sign_stage(&io, &request, stage, share, digest)
    });
    futures::future::try_join_all(runs).await
}

/// One signing of `digest` in `stage` of the session with the share's protocol, normalized to
/// low S. A full signing every time: cggmp24 prohibits presignatures for raw digests and for
/// derived keys (docs/SECURITY.md).
async fn sign_stage(
    io: &PartyIo,
    request: &SessionRequest,
    stage: u16,
    share: &Share,
    digest: &[u8; 32],
) -> Result<EcdsaSignature> {
    let scalar = Scalar::from_be_bytes_mod_order(digest);
    let eid = io.stage_eid(stage);
    let mut out = [0u8; 64];
    match share {
        Share::Cggmp21(share) => {
            let data = cggmp21::DataToSign::<E>::from_scalar(scalar);
            cggmp21::signing(cggmp21::ExecutionId::new(&eid), io.me(), &request.parties, share)
                .sign(&mut OsRng, MpcParty::connected(io.delivery::<SignMsg21>(stage)), data)
                .await
                .map_err(|e| abort("signing", e))?
                .normalize_s()
                .write_to_slice(&mut out)
        }
        Share::Cggmp24(share) => {
            let data = cggmp24::PrehashedDataToSign::<E>::from_scalar(scalar);
            cggmp24::signing(cggmp24::ExecutionId::new(&eid), io.me(), &request.parties, share)
                .sign(&mut OsRng, MpcParty::connected(io.delivery::<SignMsg24>(stage)), &data)
                .await
                .map_err(|e| abort("signing", e))?
                .normalize_s()
                .write_to_slice(&mut out)
        }
    }
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&out[..32]);
    s.copy_from_slice(&out[32..]);
    Ok(EcdsaSignature { r, s })
}

/// The tweak as a scalar, reduced modulo the group order (docs/ARCHITECTURE.md, "Derived keys").
pub(crate) fn tweak_scalar(tweak: &[u8; 32]) -> Scalar<E> {
    Scalar::from_be_bytes_mod_order(tweak)
}

/// The share of the child key `x + h`: every signer applies the same public `h` to its secret
/// share, every public share and the collective key, so any t shares interpolate to `x + h`.
pub(crate) fn tweak_share(share: &Share, tweak: &[u8; 32]) -> Result<Share> {
    let invalid = |e: String| Error::new(ErrorKind::Internal, format!("tweaked share does not validate: {e}"));
    match share {
        Share::Cggmp21(s) => {
            use cggmp21::key_share::{DirtyKeyShare, KeyShare};
            let mut d: DirtyKeyShare<E, super::L21> = (**s).clone().into_inner();
            tweak_core(&mut d.core, tweak)?;
            KeyShare::validate(d).map(|s| Share::Cggmp21(Box::new(s))).map_err(|e| invalid(e.into_error().to_string()))
        }
        Share::Cggmp24(s) => {
            use cggmp24::key_share::{DirtyKeyShare, KeyShare};
            let mut d: DirtyKeyShare<E, super::L> = (**s).clone().into_inner();
            tweak_core(&mut d.core, tweak)?;
            KeyShare::validate(d).map(|s| Share::Cggmp24(Box::new(s))).map_err(|e| invalid(e.into_error().to_string()))
        }
    }
}

fn tweak_core(core: &mut Core, tweak: &[u8; 32]) -> Result<()> {
    let h = tweak_scalar(tweak);
    let hg = Point::generator() * h;
    let invalid = || Error::new(ErrorKind::InvalidInput, "the tweak makes the key zero; use another tweak");
    core.key_info.shared_public_key = NonZero::from_point(core.key_info.shared_public_key + hg).ok_or_else(invalid)?;
    for x_j in core.key_info.public_shares.iter_mut() {
        *x_j = NonZero::from_point(*x_j + hg).ok_or_else(invalid)?;
    }
    let mut x = core.x.clone() + h;
    core.x = NonZero::from_secret_scalar(SecretScalar::new(&mut x)).ok_or_else(invalid)?;
    Ok(())
}

/// Verifies an ECDSA signature with k256, independently of the protocol.
pub fn verify_signature(public_key: &PublicKey, digest: &[u8; 32], sig: &EcdsaSignature) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key.as_bytes()) else { return false };
    let Ok(s) = k256::ecdsa::Signature::from_slice(&sig.to_compact()) else { return false };
    vk.verify_prehash(digest, &s).is_ok()
}

/// `P + h*G` for a tweak `h`: the public key a tweaked signature verifies against.
pub fn tweaked_public_key(public_key: &PublicKey, tweak: &[u8; 32]) -> Result<PublicKey> {
    let p = parse_point(public_key.as_bytes())?;
    let child = NonZero::from_point(p.into_inner() + Point::generator() * tweak_scalar(tweak))
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the tweak makes the key zero"))?;
    PublicKey::from_slice(&child.to_bytes(true))
}
