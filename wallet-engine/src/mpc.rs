//! The cggmp21 driver and the key-share arithmetic around it, one file per concern:
//!
//! - `io`: one party of a run over sealed envelopes (round-based delivery, per-stage inboxes).
//! - `dkg`, `sign`, `linkage`: the three protocols a session runs (docs/ARCHITECTURE.md,
//!   "Sessions and envelopes").
//! - `ecdh`: the non-interactive ECDH partials with DLEQ proofs that derive child keys.
//! - `share`: encoding, public key and Lagrange coefficients of a key share.

mod dkg;
mod ecdh;
mod io;
mod linkage;
mod share;
mod sign;

use cggmp21::{key_share::KeyShare, security_level::SecurityLevel128, supported_curves::Secp256k1, PregeneratedPrimes};
use sha2::Sha256;
use wallet_traits::{Error, ErrorKind, SessionParams, ENVELOPES_PER_SIGNING, MAX_PARTIES, SESSION_CAPACITY};

pub(crate) use dkg::run_dkg;
pub(crate) use ecdh::{ecdh_context, ecdh_partial, verify_ecdh_partial};
pub(crate) use io::{spawn_party, PartyInbox, PartyIo, RunningParty};
pub(crate) use linkage::run_linkage;
pub(crate) use share::{decode_share, encode_share, lagrange, parse_point, public_key_of};
pub(crate) use sign::{run_sign, run_sign_tx, tweak_share};
pub use sign::{tweaked_public_key, verify_signature};

/// The curve of BSV keys.
pub(crate) type E = Secp256k1;
/// cggmp21's 128-bit security level, which sets the Paillier modulus size.
pub(crate) type L = SecurityLevel128;
/// The hash inside the protocols' commitments and proofs.
type D = Sha256;
/// A key share after keygen and aux info: what signing needs.
pub(crate) type Share = KeyShare<E, L>;
/// A Paillier prime pair, the slow part of aux info generation, made ahead of time.
pub type Primes = PregeneratedPrimes<L>;

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
        SessionParams::Sign { .. } => vec![STAGE_SIGN],
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
    // cggmp21's error texts name the failing check and party, never secret values; the cause
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
