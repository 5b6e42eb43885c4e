//! The action methods over a real SQLite output store, with the single-key reference as the
//! signer and in-test chain services (a broadcaster that records what it is handed, a tracker
//! that knows the roots this test mined). The MPC wallet and @bsv/sdk run the same flows in
//! `interop/actions.test.mjs`.

#[path = "payments/mod.rs"]
mod payments;

use std::sync::Arc;

use payments::{internalize_args, pay, Chain};
use wallet_brc100::{
    actions::{
        AbortActionArgs, Actions, ChangeParams, CreateActionOptions, ListActionsArgs, ListOutputsArgs, WalletPayment,
    },
    KeyMethods, SingleKey,
};
use wallet_bsv::{interpreter, AtomicBeef, BeefTx, Network};
use wallet_traits::{ChainServices, ErrorKind};

struct Fixture {
    actions: Actions,
    chain: Arc<Chain>,
    identity: String,
    key: Arc<SingleKey>,
    dir: tempfile::TempDir,
}

const RATE: u64 = 50;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SingleKey::from_bytes(rand::random()).unwrap());
    let chain = Arc::new(Chain::default());
    let identity = key.public_key().to_hex();
    let actions = open_actions(&dir, &key, &chain).await;
    Fixture { actions, chain, identity, key, dir }
}

/// The action methods of the wallet `key` over the books in `dir`.
async fn open_actions(dir: &tempfile::TempDir, key: &Arc<SingleKey>, chain: &Arc<Chain>) -> Actions {
    let store =
        wallet_backend_sqlite::SqliteOutputStore::open(dir.path().join("books.db"), "actions-test").await.unwrap();
    let keys = Arc::new(KeyMethods::new(key.clone(), key.clone(), Network::Mainnet));
    let services = ChainServices { broadcaster: Some(chain.clone()), chain_tracker: Some(chain.clone()) };
    // One change output a payment, so these tests follow the outputs one by one; the split toward
    // a larger target is tests/consolidate.rs's.
    let change = ChangeParams { target_count: 1, ..Default::default() };
    Actions::new(keys, key.clone(), Arc::new(store), services, RATE).change_params(change).unwrap()
}

/// The wallet of `f` after a restart: the old process is gone with what it held in memory, a new
/// one opens the same books with the same key.
async fn restart(f: Fixture) -> Fixture {
    let Fixture { actions, chain, identity, key, dir } = f;
    drop(actions);
    let actions = open_actions(&dir, &key, &chain).await;
    Fixture { actions, chain, identity, key, dir }
}

/// A BRC-29 payment of `sats` to the fixture's wallet from a fresh sender (see
/// [`payments::payment`]).
async fn payment(f: &Fixture, sats: u64, known: bool, forged: bool) -> (Vec<u8>, WalletPayment) {
    let sender = SingleKey::from_bytes(rand::random()).unwrap();
    payments::payment(&f.chain, &sender, &f.identity, sats, known, forged).await
}

/// The payment an Atomic BEEF carries checks out: each input's script against the output it
/// spends, found in the BEEF.
fn verified(atomic: &AtomicBeef) {
    let mut resolved = atomic.subject_tx().clone();
    for input in &mut resolved.inputs {
        let parent = atomic.beef.find(&input.source_txid).and_then(BeefTx::tx).unwrap();
        input.source_output = Some(parent.outputs[input.source_vout as usize].clone());
    }
    interpreter::verify_spends(&resolved).unwrap();
}

async fn balance(f: &Fixture) -> u64 {
    f.actions.store().balance("default").await.unwrap()
}

#[tokio::test]
async fn receive_then_pay_with_change_and_verified_scripts() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 100_000, true, false).await;
    assert!(f.actions.internalize_action(internalize_args(tx.clone(), remittance.clone())).await.unwrap());
    assert_eq!(f.chain.sent.lock().unwrap().len(), 1, "a new unmined transaction is broadcast");
    // Twice: counted once, not broadcast again.
    assert!(f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap());
    assert_eq!(balance(&f).await, 100_000);
    assert_eq!(f.chain.sent.lock().unwrap().len(), 1);
    let listed = f.actions.list_actions(ListActionsArgs { labels: vec!["funding".into()], ..Default::default() });
    assert_eq!(listed.await.unwrap().total_actions, 1, "labels are trimmed and lower-cased");

    let r = f.actions.create_action(pay(30_000, CreateActionOptions::default())).await.unwrap();
    let atomic = AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap();
    atomic.beef.verify_structure(false).unwrap();
    let paid = atomic.subject_tx();
    assert_eq!(paid.txid().to_hex(), r.txid.unwrap());
    verified(&atomic);
    let fee = 100_000 - paid.outputs.iter().map(|o| o.satoshis).sum::<u64>();
    assert!(fee >= (paid.size() as u64 * RATE).div_ceil(1000), "fee {fee} for {} bytes", paid.size());
    assert!(fee <= ((paid.size() as u64 + 2) * RATE).div_ceil(1000), "fee {fee} overpays");
    assert_eq!(balance(&f).await, 100_000 - 30_000 - fee, "the change came back");
    assert_eq!(f.chain.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn refusals_store_nothing() {
    let f = fixture().await;
    let (tx, mut remittance) = payment(&f, 10_000, true, false).await;
    remittance.derivation_suffix = "b3RoZXI=".into();
    let e = f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("paymentRemittance")));
    let (tx, remittance) = payment(&f, 10_000, false, false).await;
    let e = f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap_err();
    assert!(e.message().contains("merkle roots"), "{e}");
    let (tx, remittance) = payment(&f, 10_000, true, true).await;
    let e = f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap_err();
    assert!(e.message().contains("does not verify"), "{e}");
    assert_eq!(balance(&f).await, 0);
    assert!(f.chain.sent.lock().unwrap().is_empty());
    let e = f.actions.create_action(pay(1, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsufficientFunds);
    assert!(e.context_value("moreSatoshisNeeded").is_some());
}

#[tokio::test]
async fn a_refused_broadcast_and_an_abort_release_the_inputs() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    *f.chain.refuse_next.lock().unwrap() = true;
    let e = f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(balance(&f).await, 50_000);
    let no_send = CreateActionOptions { no_send: Some(true), ..Default::default() };
    let r = f.actions.create_action(pay(1_000, no_send)).await.unwrap();
    assert_eq!(r.no_send_change.as_ref().map(Vec::len), Some(1));
    assert_eq!(f.chain.sent.lock().unwrap().len(), 1, "noSend does not broadcast");
    assert!(f.actions.abort_action(AbortActionArgs { reference: r.txid.unwrap() }).await.unwrap());
    assert_eq!(balance(&f).await, 50_000);
    let listed = f.actions.list_outputs(ListOutputsArgs { basket: "default".into(), ..Default::default() });
    assert_eq!(listed.await.unwrap().total_outputs, 1);
}

#[tokio::test]
async fn a_refused_sign_action_releases_the_inputs() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 20_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let later = CreateActionOptions { sign_and_process: Some(false), ..Default::default() };
    let r = f.actions.create_action(pay(1_000, later)).await.unwrap();
    let reference = r.signable_transaction.unwrap().reference;
    assert_eq!(balance(&f).await, 0, "the input is reserved while the action waits");
    let spend = wallet_brc100::actions::SignActionSpend { unlocking_script: "51".into(), sequence_number: None };
    let args = wallet_brc100::actions::SignActionArgs {
        spends: [("99".to_string(), spend)].into_iter().collect(),
        reference: reference.clone(),
        options: None,
    };
    let e = f.actions.sign_action(args).await.unwrap_err();
    assert_eq!(e.context_value("parameter"), Some("spends"));
    assert_eq!(balance(&f).await, 20_000, "the refused action gave its input back");
}

/// A transaction paying `outputs`, mined in a block `chain` knows, and its BEEF.
fn mined_parent(chain: &payments::Chain, outputs: Vec<wallet_bsv::TxOutput>) -> (wallet_bsv::Transaction, Vec<u8>) {
    use wallet_bsv::{Beef, BeefVersion, MerkleLeaf, MerklePath, Transaction, TxId, TxInput};
    let parent = Transaction {
        version: 1,
        inputs: vec![TxInput { source_txid: TxId(rand::random()), sequence: u32::MAX, ..Default::default() }],
        outputs,
        lock_time: 0,
    };
    let height = 700_000 + u64::from(rand::random::<u16>());
    let leaves = vec![MerkleLeaf::hash(0, parent.txid().0, true), MerkleLeaf::hash(1, rand::random(), false)];
    let path = MerklePath::new(height, vec![leaves], true).unwrap();
    chain.roots.lock().unwrap().insert((height, path.root()));
    let beef = Beef {
        version: BeefVersion::V1,
        bumps: vec![path],
        txs: vec![BeefTx::Full { tx: parent.clone(), bump: Some(0) }],
    };
    (parent, beef.to_bytes().unwrap())
}

fn caller_input(parent: &wallet_bsv::Transaction, vout: u32) -> wallet_brc100::actions::CreateActionInput {
    wallet_brc100::actions::CreateActionInput {
        outpoint: format!("{}.{vout}", parent.txid().to_hex()),
        input_description: "the caller signs".into(),
        unlocking_script_length: Some(108),
        ..Default::default()
    }
}

async fn actions_recorded(f: &Fixture) -> u64 {
    f.actions.list_actions(ListActionsArgs { labels: vec![], ..Default::default() }).await.unwrap().total_actions
}

#[tokio::test]
async fn outputs_summing_past_2_pow_64_are_refused_not_wrapped() {
    use wallet_bsv::amount::MAX_SATOSHIS;
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let before = actions_recorded(&f).await;
    // 8,785 outputs that add up to 2^64 + 1000: a wrapping sum sees 1000 satoshis.
    let n = 8_785u64;
    let rest = ((1u128 << 64) + 1000 - u128::from(n - 1) * u128::from(MAX_SATOSHIS)) as u64;
    assert!(rest <= MAX_SATOSHIS);
    let mut args = pay(MAX_SATOSHIS, CreateActionOptions::default());
    let one = args.outputs.as_ref().unwrap()[0].clone();
    let mut outputs = vec![one.clone(); (n - 1) as usize];
    outputs.push(wallet_brc100::actions::CreateActionOutput { satoshis: rest, ..one });
    args.outputs = Some(outputs);
    let e = f.actions.create_action(args).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("outputs")), "{e}");
    assert!(e.message().contains("21 million"), "{e}");
    assert_eq!(balance(&f).await, 50_000, "nothing was reserved");
    assert_eq!(actions_recorded(&f).await, before, "nothing was recorded");
    assert!(f.chain.sent.lock().unwrap().len() == 1, "nothing was broadcast after the funding");
}

#[tokio::test]
async fn a_made_up_input_beef_funds_nothing() {
    use wallet_bsv::{Beef, BeefVersion, Script, Transaction, TxId, TxInput, TxOutput};
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 5_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let before = actions_recorded(&f).await;
    // 10^15 satoshis to OP_DROP OP_TRUE, from nowhere: unproven, its own input not in the BEEF.
    let fake = Transaction {
        version: 1,
        inputs: vec![TxInput { source_txid: TxId(rand::random()), sequence: u32::MAX, ..Default::default() }],
        outputs: vec![TxOutput { satoshis: 1_000_000_000_000_000, locking_script: Script::new(vec![0x75, 0x51]) }],
        lock_time: 0,
    };
    let unproven =
        Beef { version: BeefVersion::V1, bumps: vec![], txs: vec![BeefTx::Full { tx: fake.clone(), bump: None }] };
    // The same transaction "mined" in a block the chain tracker does not know.
    let (fake_mined, unknown_block) = {
        let chain = payments::Chain::default();
        mined_parent(&chain, fake.outputs.clone())
    };
    for (parent, beef) in [(fake, unproven.to_bytes().unwrap()), (fake_mined, unknown_block)] {
        let mut args = pay(1_000, CreateActionOptions { no_send: Some(true), ..Default::default() });
        let mut input = caller_input(&parent, 0);
        input.unlocking_script = Some("00".into());
        input.unlocking_script_length = None;
        args.inputs = Some(vec![input]);
        args.input_beef = Some(beef);
        let e = f.actions.create_action(args).await.unwrap_err();
        assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("inputBEEF")), "{e}");
    }
    assert_eq!(balance(&f).await, 5_000, "no change appeared and nothing was reserved");
    assert_eq!(actions_recorded(&f).await, before, "nothing was recorded");
}

#[tokio::test]
async fn transactions_held_for_sign_action_are_bounded() {
    use wallet_brc100::actions::MAX_HELD;
    let f = fixture().await;
    let outputs = (0..=MAX_HELD)
        .map(|_| wallet_bsv::TxOutput {
            satoshis: 10_000,
            locking_script: wallet_bsv::Script::p2pkh_lock(&rand::random()),
        })
        .collect();
    let (parent, beef) = mined_parent(&f.chain, outputs);
    let spend = |vout: u32| {
        let mut args = pay(5_000, CreateActionOptions::default());
        args.inputs = Some(vec![caller_input(&parent, vout)]);
        args.input_beef = Some(beef.clone());
        args
    };
    let mut references = Vec::new();
    for vout in 0..MAX_HELD as u32 {
        let r = f.actions.create_action(spend(vout)).await.unwrap();
        references.push(r.signable_transaction.unwrap().reference);
    }
    let held = actions_recorded(&f).await;
    let e = f.actions.create_action(spend(MAX_HELD as u32)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("signAction or abortAction"), "{e}");
    assert_eq!(actions_recorded(&f).await, held, "the refusal recorded nothing");
    // Finishing one makes room.
    assert!(f.actions.abort_action(AbortActionArgs { reference: references.pop().unwrap() }).await.unwrap());
    assert!(f.actions.create_action(spend(MAX_HELD as u32)).await.unwrap().signable_transaction.is_some());
}

#[tokio::test]
async fn aborting_an_action_whose_change_a_later_one_spent_is_refused() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let no_send = CreateActionOptions { no_send: Some(true), ..Default::default() };
    let a = f.actions.create_action(pay(1_000, no_send)).await.unwrap();
    let chained = CreateActionOptions { no_send_change: a.no_send_change.clone(), ..Default::default() };
    let b = f.actions.create_action(pay(1_000, chained)).await.unwrap();
    assert!(b.txid.is_some(), "the chained payment went out");
    let before = balance(&f).await;
    let e = f.actions.abort_action(AbortActionArgs { reference: a.txid.unwrap() }).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("abort that action first"), "{e}");
    assert_eq!(balance(&f).await, before, "no spent input came back");
}

/// What `createAction` left for `signAction` survives a restart of the wallet: a new process
/// signs it (the caller's input and the wallet's own), commits and broadcasts it, once.
#[tokio::test]
async fn a_transaction_held_for_sign_action_survives_a_restart() {
    use wallet_bsv::{Script, TxOutput};
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 20_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    // The caller's input: 3000 satoshis to OP_DROP OP_TRUE, which the caller unlocks with OP_0.
    let caller_locked = TxOutput { satoshis: 3_000, locking_script: Script::new(vec![0x75, 0x51]) };
    let (parent, beef) = mined_parent(&f.chain, vec![caller_locked]);
    let mut args = pay(5_000, CreateActionOptions { sign_and_process: Some(false), ..Default::default() });
    args.inputs = Some(vec![caller_input(&parent, 0)]);
    args.input_beef = Some(beef);
    let created = f.actions.create_action(args).await.unwrap();
    let signable = created.signable_transaction.expect("a transaction waiting for signAction");
    assert!(created.txid.is_none());
    assert_eq!(balance(&f).await, 0, "the wallet's input is reserved while the action waits");
    let sent = f.chain.sent.lock().unwrap().len();

    let f = restart(f).await;
    let spend = wallet_brc100::actions::SignActionSpend { unlocking_script: "00".into(), sequence_number: None };
    let sign = wallet_brc100::actions::SignActionArgs {
        spends: [("0".to_string(), spend)].into_iter().collect(),
        reference: signable.reference.clone(),
        options: None,
    };
    let r = f.actions.sign_action(sign.clone()).await.unwrap();
    let atomic = AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap();
    atomic.beef.verify_structure(false).unwrap();
    let paid = atomic.subject_tx();
    assert_eq!(paid.txid().to_hex(), r.txid.unwrap());
    assert_eq!(paid.inputs[0].source_txid, parent.txid(), "the caller's input comes first");
    verified(&atomic);
    // The same transaction the first process drafted, now signed.
    let drafted = AtomicBeef::from_bytes(&signable.tx).unwrap();
    let drafted = drafted.subject_tx();
    assert_eq!(paid.outputs, drafted.outputs);
    assert_eq!(
        paid.inputs.iter().map(|i| (i.source_txid, i.source_vout)).collect::<Vec<_>>(),
        drafted.inputs.iter().map(|i| (i.source_txid, i.source_vout)).collect::<Vec<_>>()
    );
    let fee = 23_000 - paid.outputs.iter().map(|o| o.satoshis).sum::<u64>();
    assert_eq!(balance(&f).await, 23_000 - 5_000 - fee, "the change came back");
    assert_eq!(f.chain.sent.lock().unwrap().len(), sent + 1, "broadcast once");

    // Signed, it cannot be signed again, also not after another restart.
    let e = f.actions.sign_action(sign.clone()).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("reference")), "{e}");
    let f = restart(f).await;
    let e = f.actions.sign_action(sign).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("reference")), "{e}");
    assert_eq!(f.chain.sent.lock().unwrap().len(), sent + 1);
}

/// After a restart, an action waiting for `signAction` can be aborted, and then it cannot be
/// signed; a kept transaction that does not decode is refused, saying to abort it.
#[tokio::test]
async fn an_aborted_action_is_not_signed_after_a_restart() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 20_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let later = || CreateActionOptions { sign_and_process: Some(false), ..Default::default() };
    let first = f.actions.create_action(pay(1_000, later())).await.unwrap().signable_transaction.unwrap();
    let sign = |reference: &str| wallet_brc100::actions::SignActionArgs {
        spends: Default::default(),
        reference: reference.to_string(),
        options: None,
    };

    let f = restart(f).await;
    assert!(f.actions.abort_action(AbortActionArgs { reference: first.reference.clone() }).await.unwrap());
    assert_eq!(balance(&f).await, 20_000, "the abort released the input");
    let e = f.actions.sign_action(sign(&first.reference)).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("reference")), "{e}");
    let f = restart(f).await;
    let e = f.actions.sign_action(sign(&first.reference)).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("reference")), "{e}");

    // A kept transaction damaged behind the wallet's back.
    let second = f.actions.create_action(pay(1_000, later())).await.unwrap().signable_transaction.unwrap();
    let f = restart(f).await;
    f.actions.store().keep_signable(&second.reference, b"\x01 not a draft").await.unwrap();
    let e = f.actions.sign_action(sign(&second.reference)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(e.message().contains("abortAction"), "{e}");
    assert_eq!(balance(&f).await, 0, "the input stays reserved until the action is aborted");
    assert!(f.actions.abort_action(AbortActionArgs { reference: second.reference }).await.unwrap());
    assert_eq!(balance(&f).await, 20_000);
    assert_eq!(f.chain.sent.lock().unwrap().len(), 1, "only the funding was broadcast");
}

/// The toolbox's special operations: the balance as `totalOutputs`, the `nosend` actions (and
/// aborting them all, the chained one first), the `failed` ones; what is not run yet says so
/// (invalid change: `a_utxo_review_finds_change_spent_elsewhere`).
#[tokio::test]
async fn the_toolboxs_special_operations() {
    use wallet_brc100::actions::spec_ops;
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let outputs = |basket: &str, tags: Option<Vec<String>>| {
        f.actions.list_outputs(ListOutputsArgs { basket: basket.into(), tags, ..Default::default() })
    };
    let b = outputs(spec_ops::WALLET_BALANCE, None).await.unwrap();
    assert_eq!((b.total_outputs, b.outputs.len()), (50_000, 0));
    let by_tag = outputs("default", Some(vec![spec_ops::WALLET_BALANCE.into()])).await.unwrap();
    assert_eq!(by_tag.total_outputs, 50_000);

    let no_send = CreateActionOptions { no_send: Some(true), ..Default::default() };
    let first = f.actions.create_action(pay(1_000, no_send)).await.unwrap();
    let chained =
        CreateActionOptions { no_send: Some(true), no_send_change: first.no_send_change.clone(), ..Default::default() };
    let second = f.actions.create_action(pay(2_000, chained)).await.unwrap();
    let actions = |labels: &[&str]| {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        f.actions.list_actions(ListActionsArgs { labels, ..Default::default() })
    };
    let listed = actions(&[spec_ops::NO_SEND_ACTIONS]).await.unwrap();
    let txids: Vec<_> = listed.actions.iter().map(|a| Some(a.txid.clone())).collect();
    assert_eq!(txids, vec![first.txid.clone(), second.txid.clone()]);
    assert!(actions(&[spec_ops::FAILED_ACTIONS]).await.unwrap().actions.is_empty());

    let aborted = actions(&[spec_ops::NO_SEND_ACTIONS, "abort"]).await.unwrap();
    assert_eq!(aborted.actions.len(), 2);
    assert!(aborted.actions.iter().all(|a| a.status == wallet_traits::ActionStatus::Failed));
    assert_eq!(balance(&f).await, 50_000, "every input released, no change left over");
    assert!(actions(&[spec_ops::NO_SEND_ACTIONS]).await.unwrap().actions.is_empty());
    let failed = actions(&[spec_ops::FAILED_ACTIONS]).await.unwrap();
    assert_eq!(failed.total_actions, 2);
    // An ordinary label `abort` is only a label.
    assert_eq!(actions(&["abort"]).await.unwrap().total_actions, 0);

    // Set as the toolbox sets them: an empty listing (tests/consolidate.rs shows their effect).
    let set = outputs(spec_ops::SET_WALLET_CHANGE_PARAMS, Some(vec!["1".into(), "1000".into()])).await.unwrap();
    assert_eq!((set.total_outputs, set.outputs.len()), (0, 0));
}

/// Change the chain holds spent (a transaction the books never saw) is found by the UTXO
/// review and, released, no payment picks it again; an output of a transaction the chain does not
/// know yet is left alone. Through `specOpInvalidChange` as the toolbox defines it.
#[tokio::test]
async fn a_utxo_review_finds_change_spent_elsewhere() {
    use wallet_brc100::actions::spec_ops;
    let f = fixture().await;
    let mut outpoints = Vec::new();
    for sats in [10_000, 20_000, 30_000] {
        let (tx, remittance) = payment(&f, sats, true, false).await;
        let txid = AtomicBeef::from_bytes(&tx).unwrap().subject.to_string();
        f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
        outpoints.push(format!("{txid}.0"));
    }
    f.chain.spent.lock().unwrap().insert(outpoints[1].clone());
    // The third transaction is not known to the chain yet: its output is not judged.
    f.chain.unknown.lock().unwrap().insert(outpoints[2][..64].to_string());
    f.chain.spent.lock().unwrap().insert(outpoints[2].clone());

    let review = f.actions.review_utxos(Some("default"), false, 100).await.unwrap();
    assert_eq!((review.checked, review.not_yet_known), (1 + 1, 1));
    assert_eq!(
        review.spent_elsewhere.iter().map(|o| o.outpoint.to_string()).collect::<Vec<_>>(),
        [outpoints[1].clone()]
    );
    assert_eq!(balance(&f).await, 60_000, "a review without release changes nothing");

    let invalid = |tags: &[&str]| {
        let tags = Some(tags.iter().map(|t| t.to_string()).collect());
        f.actions.list_outputs(ListOutputsArgs { basket: spec_ops::INVALID_CHANGE.into(), tags, ..Default::default() })
    };
    let listed = invalid(&[]).await.unwrap();
    assert_eq!(listed.outputs.iter().map(|o| o.outpoint.clone()).collect::<Vec<_>>(), [outpoints[1].clone()]);
    assert_eq!(balance(&f).await, 60_000);
    let released = invalid(&["release"]).await.unwrap();
    assert_eq!((released.total_outputs, released.outputs[0].spendable), (1, false));
    assert_eq!(balance(&f).await, 40_000, "released: out of the balance");
    assert_eq!(invalid(&[]).await.unwrap().total_outputs, 0, "nothing left to find");

    // A payment needing more than one output never picks the released one.
    let r = f.actions.create_action(pay(35_000, CreateActionOptions::default())).await.unwrap();
    let atomic = AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap();
    let spent: Vec<String> =
        atomic.subject_tx().inputs.iter().map(|i| format!("{}.{}", i.source_txid, i.source_vout)).collect();
    assert!(!spent.contains(&outpoints[1]), "{spent:?}");
}

/// A broadcast answered "double spend": when the chain knows the transaction all the same, the
/// payment out stands (a payment in, once mined); when a competing transaction took an input, the action fails and that input
/// is marked spent elsewhere instead of coming back, so the next payment does not pick it.
#[tokio::test]
async fn a_double_spend_answer_is_checked_against_the_chain() {
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    let incoming = AtomicBeef::from_bytes(&tx).unwrap().subject.to_string();
    // A payment in that ARC answers "double spend" for is refused while it is only in a mempool
    // (its sender may have spent the coins again), and recorded once a block holds it.
    *f.chain.refuse_but_take_next.lock().unwrap() = true;
    let e = f.actions.internalize_action(internalize_args(tx.clone(), remittance.clone())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(balance(&f).await, 0, "nothing recorded");
    f.chain.mined.lock().unwrap().insert(incoming);
    *f.chain.refuse_next.lock().unwrap() = true;
    assert!(f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap());
    assert_eq!(balance(&f).await, 50_000);

    *f.chain.refuse_but_take_next.lock().unwrap() = true;
    let txid = f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap().txid.unwrap();
    let listed = f.actions.list_actions(ListActionsArgs::default()).await.unwrap();
    let status = listed.actions.iter().find(|a| a.txid == txid).unwrap().status;
    assert_eq!(status, wallet_traits::ActionStatus::Unproven, "the network took it: it stands");
    let change = f.actions.list_outputs(ListOutputsArgs { basket: "default".into(), ..Default::default() });
    let change = change.await.unwrap().outputs;
    assert_eq!(change.len(), 1);
    assert!(change[0].outpoint.starts_with(&txid), "its change is spendable");

    // A competing transaction the wallet never saw takes that change.
    f.chain.spent.lock().unwrap().insert(change[0].outpoint.clone());
    *f.chain.refuse_next.lock().unwrap() = true;
    let e = f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(balance(&f).await, 0, "the input spent elsewhere did not come back");
    let outpoint = wallet_traits::Outpoint::parse(&change[0].outpoint).unwrap();
    let kept = f.actions.store().output(&outpoint).await.unwrap().unwrap();
    assert!(!kept.spendable && kept.spent_by.is_none(), "marked spent elsewhere, still in the books");
}

/// A payment refused (its inputs came back) whose transaction the network took after all: the
/// `unfail` label of `specOpFailedActions` and the background review bring it back, its inputs
/// spent by it again and its change spendable. A noSend transaction someone broadcast becomes
/// `unproven`.
#[tokio::test]
async fn a_failed_payment_found_on_the_chain_comes_back() {
    use wallet_brc100::actions::spec_ops;
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let failed = || {
        let labels = vec![spec_ops::FAILED_ACTIONS.to_string()];
        f.actions.list_actions(ListActionsArgs { labels, ..Default::default() })
    };

    *f.chain.refuse_next.lock().unwrap() = true;
    f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(balance(&f).await, 50_000);
    let txid = failed().await.unwrap().actions[0].txid.clone();
    assert_eq!(f.actions.review_failed(20).await.unwrap(), 0, "the chain does not know it");
    f.chain.known.lock().unwrap().insert(txid.clone());
    let labels = vec![spec_ops::FAILED_ACTIONS.to_string(), "unfail".to_string()];
    let listed = f.actions.list_actions(ListActionsArgs { labels, ..Default::default() }).await.unwrap();
    assert_eq!(listed.actions[0].status, wallet_traits::ActionStatus::Unproven);
    assert!(failed().await.unwrap().actions.is_empty());
    let change = balance(&f).await;
    assert!(change < 49_000 && change > 48_000, "the input spent again, the change back: {change}");

    // The same through the background review.
    *f.chain.refuse_next.lock().unwrap() = true;
    f.actions.create_action(pay(2_000, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(balance(&f).await, change);
    let second = failed().await.unwrap().actions[0].txid.clone();
    f.chain.known.lock().unwrap().insert(second);
    assert_eq!(f.actions.review_failed(20).await.unwrap(), 1);
    assert!(balance(&f).await < change - 2_000);

    // A noSend transaction someone else broadcast.
    let no_send = CreateActionOptions { no_send: Some(true), ..Default::default() };
    let held = f.actions.create_action(pay(1_000, no_send)).await.unwrap().txid.unwrap();
    assert_eq!(f.actions.review_no_send(20).await.unwrap(), 0);
    f.chain.known.lock().unwrap().insert(held.clone());
    assert_eq!(f.actions.review_no_send(20).await.unwrap(), 1);
    let all = f.actions.list_actions(ListActionsArgs::default()).await.unwrap();
    assert_eq!(all.actions.iter().find(|a| a.txid == held).unwrap().status, wallet_traits::ActionStatus::Unproven);
}

/// A stored proof whose block the chain drops (a reorg) is found by the proof review: the action
/// is `unproven` again and its outputs stay spendable; a proof of the new block proves it again.
#[tokio::test]
async fn a_proof_of_a_dropped_block_is_dropped() {
    use wallet_bsv::{MerkleLeaf, MerklePath};
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 30_000, true, false).await;
    let txid = AtomicBeef::from_bytes(&tx).unwrap().subject;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let block = |height: u64| {
        let leaves = vec![MerkleLeaf::hash(0, txid.0, true), MerkleLeaf::hash(1, rand::random(), false)];
        MerklePath::new(height, vec![leaves], true).unwrap()
    };
    let first = block(899_995);
    f.chain.roots.lock().unwrap().insert((899_995, first.root()));
    let display = wallet_traits::parse_txid(&txid.to_string()).unwrap();
    assert!(f.actions.store().set_merkle_path(&display, &first.to_bytes()).await.unwrap());
    let status = || async { f.actions.store().action_by_txid(&display).await.unwrap().unwrap().status };
    assert_eq!(status().await, wallet_traits::ActionStatus::Completed);
    assert_eq!(f.actions.review_proofs(20).await.unwrap(), 0, "its block is on the chain");

    // The reorg: height 899995 holds another block now.
    f.chain.roots.lock().unwrap().remove(&(899_995, first.root()));
    assert_eq!(f.actions.review_proofs(20).await.unwrap(), 1);
    assert_eq!(status().await, wallet_traits::ActionStatus::Unproven);
    assert_eq!(balance(&f).await, 30_000, "nothing spendable lost");
    assert_eq!(f.actions.review_proofs(20).await.unwrap(), 0);

    let second = block(899_996);
    f.chain.roots.lock().unwrap().insert((899_996, second.root()));
    assert!(f.actions.store().set_merkle_path(&display, &second.to_bytes()).await.unwrap());
    assert_eq!(f.actions.review_proofs(20).await.unwrap(), 0);
    assert_eq!(status().await, wallet_traits::ActionStatus::Completed);

    // A proof far below the tip is final: the review does not ask about it.
    assert!(f.actions.store().set_merkle_path(&display, &block(800_000).to_bytes()).await.unwrap());
    assert_eq!(f.actions.review_proofs(20).await.unwrap(), 0);
    assert_eq!(status().await, wallet_traits::ActionStatus::Completed);
}

/// A failed action keeps its transaction's bytes for the retention period, then loses them and
/// stays in the history.
#[tokio::test]
async fn failed_actions_are_purged_after_their_retention() {
    use std::time::Duration;
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 20_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    *f.chain.refuse_next.lock().unwrap() = true;
    f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap_err();
    assert_eq!(f.actions.purge_failed(Duration::from_secs(3600), 10).await.unwrap(), 0, "still within retention");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(f.actions.purge_failed(Duration::ZERO, 10).await.unwrap(), 1);
    let failed =
        wallet_traits::ActionQuery { statuses: vec![wallet_traits::ActionStatus::Failed], ..Default::default() };
    let kept = f.actions.store().list_actions(&failed).await.unwrap().items;
    assert_eq!(kept.len(), 1, "the row stays in the history");
    assert!(kept[0].raw_tx.is_none());
    assert_eq!(balance(&f).await, 20_000);
}

/// The proof task asks at new blocks only; a transaction that many blocks found no proof for is
/// asked after on the chain, and one the chain lost goes out again (a refusal then fails it).
#[tokio::test]
async fn proofs_are_asked_at_new_blocks_and_lost_transactions_go_out_again() {
    use wallet_bsv::{MerkleLeaf, MerklePath};
    use wallet_traits::ActionStatus;
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 30_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let Fixture { actions, chain, identity, key, dir } = f;
    let f = Fixture { actions: actions.proof_attempts(2), chain, identity, key, dir };
    let txid = f.actions.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap().txid.unwrap();
    let display = wallet_traits::parse_txid(&txid).unwrap();
    let status = || async { f.actions.store().action_by_txid(&display).await.unwrap().unwrap().status };
    let sent = || f.chain.sent.lock().unwrap().iter().filter(|t| payments::broadcast_txid(t) == txid).count();
    let new_block = || *f.chain.new_blocks.lock().unwrap() += 1;
    assert_eq!((status().await, sent()), (ActionStatus::Unproven, 1));

    // Attempt 1 at the first look; none while the tip stays; 2 at the next block (the limit).
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 0);
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 0);
    new_block();
    f.actions.check_for_proofs(100).await.unwrap();
    assert_eq!(sent(), 1, "within the limit nothing more happens");
    // Past the limit, with the transaction in a mempool: left as it is, counted from 0 again.
    new_block();
    f.actions.check_for_proofs(100).await.unwrap();
    assert_eq!((status().await, sent()), (ActionStatus::Unproven, 1), "the chain holds it");
    assert_eq!(f.actions.store().count_proof_attempt(&display).await.unwrap(), 1, "the count started again");

    // The network loses it: at the limit it is broadcast again, and stays unproven.
    f.chain.unknown.lock().unwrap().insert(txid.clone());
    for _ in 0..2 {
        new_block();
        f.actions.check_for_proofs(100).await.unwrap();
    }
    assert_eq!((status().await, sent()), (ActionStatus::Unproven, 2), "broadcast again");

    // Lost again, and refused this time: it fails and its inputs come back.
    *f.chain.refuse_next.lock().unwrap() = true;
    for _ in 0..3 {
        new_block();
        f.actions.check_for_proofs(100).await.unwrap();
    }
    assert_eq!(status().await, ActionStatus::Failed);
    assert_eq!(balance(&f).await, 30_000, "the payment's input is spendable again");

    // A proof found at a new block is recorded.
    let (tx, remittance) = payment(&f, 5_000, true, false).await;
    let incoming = AtomicBeef::from_bytes(&tx).unwrap().subject;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let leaves = vec![MerkleLeaf::hash(0, incoming.0, true), MerkleLeaf::hash(1, rand::random(), false)];
    let path = MerklePath::new(900_100, vec![leaves], true).unwrap();
    f.chain.roots.lock().unwrap().insert((900_100, path.root()));
    f.chain.paths.lock().unwrap().insert(incoming.to_string(), path.to_bytes());
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 0, "no new block, nothing asked");
    new_block();
    // The proof service is down at this block: no attempt is counted, and the next poll asks
    // again without waiting for another block.
    let proven = wallet_traits::parse_txid(&incoming.to_string()).unwrap();
    let attempts = f.actions.store().count_proof_attempt(&proven).await.unwrap();
    *f.chain.proofs_down.lock().unwrap() = true;
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 0);
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 0);
    assert_eq!(
        f.actions.store().count_proof_attempt(&proven).await.unwrap(),
        attempts + 1,
        "an outage counts no attempt"
    );
    *f.chain.proofs_down.lock().unwrap() = false;
    assert_eq!(f.actions.check_for_proofs(100).await.unwrap(), 1);
    assert_eq!(f.actions.store().action_by_txid(&proven).await.unwrap().unwrap().status, ActionStatus::Completed);
}

/// Books restored from a backup taken before two payments find those payments' change again
/// on the chain: the backup's funding output is marked spent, the change is recorded, the
/// balance is the wallet's true one, a second scan adds nothing, and new change takes a key
/// after the recovered ones.
#[tokio::test]
async fn change_made_after_a_backup_is_recovered_from_the_chain() {
    use wallet_brc100::actions::{CHANGE_PREFIX, MAX_RECOVERY_KEYS, RECOVERED_LABEL, RECOVERY_GAP};
    use wallet_bsv::{MerkleLeaf, MerklePath};
    let f = fixture().await;
    let (tx, remittance) = payment(&f, 50_000, true, false).await;
    f.actions.internalize_action(internalize_args(tx, remittance)).await.unwrap();
    let backup = f.actions.store().export_books().await.unwrap();

    // Two payments after the backup, the second spending the first's change; the first mined,
    // the second's block comes later.
    let mut later = None;
    for (i, sats) in [3_000u64, 4_000].into_iter().enumerate() {
        let txid = f.actions.create_action(pay(sats, CreateActionOptions::default())).await.unwrap().txid.unwrap();
        let id = wallet_traits::parse_txid(&txid).unwrap();
        let internal = f.chain.sent_txs().into_iter().find(|t| t.txid().to_string() == txid).unwrap().txid();
        let leaves = vec![MerkleLeaf::hash(0, internal.0, true), MerkleLeaf::hash(1, rand::random(), false)];
        let path = MerklePath::new(901_000 + i as u64, vec![leaves], true).unwrap();
        f.chain.roots.lock().unwrap().insert((901_000 + i as u64, path.root()));
        if i == 0 {
            f.chain.paths.lock().unwrap().insert(txid, path.to_bytes());
        } else {
            later = Some((txid, path.to_bytes()));
        }
        let reference = f.actions.store().action_by_txid(&id).await.unwrap().unwrap().reference;
        let query = wallet_traits::OutputQuery { created_by: Some(reference), ..Default::default() };
        let change = f.actions.store().list_outputs(&query).await.unwrap().items;
        assert!(change.iter().all(|o| o.derivation.as_ref().is_some_and(|d| d.prefix == CHANGE_PREFIX)));
    }
    let truth = balance(&f).await;
    assert!(truth < 50_000 - 7_000 && truth > 50_000 - 7_000 - 1_000, "{truth}");

    // The machine is lost; its books come back from the backup into a new store.
    let dir = tempfile::tempdir().unwrap();
    let restored = open_actions(&dir, &f.key, &f.chain).await;
    restored.store().import_books(&backup).await.unwrap();
    assert_eq!(restored.store().balance("default").await.unwrap(), 50_000, "the backup's books");
    let review = restored.review_utxos(None, true, 100).await.unwrap();
    assert_eq!(review.spent_elsewhere.len(), 1, "the funding output was spent after the backup");
    assert_eq!(restored.store().balance("default").await.unwrap(), 0);

    // The change is in a transaction not mined yet: counted, left for a later scan.
    let found = restored.recover_change(RECOVERY_GAP, MAX_RECOVERY_KEYS).await.unwrap();
    assert_eq!((found.outputs, found.satoshis, found.unconfirmed, found.refused), (0, 0, 1, 0), "{found:?}");
    assert_eq!(restored.store().balance("default").await.unwrap(), 0);
    let (txid, path) = later.unwrap();
    f.chain.paths.lock().unwrap().insert(txid, path);

    let found = restored.recover_change(RECOVERY_GAP, MAX_RECOVERY_KEYS).await.unwrap();
    assert_eq!((found.outputs, found.satoshis, found.unconfirmed, found.refused), (1, truth, 0, 0), "{found:?}");
    assert!(!found.cut_short);
    assert_eq!(found.scanned, 2 + u64::from(RECOVERY_GAP), "two used keys, then the gap");
    assert_eq!(restored.store().balance("default").await.unwrap(), truth, "the true balance");
    let recovered = wallet_traits::ActionQuery { labels: vec![RECOVERED_LABEL.into()], ..Default::default() };
    let recovered = restored.store().list_actions(&recovered).await.unwrap().items;
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].status, wallet_traits::ActionStatus::Completed);
    assert_eq!(
        restored.recover_change(RECOVERY_GAP, MAX_RECOVERY_KEYS).await.unwrap().outputs,
        0,
        "nothing new the second time"
    );

    // The recovered change pays, and the new change is at a key no earlier output used.
    let txid = restored.create_action(pay(1_000, CreateActionOptions::default())).await.unwrap().txid.unwrap();
    let paid = f.chain.sent_txs().into_iter().find(|t| t.txid().to_string() == txid).unwrap();
    let earlier: Vec<_> =
        f.chain.sent_txs().iter().filter(|t| t.txid().to_string() != txid).flat_map(|t| t.outputs.clone()).collect();
    assert!(paid.outputs.iter().all(|o| earlier.iter().all(|e| e.locking_script != o.locking_script)), "no key reused");
}

/// A chain tracker that calls every change key used cannot keep a recovery scan going.
#[tokio::test]
async fn a_tracker_that_calls_every_key_used_cannot_keep_a_recovery_going() {
    let f = fixture().await;
    *f.chain.all_used.lock().unwrap() = true;
    let found = f.actions.recover_change(wallet_brc100::actions::RECOVERY_GAP, 250).await.unwrap();
    assert!(found.cut_short, "{found:?}");
    assert_eq!((found.scanned, found.outputs), (250, 0));
}
