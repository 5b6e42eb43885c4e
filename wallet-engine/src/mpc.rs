//! The protocol driver (cggmp24 for new keys, cggmp21 for wallets made before it) and the
//! key-share arithmetic around it, one file per concern:
//!
//! - `io`: one party of a run over sealed envelopes (round-based delivery, per-stage inboxes).
//! - `dkg`, `sign`, `linkage`: the protocols a session runs (docs/ARCHITECTURE.md, "Sessions and
//!   envelopes"); `dkg` also holds the migration's aux info run and the keygen of a further key.
//! - `ecdh`: the non-interactive ECDH partials with DLEQ proofs that derive child keys.
//! - `share`: the protocol a share belongs to, its encoding, public key and Lagrange coefficients.

mod dkg;
mod ecdh;
mod io;
mod linkage;
mod share;
mod sign;

use cggmp24::supported_curves::Secp256k1;
use sha2::Sha256;
use wallet_traits::{Error, ErrorKind, SessionParams, ENVELOPES_PER_SIGNING, MAX_PARTIES, SESSION_CAPACITY};

pub(crate) use dkg::{run_dkg, run_keygen_with_aux, run_migration, with_group_aux, AuxOptions};
pub(crate) use ecdh::{ecdh_context, ecdh_partial, verify_ecdh_partial};
pub(crate) use io::{spawn_party, PartyInbox, PartyIo, RunningParty};
pub(crate) use linkage::run_linkage;
pub use share::Protocol;
// The test dealer (feature insecure-test-primes) reads a further key's record by its key part.
#[cfg(feature = "insecure-test-primes")]
pub(crate) use share::decode_key_part;
pub(crate) use share::{
    decode_record, lagrange, parse_point, public_key_of, seal_record_with_cache_keys, GroupRecord, RecordShares, Share,
};
pub(crate) use sign::{run_sign, run_sign_tx, tweak_share};
pub use sign::{tweaked_public_key, verify_signature};

/// The curve of BSV keys (generic-ec 0.4's, the same type in cggmp21 and cggmp24).
pub(crate) type E = Secp256k1;
/// cggmp24's 128-bit security level, which sets the Paillier and Pedersen modulus sizes.
pub(crate) type L = cggmp24::security_level::SecurityLevel128;
/// cggmp21's, for shares made before cggmp24.
pub(crate) type L21 = cggmp21::security_level::SecurityLevel128;
/// The hash inside the protocols' commitments and proofs.
type D = Sha256;
/// A cggmp24 key share after keygen and aux info: what signing needs.
pub(crate) type Share24 = cggmp24::KeyShare<E, L>;
/// A cggmp21 key share (wallets made before cggmp24, until they migrate).
pub(crate) type Share21 = cggmp21::KeyShare<E, L21>;
/// What both protocols' shares hold of the key itself (key-share 0.6's core share, one type).
pub(crate) type Core = cggmp24::key_share::DirtyIncompleteKeyShare<E>;
/// The primes one party's aux info generation takes: a Paillier pair and a Pedersen pair, the
/// slow part of aux info generation, made ahead of time.
pub type Primes = cggmp24::PregeneratedPrimes<L>;

/// DKG stages share one session; the stage tag keeps their messages apart.
pub(crate) const STAGE_KEYGEN: u16 = 0;
pub(crate) const STAGE_AUX: u16 = 1;
pub(crate) const STAGE_SIGN: u16 = 0;
const STAGE_LINKAGE_COMMIT: u16 = 0;
const STAGE_LINKAGE_RESPONSE: u16 = 1;

/// The stages a session of `params` runs, each with its own inbox: for a transaction, one
/// signing per input.
fn stages_of(params: &SessionParams) -> Vec<u16> {
    match params {
        SessionParams::Dkg { .. } => vec![STAGE_KEYGEN, STAGE_AUX],
        SessionParams::Keygen { .. } => vec![STAGE_KEYGEN],
        SessionParams::Migrate { .. } => vec![STAGE_AUX],
        SessionParams::Sign { .. } | SessionParams::SignData { .. } => vec![STAGE_SIGN],
        SessionParams::Linkage { .. } => vec![STAGE_LINKAGE_COMMIT, STAGE_LINKAGE_RESPONSE],
        SessionParams::SignTx { inputs, .. } => (0..inputs.len()).filter_map(|k| u16::try_from(k).ok()).collect(),
    }
}

/// The most envelopes one party sends to one other party in a run: every round sends each
/// other party exactly one (a broadcast is one copy per recipient). DKG: keygen 5 rounds (commit,
/// reliability check, decommit, shares, proof) and aux info 4 (commit, reliability check,
/// decommit, proofs); signing 6; linkage 2 (commit, response).
const MAX_ENVELOPES_PER_PEER: usize = 9;

// Every queue of a session (a party's inbox per stage, its outbox, the transport's) must hold all
// a party sends or receives in a run, plus the final event, so that no send of an honest run
// ever waits and the relaying through the agent cannot deadlock (see wallet_traits::SESSION_CAPACITY).
const MOST_PER_QUEUE: usize = MAX_ENVELOPES_PER_PEER * (MAX_PARTIES as usize - 1) + 1;
const _: () = assert!(MOST_PER_QUEUE <= SESSION_CAPACITY);
// A transaction session runs one signing per input over the same queues; SessionRequest::check
// keeps their number within what the queues hold, counting this many envelopes per signing.
const _: () = assert!(SIGNING_ROUNDS <= ENVELOPES_PER_SIGNING);
const SIGNING_ROUNDS: usize = 6;

fn abort(what: &str, e: impl std::error::Error) -> Error {
    // cggmp21's and cggmp24's error texts name the failing check and party, never secret values; the cause
    // (for example a message that failed authentication) sits in the source chain.
    let mut msg = format!("{what} aborted: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::new(ErrorKind::ProtocolAbort, msg)
}
