//! Consolidation: the smallest confirmed, unreserved change outputs merged into fresh BRC-29
//! change, so the change basket keeps near its target count ([`super::ChangeParams`]) and dust
//! does not pile up (many small inputs make every later payment larger and dearer).
//!
//! A consolidation is an ordinary action (description and label `consolidation`), made as
//! `createAction` makes one: recorded `unsigned`, its inputs reserved through the store (so a
//! concurrent payment cannot pick them), signed through the signer with a change claim for every
//! output (the cosigners' spending policies see only the fee leave the wallet), verified,
//! committed, then broadcast; a failure on the way fails the action, which releases its inputs.

use std::collections::HashMap;

use wallet_bsv::{amount, fee::P2PKH_UNLOCKING_SCRIPT_LEN, Transaction};
use wallet_traits::{max_inputs_per_session, ActionStatus, ErrorKind, OutputQuery, OutputRecord, Result};

use super::{
    beef::BeefBuilder,
    create::{change_placeholder, spend_into, unsigned_action, Options, OwnInput},
    random_base64, validate, Actions, CHANGE_BASKET,
};

/// The most inputs one consolidation merges, whatever it is asked: what one round of side-by-side
/// signing sessions of a two-party signing takes (the engine runs four at once,
/// `max_inputs_per_session` inputs each); a larger key signs them in more rounds.
pub const MAX_CONSOLIDATE_INPUTS: usize = 4 * max_inputs_per_session(2);

/// The description and label of a consolidation's action.
pub const CONSOLIDATION_LABEL: &str = "consolidation";

/// The bytes one P2PKH input adds to a transaction: outpoint (36), script length (1), the
/// unlocking script, sequence (4).
const P2PKH_INPUT_LEN: usize = 36 + 1 + P2PKH_UNLOCKING_SCRIPT_LEN + 4;

/// What [`Actions::consolidate`] merged (or, for a dry run, would merge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consolidation {
    /// The consolidation's txid (display hex); `None` for a dry run, which signs nothing.
    pub txid: Option<String>,
    /// How many change outputs it spends.
    pub inputs: usize,
    /// What those outputs hold together.
    pub satoshis_in: u64,
    /// The fee it pays: all that leaves the wallet.
    pub fee: u64,
    /// How many fresh change outputs it makes.
    pub outputs: usize,
}

impl Actions {
    /// Merges the smallest confirmed (their transaction proven), unreserved spendable change
    /// outputs into fresh BRC-29 change, when the change basket holds more than the target count
    /// or holds dust (below the minimum value), at most `max_inputs` of them (and at most
    /// [`MAX_CONSOLIDATE_INPUTS`]). An output that does not pay for its own input's bytes at the
    /// wallet's fee rate is left alone. `None` when nothing is worth doing: too few outputs to
    /// merge (merging one into one reduces nothing), or a merge that would not pay its fee.
    ///
    /// `dry_run` says what it would merge without reserving or signing anything. Otherwise the
    /// merge is an action labelled [`CONSOLIDATION_LABEL`], created, signed and broadcast as
    /// `createAction` does it; on a failure its inputs are released and the error returned.
    pub async fn consolidate(&self, max_inputs: usize, dry_run: bool) -> Result<Option<Consolidation>> {
        if max_inputs < 2 {
            return Err(validate::bad("max_inputs", "at least 2: merging one output into one reduces nothing"));
        }
        let picked = self.consolidation_inputs(max_inputs.min(MAX_CONSOLIDATE_INPUTS)).await?;
        if dry_run {
            return Ok(self.consolidation_tx(picked)?.map(|(tx, own, fee)| Consolidation {
                txid: None,
                inputs: own.len(),
                satoshis_in: own.iter().map(|o| o.output.satoshis).sum(),
                fee,
                outputs: tx.outputs.len(),
            }));
        }
        if picked.len() < 2 {
            return Ok(None);
        }
        let reference = random_base64(12);
        let labels = [CONSOLIDATION_LABEL.to_string()];
        let record = unsigned_action(
            &reference,
            CONSOLIDATION_LABEL,
            &labels,
            &Transaction { version: 1, ..Default::default() },
        );
        self.store.record_action(&record, &[]).await?;
        let drafted = async {
            // One at a time: an output a payment took since it was listed is skipped, not a failure.
            let mut reserved = Vec::with_capacity(picked.len());
            for o in &picked {
                match self.store.reserve_outputs(&reference, &[o.outpoint]).await {
                    Ok(mut got) => reserved.append(&mut got),
                    Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                        tracing::debug!(outpoint = %o.outpoint, "taken since it was listed: not merged")
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some((tx, own, fee)) = self.consolidation_tx(reserved)? else { return Ok(None) };
            let options = Options { return_txid_only: true, randomize_outputs: false, ..Options::from_args(None)? };
            let (tx, draft) =
                self.draft(reference.clone(), options, tx, own, Vec::new(), BeefBuilder::default()).await?;
            Ok(Some((tx, draft, fee)))
        }
        .await;
        let (tx, draft, fee) = match drafted {
            Ok(Some(d)) => d,
            // Fails the action: whatever it reserved is spendable again.
            Ok(None) => {
                self.store.fail_action(&reference).await?;
                return Ok(None);
            }
            Err(e) => {
                self.store.fail_action(&reference).await?;
                return Err(e);
            }
        };
        let satoshis_in = amount::total(draft.own.iter().map(|o| o.output.satoshis))?;
        let (inputs, outputs) = (tx.inputs.len(), tx.outputs.len());
        // Signs, verifies, commits and broadcasts; a failure there fails the action itself.
        let result = self.finish(tx, draft).await?;
        tracing::info!(txid = ?result.txid, inputs, satoshis_in, fee, "consolidated change outputs");
        Ok(Some(Consolidation { txid: result.txid, inputs, satoshis_in, fee, outputs }))
    }

    /// The change outputs a consolidation would merge now, smallest first: every confirmed one
    /// below the minimum value, and as many more of the smallest as bring the basket down to its
    /// target count, at most `max_inputs`.
    async fn consolidation_inputs(&self, max_inputs: usize) -> Result<Vec<OutputRecord>> {
        let params = self.current_change_params();
        let query = OutputQuery { basket: Some(CHANGE_BASKET.to_string()), spendable_only: true, ..Default::default() };
        // Spendable excludes what an action reserved; only the wallet's own change is merged.
        let mut held: Vec<OutputRecord> =
            self.store.list_outputs(&query).await?.items.into_iter().filter(|o| o.change).collect();
        // An output worth less than the bytes of its input would pay the miner to be merged; it
        // does not count toward the target either (merging others cannot make up for it).
        let own_input_fee = self.fee.fee_for_size(P2PKH_INPUT_LEN);
        held.retain(|o| o.satoshis > own_input_fee);
        // Merging k outputs into one removes k - 1.
        let over = held.len().saturating_sub(params.target_count as usize);
        let to_target = if over > 0 { over + 1 } else { 0 };
        held.sort_by_key(|o| (o.satoshis, o.outpoint));
        let mut proven: HashMap<String, bool> = HashMap::new();
        let mut picked = Vec::new();
        for o in held {
            if picked.len() >= max_inputs || (picked.len() >= to_target && o.satoshis >= params.min_sats) {
                break;
            }
            // Confirmed only: an unproven parent may still be dropped, and its child with it.
            let confirmed = match proven.get(&o.created_by) {
                Some(&c) => c,
                None => {
                    let action = self.store.action(&o.created_by).await?;
                    let c = action.is_some_and(|a| a.status == ActionStatus::Completed);
                    proven.insert(o.created_by.clone(), c);
                    c
                }
            };
            if confirmed {
                picked.push(o);
            }
        }
        Ok(picked)
    }

    /// The consolidation spending `inputs`: the unsigned transaction (its one output a
    /// placeholder holding what is left after the fee), the wallet's inputs and the fee; `None`
    /// when there are fewer than two inputs or they do not pay for the transaction.
    fn consolidation_tx(&self, inputs: Vec<OutputRecord>) -> Result<Option<(Transaction, Vec<OwnInput>, u64)>> {
        if inputs.len() < 2 {
            return Ok(None);
        }
        let total = amount::total(inputs.iter().map(|o| o.satoshis))?;
        let mut tx = Transaction { version: 1, lock_time: 0, ..Default::default() };
        let own = inputs.into_iter().map(|o| spend_into(&mut tx, o)).collect::<Result<Vec<_>>>()?;
        tx.outputs.push(change_placeholder());
        let fee = self.fee_of(&tx);
        match total.checked_sub(fee) {
            Some(left) if left > 0 => {
                tx.outputs[0].satoshis = left;
                Ok(Some((tx, own, fee)))
            }
            _ => Ok(None),
        }
    }
}
