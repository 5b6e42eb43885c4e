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
        AbortActionArgs, Actions, ChainServices, CreateActionOptions, ListActionsArgs, ListOutputsArgs, WalletPayment,
    },
    KeyMethods, SingleKey,
};
use wallet_bsv::{interpreter, AtomicBeef, BeefTx, Network};
use wallet_traits::ErrorKind;

struct Fixture {
    actions: Actions,
    chain: Arc<Chain>,
    identity: String,
    _dir: tempfile::TempDir,
}

const RATE: u64 = 50;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        wallet_backend_sqlite::SqliteOutputStore::open(dir.path().join("books.db"), "actions-test").await.unwrap();
    let key = Arc::new(SingleKey::from_bytes(rand::random()).unwrap());
    let keys = Arc::new(KeyMethods::new(key.clone(), key.clone(), Network::Mainnet));
    let chain = Arc::new(Chain::default());
    let services = ChainServices { broadcaster: Some(chain.clone()), chain_tracker: Some(chain.clone()) };
    let identity = key.public_key().to_hex();
    let actions = Actions::new(keys, key, Arc::new(store), services, RATE);
    Fixture { actions, chain, identity, _dir: dir }
}

/// A BRC-29 payment of `sats` to the fixture's wallet from a fresh sender (see
/// [`payments::payment`]).
async fn payment(f: &Fixture, sats: u64, known: bool, forged: bool) -> (Vec<u8>, WalletPayment) {
    let sender = SingleKey::from_bytes(rand::random()).unwrap();
    payments::payment(&f.chain, &sender, &f.identity, sats, known, forged).await
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
    let resolved = {
        let mut t = paid.clone();
        for input in &mut t.inputs {
            let parent = atomic.beef.find(&input.source_txid).and_then(BeefTx::tx).unwrap();
            input.source_output = Some(parent.outputs[input.source_vout as usize].clone());
        }
        t
    };
    interpreter::verify_spends(&resolved).unwrap();
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
