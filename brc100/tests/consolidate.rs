//! Change management over a real SQLite output store, with the single-key reference as the signer
//! (wrapped so each signing session can be read as a cosigner's spending policy reads it) and the
//! in-test chain services of `tests/actions.rs`: consolidation (`Actions::consolidate`), the
//! change parameters and `specOpSetWalletChangeParams`, and `createAction` splitting its change
//! toward the target count. @bsv/sdk checks a consolidation in `interop/consolidate.test.mjs`.

#[path = "payments/mod.rs"]
mod payments;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use payments::{internalize_all, pay, Chain};
use wallet_brc100::{
    actions::{
        spec_ops, Actions, ChangeParams, Consolidation, CreateActionOptions, ListActionsArgs, ListOutputsArgs,
        CONSOLIDATION_LABEL,
    },
    KeyMethods, SingleKey,
};
use wallet_bsv::{interpreter, AtomicBeef, Beef, BeefTx, Network, Transaction};
use wallet_traits::{
    ActionRecord, ActionStatus, ChainServices, ChangeClaim, EcdsaSignature, ErrorKind, InputToSign, Outpoint,
    OutputQuery, OutputRecord, PublicKey, Result, Signer,
};

const RATE: u64 = 50;

/// What a signing session was asked: the transaction (Extended Format), the inputs, the change
/// claims.
type Session = (Vec<u8>, Vec<InputToSign>, Vec<ChangeClaim>);

/// The single key, keeping every transaction signing session it is asked for.
#[derive(Debug)]
struct Recording {
    key: Arc<SingleKey>,
    sessions: Mutex<Vec<Session>>,
}

#[async_trait]
impl Signer for Recording {
    fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        self.key.sign_digest(digest, tweak).await
    }

    async fn sign_transaction(
        &self,
        tx_ef: &[u8],
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<Vec<EcdsaSignature>> {
        self.sessions.lock().unwrap().push((tx_ef.to_vec(), inputs.to_vec(), change.to_vec()));
        self.key.sign_transaction(tx_ef, inputs, change).await
    }
}

struct Fixture {
    actions: Actions,
    chain: Arc<Chain>,
    signer: Arc<Recording>,
    identity: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SingleKey::from_bytes(rand::random()).unwrap());
    let chain = Arc::new(Chain::default());
    let store =
        wallet_backend_sqlite::SqliteOutputStore::open(dir.path().join("books.db"), "consolidate-test").await.unwrap();
    let keys = Arc::new(KeyMethods::new(key.clone(), key.clone(), Network::Mainnet));
    let services = ChainServices { broadcaster: Some(chain.clone()), chain_tracker: Some(chain.clone()) };
    let signer = Arc::new(Recording { key: key.clone(), sessions: Mutex::new(Vec::new()) });
    let actions = Actions::new(keys, signer.clone(), Arc::new(store), services, RATE);
    Fixture { actions, chain, signer, identity: key.public_key().to_hex(), _dir: dir }
}

/// Takes in one transaction paying the wallet each of `amounts`, mined (confirmed) or not.
async fn receive(f: &Fixture, amounts: &[u64], mined: bool) -> Vec<Outpoint> {
    let sender = SingleKey::from_bytes(rand::random()).unwrap();
    let (tx, remittances) = payments::payments_in(&f.chain, &sender, &f.identity, amounts, mined).await;
    let txid = AtomicBeef::from_bytes(&tx).unwrap().subject;
    f.actions.internalize_action(internalize_all(tx, remittances)).await.unwrap();
    let mut display = txid.0;
    display.reverse();
    (0..amounts.len() as u32).map(|vout| Outpoint::new(display, vout)).collect()
}

async fn balance(f: &Fixture) -> u64 {
    f.actions.store().balance("default").await.unwrap()
}

/// The spendable change, smallest first.
async fn change(f: &Fixture) -> Vec<OutputRecord> {
    let query = OutputQuery { basket: Some("default".into()), spendable_only: true, ..Default::default() };
    let mut outputs = f.actions.store().list_outputs(&query).await.unwrap().items;
    outputs.sort_by_key(|o| o.satoshis);
    outputs
}

/// The last transaction the broadcaster took, with each input's source output from its BEEF,
/// every input's script verified.
fn last_broadcast(f: &Fixture) -> Transaction {
    let sent = f.chain.sent.lock().unwrap().last().cloned().unwrap();
    let beef = Beef::from_bytes(&sent).unwrap();
    let mut tx = beef.txs.last().and_then(BeefTx::tx).unwrap().clone();
    for input in &mut tx.inputs {
        let parent = beef.find(&input.source_txid).and_then(BeefTx::tx).unwrap();
        input.source_output = Some(parent.outputs[input.source_vout as usize].clone());
    }
    interpreter::verify_spends(&tx).unwrap();
    tx
}

/// The net outflow a cosigner's spending policy counts for the last transaction signed, over all
/// its sessions, and the outputs it counts as paying someone else.
fn policy_outflow(f: &Fixture) -> (u64, usize) {
    let sessions = f.signer.sessions.lock().unwrap();
    let (ef, inputs, change) = sessions.last().unwrap();
    let tx = Transaction::from_bytes(ef).unwrap();
    let a = wallet_policy::assess(&f.signer.public_key(), &tx, inputs, change).unwrap();
    (a.outflow, a.destinations.len())
}

async fn consolidations(f: &Fixture) -> Vec<wallet_brc100::actions::WalletAction> {
    let args = ListActionsArgs {
        labels: vec![CONSOLIDATION_LABEL.into()],
        include_labels: Some(true),
        include_inputs: Some(true),
        include_outputs: Some(true),
        ..Default::default()
    };
    f.actions.list_actions(args).await.unwrap().actions
}

#[tokio::test]
async fn twelve_dust_outputs_become_one_and_only_the_fee_leaves() {
    let f = fixture().await;
    let received = receive(&f, &[300; 12], true).await;
    assert_eq!((balance(&f).await, change(&f).await.len()), (3_600, 12));

    let dry = f.actions.consolidate(100, true).await.unwrap().unwrap();
    assert_eq!((dry.txid.as_ref(), dry.inputs, dry.satoshis_in, dry.outputs), (None, 12, 3_600, 1));
    assert!(f.chain.sent.lock().unwrap().is_empty() && f.signer.sessions.lock().unwrap().is_empty());
    assert_eq!(change(&f).await.len(), 12, "a dry run reserves nothing");

    let c: Consolidation = f.actions.consolidate(100, false).await.unwrap().unwrap();
    assert_eq!((c.inputs, c.satoshis_in, c.outputs), (12, 3_600, 1));
    assert_eq!(c.fee, dry.fee);
    let txid = c.txid.clone().unwrap();
    let left = change(&f).await;
    assert_eq!(left.len(), 1, "fewer outputs");
    assert_eq!(balance(&f).await, 3_600 - c.fee, "the balance less the fee, exactly");
    assert_eq!(left[0].outpoint.to_string(), format!("{txid}.0"));
    assert!(left[0].change && left[0].derivation.is_some(), "fresh BRC-29 change");

    // The broadcast transaction: the twelve outputs in, one output to the wallet, scripts verified.
    let tx = last_broadcast(&f);
    assert_eq!(tx.txid().to_hex(), txid);
    let spent: HashSet<String> =
        tx.inputs.iter().map(|i| format!("{}.{}", i.source_txid.to_hex(), i.source_vout)).collect();
    assert_eq!(spent, received.iter().map(ToString::to_string).collect());
    assert_eq!(tx.outputs.len(), 1);
    assert_eq!(tx.outputs[0].satoshis, 3_600 - c.fee);
    assert_eq!(tx.outputs[0].locking_script.as_bytes(), left[0].locking_script.as_slice());
    assert!(c.fee >= (tx.size() as u64 * RATE).div_ceil(1000), "fee {} for {} bytes", c.fee, tx.size());
    assert!(c.fee <= ((tx.size() as u64 + 2) * RATE).div_ceil(1000), "fee {} overpays", c.fee);

    // A cosigner's policy sees only the fee leave, and no one else paid.
    assert_eq!(policy_outflow(&f), (c.fee, 0));

    // An ordinary action, listed under its label.
    let listed = consolidations(&f).await;
    assert_eq!(listed.len(), 1);
    let a = &listed[0];
    assert_eq!(
        (a.txid.as_str(), a.description.as_str(), a.satoshis),
        (txid.as_str(), "consolidation", -(c.fee as i64))
    );
    assert_eq!(a.labels.as_deref(), Some(&[CONSOLIDATION_LABEL.to_string()][..]));
    assert!(a.is_outgoing && a.status == ActionStatus::Unproven);
    assert_eq!(a.inputs.as_ref().unwrap().len(), 12);
    assert_eq!(a.outputs.as_ref().unwrap().len(), 1);

    // The fresh change pays (unconfirmed, so it is not merged again: one output is nothing to do).
    assert_eq!(f.actions.consolidate(100, false).await.unwrap(), None);
    f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap();
    assert!(balance(&f).await < 3_600 - c.fee - 1_000);
}

#[tokio::test]
async fn nothing_is_done_when_it_is_not_worth_it() {
    let f = fixture().await;
    let e = f.actions.consolidate(1, false).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("max_inputs")));
    assert_eq!(f.actions.consolidate(100, false).await.unwrap(), None, "an empty wallet");

    // At the target (3 of 8), none under the minimum.
    receive(&f, &[5_000, 6_000, 7_000], true).await;
    assert_eq!(f.actions.consolidate(100, true).await.unwrap(), None);
    assert_eq!(f.actions.consolidate(100, false).await.unwrap(), None);
    // One dust output: merging one into one reduces nothing.
    receive(&f, &[400], true).await;
    assert_eq!(f.actions.consolidate(100, false).await.unwrap(), None);
    // Outputs that do not pay for their own input's bytes (148 bytes at 50 sat/kB: 8 sats).
    receive(&f, &[8; 12], true).await;
    assert_eq!(f.actions.consolidate(100, false).await.unwrap(), None);

    assert_eq!(change(&f).await.len(), 16);
    assert_eq!(balance(&f).await, 18_000 + 400 + 96);
    assert!(f.signer.sessions.lock().unwrap().is_empty(), "nothing was signed");
    assert!(consolidations(&f).await.is_empty(), "and no action recorded");
    let failed = ListActionsArgs { labels: vec![spec_ops::FAILED_ACTIONS.into()], ..Default::default() };
    assert_eq!(f.actions.list_actions(failed).await.unwrap().total_actions, 0);
}

#[tokio::test]
async fn reserved_and_unconfirmed_outputs_are_not_taken() {
    let f = fixture().await;
    let confirmed = receive(&f, &[400; 6], true).await;
    let unconfirmed = receive(&f, &[400; 6], false).await;
    // A payment in progress holds one of the confirmed outputs.
    let store = f.actions.store();
    let pending = ActionRecord {
        reference: "a-payment-in-progress".into(),
        txid: None,
        status: ActionStatus::Unsigned,
        outgoing: true,
        satoshis: 0,
        description: "a payment in progress".into(),
        labels: vec![],
        version: 1,
        lock_time: 0,
        raw_tx: None,
        input_beef: None,
        merkle_path: None,
        created_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64,
    };
    store.record_action(&pending, &[]).await.unwrap();
    store.reserve_outputs("a-payment-in-progress", &confirmed[..1]).await.unwrap();

    // Four merged would bring 11 down to the target of 8; all five confirmed ones are dust.
    let c = f.actions.consolidate(100, false).await.unwrap().unwrap();
    assert_eq!((c.inputs, c.satoshis_in), (5, 2_000));
    let tx = last_broadcast(&f);
    let spent: HashSet<String> =
        tx.inputs.iter().map(|i| format!("{}.{}", i.source_txid.to_hex(), i.source_vout)).collect();
    assert_eq!(spent, confirmed[1..].iter().map(ToString::to_string).collect());
    let left: HashSet<String> = change(&f).await.iter().map(|o| o.outpoint.to_string()).collect();
    for o in &unconfirmed {
        assert!(left.contains(&o.to_string()), "the unconfirmed {o} stays");
    }
    assert_eq!(left.len(), 7);
    let held = store.output(&confirmed[0]).await.unwrap().unwrap();
    assert_eq!(held.spent_by.as_deref(), Some("a-payment-in-progress"), "the reserved one stays with its payment");
}

#[tokio::test]
async fn a_refused_broadcast_loses_nothing() {
    let f = fixture().await;
    receive(&f, &[500; 10], true).await;
    *f.chain.refuse_next.lock().unwrap() = true;
    let e = f.actions.consolidate(100, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!((balance(&f).await, change(&f).await.len()), (5_000, 10), "every input is back");
    let failed = ListActionsArgs { labels: vec![spec_ops::FAILED_ACTIONS.into()], ..Default::default() };
    assert_eq!(f.actions.list_actions(failed).await.unwrap().total_actions, 1);
    // And the next try goes through.
    let c = f.actions.consolidate(100, false).await.unwrap().unwrap();
    assert_eq!(balance(&f).await, 5_000 - c.fee);
}

#[tokio::test]
async fn the_inputs_are_bounded() {
    let f = fixture().await;
    receive(&f, &[300; 12], true).await;
    let c = f.actions.consolidate(5, false).await.unwrap().unwrap();
    assert_eq!((c.inputs, c.satoshis_in), (5, 1_500));
    assert_eq!(change(&f).await.len(), 8);
    let c = f.actions.consolidate(usize::MAX, true).await.unwrap().unwrap();
    assert_eq!(c.inputs, 7, "the seven dust outputs still confirmed (the fresh change is not)");
}

#[tokio::test]
async fn set_wallet_change_params_is_effective_and_checked() {
    let f = fixture().await;
    assert_eq!(f.actions.current_change_params(), ChangeParams { target_count: 8, min_sats: 1000 });
    let set = |tags: &[&str]| ListOutputsArgs {
        basket: spec_ops::SET_WALLET_CHANGE_PARAMS.into(),
        tags: Some(tags.iter().map(|t| t.to_string()).collect()),
        ..Default::default()
    };
    let r = f.actions.list_outputs(set(&["2", "500"])).await.unwrap();
    assert_eq!((r.total_outputs, r.outputs.len()), (0, 0));
    assert_eq!(f.actions.current_change_params(), ChangeParams { target_count: 2, min_sats: 500 });
    for bad in [&["0", "500"][..], &["1001", "500"], &["2", "0"], &["2"], &["two", "500"]] {
        let e = f.actions.list_outputs(set(bad)).await.unwrap_err();
        assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("tags")), "{bad:?}");
    }
    assert_eq!(f.actions.current_change_params(), ChangeParams { target_count: 2, min_sats: 500 }, "unchanged");

    // Four outputs, none under 500: three merged bring them to the target of 2.
    receive(&f, &[5_000, 6_000, 7_000, 8_000], true).await;
    let c = f.actions.consolidate(100, false).await.unwrap().unwrap();
    assert_eq!((c.inputs, c.satoshis_in), (3, 18_000));
    let left = change(&f).await;
    assert_eq!(left.len(), 2);
    assert_eq!(left.iter().map(|o| o.satoshis).sum::<u64>(), 26_000 - c.fee);

    // The builder refuses what the special operation refuses.
    let e = fixture().await.actions.change_params(ChangeParams { target_count: 0, min_sats: 1 }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("1 to 1000"), "{e}");
}

#[tokio::test]
async fn create_action_splits_its_change_toward_the_target() {
    let f = fixture().await;
    receive(&f, &[100_000], false).await;
    let r = f.actions.create_action(pay(10_000, CreateActionOptions::default())).await.unwrap();
    let atomic = AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap();
    let paid = atomic.subject_tx();
    assert_eq!(paid.outputs.len(), 9, "the payment and eight change outputs");
    let left = change(&f).await;
    assert_eq!(left.len(), 8);
    assert!(left.iter().all(|o| o.satoshis >= 1_000 && o.derivation.is_some()), "{left:?}");
    let fee = 100_000 - paid.outputs.iter().map(|o| o.satoshis).sum::<u64>();
    assert_eq!(balance(&f).await, 90_000 - fee);
    assert!(fee <= ((paid.size() as u64 + 2) * RATE).div_ceil(1000), "fee {fee} overpays");
    assert_eq!(policy_outflow(&f), (10_000 + fee, 1), "every change output is claimed");

    // At the target: the next payment makes one change output for the one it spends.
    f.actions.create_action(pay(5_000, CreateActionOptions::default())).await.unwrap();
    assert_eq!(change(&f).await.len(), 8);

    // A small surplus makes only as many outputs as each get the minimum.
    let f = fixture().await;
    receive(&f, &[13_000], false).await;
    f.actions.create_action(pay(10_000, CreateActionOptions::default())).await.unwrap();
    let left = change(&f).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|o| o.satoshis >= 1_000), "{left:?}");

    // An input that leaves at least the minimum as change is preferred to one that leaves dust.
    let f = fixture().await;
    let small = receive(&f, &[1_500, 100_000], false).await[0];
    f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap();
    let left = change(&f).await;
    assert!(left.iter().any(|o| o.outpoint == small), "the small output stays: {left:?}");
    assert!(left.iter().all(|o| o.satoshis >= 1_000), "{left:?}");

    // With a target of one, one change output as before.
    let f = fixture().await;
    f.actions.set_change_params(ChangeParams { target_count: 1, min_sats: 1_000 }).unwrap();
    receive(&f, &[100_000], false).await;
    let r = f.actions.create_action(pay(10_000, CreateActionOptions::default())).await.unwrap();
    assert_eq!(AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap().subject_tx().outputs.len(), 2);
    assert_eq!(change(&f).await.len(), 1);
}
