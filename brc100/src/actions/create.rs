//! `createAction` and `signAction`: a transaction paying the caller's outputs, funded from the
//! wallet's change (input selection as the toolbox does it), with BRC-29 change back to the
//! wallet, signed through the signer's transaction session, verified, recorded, then broadcast.
//!
//! The order is what keeps a crash from spending an output twice: the action is recorded and
//! its inputs reserved before anything is signed, and the signed transaction is committed
//! before it is broadcast; an action that never reaches its commit keeps its inputs reserved
//! until it is failed (abort, a refused broadcast, or [`Actions::fail_abandoned`]).
//!
//! A transaction left for `signAction` is kept with its action in the store as well as in memory
//! (`held.rs`), so `signAction` finishes it after the wallet restarts; committing or failing the
//! action drops the kept copy in the same step, so a finished action is never signed again.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use wallet_bsv::{
    amount, fee::estimated_size, sighash, signature::checksig_format, AtomicBeef, Beef, BeefTx, Script, Transaction,
    TxId, TxInput, TxOutput,
};
use wallet_traits::{
    ActionRecord, ActionStatus, ChangeClaim, Derivation, Error, ErrorKind, InputToSign, Outpoint, OutputRecord, Result,
    SignedAction,
};

use super::{
    beef::BeefBuilder, display, internal, random_base64, validate, Actions, CreateActionArgs, CreateActionResult,
    SignActionArgs, Signable, SignableTransaction, CHANGE_BASKET,
};

/// The options of one `createAction`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub(super) sign_and_process: bool,
    pub(super) accept_delayed_broadcast: bool,
    pub(super) no_send: bool,
    pub(super) return_txid_only: bool,
    pub(super) randomize_outputs: bool,
    pub(super) known_txids: HashSet<TxId>,
    /// Change of earlier `noSend` actions to spend first (chaining unsent transactions).
    pub(super) no_send_change: Vec<Outpoint>,
}

impl Options {
    pub(super) fn from_args(o: Option<&super::CreateActionOptions>) -> Result<Self> {
        let d = super::CreateActionOptions::default();
        let o = o.unwrap_or(&d);
        let known_txids = o
            .known_txids
            .iter()
            .flatten()
            .map(|t| TxId::from_hex(t).map_err(|_| validate::bad("knownTxids", "txids of 64 hex digits")))
            .collect::<Result<_>>()?;
        Ok(Self {
            sign_and_process: o.sign_and_process.unwrap_or(true),
            accept_delayed_broadcast: o.accept_delayed_broadcast.unwrap_or(true),
            no_send: o.no_send.unwrap_or(false),
            return_txid_only: o.return_txid_only.unwrap_or(false),
            randomize_outputs: o.randomize_outputs.unwrap_or(true),
            known_txids,
            no_send_change: o
                .no_send_change
                .iter()
                .flatten()
                .map(|p| Outpoint::parse(p).map_err(|e| e.set_context("parameter", "noSendChange")))
                .collect::<Result<_>>()?,
        })
    }
}

/// An input the wallet signs: the change output it spends.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OwnInput {
    pub(super) index: u32,
    pub(super) output: OutputRecord,
}

/// An output the wallet keeps track of once the transaction is signed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Tracked {
    pub(super) vout: u32,
    pub(super) basket: String,
    pub(super) tags: Vec<String>,
    pub(super) custom_instructions: Option<String>,
    pub(super) description: String,
    pub(super) derivation: Option<Derivation>,
}

/// What finishing an action takes, decided when it was created (kept in the output store in the
/// form of [`super::signable`] while it waits for `signAction`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub(super) reference: String,
    pub(super) options: Options,
    pub(super) own: Vec<OwnInput>,
    pub(super) tracked: Vec<Tracked>,
    /// Its effect on the change balance: change back minus the change spent.
    pub(super) net: i64,
    /// The transactions its inputs spend, with their unproven ancestors.
    pub(super) ancestors: Beef,
}

/// A caller's output, checked.
pub(super) struct Wanted {
    output: TxOutput,
    basket: Option<String>,
    tags: Vec<String>,
    custom_instructions: Option<String>,
    description: String,
}

/// How long a `sending` action is left to the createAction broadcasting it before the
/// background task takes it for one that crashed mid-broadcast.
const SENDING_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The most change outputs one `createAction` makes, however far the basket is from its target
/// (the toolbox's `maxChangeOutputsPerTransaction`): the pool grows over several payments rather
/// than in one large transaction every later BEEF would carry.
pub(super) const MAX_CHANGE_OUTPUTS: usize = 8;

/// One change output's placeholder for the size estimate: P2PKH's 25 bytes.
pub(super) fn change_placeholder() -> TxOutput {
    TxOutput { satoshis: 0, locking_script: Script::p2pkh_lock(&[0; 20]) }
}

/// `total` in `n` amounts (at least 1) of at least `min` each when it holds that much: the minimum
/// each, and the rest cut at random points, so the change outputs of one transaction do not all
/// show the same value.
fn split_change(total: u64, n: usize, min: u64) -> Vec<u64> {
    use rand::Rng;
    let n = n.max(1);
    let Some(extra) = total.checked_sub(min.saturating_mul(n as u64)).filter(|_| n > 1) else {
        // One output, or too little to give each the minimum: equal shares.
        let share = total / n as u64;
        let mut out = vec![share; n];
        out[0] += total - share * n as u64;
        return out;
    };
    let mut cuts: Vec<u64> = (1..n).map(|_| rand::rngs::OsRng.gen_range(0..=extra)).collect();
    cuts.push(0);
    cuts.push(extra);
    cuts.sort_unstable();
    cuts.windows(2).map(|w| min + (w[1] - w[0])).collect()
}

impl Actions {
    /// The fee of `tx` once its unsigned inputs carry P2PKH unlocking scripts: enough for this
    /// crate's integer rule and for @bsv/sdk's floating-point one (which can ask one more).
    pub(super) fn fee_of(&self, tx: &Transaction) -> u64 {
        let size = estimated_size(tx, wallet_bsv::fee::P2PKH_UNLOCKING_SCRIPT_LEN);
        let sdk = ((size as f64 / 1000.0) * self.fee.0 as f64).ceil() as u64;
        self.fee.fee_for_size(size).max(sdk)
    }

    /// `createAction`.
    pub async fn create_action(&self, args: CreateActionArgs) -> Result<CreateActionResult> {
        let description = validate::description(&args.description, "description")?;
        let labels = validate::names(args.labels.as_deref(), "labels")?;
        let options = Options::from_args(args.options.as_ref())?;
        let wanted = wanted_outputs(args.outputs.as_deref().unwrap_or_default())?;
        let input_beef = match args.input_beef.as_deref() {
            Some(b) => Some(self.checked_input_beef(read_any_beef(b)?).await?),
            None => None,
        };
        let mut tx = Transaction {
            version: args.version.unwrap_or(1),
            lock_time: args.lock_time.unwrap_or(0),
            ..Default::default()
        };
        let caller_inputs = args.inputs.as_deref().unwrap_or_default();
        let mut ancestors = BeefBuilder::default();
        if let Some(b) = &input_beef {
            ancestors.merge(b.clone());
        }
        let mut caller_amounts = Vec::with_capacity(caller_inputs.len());
        for input in caller_inputs {
            validate::description(&input.input_description, "inputDescription")?;
            let outpoint = Outpoint::parse(&input.outpoint).map_err(|e| e.set_context("parameter", "inputs"))?;
            let source = self.source_of(&outpoint, input_beef.as_ref(), &mut ancestors).await?;
            caller_amounts.push(source.satoshis);
            let unlocking = match (&input.unlocking_script, input.unlocking_script_length) {
                (Some(s), _) => Script::new(validate::hex_bytes(s, "unlockingScript")?),
                // A placeholder of the announced length, for the size estimate.
                (None, Some(n)) if n <= 10_000 => Script::new(vec![0; n as usize]),
                _ => return Err(validate::bad("inputs", "inputs with an unlockingScript or an unlockingScriptLength")),
            };
            tx.inputs.push(TxInput {
                source_txid: internal(&outpoint.txid),
                source_vout: outpoint.vout,
                unlocking_script: unlocking,
                sequence: input.sequence_number.unwrap_or(u32::MAX),
                source_output: Some(source),
            });
        }
        let caller_total = amount::total(caller_amounts)
            .map_err(|_| validate::bad("inputs", "inputs that hold at most 21 million coins together"))?;
        let caller_signs = caller_inputs.iter().any(|i| i.unlocking_script.is_none());
        if caller_signs || !options.sign_and_process {
            // Refused before anything is reserved; `hold` checks again once the size is known.
            self.held.room_for(args.input_beef.as_ref().map_or(0, Vec::len))?;
        }
        tx.outputs = wanted.iter().map(|w| w.output.clone()).collect();
        let paid = amount::paid(&tx)
            .map_err(|_| validate::bad("outputs", "outputs that pay at most 21 million coins together"))?;
        // Refuse an obvious shortfall before anything is recorded.
        let balance = self.store.balance(CHANGE_BASKET).await?;
        let least = amount::total([paid, self.fee_of(&tx)])?;
        let available = caller_total.saturating_add(balance);
        if available < least {
            return Err(insufficient(least, least - available));
        }
        let reference = random_base64(12);
        self.store.record_action(&unsigned_action(&reference, &description, &labels, &tx), &[]).await?;
        let wallet_outpoints: Vec<Outpoint> =
            caller_inputs.iter().filter_map(|i| Outpoint::parse(&i.outpoint).ok()).collect();
        let drafted = async {
            self.reserve_known(&reference, &wallet_outpoints).await?;
            let chained = match options.no_send_change.as_slice() {
                [] => Vec::new(),
                chained => self.store.reserve_outputs(&reference, chained).await?,
            };
            let own = self.fund(&reference, &mut tx, paid, caller_total, chained).await?;
            self.draft(reference.clone(), options, tx, own, wanted, ancestors).await
        }
        .await;
        let (mut tx, draft) = match drafted {
            Ok(p) => p,
            Err(e) => {
                self.store.fail_action(&reference).await?;
                return Err(e);
            }
        };
        // The placeholders only sized the fee: the caller's scripts come with signAction.
        for (input, given) in tx.inputs.iter_mut().zip(caller_inputs) {
            if given.unlocking_script.is_none() {
                input.unlocking_script = Script::default();
            }
        }
        if caller_signs || !draft.options.sign_and_process {
            let atomic = atomic_beef(&draft.ancestors, &tx)?;
            let signable = Signable { tx, draft };
            let held = async {
                let kept = super::signable::encode(&signable)?;
                self.held.hold(reference.clone(), signable, atomic.len())?;
                // Kept with its action too, so signAction finishes it after a restart.
                self.store.keep_signable(&reference, &kept).await
            };
            if let Err(e) = held.await {
                self.held.take(&reference);
                self.store.fail_action(&reference).await?;
                return Err(e);
            }
            return Ok(CreateActionResult {
                signable_transaction: Some(SignableTransaction { tx: atomic, reference }),
                ..Default::default()
            });
        }
        self.finish(tx, draft).await
    }

    /// `signAction`: the caller's unlocking scripts for the inputs it supplied; the wallet signs
    /// its own and processes the transaction as `createAction` would have. The transaction is
    /// the one held in memory, else the one kept with its action in the store (created before
    /// the wallet restarted); one that is neither, or whose action was committed or failed since,
    /// is refused.
    pub async fn sign_action(&self, args: SignActionArgs) -> Result<CreateActionResult> {
        let waiting = || validate::bad("reference", "the reference of a transaction waiting for signAction");
        let _signing = self.held.begin_signing(&args.reference).ok_or_else(waiting)?;
        let Signable { mut tx, mut draft } = match self.held.take(&args.reference) {
            Some(held) => held,
            None => {
                let kept = self.store.signable(&args.reference).await?.ok_or_else(waiting)?;
                super::signable::decode(&args.reference, &kept)?
            }
        };
        // A refused spend fails the action (which also drops its kept copy), releasing what it
        // reserved now rather than when the background task finds it abandoned.
        if let Err(e) = apply_spends(&mut tx, &mut draft, &args) {
            self.store.fail_action(&args.reference).await?;
            return Err(e);
        }
        self.finish(tx, draft).await
    }

    /// The caller's `inputBEEF`, checked as `internalizeAction` checks a payment: its structure,
    /// its merkle roots with the chain tracker, the scripts and amounts of every unproven
    /// transaction. Without this a made-up parent (any amount, any script) would fund the
    /// transaction, and the surplus would come back as the wallet's own change. A txid-only
    /// entry must be a transaction the wallet recorded, which stands in for it: anything else
    /// could hide where an unproven transaction's money came from.
    async fn checked_input_beef(&self, beef: Beef) -> Result<Beef> {
        let mut resolved = BeefBuilder::default();
        for entry in &beef.txs {
            if let BeefTx::TxidOnly(txid) = entry {
                let display = display(txid);
                match self.store.action_by_txid(&display).await? {
                    Some(action) if action.raw_tx.is_some() => resolved.add_action(&action)?,
                    _ => {
                        return Err(validate::bad(
                            "inputBEEF",
                            &format!(
                                "a BEEF carrying every transaction the wallet has not recorded ({txid} is given by \
                                 txid only)"
                            ),
                        ))
                    }
                }
            }
        }
        resolved.merge(beef);
        let beef = resolved.build().map_err(|e| e.set_context("parameter", "inputBEEF"))?;
        self.verify_beef(&beef, "inputBEEF").await?;
        Ok(beef)
    }

    /// The output `outpoint` spends: from the caller's BEEF, else from the wallet's records.
    async fn source_of(
        &self,
        outpoint: &Outpoint,
        beef: Option<&Beef>,
        ancestors: &mut BeefBuilder,
    ) -> Result<TxOutput> {
        let txid = internal(&outpoint.txid);
        let from_beef = beef.and_then(|b| b.find(&txid)).and_then(|e| e.tx()).map(|t| t.outputs.clone());
        let outputs = match from_beef {
            Some(outputs) => outputs,
            None => {
                let action = self.store.action_by_txid(&outpoint.txid).await?;
                let raw = action.as_ref().and_then(|a| a.raw_tx.as_deref()).ok_or_else(|| {
                    validate::bad("inputBEEF", &format!("a BEEF holding the transaction of input {outpoint}"))
                })?;
                ancestors.add_recorded(self.store.as_ref(), &[outpoint.txid]).await?;
                Transaction::from_bytes(raw)?.outputs
            }
        };
        outputs
            .get(outpoint.vout as usize)
            .cloned()
            .ok_or_else(|| validate::bad("inputs", &format!("outpoints that exist ({outpoint} does not)")))
    }

    /// Reserves the caller's inputs that are outputs the wallet tracks, so nothing else spends them.
    async fn reserve_known(&self, reference: &str, outpoints: &[Outpoint]) -> Result<()> {
        let mut known = Vec::new();
        for o in outpoints {
            if self.store.output(o).await?.is_some() {
                known.push(*o);
            }
        }
        if !known.is_empty() {
            self.store.reserve_outputs(reference, &known).await?;
        }
        Ok(())
    }

    /// Adds change inputs to `tx` until they cover `paid` and the fee (exact match, else the
    /// smallest that covers with the minimum change value to spare, else the largest and again),
    /// and change outputs when something is left over ([`Self::add_change`]). Returns the
    /// wallet's inputs.
    async fn fund(
        &self,
        reference: &str,
        tx: &mut Transaction,
        paid: u64,
        caller_total: u64,
        reserved: Vec<OutputRecord>,
    ) -> Result<Vec<OwnInput>> {
        let params = self.current_change_params();
        // The spendable change before this funding's picks (the chained noSendChange are
        // reserved already): what is left of it after this transaction decides how many change
        // outputs bring the basket toward its target.
        let held = self.spendable_change().await?;
        let mut own: Vec<OwnInput> = Vec::new();
        for output in reserved {
            own.push(spend_into(tx, output)?);
        }
        let chained = own.len();
        // Every amount here is at most 21 million coins, and so is every sum (amount::total).
        let cost = |tx: &Transaction| amount::total([paid, self.fee_of(tx)]);
        loop {
            let have = amount::total(std::iter::once(caller_total).chain(own.iter().map(|o| o.output.satoshis)))?;
            let mut with_change = tx.clone();
            with_change.outputs.push(change_placeholder());
            let cost_with_change = cost(&with_change)?;
            if have > cost_with_change {
                let left = held.saturating_sub((own.len() - chained) as u64);
                let wanted = u64::from(params.target_count).saturating_sub(left).clamp(1, MAX_CHANGE_OUTPUTS as u64);
                self.add_change(tx, have.saturating_sub(paid), wanted as usize, params.min_sats)?;
                return Ok(own);
            }
            if have >= cost(tx)? && !tx.inputs.is_empty() {
                // Too little left over to pay for a change output: it goes to the miner.
                return Ok(own);
            }
            let mut more = with_change.clone();
            more.inputs.push(TxInput::default());
            // The minimum change value to spare, so the change is not dust when one output can
            // avoid it (the toolbox's generateChange asks its inputs for the same margin).
            let target = cost(&more)?.saturating_sub(have).saturating_add(params.min_sats);
            more.outputs.pop();
            let exact = cost(&more)?.saturating_sub(have);
            let Some(output) = self.store.reserve_change(reference, CHANGE_BASKET, target, Some(exact)).await? else {
                return Err(insufficient(cost_with_change, cost_with_change.saturating_sub(have)));
            };
            own.push(spend_into(tx, output)?);
        }
    }

    /// Appends change outputs (placeholders: [`Self::draft`] gives each its key) sharing what
    /// `available` leaves after the fee: `wanted` of them when each then gets at least
    /// `min_sats`, else as many as can, else one with everything (`available` must pay for
    /// that one). Returns how many.
    pub(super) fn add_change(
        &self,
        tx: &mut Transaction,
        available: u64,
        wanted: usize,
        min_sats: u64,
    ) -> Result<usize> {
        let left_with = |n: usize| {
            let mut t = tx.clone();
            t.outputs.extend(std::iter::repeat_with(change_placeholder).take(n));
            available.checked_sub(self.fee_of(&t))
        };
        let mut n = wanted.max(1);
        while n > 1 && left_with(n).is_none_or(|left| left / (n as u64) < min_sats) {
            n -= 1;
        }
        let total = left_with(n).filter(|&left| left > 0).ok_or_else(|| {
            Error::new(ErrorKind::Internal, "change was added to a transaction that cannot pay for it")
        })?;
        for satoshis in split_change(total, n, min_sats) {
            tx.outputs.push(TxOutput { satoshis, ..change_placeholder() });
        }
        Ok(n)
    }

    /// The number of spendable change outputs in the change basket.
    pub(super) async fn spendable_change(&self) -> Result<u64> {
        let query = wallet_traits::OutputQuery {
            basket: Some(CHANGE_BASKET.to_string()),
            spendable_only: true,
            limit: Some(0),
            ..Default::default()
        };
        Ok(self.store.list_outputs(&query).await?.total)
    }

    /// Shuffles the outputs if asked, derives the change key, and says what to record.
    pub(super) async fn draft(
        &self,
        reference: String,
        options: Options,
        mut tx: Transaction,
        own: Vec<OwnInput>,
        wanted: Vec<Wanted>,
        mut ancestors: BeefBuilder,
    ) -> Result<(Transaction, Draft)> {
        let parents: Vec<[u8; 32]> = own.iter().map(|o| o.output.outpoint.txid).collect();
        ancestors.add_recorded(self.store.as_ref(), &parents).await?;
        // Every output after the caller's is change (fund, add_change).
        let change_from = wanted.len();
        let mut order: Vec<usize> = (0..tx.outputs.len()).collect();
        if options.randomize_outputs {
            order.shuffle(&mut rand::rngs::OsRng);
        }
        let outputs = std::mem::take(&mut tx.outputs);
        tx.outputs = order.iter().map(|&i| outputs[i].clone()).collect();
        let vout_of = |i: usize| order.iter().position(|&o| o == i).expect("a permutation") as u32;
        let mut tracked: Vec<Tracked> = wanted
            .into_iter()
            .enumerate()
            .filter_map(|(i, w)| {
                w.basket.map(|basket| Tracked {
                    vout: vout_of(i),
                    basket,
                    tags: w.tags,
                    custom_instructions: w.custom_instructions,
                    description: w.description,
                    derivation: None,
                })
            })
            .collect();
        let spent = amount::total(own.iter().map(|o| o.output.satoshis))?;
        let mut change_back = 0;
        for i in change_from..tx.outputs.len() {
            let vout = vout_of(i);
            let (script, derivation) = self.fresh_change().await?;
            let out = &mut tx.outputs[vout as usize];
            out.locking_script = script;
            change_back = amount::total([change_back, out.satoshis])?;
            tracked.push(Tracked {
                vout,
                basket: CHANGE_BASKET.to_string(),
                tags: Vec::new(),
                custom_instructions: None,
                description: "change".to_string(),
                derivation: Some(derivation),
            });
        }
        // Both at most 21 million coins, so both fit an i64.
        let net = change_back as i64 - spent as i64;
        Ok((tx, Draft { reference, options, own, tracked, net, ancestors: ancestors.build()? }))
    }

    /// Signs the wallet's inputs, verifies every input, commits, and broadcasts unless `noSend`.
    pub(super) async fn finish(&self, tx: Transaction, draft: Draft) -> Result<CreateActionResult> {
        let reference = draft.reference.clone();
        let signed = match self.sign_own(tx, &draft).await {
            Ok(signed) => signed,
            Err(e) => {
                self.store.fail_action(&reference).await?;
                self.release_change(&draft);
                return Err(e);
            }
        };
        let txid = signed.txid();
        let status = if draft.options.no_send { ActionStatus::NoSend } else { ActionStatus::Sending };
        let outputs: Vec<OutputRecord> = draft
            .tracked
            .iter()
            .map(|t| {
                let out = &signed.outputs[t.vout as usize];
                OutputRecord {
                    outpoint: Outpoint::new(display(&txid), t.vout),
                    created_by: reference.clone(),
                    satoshis: out.satoshis,
                    locking_script: out.locking_script.as_bytes().to_vec(),
                    basket: Some(t.basket.clone()),
                    tags: t.tags.clone(),
                    custom_instructions: t.custom_instructions.clone(),
                    description: t.description.clone(),
                    spendable: true,
                    change: t.derivation.is_some(),
                    derivation: t.derivation.clone(),
                    spent_by: None,
                }
            })
            .collect();
        let record = SignedAction {
            txid: display(&txid),
            raw_tx: signed.to_bytes(),
            input_beef: Some(draft.ancestors.to_bytes()?),
            status,
            satoshis: draft.net,
            outputs,
        };
        #[cfg(feature = "fault-injection")]
        if let Some(pause) = self.pause_before_commit {
            tracing::warn!(?pause, "fault injection: pausing between signing and recording");
            tokio::time::sleep(pause).await;
        }
        self.store.commit_action(&reference, &record).await?;
        let atomic = atomic_beef(&draft.ancestors, &signed)?;
        if !draft.options.no_send {
            self.send(&reference, &atomic, draft.options.accept_delayed_broadcast).await?;
        }
        let mut result = CreateActionResult { txid: Some(txid.to_hex()), ..Default::default() };
        if draft.options.no_send {
            let change: Vec<String> = draft
                .tracked
                .iter()
                .filter(|t| t.derivation.is_some())
                .map(|t| Outpoint::new(display(&txid), t.vout).to_string())
                .collect();
            result.no_send_change = Some(change);
        }
        if !draft.options.return_txid_only {
            result.tx = Some(if draft.options.known_txids.is_empty() {
                atomic
            } else {
                let mut b = BeefBuilder::default();
                b.merge(draft.ancestors.clone());
                b.add(signed.clone(), None);
                b.make_txid_only(&draft.options.known_txids);
                AtomicBeef { subject: txid, beef: b.build()? }.to_bytes()?
            });
        }
        Ok(result)
    }

    /// `tx` with the wallet's inputs signed, every input verified against what it spends.
    async fn sign_own(&self, mut tx: Transaction, draft: &Draft) -> Result<Transaction> {
        if tx
            .inputs
            .iter()
            .enumerate()
            .any(|(i, input)| input.unlocking_script.is_empty() && !draft.own.iter().any(|o| o.index as usize == i))
        {
            return Err(validate::bad("spends", "an unlocking script for every input the caller supplied"));
        }
        let mut to_sign = Vec::with_capacity(draft.own.len());
        let mut keys = Vec::with_capacity(draft.own.len());
        for own in &draft.own {
            let (tweak, key) = match &own.output.derivation {
                Some(d) => {
                    let sender = wallet_bsv::brc42::parse_public_key(&d.sender)?;
                    let (h, key) = self.keys.brc29_key(&d.prefix, &d.suffix, &sender).await?;
                    (Some(*h), key)
                }
                None => (None, self.keys.identity()),
            };
            to_sign.push(InputToSign { index: own.index, sighash_type: sighash::ALL_FORKID, tweak });
            keys.push(key);
        }
        if !to_sign.is_empty() {
            // The change is claimed so the cosigners count only what leaves the wallet.
            let mut change = Vec::new();
            for t in &draft.tracked {
                if let Some(d) = &t.derivation {
                    let sender = wallet_bsv::brc42::parse_public_key(&d.sender)?;
                    let tweak = *self.keys.brc29_key(&d.prefix, &d.suffix, &sender).await?.0;
                    change.push(ChangeClaim { vout: t.vout, tweak });
                }
            }
            change.sort_by_key(|c| c.vout);
            let signatures = self.signer.sign_transaction(&tx.to_ef()?, &to_sign, &change).await?;
            for ((input, sig), key) in to_sign.iter().zip(&signatures).zip(&keys) {
                let push = checksig_format(sig, input.sighash_type);
                tx.inputs[input.index as usize].unlocking_script = Script::p2pkh_unlock(&push, key.as_bytes());
            }
        }
        wallet_bsv::interpreter::verify_spends(&tx)?;
        Ok(tx)
    }

    /// Broadcasts a committed action. A refusal fails it (its inputs are spendable again, its
    /// change never appears), unless the chain tracker knows the transaction all the same (a
    /// "double spend" or a lost answer for a transaction the network took): then it stands. Of
    /// a failed action's inputs, those the chain holds spent are marked spent elsewhere instead of
    /// coming back. A service that cannot be reached leaves it `unprocessed` for the background
    /// task when delayed broadcast is accepted.
    pub(super) async fn send(&self, reference: &str, atomic: &[u8], delayed_ok: bool) -> Result<()> {
        let atomic = AtomicBeef::from_bytes(atomic)?;
        let result = match self.broadcaster() {
            Ok(b) => b.broadcast(&super::beef::for_broadcast(&atomic)?).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(accepted) => {
                tracing::info!(txid = %accepted.txid, status = %accepted.status, "broadcast");
                self.store.set_status(reference, ActionStatus::Unproven).await
            }
            Err(e) if delayed_ok && e.kind() == ErrorKind::ServiceUnavailable => {
                tracing::warn!(error = %e, reference, "broadcast delayed: the background task will retry");
                self.store.set_status(reference, ActionStatus::Unprocessed).await
            }
            Err(e) => {
                let txid = atomic.subject.to_string();
                // The wallet's own transaction: one the chain holds (in a mempool or a block) is out.
                if self.on_chain(&txid).await != wallet_traits::TxOnChain::Unknown {
                    tracing::warn!(txid, error = %e, "the broadcast was refused, but the chain knows the transaction: it stands");
                    return self.store.set_status(reference, ActionStatus::Unproven).await;
                }
                self.fail_and_check_inputs(reference).await?;
                Err(Error::new(
                    e.kind(),
                    format!(
                        "the broadcast failed, so the payment was cancelled and its inputs are spendable again: {}",
                        e.message()
                    ),
                ))
            }
        }
    }

    /// Broadcasts actions that were signed but not handed to the network (a delayed broadcast,
    /// or a crash between commit and broadcast), at most `limit`. Returns how many went out.
    pub async fn rebroadcast_pending(&self, limit: u32) -> Result<usize> {
        let query = wallet_traits::ActionQuery {
            statuses: vec![ActionStatus::Unprocessed, ActionStatus::Sending],
            limit: Some(limit),
            ..Default::default()
        };
        // A `sending` action this young may be one whose createAction is broadcasting it now.
        let settled = super::now_millis().saturating_sub(SENDING_GRACE.as_millis() as u64);
        let mut sent = 0;
        for action in self.store.list_actions(&query).await?.items {
            if action.status == ActionStatus::Sending && action.created_at > settled {
                continue;
            }
            let Some(txid) = action.txid else { continue };
            // One unreadable record must not hold up the others: it is logged and skipped.
            let atomic = match Self::atomic_of(&action, &txid) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, reference = %action.reference, "a delayed broadcast cannot be assembled");
                    continue;
                }
            };
            match self.send(&action.reference, &atomic, true).await {
                Ok(()) => sent += 1,
                Err(e) => tracing::warn!(error = %e, reference = %action.reference, "a delayed broadcast was refused"),
            }
        }
        Ok(sent)
    }
}

impl Actions {
    /// The Atomic BEEF of a signed action's transaction, as it goes to the broadcaster again.
    pub(super) fn atomic_of(action: &wallet_traits::ActionRecord, txid: &[u8; 32]) -> Result<Vec<u8>> {
        let mut b = BeefBuilder::default();
        b.add_action(action)?;
        AtomicBeef { subject: internal(txid), beef: b.build()? }.to_bytes()
    }

    /// Asks the broadcaster for the merkle paths of up to `limit` unproven transactions; each
    /// path that holds its transaction and whose root the chain tracker confirms is recorded,
    /// and the action becomes `completed`. Returns how many.
    pub async fn fetch_proofs(&self, limit: u32) -> Result<usize> {
        let query = wallet_traits::ActionQuery {
            statuses: vec![ActionStatus::Unproven],
            limit: Some(limit),
            ..Default::default()
        };
        let mut proven = 0;
        for action in self.store.list_actions(&query).await?.items {
            if let Some(txid) = action.txid {
                proven += usize::from(self.prove(&txid).await? == Proof::Recorded);
            }
        }
        Ok(proven)
    }

    /// Asks the broadcaster for the merkle path of `txid`; records it when it holds the
    /// transaction and the chain tracker confirms its root (the action becomes `completed`).
    /// Without a broadcaster or a tracker nothing is asked.
    pub(super) async fn prove(&self, txid: &[u8; 32]) -> Result<Proof> {
        let (Ok(broadcaster), Ok(tracker)) = (self.broadcaster(), self.chain_tracker()) else {
            return Ok(Proof::NotYet);
        };
        let shown = hex::encode(txid);
        // A service that fails for one transaction, or answers a path that does not hold it,
        // is logged and the round goes on.
        let bytes = match broadcaster.merkle_path(&shown).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Proof::NotYet),
            Err(e) => {
                tracing::warn!(error = %e, txid = %shown, "the proof service could not answer for a transaction");
                return Ok(Proof::Unasked);
            }
        };
        let path = wallet_bsv::MerklePath::from_bytes(&bytes).and_then(|p| Ok((p.compute_root(&internal(txid))?, p)));
        let (root, path) = match path {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, txid = %shown, "no usable merkle path for a transaction");
                return Ok(Proof::NotYet);
            }
        };
        if !tracker.is_valid_root_for_height(&root, path.block_height()).await? {
            tracing::warn!(txid = %shown, "a merkle path's root is not confirmed by the chain tracker");
            return Ok(Proof::NotYet);
        }
        Ok(if self.store.set_merkle_path(txid, &bytes).await? { Proof::Recorded } else { Proof::NotYet })
    }
}

/// What asking for one transaction's proof came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    /// A confirmed path was recorded.
    Recorded,
    /// No usable path yet.
    NotYet,
    /// The proof service could not answer: neither an attempt nor a verdict.
    Unasked,
}

/// The caller's unlocking scripts and options of `signAction`, applied to its transaction.
fn apply_spends(tx: &mut Transaction, draft: &mut Draft, args: &SignActionArgs) -> Result<()> {
    for (index, spend) in &args.spends {
        let input = index.parse::<usize>().ok().and_then(|i| tx.inputs.get_mut(i));
        let Some(input) = input else {
            return Err(validate::bad("spends", "keyed by the indexes of the transaction's inputs"));
        };
        input.unlocking_script = Script::new(validate::hex_bytes(&spend.unlocking_script, "unlockingScript")?);
        if let Some(s) = spend.sequence_number {
            input.sequence = s;
        }
    }
    if let Some(o) = &args.options {
        draft.options.accept_delayed_broadcast =
            o.accept_delayed_broadcast.unwrap_or(draft.options.accept_delayed_broadcast);
        draft.options.no_send = o.no_send.unwrap_or(draft.options.no_send);
        draft.options.return_txid_only = o.return_txid_only.unwrap_or(draft.options.return_txid_only);
    }
    Ok(())
}

/// Adds an input to `tx` spending the wallet's `output`, which the wallet signs.
pub(super) fn spend_into(tx: &mut Transaction, output: OutputRecord) -> Result<OwnInput> {
    let index = u32::try_from(tx.inputs.len()).map_err(|_| Error::new(ErrorKind::InvalidInput, "too many inputs"))?;
    tx.inputs.push(TxInput {
        source_txid: internal(&output.outpoint.txid),
        source_vout: output.outpoint.vout,
        unlocking_script: Script::default(),
        sequence: u32::MAX,
        source_output: Some(TxOutput {
            satoshis: output.satoshis,
            locking_script: Script::new(output.locking_script.clone()),
        }),
    });
    Ok(OwnInput { index, output })
}

/// The caller's outputs, checked.
fn wanted_outputs(outputs: &[super::CreateActionOutput]) -> Result<Vec<Wanted>> {
    outputs
        .iter()
        .map(|o| {
            Ok(Wanted {
                output: TxOutput {
                    satoshis: validate::satoshis(o.satoshis, "satoshis")?,
                    locking_script: Script::new(validate::hex_bytes(&o.locking_script, "lockingScript")?),
                },
                basket: o.basket.as_deref().map(|b| validate::user_basket(b, "basket")).transpose()?,
                tags: validate::names(o.tags.as_deref(), "tags")?,
                custom_instructions: o.custom_instructions.clone(),
                description: validate::description(&o.output_description, "outputDescription")?,
            })
        })
        .collect()
}

pub(super) fn unsigned_action(reference: &str, description: &str, labels: &[String], tx: &Transaction) -> ActionRecord {
    ActionRecord {
        reference: reference.to_string(),
        txid: None,
        status: ActionStatus::Unsigned,
        outgoing: true,
        satoshis: 0,
        description: description.to_string(),
        labels: labels.to_vec(),
        version: tx.version,
        lock_time: tx.lock_time,
        raw_tx: None,
        input_beef: None,
        merkle_path: None,
        created_at: super::now_millis(),
    }
}

/// BRC-100's `WERR_INSUFFICIENT_FUNDS`.
fn insufficient(total: u64, more: u64) -> Error {
    Error::new(
        ErrorKind::InsufficientFunds,
        format!(
            "Insufficient funds in the available inputs to cover the cost of the required outputs and the \
             transaction fee ({more} more satoshis are needed, for a total of {total}); receive a payment first \
             (mpc-wallet receive)"
        ),
    )
    .with_context("totalSatoshisNeeded", total)
    .with_context("moreSatoshisNeeded", more)
}

/// A BEEF of any kind a caller may send: V1, V2 or Atomic.
fn read_any_beef(bytes: &[u8]) -> Result<Beef> {
    Beef::from_bytes(bytes)
        .or_else(|_| AtomicBeef::from_bytes(bytes).map(|a| a.beef))
        .map_err(|e| e.set_context("parameter", "inputBEEF"))
}

/// The Atomic BEEF of `tx` over `ancestors`.
fn atomic_beef(ancestors: &Beef, tx: &Transaction) -> Result<Vec<u8>> {
    let mut b = BeefBuilder::default();
    b.merge(ancestors.clone());
    b.add(tx.clone(), None);
    AtomicBeef { subject: tx.txid(), beef: b.build()? }.to_bytes()
}
