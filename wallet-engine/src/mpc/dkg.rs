//! Distributed key generation: threshold keygen, then aux info (one session, two stages).

use cggmp21::key_share::{AuxInfo, IncompleteKeyShare, KeyShare};
use rand::rngs::OsRng;
use round_based::MpcParty;
use wallet_traits::{Error, ErrorKind, Result, SessionParams, SessionRequest};

use super::{abort, io::PartyIo, Primes, Share, D, E, L, STAGE_AUX, STAGE_KEYGEN};

type KeygenMsg = cggmp21::keygen::msg::threshold::Msg<E, L, D>;
type AuxMsg = cggmp21::key_refresh::msg::aux_only::Msg<D, L>;

/// Threshold keygen, then aux info: one party's whole DKG. `primes` resolves when this party's
/// prime pair is ready (it may still be generating while keygen runs).
pub(crate) async fn run_dkg<P>(
    io: PartyIo,
    request: SessionRequest,
    primes: P,
    on_keygen_done: impl FnOnce(),
) -> Result<Share>
where
    P: std::future::Future<Output = Result<Primes>>,
{
    let me = io.me();
    let SessionParams::Dkg { threshold, total: n } = request.params else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a DKG session"));
    };
    let eid = io.stage_eid(STAGE_KEYGEN);
    let incomplete: IncompleteKeyShare<E> = cggmp21::keygen::<E>(cggmp21::ExecutionId::new(&eid), me, n)
        .set_threshold(threshold)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<KeygenMsg>(STAGE_KEYGEN)))
        .await
        .map_err(|e| abort("keygen", e))?;
    on_keygen_done();
    let primes = primes.await?;
    let eid = io.stage_eid(STAGE_AUX);
    let aux: AuxInfo<L> = cggmp21::aux_info_gen(cggmp21::ExecutionId::new(&eid), me, n, primes)
        .start(&mut OsRng, MpcParty::connected(io.delivery::<AuxMsg>(STAGE_AUX)))
        .await
        .map_err(|e| abort("aux info generation", e))?;
    KeyShare::from_parts((incomplete, aux))
        .map_err(|e| Error::new(ErrorKind::ProtocolAbort, format!("DKG produced an inconsistent key share: {e}")))
}
