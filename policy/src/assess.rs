//! What a transaction signing session would do: the money it moves, read from the
//! transaction's bytes and the agent's change claims, each checked.

use std::{collections::BTreeSet, fmt};

use sha2::{Digest, Sha256};
use wallet_bsv::{amount, brc42, encoding::write_var_bytes, hash::hash256, sighash, Script, Transaction};
use wallet_traits::{Error, ErrorKind, InputToSign, PublicKey, Result};

use crate::decide::Rule;

/// The domain of [`policy_tx_id`], so the id can never equal a txid or a sighash.
const TX_ID_DOMAIN: &[u8] = b"mpc-wallet policy tx v1\0";

/// The agent's claim that output `vout` pays the wallet itself (an all-zero tweak is the root
/// key): the wire type of the signing session.
pub use wallet_traits::ChangeClaim;

/// An input the session signs, with the amount it spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedInput {
    /// Its index in the transaction.
    pub index: u32,
    /// The satoshis of the output it spends.
    pub sats: u64,
}

/// An output proven to pay the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeOutput {
    /// Its index in the transaction.
    pub vout: u32,
    /// Its satoshis.
    pub sats: u64,
}

/// An output that pays someone else (not claimed as change, more than 0 satoshis).
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    /// Its index in the transaction.
    pub vout: u32,
    /// Its locking script.
    pub script: Vec<u8>,
    /// Its satoshis.
    pub sats: u64,
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("vout", &self.vout)
            .field("script", &hex::encode(&self.script))
            .field("sats", &self.sats)
            .finish()
    }
}

/// What one signing session would do, as [`assess`] read it from the transaction.
#[derive(Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The transaction's policy id ([`policy_tx_id`]).
    pub tx: [u8; 32],
    /// The inputs this session signs, in the order asked.
    pub inputs: Vec<SignedInput>,
    /// The outputs proven to pay the wallet, by index.
    pub change: Vec<ChangeOutput>,
    /// Every other output with satoshis, by index.
    pub destinations: Vec<Destination>,
    /// This session's net outflow: what its inputs spend less the change, 0 at least.
    pub outflow: u64,
}

impl fmt::Debug for Assessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assessment")
            .field("tx", &hex::encode(self.tx))
            .field("inputs", &self.inputs)
            .field("change", &self.change)
            .field("destinations", &self.destinations)
            .field("outflow", &self.outflow)
            .finish()
    }
}

/// The transaction's policy id: SHA-256 over a domain tag, then what every `SIGHASH_ALL|FORKID`
/// signature of the transaction commits to in common (BIP143 as BSV uses it): version,
/// `hashPrevouts` (every outpoint, in order), `hashSequence` (every sequence number),
/// `hashOutputs` (every amount and locking script), lock time, each as in the preimage.
///
/// Sessions signing different inputs of one transaction get one id; the unlocking scripts (not
/// signed) and each input's own part of the preimage (its amount and script code) are not in it.
/// A transaction changed in any signed part is another transaction with another id.
pub fn policy_tx_id(tx: &Transaction) -> [u8; 32] {
    let mut prevouts = Vec::with_capacity(36 * tx.inputs.len());
    let mut sequences = Vec::with_capacity(4 * tx.inputs.len());
    for i in &tx.inputs {
        prevouts.extend_from_slice(&i.source_txid.0);
        prevouts.extend_from_slice(&i.source_vout.to_le_bytes());
        sequences.extend_from_slice(&i.sequence.to_le_bytes());
    }
    let mut outputs = Vec::new();
    for o in &tx.outputs {
        outputs.extend_from_slice(&o.satoshis.to_le_bytes());
        write_var_bytes(&mut outputs, o.locking_script.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(TX_ID_DOMAIN);
    h.update(tx.version.to_le_bytes());
    h.update(hash256(&prevouts));
    h.update(hash256(&sequences));
    h.update(hash256(&outputs));
    h.update(tx.lock_time.to_le_bytes());
    h.finalize().into()
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_context("rule", Rule::Invalid)
}

/// `0x42` as `NONE|FORKID`, for messages.
fn sighash_name(t: u32) -> String {
    let base = match t & 0x1f {
        sighash::ALL => "ALL".to_string(),
        sighash::NONE => "NONE".to_string(),
        sighash::SINGLE => "SINGLE".to_string(),
        other => format!("base {other:#x}"),
    };
    let mut name = base;
    if t & sighash::ANYONECANPAY != 0 {
        name.push_str("|ANYONECANPAY");
    }
    if t & sighash::FORKID != 0 {
        name.push_str("|FORKID");
    }
    name
}

/// Why a sighash type other than `ALL|FORKID` is refused.
fn sighash_risk(t: u32) -> &'static str {
    if t & sighash::ANYONECANPAY != 0 {
        "ANYONECANPAY signs only its own input, so inputs can be added or removed after signing"
    } else if t & 0x1f == sighash::NONE {
        "NONE signs no output, so anyone can redirect the money after signing"
    } else if t & 0x1f == sighash::SINGLE {
        "SINGLE signs only the output at its own index, so the other outputs can change after signing"
    } else {
        "only ALL|FORKID commits to every input and output"
    }
}

/// Reads what a signing session would do with `tx` (Extended Format: every input carries its
/// source output) when it signs `inputs` and the agent claims `change` pays the wallet of
/// `root`. The same under every policy, so it takes none.
///
/// Refused with `PolicyDenied`: an input signed with any sighash type but `ALL|FORKID` (`0x41`),
/// and a false change claim (the output does not exist, is not exactly P2PKH of
/// `root + tweak·G`, or is claimed twice); one false claim refuses the whole session. Refused
/// with `InvalidInput`: no inputs, an input that does not exist, is listed twice or lacks its
/// source output, and amounts that add up past 21 million coins. Each error carries the
/// `rule` it broke as context ([`Rule::of`]).
pub fn assess(
    root: &PublicKey,
    tx: &Transaction,
    inputs: &[InputToSign],
    change: &[ChangeClaim],
) -> Result<Assessment> {
    amount::paid(tx).map_err(|_| {
        invalid("the transaction's outputs add up to more than 21 million coins; nothing was signed".into())
    })?;
    if inputs.is_empty() {
        return Err(invalid("a signing session signs at least one input; nothing was signed".into()));
    }
    let mut seen = BTreeSet::new();
    let mut signed = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Some(spent) = usize::try_from(input.index).ok().and_then(|i| tx.inputs.get(i)) else {
            return Err(invalid(format!(
                "input {} does not exist; the transaction has {} inputs; nothing was signed",
                input.index,
                tx.inputs.len()
            )));
        };
        if !seen.insert(input.index) {
            return Err(invalid(format!("input {} is listed twice; nothing was signed", input.index)));
        }
        if input.sighash_type != sighash::ALL_FORKID {
            return Err(Error::new(
                ErrorKind::PolicyDenied,
                format!(
                    "input {} is to be signed with sighash type {:#x} ({}); under a spending policy only ALL|FORKID \
                     (0x41) is signed: {}. Sign it with 0x41; nothing was signed",
                    input.index,
                    input.sighash_type,
                    sighash_name(input.sighash_type),
                    sighash_risk(input.sighash_type)
                ),
            )
            .with_context("rule", Rule::Sighash)
            .with_context("input", input.index)
            .with_context("sighash_type", format_args!("{:#x}", input.sighash_type)));
        }
        let Some(source) = &spent.source_output else {
            return Err(invalid(format!(
                "input {} lacks the output it spends; send the transaction in Extended Format; nothing was signed",
                input.index
            )));
        };
        signed.push(SignedInput { index: input.index, sats: source.satoshis });
    }

    let mut claimed = BTreeSet::new();
    let mut change_outputs = Vec::with_capacity(change.len());
    for claim in change {
        let false_claim = |why: &str| {
            Error::new(
                ErrorKind::PolicyDenied,
                format!(
                    "a change claim is false: output {} {why}; the whole session is refused and nothing was signed. \
                     Claim as change only outputs that pay the wallet's own key",
                    claim.vout
                ),
            )
            .with_context("rule", Rule::ChangeClaim)
            .with_context("output", claim.vout)
        };
        let Some(output) = usize::try_from(claim.vout).ok().and_then(|v| tx.outputs.get(v)) else {
            return Err(false_claim(&format!("does not exist (the transaction has {})", tx.outputs.len())));
        };
        if !claimed.insert(claim.vout) {
            return Err(false_claim("is claimed twice"));
        }
        let child = brc42::child_public_key(root, &claim.tweak)
            .map_err(|_| false_claim("is claimed for a tweak that gives no key"))?;
        if output.locking_script != Script::p2pkh_lock_to(child.as_bytes()) {
            return Err(false_claim("is not P2PKH of the key the claim names"));
        }
        change_outputs.push(ChangeOutput { vout: claim.vout, sats: output.satoshis });
    }
    change_outputs.sort_by_key(|c| c.vout);

    let spends = amount::total(signed.iter().map(|i| i.sats)).map_err(|_| {
        invalid("the inputs to sign spend more than 21 million coins together; nothing was signed".into())
    })?;
    let returns = amount::total(change_outputs.iter().map(|c| c.sats))?;
    let destinations = tx
        .outputs
        .iter()
        .enumerate()
        .filter(|(vout, o)| o.satoshis > 0 && !claimed.contains(&(*vout as u32)))
        .map(|(vout, o)| Destination {
            vout: vout as u32,
            script: o.locking_script.as_bytes().to_vec(),
            sats: o.satoshis,
        })
        .collect();
    Ok(Assessment {
        tx: policy_tx_id(tx),
        inputs: signed,
        change: change_outputs,
        destinations,
        outflow: spends.saturating_sub(returns),
    })
}
