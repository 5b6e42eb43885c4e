//! `listOutputs` and `listActions`.

use wallet_bsv::Transaction;
use wallet_traits::{ActionQuery, ActionRecord, ActionStatus, ErrorKind, OutputQuery, OutputRecord, Result};

use super::{
    beef::BeefBuilder,
    spec_ops::{self, ActionsOp},
    validate, Actions, ListActionsArgs, ListActionsResult, ListOutputsArgs, ListOutputsResult, WalletAction,
    WalletActionInput, WalletActionOutput, WalletOutput,
};

/// Every status but `failed`: what the toolbox lists, and what has paid or may still pay.
pub const LISTED: [ActionStatus; 7] = [
    ActionStatus::Completed,
    ActionStatus::Unprocessed,
    ActionStatus::Sending,
    ActionStatus::Unproven,
    ActionStatus::Unsigned,
    ActionStatus::NoSend,
    ActionStatus::NonFinal,
];

impl Actions {
    /// `listOutputs`: the spendable outputs of a basket, or one of the toolbox's special
    /// operations ([`spec_ops`]).
    pub async fn list_outputs(&self, args: ListOutputsArgs) -> Result<ListOutputsResult> {
        let basket = validate::name(&args.basket, "basket")?;
        let tags = args.tags.as_deref().unwrap_or_default();
        if basket == spec_ops::WALLET_BALANCE || tags.iter().any(|t| t.trim() == spec_ops::WALLET_BALANCE) {
            let balance = self.store.balance(super::CHANGE_BASKET).await?;
            return Ok(ListOutputsResult { total_outputs: balance, beef: None, outputs: Vec::new() });
        }
        if basket == spec_ops::INVALID_CHANGE {
            // As the toolbox: the change (every basket with tag `all`) checked against the chain,
            // the invalid listed, and with tag `release` marked no longer spendable.
            let all = tags.iter().any(|t| t.trim() == "all");
            let release = tags.iter().any(|t| t.trim() == "release");
            let basket = (!all).then_some(super::CHANGE_BASKET);
            let review = self.review_utxos(basket, release, super::MAX_REVIEW).await?;
            let outputs: Vec<WalletOutput> = review
                .spent_elsewhere
                .into_iter()
                .map(|o| WalletOutput {
                    satoshis: o.satoshis,
                    locking_script: Some(hex::encode(&o.locking_script)),
                    spendable: !release,
                    custom_instructions: None,
                    tags: None,
                    outpoint: o.outpoint.to_string(),
                    labels: None,
                })
                .collect();
            return Ok(ListOutputsResult { total_outputs: outputs.len() as u64, beef: None, outputs });
        }
        if basket == spec_ops::SET_WALLET_CHANGE_PARAMS {
            // As the toolbox: the two tags set the change parameters, and the listing is empty.
            self.set_change_params(spec_ops::change_params(tags)?)?;
            return Ok(ListOutputsResult { total_outputs: 0, beef: None, outputs: Vec::new() });
        }
        let include = match args.include.as_deref() {
            None => None,
            Some(i @ ("locking scripts" | "entire transactions")) => Some(i),
            Some(_) => return Err(validate::bad("include", "`locking scripts` or `entire transactions`")),
        };
        let query = OutputQuery {
            basket: Some(basket),
            tags: validate::names(args.tags.as_deref(), "tags")?,
            tag_mode: args.tag_query_mode.unwrap_or_default(),
            spendable_only: true,
            limit: Some(validate::limit(args.limit)?),
            offset: args.offset.unwrap_or(0),
            ..Default::default()
        };
        let page = self.store.list_outputs(&query).await?;
        let beef = if include == Some("entire transactions") {
            let mut b = BeefBuilder::default();
            let txids: Vec<[u8; 32]> = page.items.iter().map(|o| o.outpoint.txid).collect();
            b.add_recorded(self.store.as_ref(), &txids).await?;
            Some(b.build()?.to_bytes()?)
        } else {
            None
        };
        let mut outputs = Vec::with_capacity(page.items.len());
        for o in page.items {
            let labels = if args.include_labels.unwrap_or(false) {
                Some(self.store.action(&o.created_by).await?.map(|a| a.labels).unwrap_or_default())
            } else {
                None
            };
            outputs.push(WalletOutput {
                satoshis: o.satoshis,
                locking_script: (include == Some("locking scripts")).then(|| hex::encode(&o.locking_script)),
                spendable: o.spendable,
                custom_instructions: if args.include_custom_instructions.unwrap_or(false) {
                    o.custom_instructions
                } else {
                    None
                },
                tags: args.include_tags.unwrap_or(false).then_some(o.tags),
                outpoint: o.outpoint.to_string(),
                labels,
            });
        }
        Ok(ListOutputsResult { total_outputs: page.total, beef, outputs })
    }

    /// `listActions`: actions with the given labels (every action when none), failed ones left
    /// out; or, with a special operation's label ([`spec_ops`]), only `nosend` actions (aborted
    /// with the label `abort`) or only `failed` ones.
    pub async fn list_actions(&self, args: ListActionsArgs) -> Result<ListActionsResult> {
        let (op, labels) = spec_ops::partition_labels(validate::names(Some(&args.labels), "labels")?);
        let statuses = match op {
            None => LISTED.to_vec(),
            Some(ActionsOp::NoSend { .. }) => vec![ActionStatus::NoSend],
            Some(ActionsOp::Failed { .. }) => vec![ActionStatus::Failed],
        };
        let query = ActionQuery {
            labels,
            label_mode: args.label_query_mode.unwrap_or_default(),
            statuses,
            limit: Some(validate::limit(args.limit)?),
            offset: args.offset.unwrap_or(0),
        };
        let mut page = self.store.list_actions(&query).await?;
        if op == Some(ActionsOp::NoSend { abort: true }) {
            // As abortAction does, newest first: a noSend action spending another's change is
            // aborted before the one it spends from. One whose change a transaction that went
            // out has spent cannot be aborted: it stays `nosend` in the answer.
            for a in page.items.iter_mut().rev().filter(|a| a.status == ActionStatus::NoSend) {
                self.held.take(&a.reference);
                match self.store.fail_action(&a.reference).await {
                    Ok(_) => a.status = ActionStatus::Failed,
                    Err(e) if e.kind() == ErrorKind::Conflict => {
                        tracing::info!(reference = %a.reference, "noSend action not aborted: {e}")
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if op == Some(ActionsOp::Failed { unfail: true }) {
            // The toolbox queues these for its monitor; here each is looked for on the chain now
            // and listed with the status it has after.
            let back = self.unfail_known(page.items.clone()).await?;
            for a in page.items.iter_mut().filter(|a| back.contains(&a.reference)) {
                a.status = ActionStatus::Unproven;
            }
        }
        let mut actions = Vec::with_capacity(page.items.len());
        for a in page.items {
            actions.push(self.wallet_action(a, &args).await?);
        }
        Ok(ListActionsResult { total_actions: page.total, actions })
    }

    async fn wallet_action(&self, a: ActionRecord, args: &ListActionsArgs) -> Result<WalletAction> {
        let tx = a.raw_tx.as_deref().map(Transaction::from_bytes).transpose()?;
        let inputs = match (&tx, args.include_inputs.unwrap_or(false)) {
            (Some(tx), true) => Some(self.action_inputs(tx, &a, args).await?),
            _ => None,
        };
        let outputs = if args.include_outputs.unwrap_or(false) {
            let query = OutputQuery { created_by: Some(a.reference.clone()), ..Default::default() };
            let recorded = self.store.list_outputs(&query).await?.items;
            Some(
                recorded
                    .into_iter()
                    .map(|o| action_output(o, args.include_output_locking_scripts.unwrap_or(false)))
                    .collect(),
            )
        } else {
            None
        };
        Ok(WalletAction {
            txid: a.txid.map(hex::encode).unwrap_or_default(),
            satoshis: a.satoshis,
            status: a.status,
            is_outgoing: a.outgoing,
            description: a.description,
            labels: args.include_labels.unwrap_or(false).then_some(a.labels),
            version: a.version,
            lock_time: a.lock_time,
            inputs,
            outputs,
        })
    }

    /// The inputs of a recorded transaction, with what they spend where the wallet knows it.
    async fn action_inputs(
        &self,
        tx: &Transaction,
        a: &ActionRecord,
        args: &ListActionsArgs,
    ) -> Result<Vec<WalletActionInput>> {
        let mut ancestors = BeefBuilder::default();
        ancestors.add_action(a)?;
        let beef = ancestors.build()?;
        let resolved = super::internalize::with_sources(&beef, tx, "tx").unwrap_or_else(|_| tx.clone());
        let mut out = Vec::with_capacity(tx.inputs.len());
        for input in &resolved.inputs {
            let outpoint = wallet_traits::Outpoint::new(super::display(&input.source_txid), input.source_vout);
            let recorded = self.store.output(&outpoint).await?;
            let (satoshis, script) = match (&input.source_output, &recorded) {
                (Some(o), _) => (o.satoshis, Some(o.locking_script.as_bytes().to_vec())),
                (None, Some(r)) => (r.satoshis, Some(r.locking_script.clone())),
                (None, None) => (0, None),
            };
            out.push(WalletActionInput {
                source_outpoint: outpoint.to_string(),
                source_satoshis: satoshis,
                source_locking_script: script
                    .filter(|_| args.include_input_source_locking_scripts.unwrap_or(false))
                    .map(hex::encode),
                unlocking_script: args
                    .include_input_unlocking_scripts
                    .unwrap_or(false)
                    .then(|| input.unlocking_script.to_hex()),
                input_description: recorded
                    .map(|r| r.description)
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "input".into()),
                sequence_number: input.sequence,
            });
        }
        Ok(out)
    }
}

fn action_output(o: OutputRecord, with_script: bool) -> WalletActionOutput {
    WalletActionOutput {
        satoshis: o.satoshis,
        locking_script: with_script.then(|| hex::encode(&o.locking_script)),
        spendable: o.spendable,
        custom_instructions: o.custom_instructions,
        tags: o.tags,
        output_index: o.outpoint.vout,
        output_description: o.description,
        basket: o.basket.unwrap_or_default(),
    }
}
