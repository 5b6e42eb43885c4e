//! The cosigner's say over what it signs: before it joins a transaction signing, its
//! [`SigningPolicy`] reviews the parsed transaction and may refuse with `PolicyDenied`.

use std::collections::HashSet;

use wallet_bsv::Transaction;
use wallet_traits::{Error, ErrorKind, InputToSign, KeyId, Result};

/// What a cosigner is asked to sign: the transaction as parsed from the request (outputs,
/// amounts, every input's source output) and which inputs, with which keys.
#[derive(Debug)]
pub struct TxReview<'a> {
    /// The key whose share would sign.
    pub key: &'a KeyId,
    /// The transaction.
    pub tx: &'a Transaction,
    /// The inputs to sign.
    pub inputs: &'a [InputToSign],
}

impl TxReview<'_> {
    /// The satoshis the signed inputs spend; refused past 21 million coins (hostile amounts
    /// must not wrap into a small total).
    pub fn spent(&self) -> Result<u64> {
        wallet_bsv::amount::total(
            self.inputs
                .iter()
                .filter_map(|i| self.tx.inputs.get(i.index as usize)?.source_output.as_ref())
                .map(|o| o.satoshis),
        )
    }
}

/// Decides whether this cosigner signs a transaction. It runs after the transaction parsed and
/// every input was checked against its key, before any protocol message.
pub trait SigningPolicy: std::fmt::Debug + Send + Sync + 'static {
    /// `Ok` to sign; an error (`PolicyDenied`, saying why) to refuse the whole session.
    fn review(&self, request: &TxReview<'_>) -> Result<()>;

    /// Whether this cosigner signs a raw 32-byte digest it cannot read (BRC-100
    /// `createSignature`; a transaction's sighash passed as a digest would escape
    /// [`review`](Self::review)). Default: yes.
    fn review_digest(&self, key: &KeyId, tweak: Option<&[u8; 32]>) -> Result<()> {
        let _ = (key, tweak);
        Ok(())
    }
}

/// Every policy of a list must agree: the first refusal stands.
#[derive(Debug, Default)]
pub struct AllOf(pub Vec<std::sync::Arc<dyn SigningPolicy>>);

impl SigningPolicy for AllOf {
    fn review(&self, request: &TxReview<'_>) -> Result<()> {
        self.0.iter().try_for_each(|p| p.review(request))
    }

    fn review_digest(&self, key: &KeyId, tweak: Option<&[u8; 32]>) -> Result<()> {
        self.0.iter().try_for_each(|p| p.review_digest(key, tweak))
    }
}

/// Signs transactions only, which it reads and reviews, and refuses every raw digest
/// (`MPC_POLICY_RAW_DIGESTS=deny`): a compromised agent can then no longer pass a transaction's
/// sighash off as a digest. BRC-100's `createSignature` stops working with such a cosigner.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransactionsOnly;

impl SigningPolicy for TransactionsOnly {
    fn review(&self, _: &TxReview<'_>) -> Result<()> {
        Ok(())
    }

    fn review_digest(&self, _: &KeyId, _: Option<&[u8; 32]>) -> Result<()> {
        Err(Error::new(
            ErrorKind::PolicyDenied,
            "this cosigner signs transactions only, never a raw digest (MPC_POLICY_RAW_DIGESTS=deny); nothing was signed",
        ))
    }
}

/// Signs every transaction that passes the checks: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl SigningPolicy for AllowAll {
    fn review(&self, _: &TxReview<'_>) -> Result<()> {
        Ok(())
    }
}

/// Refuses any transaction with an output locked by one of these scripts (a deny list of
/// destinations; `MPC_POLICY_DENY_SCRIPTS`).
#[derive(Debug, Clone, Default)]
pub struct DenyOutputScripts {
    scripts: HashSet<Vec<u8>>,
}

impl DenyOutputScripts {
    /// A policy refusing outputs locked by any of `scripts`.
    pub fn new(scripts: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self { scripts: scripts.into_iter().collect() }
    }
}

impl SigningPolicy for DenyOutputScripts {
    fn review(&self, request: &TxReview<'_>) -> Result<()> {
        match request.tx.outputs.iter().position(|o| self.scripts.contains(o.locking_script.as_bytes())) {
            None => Ok(()),
            Some(k) => Err(Error::new(
                ErrorKind::PolicyDenied,
                format!("output {k} pays to a script this cosigner's policy refuses; nothing was signed"),
            )
            .with_context("output", k)),
        }
    }
}
