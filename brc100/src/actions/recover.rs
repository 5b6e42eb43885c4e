//! Change at keys the wallet can find again. Each change output is BRC-29 to the wallet itself
//! under a fixed prefix and a suffix that counts up, so books restored from an older backup can
//! find the change of the payments made after it: the keys after the highest the books know,
//! asked after on the chain until a run of unused ones. The invoice numbers are no secret: a
//! key needs the wallet's own ECDH to derive, so outsiders cannot link the outputs.

use base64::Engine;
use wallet_bsv::{AtomicBeef, Beef, BeefTx, BeefVersion, MerklePath, Script, Transaction, TxId};
use wallet_traits::{Derivation, Error, ErrorKind, OutputQuery, Result};

use super::{create::Draft, Actions, InternalizeActionArgs, InternalizeOutput, WalletPayment, CHANGE_BASKET};

/// The derivation prefix of the wallet's change: base64 of `mpc-change`.
pub const CHANGE_PREFIX: &str = "bXBjLWNoYW5nZQ==";

/// Unused change keys in a row after which a recovery scan stops.
pub const RECOVERY_GAP: u32 = 100;

/// Change keys one recovery scan asks after at the most unless told otherwise: a chain tracker
/// that calls every key used cannot keep it going.
pub const MAX_RECOVERY_KEYS: u64 = 100_000;

/// The label of the actions a recovery records.
pub const RECOVERED_LABEL: &str = "recovered";

/// Which change indexes the wallet hands out next.
#[derive(Debug, Default)]
pub(super) struct ChangeKeys {
    /// One past the highest the books hold; read from the store at the first use.
    next: Option<u64>,
    /// Indexes of drafts that were never signed, handed out again first.
    free: Vec<u64>,
}

/// The suffix of change index `i`: base64 of its decimal digits.
fn suffix_of(i: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(i.to_string())
}

/// The change index a derivation is, if it is one of the wallet's counted change keys.
fn index_of(d: &Derivation) -> Option<u64> {
    if d.prefix != CHANGE_PREFIX {
        return None;
    }
    let digits = base64::engine::general_purpose::STANDARD.decode(&d.suffix).ok()?;
    let i: u64 = std::str::from_utf8(&digits).ok()?.parse().ok()?;
    (suffix_of(i) == d.suffix).then_some(i)
}

/// What [`Actions::recover_change`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Change keys asked after.
    pub scanned: u64,
    /// Unspent change outputs the books lacked, now recorded (each transaction as an action
    /// labelled [`RECOVERED_LABEL`]).
    pub outputs: u64,
    /// What they hold.
    pub satoshis: u64,
    /// Outputs found in transactions not yet mined, left for a later scan.
    pub unconfirmed: u64,
    /// Outputs the wallet could not take in (the reason is logged), left for a later scan.
    pub refused: u64,
    /// The scan stopped at its limit of keys before a run of unused ones.
    pub cut_short: bool,
}

impl Actions {
    /// One past the highest change index among the books' outputs.
    async fn next_from_books(&self) -> Result<u64> {
        let query = OutputQuery { basket: Some(CHANGE_BASKET.to_string()), ..Default::default() };
        let all = self.store.list_outputs(&query).await?.items;
        Ok(all.iter().filter_map(|o| o.derivation.as_ref().and_then(index_of)).max().map_or(0, |i| i + 1))
    }

    /// The next change index to derive a key for.
    async fn take_change_index(&self) -> Result<u64> {
        if self.keys_lock().next.is_none() {
            // Read outside the lock; two first calls read the same, and the first to store wins.
            let next = self.next_from_books().await?;
            self.keys_lock().next.get_or_insert(next);
        }
        let mut keys = self.keys_lock();
        if let Some(i) = keys.free.pop() {
            return Ok(i);
        }
        let next = keys.next.expect("set above");
        keys.next = Some(next + 1);
        Ok(next)
    }

    fn keys_lock(&self) -> std::sync::MutexGuard<'_, ChangeKeys> {
        self.change_keys.lock().expect("change keys lock")
    }

    /// A fresh change output's locking script and derivation: BRC-29 to the wallet itself,
    /// [`CHANGE_PREFIX`] and the next change index.
    pub(super) async fn fresh_change(&self) -> Result<(Script, Derivation)> {
        let index = self.take_change_index().await?;
        self.change_key(index).await
    }

    async fn change_key(&self, index: u64) -> Result<(Script, Derivation)> {
        let identity = self.keys.identity();
        let suffix = suffix_of(index);
        let key = self.keys.brc29_key(CHANGE_PREFIX, &suffix, &identity).await?.1;
        let script = Script::p2pkh_lock(&wallet_bsv::hash::hash160(key.as_bytes()));
        Ok((script, Derivation { prefix: CHANGE_PREFIX.to_string(), suffix, sender: identity.to_hex() }))
    }

    /// Hands the change indexes of a draft that was never signed out again.
    pub(super) fn release_change(&self, draft: &Draft) {
        self.keys_lock().free.extend(draft.tracked.iter().filter_map(|t| t.derivation.as_ref().and_then(index_of)));
    }

    /// Finds the wallet's change the books do not hold (the payments made after the backup the
    /// books came from): from one past the highest change index the books know, asks the chain
    /// tracker whether each key was ever paid, until `gap` unused keys in a row ([`RECOVERY_GAP`]
    /// at least 1), and records every unspent output of a used key the books lack, with the
    /// merkle path the broadcaster reports, as a received `wallet payment` (an action labelled
    /// [`RECOVERED_LABEL`]). An output in a transaction not yet mined is counted and left for a
    /// later scan. At most `max_keys` keys ([`MAX_RECOVERY_KEYS`]) are asked after. Running it
    /// twice records nothing new.
    pub async fn recover_change(&self, gap: u32, max_keys: u64) -> Result<Recovered> {
        // Both services are needed: a missing one is named before anything is asked.
        let tracker = self.chain_tracker()?.clone();
        self.broadcaster()?;
        let start = self.next_from_books().await?;
        let mut found = Recovered::default();
        let (mut index, mut misses) = (start, 0);
        while misses < gap.max(1) {
            if found.scanned >= max_keys {
                tracing::warn!(
                    index,
                    "the change recovery stopped at its limit of keys; the chain tracker calls them all used"
                );
                found.cut_short = true;
                break;
            }
            let (script, derivation) = self.change_key(index).await?;
            found.scanned += 1;
            if !tracker.script_used(script.as_bytes()).await? {
                misses += 1;
                index += 1;
                continue;
            }
            misses = 0;
            for utxo in tracker.unspent_outputs(script.as_bytes()).await? {
                if self.store.output(&utxo.outpoint).await?.is_some() {
                    continue;
                }
                let (txid, vout) = (hex::encode(utxo.outpoint.txid), utxo.outpoint.vout);
                // One output that cannot be taken in (not mined yet, a bad answer, its books
                // holding the transaction as failed, which the un-fail review settles) stops no other.
                match self.recover_output(&txid, vout, &derivation).await {
                    Ok(Some(satoshis)) => {
                        tracing::info!(txid, vout, satoshis, index, "recovered change");
                        found.outputs += 1;
                        found.satoshis += satoshis;
                    }
                    Ok(None) => {
                        tracing::warn!(txid, vout, "recovered change is in a transaction not yet mined");
                        found.unconfirmed += 1;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, txid, vout, "recovered change could not be recorded");
                        found.refused += 1;
                    }
                }
            }
            index += 1;
        }
        // Change handed out from here on comes after every key the scan saw used.
        let mut keys = self.keys_lock();
        let after = index.saturating_sub(u64::from(misses));
        keys.next = Some(keys.next.map_or(after, |n| n.max(after)));
        Ok(found)
    }
}

impl Actions {
    /// Takes in output `vout` of `txid`, at the change key of `derivation`, as a mined wallet
    /// payment: what it holds, or `None` while the broadcaster has no merkle path for it.
    async fn recover_output(&self, txid: &str, vout: u32, derivation: &Derivation) -> Result<Option<u64>> {
        let Some(path) = self.broadcaster()?.merkle_path(txid).await? else { return Ok(None) };
        let raw = self.chain_tracker()?.raw_tx(txid).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::ServiceUnavailable,
                format!("the chain tracker reports change in {txid} but does not serve that transaction"),
            )
        })?;
        let atomic = mined(&raw, &path, txid)?;
        // What the transaction says, not what the tracker said.
        let satoshis = atomic.subject_tx().outputs.get(vout as usize).map_or(0, |o| o.satoshis);
        let args = InternalizeActionArgs {
            tx: atomic.to_bytes()?,
            outputs: vec![InternalizeOutput {
                output_index: vout,
                protocol: "wallet payment".into(),
                payment_remittance: Some(WalletPayment {
                    derivation_prefix: derivation.prefix.clone(),
                    derivation_suffix: derivation.suffix.clone(),
                    sender_identity_key: derivation.sender.clone(),
                }),
                insertion_remittance: None,
            }],
            description: "change recovered from the chain".into(),
            labels: Some(vec![RECOVERED_LABEL.into()]),
            seek_permission: None,
        };
        self.internalize_action(args).await?;
        Ok(Some(satoshis))
    }
}

/// The Atomic BEEF of a mined transaction: the transaction and its merkle path, which must hold it.
fn mined(raw: &[u8], path: &[u8], txid: &str) -> Result<AtomicBeef> {
    let bad = |what: &str| Error::new(ErrorKind::ServiceUnavailable, format!("the chain services' {what} for {txid}"));
    let tx = Transaction::from_bytes(raw).map_err(|_| bad("transaction does not parse"))?;
    if tx.txid().to_string() != txid {
        return Err(bad("transaction is another one"));
    }
    let path = MerklePath::from_bytes(path).map_err(|_| bad("merkle path does not parse"))?;
    let subject: TxId = tx.txid();
    let beef = Beef { version: BeefVersion::V1, bumps: vec![path], txs: vec![BeefTx::Full { tx, bump: Some(0) }] };
    Ok(AtomicBeef { subject, beef })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_indexes_round_trip_and_other_derivations_are_none() {
        let d = |prefix: &str, suffix: String| Derivation { prefix: prefix.into(), suffix, sender: String::new() };
        for i in [0, 7, 10, 123_456_789, u64::MAX] {
            assert_eq!(index_of(&d(CHANGE_PREFIX, suffix_of(i))), Some(i));
        }
        assert_eq!(suffix_of(0), "MA==");
        // Another prefix, a suffix that is not decimal digits, or digits not written as this
        // wallet writes them (a leading zero) are no change index of the wallet's.
        assert_eq!(index_of(&d("cHJlZml4", suffix_of(3))), None);
        assert_eq!(index_of(&d(CHANGE_PREFIX, "c3VmZml4".into())), None);
        assert_eq!(index_of(&d(CHANGE_PREFIX, "MDc=".into())), None);
        assert_eq!(index_of(&d(CHANGE_PREFIX, "not base64!".into())), None);
    }
}
