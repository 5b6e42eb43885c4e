//! The books against the chain: what the background task and `mpc-wallet reconcile` check so
//! that the books stay true for months (see docs/ARCHITECTURE.md, "Receiving and paying").

use std::collections::HashMap;

use wallet_traits::{ErrorKind, OutputQuery, OutputRecord, Result, TxOnChain};

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
    /// Whether the chain tracker knows `txid` (display hex), in a mempool or a block: asked
    /// before an action is failed for a refused or lost broadcast. `false` when it cannot tell.
    pub(crate) async fn network_took(&self, txid: &str) -> bool {
        let Ok(tracker) = self.chain_tracker() else { return false };
        match tracker.tx_status(&[txid.to_string()]).await {
            Ok(s) => s.first().is_some_and(|s| *s != TxOnChain::Unknown),
            Err(e) => {
                if e.kind() != ErrorKind::Unsupported {
                    tracing::warn!(error = %e, txid, "could not ask the chain whether it knows a refused transaction");
                }
                false
            }
        }
    }

    /// Fails the action `reference` (its inputs come back, its change never appears), then
    /// marks those of its inputs the chain holds spent (a competing transaction took them) as
    /// spent elsewhere, so no later payment picks them. An input the chain cannot judge comes
    /// back as before.
    pub(crate) async fn fail_and_check_inputs(&self, reference: &str) -> Result<()> {
        let query = OutputQuery { spent_by: Some(reference.to_string()), ..Default::default() };
        let inputs = self.store.list_outputs(&query).await?.items;
        self.store.fail_action(reference).await?;
        match self.judge(inputs).await {
            Ok(review) => {
                for o in review.spent_elsewhere {
                    if self.store.mark_spent_elsewhere(&o.outpoint).await? {
                        tracing::warn!(outpoint = %o.outpoint, "an input of a refused transaction is spent elsewhere");
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Unsupported || e.kind() == ErrorKind::Config => {}
            Err(e) => tracing::warn!(error = %e, reference, "could not check the inputs of a refused transaction"),
        }
        Ok(())
    }

    /// Checks the spendable outputs of `basket` (every basket when `None`), at most `limit`,
    /// against the chain tracker: an output the chain no longer holds unspent was spent by a
    /// transaction the books do not know, and every payment that picked it would fail. With
    /// `release`, each is marked spent elsewhere (no longer spendable; still listed in the books).
    /// Only outputs of transactions the chain knows are judged.
    pub async fn review_utxos(&self, basket: Option<&str>, release: bool, limit: u32) -> Result<UtxoReview> {
        let query = OutputQuery {
            basket: basket.map(str::to_string),
            spendable_only: true,
            limit: Some(limit.min(MAX_REVIEW)),
            ..Default::default()
        };
        let review = self.judge(self.store.list_outputs(&query).await?.items).await?;
        if release {
            for o in &review.spent_elsewhere {
                if self.store.mark_spent_elsewhere(&o.outpoint).await? {
                    tracing::warn!(outpoint = %o.outpoint, satoshis = o.satoshis, "output spent elsewhere: no longer spendable");
                }
            }
        }
        Ok(review)
    }

    /// Which of `outputs` the chain holds spent. Only outputs of transactions the chain knows
    /// are judged: one of a transaction still on its way is not "spent".
    async fn judge(&self, outputs: Vec<OutputRecord>) -> Result<UtxoReview> {
        let tracker = self.chain_tracker()?;
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
            if !tracker.is_utxo(&o.outpoint, &o.locking_script).await? {
                review.spent_elsewhere.push(o);
            }
        }
        Ok(review)
    }
}
