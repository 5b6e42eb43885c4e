//! `internalizeAction`: a transaction someone else made, taken into the wallet's books once it
//! checks out: the BEEF's structure, the merkle roots (through the chain tracker), the scripts
//! and amounts of every unproven transaction, and each claimed output's remittance.

use std::collections::HashSet;

use wallet_bsv::{brc29, hash::hash160, AtomicBeef, Beef, BeefTx, Script, Transaction};
use wallet_traits::{
    ActionRecord, ActionStatus, Derivation, Error, ErrorKind, Outpoint, OutputRecord, PublicKey, Result, TxOnChain,
};

use super::{display, random_base64, validate, Actions, InternalizeActionArgs, InternalizeOutput, CHANGE_BASKET};

/// What one claimed output becomes in the books.
struct Claim {
    vout: u32,
    basket: String,
    tags: Vec<String>,
    custom_instructions: Option<String>,
    derivation: Option<Derivation>,
}

impl Actions {
    /// `internalizeAction`: checks the Atomic BEEF `tx` and records the listed outputs, a
    /// `wallet payment` as spendable change, a `basket insertion` in its basket. A transaction new
    /// to the wallet and not yet mined is broadcast first; a refusal stores nothing. The same
    /// transaction twice adds only outputs not yet recorded.
    pub async fn internalize_action(&self, args: InternalizeActionArgs) -> Result<bool> {
        let description = validate::description(&args.description, "description")?;
        let labels = validate::names(args.labels.as_deref(), "labels")?;
        let atomic = AtomicBeef::from_bytes(&args.tx).map_err(|e| e.set_context("parameter", "tx"))?;
        self.verify_beef(&atomic.beef, "tx").await?;
        let tx = atomic.subject_tx().clone();
        let claims = self.claims(&tx, &args.outputs).await?;
        let txid = display(&atomic.subject);
        let known = self.store.action_by_txid(&txid).await?;
        if let Some(known) = &known {
            if !matches!(known.status, ActionStatus::Completed | ActionStatus::Unproven | ActionStatus::NoSend) {
                return Err(validate::bad(
                    "tx",
                    &format!("a transaction the wallet can take in (it has it as {})", known.status),
                ));
            }
        }
        let subject_bump = match atomic.beef.txs.last() {
            Some(BeefTx::Full { bump: Some(i), .. }) => atomic.beef.bumps.get(*i).cloned(),
            _ => None,
        };
        if known.is_none() && subject_bump.is_none() {
            self.broadcast_received(&atomic).await?;
        }
        let reference = random_base64(12);
        let outputs: Vec<OutputRecord> = claims
            .into_iter()
            .map(|c| {
                let out = &tx.outputs[c.vout as usize];
                OutputRecord {
                    outpoint: Outpoint::new(txid, c.vout),
                    created_by: reference.clone(),
                    satoshis: out.satoshis,
                    locking_script: out.locking_script.as_bytes().to_vec(),
                    change: c.derivation.is_some(),
                    basket: Some(c.basket),
                    tags: c.tags,
                    custom_instructions: c.custom_instructions,
                    description: String::new(),
                    spendable: true,
                    derivation: c.derivation,
                    spent_by: None,
                }
            })
            .collect();
        let received = wallet_bsv::amount::total(outputs.iter().filter(|o| o.change).map(|o| o.satoshis))?;
        let mut ancestors = atomic.beef.clone();
        ancestors.txs.pop();
        let action = ActionRecord {
            reference,
            txid: Some(txid),
            status: if subject_bump.is_some() { ActionStatus::Completed } else { ActionStatus::Unproven },
            outgoing: false,
            // At most 21 million coins: fits an i64.
            satoshis: received as i64,
            description,
            labels,
            version: tx.version,
            lock_time: tx.lock_time,
            raw_tx: Some(tx.to_bytes()),
            input_beef: if subject_bump.is_some() { None } else { Some(ancestors.to_bytes()?) },
            merkle_path: subject_bump.map(|p| p.to_bytes()),
            created_at: super::now_millis(),
        };
        let recorded = self.store.record_action(&action, &outputs).await?;
        tracing::info!(
            txid = %hex::encode(txid),
            new = recorded.new_action,
            outputs_added = recorded.outputs_added,
            "internalized a transaction"
        );
        Ok(true)
    }

    /// Checks a received BEEF as @bsv/sdk's `Beef.verify` and `Transaction.verify` do: its
    /// structure, every merkle root with the chain tracker, and for every transaction without a
    /// proof its scripts and that its inputs cover its outputs. A refusal names `parameter`.
    pub(crate) async fn verify_beef(&self, beef: &Beef, parameter: &str) -> Result<()> {
        let roots = beef.verify_structure(false).map_err(|e| e.set_context("parameter", parameter))?;
        let tracker = self.chain_tracker()?;
        for (height, root) in roots {
            if !tracker.is_valid_root_for_height(&root, height).await? {
                return Err(validate::bad(
                    parameter,
                    &format!("a BEEF whose merkle roots the chain tracker confirms (block {height}'s is not)"),
                ));
            }
        }
        for entry in &beef.txs {
            if let BeefTx::Full { tx, bump: None } = entry {
                let resolved = with_sources(beef, tx, parameter)?;
                check_amounts(&resolved, parameter)?;
                wallet_bsv::interpreter::verify_spends(&resolved).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("transaction {} of the BEEF does not verify: {}", tx.txid(), e.message()),
                    )
                    .set_context("parameter", parameter)
                })?;
            }
        }
        Ok(())
    }

    /// What each listed output is to become, checked against the transaction.
    async fn claims(&self, tx: &Transaction, outputs: &[InternalizeOutput]) -> Result<Vec<Claim>> {
        if outputs.is_empty() {
            return Err(validate::bad("outputs", "at least one output to take in"));
        }
        let mut seen = HashSet::new();
        let mut claims = Vec::with_capacity(outputs.len());
        for o in outputs {
            let Some(out) = tx.outputs.get(o.output_index as usize) else {
                return Err(validate::bad(
                    "outputIndex",
                    &format!("a valid output index in range 0 to {}", tx.outputs.len().saturating_sub(1)),
                ));
            };
            if !seen.insert(o.output_index) {
                return Err(validate::bad("outputs", "unique outputIndex values"));
            }
            claims.push(match (o.protocol.as_str(), &o.payment_remittance, &o.insertion_remittance) {
                ("wallet payment", Some(p), None) => {
                    let sender = wallet_bsv::brc42::parse_public_key(&p.sender_identity_key)
                        .map_err(|_| validate::bad("senderIdentityKey", "a compressed public key in hex"))?;
                    let key = self.keys.brc29_key(&p.derivation_prefix, &p.derivation_suffix, &sender).await?.1;
                    if out.locking_script != Script::p2pkh_lock(&hash160(key.as_bytes())) {
                        return Err(validate::bad(
                            "paymentRemittance",
                            &format!(
                                "the BRC-29 remittance of output {}: its script is not P2PKH to the key that \
                                 prefix, suffix and sender derive",
                                o.output_index
                            ),
                        ));
                    }
                    Claim {
                        vout: o.output_index,
                        basket: CHANGE_BASKET.to_string(),
                        tags: Vec::new(),
                        custom_instructions: None,
                        derivation: Some(Derivation {
                            prefix: p.derivation_prefix.clone(),
                            suffix: p.derivation_suffix.clone(),
                            sender: sender.to_hex(),
                        }),
                    }
                }
                ("basket insertion", None, Some(b)) => Claim {
                    vout: o.output_index,
                    basket: validate::user_basket(&b.basket, "basket")?,
                    tags: validate::names(b.tags.as_deref(), "tags")?,
                    custom_instructions: b.custom_instructions.clone(),
                    derivation: None,
                },
                ("wallet payment", ..) => {
                    return Err(validate::bad("wallet payment", "valid paymentRemittance and no insertionRemittance"))
                }
                ("basket insertion", ..) => {
                    return Err(validate::bad("basket insertion", "valid insertionRemittance and no paymentRemittance"))
                }
                _ => return Err(validate::bad("protocol", "`wallet payment` or `basket insertion`")),
            });
        }
        Ok(claims)
    }

    /// Hands a received transaction to the network: the BEEF as V1 when it carries every
    /// transaction, else the subject in Extended Format. A refusal for a transaction the chain
    /// holds mined (a lost answer, a "double spend" answer for a transaction a block took) is no
    /// refusal: the payment is real and is recorded. One only in a mempool is not enough: a
    /// sender who double-spends its payment makes the broadcaster answer "double spend" while
    /// some mempool still holds the payment, which may never be mined.
    async fn broadcast_received(&self, atomic: &AtomicBeef) -> Result<()> {
        let broadcaster = self.broadcaster()?;
        let bytes = super::beef::for_broadcast(atomic)?;
        match broadcaster.broadcast(&bytes).await {
            Ok(accepted) => {
                tracing::info!(txid = %accepted.txid, status = %accepted.status, "broadcast a received transaction");
                Ok(())
            }
            Err(e) if matches!(self.on_chain(&atomic.subject.to_string()).await, TxOnChain::Mined { .. }) => {
                tracing::warn!(txid = %atomic.subject, error = %e, "a received transaction was refused, but the chain holds it mined");
                Ok(())
            }
            Err(e) => Err(Error::new(
                e.kind(),
                format!("the network did not take the transaction, so the wallet did not record it: {}", e.message()),
            )),
        }
    }
}

/// `tx` with every input's source output filled in from the BEEF; a refusal names `parameter`.
pub(crate) fn with_sources(beef: &Beef, tx: &Transaction, parameter: &str) -> Result<Transaction> {
    let mut resolved = tx.clone();
    for (i, input) in resolved.inputs.iter_mut().enumerate() {
        if input.source_output.is_some() {
            continue;
        }
        let parent = beef.find(&input.source_txid).and_then(BeefTx::tx).ok_or_else(|| {
            validate::bad(parameter, &format!("a BEEF that holds the transaction input {i} of {} spends", tx.txid()))
        })?;
        let output = parent.outputs.get(input.source_vout as usize).ok_or_else(|| {
            validate::bad(
                parameter,
                &format!("a BEEF whose transactions spend outputs that exist (input {i} of {})", tx.txid()),
            )
        })?;
        input.source_output = Some(output.clone());
    }
    Ok(resolved)
}

/// The inputs of `tx` (sources resolved) hold at least what its outputs pay.
fn check_amounts(tx: &Transaction, parameter: &str) -> Result<()> {
    use wallet_bsv::amount;
    match (amount::spent(tx), amount::paid(tx)) {
        (Some(Ok(i)), Ok(o)) if i >= o => Ok(()),
        _ => Err(validate::bad(
            parameter,
            &format!("a BEEF whose transaction {} spends no more than its inputs hold", tx.txid()),
        )),
    }
}

impl super::KeyMethods {
    /// The BRC-29 key of a payment from `sender` with `prefix` and `suffix`, as the recipient
    /// derives it: the tweak and the child public key (`forSelf`).
    pub(crate) async fn brc29_key(
        &self,
        prefix: &str,
        suffix: &str,
        sender: &PublicKey,
    ) -> Result<(zeroize::Zeroizing<[u8; 32]>, PublicKey)> {
        let invoice = brc29::invoice(prefix, suffix)?;
        let shared = self.shared_secret(sender).await?;
        let h = zeroize::Zeroizing::new(wallet_bsv::brc42::tweak(&shared, &invoice));
        let key = wallet_bsv::brc42::child_public_key(&self.identity(), &h)?;
        Ok((h, key))
    }
}
