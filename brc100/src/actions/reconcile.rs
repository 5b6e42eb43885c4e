//! The books against the chain: what the background task and `mpc-wallet reconcile` check so
//! that the books stay true for months (see docs/ARCHITECTURE.md, "Receiving and paying").

use std::collections::HashMap;

use wallet_traits::{OutputQuery, OutputRecord, Result, TxOnChain};

use super::Actions;

/// The most outputs one review reads, whatever it is asked.
pub const MAX_REVIEW: u32 = 10_000;

/// What [`Actions::review_utxos`] found.
#[derive(Debug, Default)]
pub struct UtxoReview {
    /// Outputs judged against the chain.
    pub checked: usize,
    /// Outputs left alone because the chain services do not know their transaction yet (an
    /// output of a transaction still on its way is not "spent").
    pub not_yet_known: usize,
    /// Spendable outputs the chain holds spent: marked so when the review releases them.
    pub spent_elsewhere: Vec<OutputRecord>,
}

impl Actions {
    /// Checks the spendable outputs of `basket` (every basket when `None`), at most `limit`,
    /// against the chain tracker: an output the chain no longer holds unspent was spent by a
    /// transaction the books do not know, and every payment that picked it would fail. With
    /// `release`, each is marked spent elsewhere (no longer spendable; still listed in the books).
    /// Only outputs of transactions the chain knows are judged.
    pub async fn review_utxos(&self, basket: Option<&str>, release: bool, limit: u32) -> Result<UtxoReview> {
        let tracker = self.chain_tracker()?;
        let query = OutputQuery {
            basket: basket.map(str::to_string),
            spendable_only: true,
            limit: Some(limit.min(MAX_REVIEW)),
            ..Default::default()
        };
        let outputs = self.store.list_outputs(&query).await?.items;
        let mut txids: Vec<String> = outputs.iter().map(|o| hex::encode(o.outpoint.txid)).collect();
        txids.sort();
        txids.dedup();
        let known: HashMap<String, TxOnChain> = txids.iter().cloned().zip(tracker.tx_status(&txids).await?).collect();
        let mut review = UtxoReview::default();
        for o in outputs {
            if known.get(&hex::encode(o.outpoint.txid)).is_none_or(|s| *s == TxOnChain::Unknown) {
                review.not_yet_known += 1;
                continue;
            }
            review.checked += 1;
            if tracker.is_utxo(&o.outpoint, &o.locking_script).await? {
                continue;
            }
            if release && self.store.mark_spent_elsewhere(&o.outpoint).await? {
                tracing::warn!(outpoint = %o.outpoint, satoshis = o.satoshis, "output spent elsewhere: no longer spendable");
            }
            review.spent_elsewhere.push(o);
        }
        Ok(review)
    }
}
