//! The books against the chain: what the background task and `mpc-wallet reconcile` check so
//! that the books stay true for months (see docs/ARCHITECTURE.md, "Receiving and paying").

use std::{collections::HashMap, time::Duration};

use wallet_bsv::Transaction;
use wallet_traits::{
    ActionQuery, ActionRecord, ActionStatus, ErrorKind, Outpoint, OutputQuery, OutputRecord, Result, TxOnChain,
};

use super::{create::Proof, Actions};

/// The background round looks on the chain for the transactions of actions failed this recently
/// (by their creation): a broadcast refused or lost in that time may yet have reached the network.
pub const UNFAIL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A proof this many blocks below the tip is final: the proof review leaves it alone.
pub const REORG_DEPTH: u64 = 12;

/// The most outputs one review reads, whatever it is asked.
pub const MAX_REVIEW: u32 = 10_000;

/// After this many new blocks without a proof, an unproven transaction is asked after on the
/// chain: broadcast again when the chain does not know it (the toolbox's
/// `unprovenAttemptsLimitMain`: about a day of blocks).
pub const PROOF_ATTEMPTS: u32 = 144;

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
    /// What the chain tracker knows of `txid` (display hex), asked when a broadcast was
    /// refused or lost; `Unknown` when it cannot tell.
    pub(crate) async fn on_chain(&self, txid: &str) -> TxOnChain {
        let Ok(tracker) = self.chain_tracker() else { return TxOnChain::Unknown };
        match tracker.tx_status(&[txid.to_string()]).await {
            Ok(s) => s.first().copied().unwrap_or(TxOnChain::Unknown),
            Err(e) => {
                if e.kind() != ErrorKind::Unsupported {
                    tracing::warn!(error = %e, txid, "could not ask the chain whether it knows a refused transaction");
                }
                TxOnChain::Unknown
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

    /// The proof task, driven by new blocks: when the chain tracker's tip moved since the last
    /// call (or on the first), asks for the proofs of the unproven transactions, at most `limit`
    /// of them; a block that has not changed cannot hold a new proof, so nothing is asked. Each
    /// transaction still without one counts an attempt; one past [`PROOF_ATTEMPTS`] is asked
    /// after on the chain ([`Self::stale_unproven`]). Returns how many proofs were recorded.
    pub async fn check_for_proofs(&self, limit: u32) -> Result<usize> {
        let Ok(tracker) = self.chain_tracker() else { return Ok(0) };
        let tip = tracker.current_height().await?;
        let previous = self.proof_tip.lock().expect("proof tip lock").replace(tip);
        if previous == Some(tip) {
            return Ok(0);
        }
        let round = self.prove_unproven(limit).await;
        if !matches!(round, Ok((_, true))) {
            // A round the services cut short is asked again at the next poll, not a block later.
            *self.proof_tip.lock().expect("proof tip lock") = previous;
        }
        round.map(|(proven, _)| proven)
    }

    /// One proof round: how many proofs were recorded, and whether the proof service answered
    /// for every transaction (one it could not answer for counts no attempt).
    async fn prove_unproven(&self, limit: u32) -> Result<(usize, bool)> {
        let query = ActionQuery { statuses: vec![ActionStatus::Unproven], limit: Some(limit), ..Default::default() };
        let (mut proven, mut answered) = (0, true);
        for action in self.store.list_actions(&query).await?.items {
            let Some(txid) = action.txid else { continue };
            match self.prove(&txid).await? {
                Proof::Recorded => proven += 1,
                Proof::Unasked => answered = false,
                Proof::NotYet => {
                    if self.store.count_proof_attempt(&txid).await? > self.proof_attempts {
                        self.stale_unproven(&action, &txid).await?;
                    }
                }
            }
        }
        Ok((proven, answered))
    }

    /// An unproven transaction that many blocks found no proof for: broadcast again when the
    /// chain tracker says it does not know it (lost by the network; a refusal then fails the
    /// action as any refused broadcast does, its inputs checked against the chain); left as it
    /// is when the chain holds it or cannot tell. Its count starts again either way.
    async fn stale_unproven(&self, action: &ActionRecord, txid: &[u8; 32]) -> Result<()> {
        self.store.reset_proof_attempts(txid).await?;
        let shown = hex::encode(txid);
        let reference = action.reference.as_str();
        let known = match self.chain_tracker()?.tx_status(std::slice::from_ref(&shown)).await {
            Ok(k) => k.first().copied().unwrap_or(TxOnChain::Unknown),
            Err(e) => {
                tracing::warn!(error = %e, txid = %shown, reference, "no proof for many blocks, and the chain cannot say why; asking again later");
                return Ok(());
            }
        };
        if known != TxOnChain::Unknown {
            tracing::warn!(txid = %shown, reference, ?known, "no proof for many blocks although the chain holds the transaction; asking again later");
            return Ok(());
        }
        tracing::warn!(txid = %shown, reference, "no proof for many blocks and the chain does not know the transaction: broadcasting it again");
        let atomic = match Self::atomic_of(action, txid) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, reference, "a lost transaction cannot be assembled for a new broadcast");
                return Ok(());
            }
        };
        if let Err(e) = self.send(reference, &atomic, true).await {
            tracing::warn!(error = %e, txid = %shown, reference, "a lost transaction was refused again");
        }
        Ok(())
    }

    /// The failed actions of the last [`UNFAIL_WINDOW`], newest first, at most `limit`, looked
    /// for on the chain ([`Self::unfail_known`]). Returns how many came back.
    pub async fn review_failed(&self, limit: u32) -> Result<usize> {
        let since = super::now_millis().saturating_sub(UNFAIL_WINDOW.as_millis() as u64);
        let recent: Vec<ActionRecord> =
            self.newest(ActionStatus::Failed, limit).await?.into_iter().filter(|a| a.created_at >= since).collect();
        match self.unfail_known(recent).await {
            Ok(back) => Ok(back.len()),
            // A chain tracker that cannot tell is no failure of the round.
            Err(e) if e.kind() == ErrorKind::Unsupported => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Checks the merkle paths of the newest `limit` completed actions whose blocks are within
    /// [`REORG_DEPTH`] of the tip against the block header at their height, asked afresh: a path
    /// whose root is no longer that block's (a reorg dropped the block) is dropped, the action is
    /// `unproven` again (nothing it created changes), and the next proof fetch finds the block
    /// that holds it now. Returns how many were dropped. A tracker that cannot answer leaves
    /// every proof as it is.
    pub async fn review_proofs(&self, limit: u32) -> Result<usize> {
        let Ok(tracker) = self.chain_tracker() else { return Ok(0) };
        let completed = self.newest(ActionStatus::Completed, limit).await?;
        if completed.is_empty() {
            return Ok(0);
        }
        let tip = tracker.current_height().await?;
        let mut dropped = 0;
        for action in completed {
            let (Some(txid), Some(bytes)) = (action.txid, action.merkle_path.as_deref()) else { continue };
            let proof = wallet_bsv::MerklePath::from_bytes(bytes)
                .and_then(|p| Ok((p.compute_root(&super::internal(&txid))?, p.block_height())));
            let (root, height) = match proof {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, reference = %action.reference, "a stored merkle path does not parse");
                    continue;
                }
            };
            if height.saturating_add(REORG_DEPTH) < tip {
                continue;
            }
            // The header, not a cached root: the point is to notice that the block changed.
            let on_chain = match tracker.header_for_height(height).await {
                Ok(header) => header[36..68] == root,
                Err(e) if e.kind() == ErrorKind::NotFound => false,
                Err(e) if e.kind() == ErrorKind::Unsupported => tracker.is_valid_root_for_height(&root, height).await?,
                Err(e) => return Err(e),
            };
            if on_chain {
                continue;
            }
            if self.store.clear_merkle_path(&txid).await? {
                tracing::warn!(txid = %hex::encode(txid), height, "the block of a stored proof left the chain (a reorg): unproven again");
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// The newest `limit` actions in `status` (the store lists oldest first).
    async fn newest(&self, status: ActionStatus, limit: u32) -> Result<Vec<ActionRecord>> {
        let query =
            |limit, offset| ActionQuery { statuses: vec![status], limit: Some(limit), offset, ..Default::default() };
        let total = self.store.list_actions(&query(1, 0)).await?.total;
        let offset = u32::try_from(total.saturating_sub(u64::from(limit))).unwrap_or(u32::MAX);
        Ok(self.store.list_actions(&query(limit, offset)).await?.items)
    }

    /// Drops the transaction bytes of at most `limit` actions failed (by their creation) more
    /// than `retention` ago; their rows stay in the history. Returns how many.
    pub async fn purge_failed(&self, retention: Duration, limit: u32) -> Result<u64> {
        let before = super::now_millis().saturating_sub(retention.as_millis() as u64);
        self.store.purge_failed(before, limit).await
    }

    /// `noSend` actions whose transaction someone else broadcast (the chain knows it), at most
    /// `limit`, become `unproven`, so their proofs are fetched like any other. Returns how many.
    pub async fn review_no_send(&self, limit: u32) -> Result<usize> {
        let query = ActionQuery { statuses: vec![ActionStatus::NoSend], limit: Some(limit), ..Default::default() };
        let pending: Vec<(String, String)> = self
            .store
            .list_actions(&query)
            .await?
            .items
            .into_iter()
            .filter_map(|a| a.txid.map(|t| (a.reference, hex::encode(t))))
            .collect();
        if pending.is_empty() {
            return Ok(0);
        }
        let txids: Vec<String> = pending.iter().map(|(_, t)| t.clone()).collect();
        let known = match self.chain_tracker()?.tx_status(&txids).await {
            Ok(k) => k,
            Err(e) if e.kind() == ErrorKind::Unsupported => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut sent = 0;
        for ((reference, txid), status) in pending.into_iter().zip(known) {
            if status != TxOnChain::Unknown {
                self.store.set_status(&reference, ActionStatus::Unproven).await?;
                tracing::info!(txid, reference, "a noSend transaction is on the chain: unproven");
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Asks the chain tracker about the transactions of the failed `actions` that were signed:
    /// each one the chain knows (the network took it after all) is un-failed
    /// ([`wallet_traits::OutputStore::unfail_action`]: its inputs spent by it again, its change
    /// back, `unproven`, so the proof is fetched next). Returns the references un-failed. One
    /// whose input another live action holds stays failed until that action fails.
    pub(crate) async fn unfail_known(&self, actions: Vec<ActionRecord>) -> Result<Vec<String>> {
        let signed: Vec<(ActionRecord, [u8; 32])> = actions
            .into_iter()
            .filter(|a| a.status == ActionStatus::Failed && a.raw_tx.is_some())
            .filter_map(|a| a.txid.map(|t| (a, t)))
            .collect();
        if signed.is_empty() {
            return Ok(Vec::new());
        }
        let tracker = self.chain_tracker()?;
        let txids: Vec<String> = signed.iter().map(|(_, t)| hex::encode(t)).collect();
        let known = tracker.tx_status(&txids).await?;
        let mut done = Vec::new();
        for ((action, txid), status) in signed.into_iter().zip(known) {
            if status == TxOnChain::Unknown {
                continue;
            }
            let tx = match Transaction::from_bytes(action.raw_tx.as_deref().unwrap_or_default()) {
                Ok(tx) => tx,
                Err(e) => {
                    tracing::error!(error = %e, reference = %action.reference, "a failed action's transaction does not parse");
                    continue;
                }
            };
            let inputs: Vec<Outpoint> =
                tx.inputs.iter().map(|i| Outpoint::new(super::display(&i.source_txid), i.source_vout)).collect();
            match self.store.unfail_action(&action.reference, &inputs).await {
                Ok(true) => {
                    tracing::warn!(txid = %hex::encode(txid), reference = %action.reference, "a failed action's transaction is on the chain: un-failed");
                    done.push(action.reference);
                }
                Ok(false) => {}
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    tracing::warn!(error = %e, reference = %action.reference, "a failed action on the chain cannot come back yet")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
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
