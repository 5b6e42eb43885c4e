//! What signing transaction inputs takes before any protocol message: the transaction parsed,
//! each input checked against the key it is signed for, each digest computed. The agent and
//! every cosigner run the same checks on the same bytes, so no party signs a digest it did not
//! compute (docs/ARCHITECTURE.md, "Signing transactions").

use wallet_bsv::{hash::hash160, sighash, Transaction};
use wallet_traits::{Error, ErrorKind, InputToSign, PublicKey, Result};

use crate::mpc;

/// One input ready to sign. The share is tweaked by the party itself, on the blocking pool, as
/// the protocol's other work is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreparedInput {
    /// The tweak of the child key it spends from; `None` for the root key.
    pub(crate) tweak: Option<[u8; 32]>,
    /// The key the signature must verify against.
    pub(crate) public_key: PublicKey,
    /// The sighash digest, computed here from the transaction.
    pub(crate) digest: [u8; 32],
}

fn refuse(index: u32, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("input {index}: {why}; nothing was signed"))
        .with_context("input", index)
}

/// Parses `tx` (Extended Format) and prepares each of `inputs`: the index exists, the sighash
/// type is FORKID with ALL, NONE or SINGLE, the input carries its source output, and that output
/// is P2PKH of the key it is signed for (`root_key` with the input's tweak). Any input that
/// fails refuses the whole request. The digests share one [`sighash::Sighasher`], so the
/// transaction is hashed once, not once per input.
pub(crate) fn prepare(
    root_key: &PublicKey,
    tx: &[u8],
    inputs: &[InputToSign],
) -> Result<(Transaction, Vec<PreparedInput>)> {
    let tx = Transaction::from_bytes(tx)?;
    let sighasher = sighash::Sighasher::new(&tx);
    let prepared = inputs
        .iter()
        .map(|input| {
            let i = usize::try_from(input.index).unwrap_or(usize::MAX);
            let Some(spent) = tx.inputs.get(i) else {
                return Err(refuse(input.index, format!("the transaction has {} inputs", tx.inputs.len())));
            };
            let Some(source) = &spent.source_output else {
                return Err(refuse(
                    input.index,
                    "the transaction must be in Extended Format, with the output it spends",
                ));
            };
            let base = input.sighash_type & 0x1f;
            if input.sighash_type & sighash::FORKID == 0 || !(sighash::ALL..=sighash::SINGLE).contains(&base) {
                return Err(refuse(
                    input.index,
                    format!("sighash type {:#x} is not ALL, NONE or SINGLE with FORKID", input.sighash_type),
                ));
            }
            let public_key = match &input.tweak {
                Some(t) => mpc::tweaked_public_key(root_key, t)?,
                None => *root_key,
            };
            if source.locking_script.p2pkh_hash() != Some(hash160(public_key.as_bytes())) {
                return Err(refuse(input.index, "its source output is not P2PKH of the key it is to be signed with"));
            }
            let digest = sighasher.input_digest(i, input.sighash_type)?;
            Ok(PreparedInput { tweak: input.tweak, public_key, digest })
        })
        .collect::<Result<_>>()?;
    Ok((tx, prepared))
}
