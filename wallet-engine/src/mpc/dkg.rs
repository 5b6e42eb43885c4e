//! Distributed key generation with cggmp24: threshold keygen, then aux info (one session, two
//! stages); the keygen of a further key that reuses the group's aux info; and the migration of a
//! cggmp21 share, which keeps its key and runs cggmp24 aux info for it.

use cggmp24::key_share::{AuxInfo, IncompleteKeyShare, KeyShare};
use rand::rngs::OsRng;
use round_based::MpcParty;
use wallet_traits::{Error, ErrorKind, Result, SessionParams, SessionRequest};

use super::{abort, io::PartyIo, Primes, Share, Share24, D, E, L, STAGE_AUX, STAGE_KEYGEN};

type KeygenMsg = cggmp24::keygen::ThresholdMsg<E, L, D>;
type AuxMsg = cggmp24::key_refresh::Msg<D, L>;

/// Threshold keygen, then aux info: one party's whole DKG. `primes` resolves when this party's
/// primes are ready (they may still be generating while keygen runs).
pub(crate) async fn run_dkg<P>(
    io: PartyIo,
    request: SessionRequest,
    primes: P,
    aux: AuxOptions,
    on_keygen_done: impl FnOnce(),
) -> Result<Share>
where
    P: std::future::Future<Output = Result<Primes>>,
{
    let SessionParams::Dkg { threshold, total: n } = request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a DKG session"));
    };
    let incomplete = keygen(&io, threshold, n).await?;
    on_keygen_done();
    let aux = aux_info(&io, n, primes.await?, aux).await?;
    combine(incomplete, aux).map(|s| Share::Cggmp24(Box::new(s)))
}

/// The keygen of a further key of the same party group: cggmp24's aux info is independent of
/// the key and may serve several keys of one group (cggmp24's documentation, "On reusability of
/// the auxiliary data"), so only the threshold keygen runs; the aux info is `group`'s.
pub(crate) async fn run_keygen_with_aux(io: PartyIo, request: SessionRequest, group: &Share) -> Result<Share> {
    let SessionParams::Keygen { threshold, total: n, .. } = request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a keygen session"));
    };
    let Share::Cggmp24(group) = group else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the group's first key is a cggmp21 share, whose aux info cggmp24 cannot use; migrate it first \
             (mpc-wallet migrate)",
        ));
    };
    if group.core.public_shares.len() != usize::from(n) || group.core.i != io.me() {
        return Err(Error::new(ErrorKind::InvalidInput, "the key's parties are not the group's"));
    }
    let incomplete = keygen(&io, threshold, n).await?;
    combine(incomplete, group_aux(group)?).map(|s| Share::Cggmp24(Box::new(s)))
}

/// A further key's share from its key part and its group's aux info (a further key's record
/// keeps only the key part: docs/ARCHITECTURE.md, "Protocols").
pub(crate) fn with_group_aux(core: IncompleteKeyShare<E>, group: &Share) -> Result<Share> {
    let Share::Cggmp24(group) = group else {
        return Err(Error::new(ErrorKind::Corrupted, "a further key's group share is not a cggmp24 share"));
    };
    KeyShare::from_parts((core, group_aux(group)?)).map(|s| Share::Cggmp24(Box::new(s))).map_err(|e| {
        Error::new(ErrorKind::Corrupted, format!("a further key's share does not fit its group's aux info: {e}"))
    })
}

/// A copy of the group's aux info (its multiexponentiation tables are shared, not copied).
fn group_aux(group: &Share24) -> Result<AuxInfo<L>> {
    AuxInfo::validate(group.aux.clone()).map_err(|e| {
        Error::new(ErrorKind::Corrupted, format!("the group's aux info does not validate: {}", e.into_error()))
    })
}

/// One party's part of a migration: cggmp24 aux info for the key `old` holds, which the caller
/// combines with it ([`migrated_share`]) once every party ran.
pub(crate) async fn run_migration(
    io: PartyIo,
    request: SessionRequest,
    old: &Share,
    primes: Primes,
    aux: AuxOptions,
) -> Result<Share> {
    if !matches!(request.params, SessionParams::Migrate {}) {
        return Err(Error::new(ErrorKind::InvalidInput, "not a migration session"));
    }
    let n =
        u16::try_from(request.parties.len()).map_err(|_| Error::new(ErrorKind::InvalidInput, "too many parties"))?;
    if old.core().public_shares.len() != usize::from(n) || old.index() != io.me() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a migration runs with every party of the key, in keygen order",
        ));
    }
    let aux = aux_info(&io, n, primes, aux).await?;
    migrated_share(old, aux)
}

/// `old`'s key with cggmp24 aux info: the same key share (so the same collective key, public
/// shares and every derived key), usable by cggmp24's signing.
pub(crate) fn migrated_share(old: &Share, aux: AuxInfo<L>) -> Result<Share> {
    let core = IncompleteKeyShare::<E>::validate(old.core().clone()).map_err(|e| {
        Error::new(ErrorKind::Corrupted, format!("the share to migrate does not validate: {}", e.into_error()))
    })?;
    combine(core, aux).map(|s| Share::Cggmp24(Box::new(s)))
}

/// How aux info is made beyond the protocol itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuxOptions {
    /// Precompute the multiexponentiation tables of every party's Pedersen parameters, which
    /// make each signing faster; kept (sealed) with the share.
    pub(crate) multiexp_tables: bool,
}

async fn keygen(io: &PartyIo, threshold: u16, n: u16) -> Result<IncompleteKeyShare<E>> {
    let eid = io.stage_eid(STAGE_KEYGEN);
    cggmp24::keygen::<E>(cggmp24::ExecutionId::new(&eid), io.me(), n)
        .set_threshold(threshold)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<KeygenMsg>(STAGE_KEYGEN)))
        .await
        .map_err(|e| abort("keygen", e))
}

async fn aux_info(io: &PartyIo, n: u16, primes: Primes, options: AuxOptions) -> Result<AuxInfo<L>> {
    let eid = io.stage_eid(STAGE_AUX);
    cggmp24::aux_info_gen(cggmp24::ExecutionId::new(&eid), io.me(), n, primes)
        .precompute_multiexp_tables(options.multiexp_tables)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<AuxMsg>(STAGE_AUX)))
        .await
        .map_err(|e| abort("aux info generation", e))
}

fn combine(core: IncompleteKeyShare<E>, aux: AuxInfo<L>) -> Result<Share24> {
    KeyShare::from_parts((core, aux))
        .map_err(|e| Error::new(ErrorKind::ProtocolAbort, format!("the run produced an inconsistent key share: {e}")))
}
