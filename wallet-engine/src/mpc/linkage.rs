//! The joint Schnorr proof of a shared secret (BRC-69 key linkage), run by every party without
//! assembling the root key.

use std::sync::Arc;

use cggmp24::generic_ec::{NonZero, Point, Scalar, SecretScalar};
use futures::{SinkExt, StreamExt};
use rand::rngs::OsRng;
use round_based::{Incoming, Outgoing};
use sha2::{Digest, Sha256};
use wallet_traits::{Error, ErrorKind, PublicKey, Result, SessionParams, SessionRequest};

use super::{
    ecdh_context, ecdh_partial,
    io::{PartyIo, StageStream, WireFault},
    lagrange, parse_point, verify_ecdh_partial, Share, E, STAGE_LINKAGE_COMMIT, STAGE_LINKAGE_RESPONSE,
};

/// Messages of the joint linkage proof.
#[derive(serde::Serialize, serde::Deserialize)]
enum LinkageMsg {
    /// Round 1: `R_i = r_i*G`, `S'_i = r_i*B`, `Z_i = x_i*B` and a DLEQ proof of `Z_i`.
    Commit { r: Vec<u8>, s_prime: Vec<u8>, z_point: Vec<u8>, proof: Vec<u8> },
    /// Round 2: `z_i = r_i + e*lambda_i*x_i`.
    Response { z: [u8; 32] },
}

/// `e = SHA-256(A || B || S || S' || R) mod n`, as @bsv/sdk's `Schnorr.computeChallenge`.
pub(crate) fn linkage_challenge(
    a: &Point<E>,
    b: &Point<E>,
    s: &Point<E>,
    s_prime: &Point<E>,
    r: &Point<E>,
) -> Scalar<E> {
    let mut h = Sha256::new();
    for p in [a, b, s, s_prime, r] {
        h.update(p.to_bytes(true));
    }
    Scalar::from_be_bytes_mod_order(h.finalize())
}

fn point_from(bytes: &[u8], from: u16) -> Result<Point<E>> {
    Point::<E>::from_bytes(bytes).map_err(|_| {
        Error::new(ErrorKind::ProtocolAbort, format!("protocol party {from} sent an invalid point")).with_blamed([from])
    })
}

/// One party of the joint Schnorr proof that `S = root * B` (B in `request.point`). Each party
/// contributes a fresh nonce and its Lagrange-weighted share; nobody assembles the root key, and
/// every party checks the others' ECDH parts (DLEQ) and the final proof.
pub(crate) async fn run_linkage(
    io: PartyIo,
    request: SessionRequest,
    share: Arc<Share>,
) -> Result<wallet_traits::LinkageProof> {
    let SessionParams::Linkage { point: b_bytes } = &request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a linkage session"));
    };
    let run = Run {
        b: parse_point(b_bytes)?,
        ctx: ecdh_context(&request.key, &request.execution_id, b_bytes),
        lambdas: (0..request.parties.len())
            .map(|pos| lagrange(&share, &request.parties, pos))
            .collect::<Result<_>>()?,
        parties: &request.parties,
        share: &share,
        io: &io,
    };
    let r_i = SecretScalar::<E>::random(&mut OsRng);
    let sums = run.commit(&r_i).await?;
    let a = share.core().key_info.shared_public_key.into_inner();
    let b = run.b.into_inner();
    let e = linkage_challenge(&a, &b, &sums.shared, &sums.s_prime, &sums.big_r);
    let z = run.respond(*r_i.as_ref() + e * run.lambdas[usize::from(io.me())] * &share.core().x).await?;
    // zG = R + eA and zB = S' + eS, as the verifier will check.
    if Point::generator() * z != sums.big_r + a * e || b * z != sums.s_prime + sums.shared * e {
        return Err(Error::new(
            ErrorKind::ProtocolAbort,
            "the joint linkage proof does not verify; a party sent a bad response",
        ));
    }
    let pk = |p: &Point<E>| PublicKey::from_slice(&p.to_bytes(true));
    Ok(wallet_traits::LinkageProof {
        shared: pk(&sums.shared)?,
        r: pk(&sums.big_r)?,
        s_prime: pk(&sums.s_prime)?,
        z: z.to_be_bytes().as_bytes().try_into().expect("32 bytes"),
    })
}

/// What one party of a linkage run knows before it starts.
struct Run<'a> {
    io: &'a PartyIo,
    /// Keygen index of each protocol position.
    parties: &'a [u16],
    share: &'a Share,
    b: NonZero<Point<E>>,
    /// What every DLEQ proof of the run is bound to.
    ctx: Vec<u8>,
    /// Lagrange coefficient of each protocol position.
    lambdas: Vec<Scalar<E>>,
}

/// What round 1 adds up over all parties: `R = sum R_i`, `S' = sum S'_i`, `S = sum lambda_i Z_i`.
struct Commitments {
    big_r: Point<E>,
    s_prime: Point<E>,
    shared: Point<E>,
}

impl Run<'_> {
    /// Round 1: broadcasts this party's commitments for nonce `r_i`, checks every other party's
    /// ECDH part against its public share and adds them all up.
    async fn commit(&self, r_i: &SecretScalar<E>) -> Result<Commitments> {
        let me = self.io.me();
        let big_r_i = Point::generator() * r_i;
        let s_prime_i = self.b.into_inner() * r_i;
        let (z_point, proof) = ecdh_partial(self.share, &self.b, &self.ctx)?;
        let (mut inbox, mut outbox) = self.io.delivery::<LinkageMsg>(STAGE_LINKAGE_COMMIT);
        let commit = LinkageMsg::Commit {
            r: big_r_i.to_bytes(true).to_vec(),
            s_prime: s_prime_i.to_bytes(true).to_vec(),
            z_point: z_point.clone(),
            proof,
        };
        outbox.send(Outgoing::broadcast(commit)).await.map_err(fault)?;
        let mut sums = Commitments {
            big_r: big_r_i,
            s_prime: s_prime_i,
            shared: point_from(&z_point, me)? * self.lambdas[usize::from(me)],
        };
        for _ in 1..self.parties.len() {
            let msg = receive(&mut inbox).await?;
            let LinkageMsg::Commit { r, s_prime, z_point, proof } = msg.msg else {
                return Err(out_of_order(msg.sender));
            };
            let k = self.parties[usize::from(msg.sender)];
            let z = verify_ecdh_partial(self.share, k, &self.b, &self.ctx, &z_point, &proof).ok_or_else(|| {
                Error::new(ErrorKind::ProtocolAbort, format!("party {k}'s ECDH part fails its DLEQ proof"))
                    .with_blamed([k])
            })?;
            sums.big_r += point_from(&r, msg.sender)?;
            sums.s_prime += point_from(&s_prime, msg.sender)?;
            sums.shared += z * self.lambdas[usize::from(msg.sender)];
        }
        Ok(sums)
    }

    /// Round 2: broadcasts this party's response `z_i` and returns the sum of all responses.
    async fn respond(&self, z_i: Scalar<E>) -> Result<Scalar<E>> {
        let (mut inbox, mut outbox) = self.io.delivery::<LinkageMsg>(STAGE_LINKAGE_RESPONSE);
        let response = LinkageMsg::Response { z: z_i.to_be_bytes().as_bytes().try_into().expect("32 bytes") };
        outbox.send(Outgoing::broadcast(response)).await.map_err(fault)?;
        let mut z = z_i;
        for _ in 1..self.parties.len() {
            let msg = receive(&mut inbox).await?;
            let LinkageMsg::Response { z: z_j } = msg.msg else {
                return Err(out_of_order(msg.sender));
            };
            z += Scalar::from_be_bytes_mod_order(z_j);
        }
        Ok(z)
    }
}

async fn receive(inbox: &mut StageStream<LinkageMsg>) -> Result<Incoming<LinkageMsg>> {
    inbox
        .next()
        .await
        .ok_or_else(|| Error::new(ErrorKind::CosignerUnavailable, "the linkage session closed early"))?
        .map_err(fault)
}

fn fault(e: WireFault) -> Error {
    Error::new(ErrorKind::ProtocolAbort, format!("linkage proof aborted: {e}"))
}

fn out_of_order(sender: u16) -> Error {
    Error::new(ErrorKind::ProtocolAbort, "a linkage message came out of order").with_blamed([sender])
}
