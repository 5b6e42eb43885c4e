//! The action methods over a real SQLite output store, with the single-key reference as the
//! signer and in-test chain services (a broadcaster that records what it is handed, a tracker
//! that knows the roots this test mined). The MPC wallet and @bsv/sdk run the same flows in
//! `interop/actions.test.mjs`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use wallet_brc100::{
    actions::{
        AbortActionArgs, Actions, ChainServices, CreateActionArgs, CreateActionOptions, CreateActionOutput,
        InternalizeActionArgs, InternalizeOutput, ListActionsArgs, ListOutputsArgs, WalletPayment,
    },
    GetPublicKeyArgs, KeyMethods, SingleKey,
};
use wallet_bsv::{
    brc29, hash::hash160, interpreter, sighash, signature::checksig_format, AtomicBeef, Beef, BeefTx, BeefVersion,
    MerkleLeaf, MerklePath, Network, Script, Transaction, TxId, TxInput, TxOutput,
};
use wallet_traits::{Broadcast, Broadcaster, ChainTracker, Error, ErrorKind, Result, Signer};

#[derive(Debug, Default)]
struct Chain {
    roots: Mutex<HashMap<u64, [u8; 32]>>,
    sent: Mutex<Vec<Vec<u8>>>,
    refuse_next: Mutex<bool>,
}

#[async_trait]
impl Broadcaster for Chain {
    async fn broadcast(&self, tx: &[u8]) -> Result<Broadcast> {
        if std::mem::take(&mut *self.refuse_next.lock().unwrap()) {
            return Err(Error::new(ErrorKind::Rejected, "ARC: DOUBLE_SPEND_ATTEMPTED"));
        }
        self.sent.lock().unwrap().push(tx.to_vec());
        Ok(Broadcast { txid: String::new(), status: "SEEN_ON_NETWORK".into(), detail: None })
    }
}

#[async_trait]
impl ChainTracker for Chain {
    async fn is_valid_root_for_height(&self, root: &[u8; 32], height: u64) -> Result<bool> {
        Ok(self.roots.lock().unwrap().get(&height) == Some(root))
    }

    async fn current_height(&self) -> Result<u64> {
        Ok(900_000)
    }
}

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

/// A BRC-29 payment of `sats` from a fresh sender: its funds mined in a block the tracker knows
/// (unless `known` is false), the payment output first, its input signed by the sender (or, with
/// `forged`, by another key).
async fn payment(f: &Fixture, sats: u64, known: bool, forged: bool) -> (Vec<u8>, WalletPayment) {
    let sender = SingleKey::from_bytes(rand::random()).unwrap();
    let sender_keys = KeyMethods::new(Arc::new(sender.clone()), Arc::new(sender.clone()), Network::Mainnet);
    let (prefix, suffix) = ("cHJlZml4".to_string(), format!("{:x}", rand::random::<u64>()));
    let to = sender_keys
        .get_public_key(GetPublicKeyArgs {
            protocol_id: Some(brc29::protocol()),
            key_id: Some(brc29::key_id(&prefix, &suffix)),
            counterparty: Some(f.identity.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .public_key;
    let to = wallet_bsv::brc42::parse_public_key(&to).unwrap();
    let sender_pk = sender.public_key();
    let parent = Transaction {
        version: 1,
        inputs: vec![TxInput { source_txid: TxId(rand::random()), sequence: u32::MAX, ..Default::default() }],
        outputs: vec![TxOutput {
            satoshis: sats + 1000,
            locking_script: Script::p2pkh_lock(&hash160(sender_pk.as_bytes())),
        }],
        lock_time: 0,
    };
    let height = 800_000 + u64::from(rand::random::<u16>());
    let path = MerklePath::new(
        height,
        vec![vec![MerkleLeaf::hash(0, parent.txid().0, true), MerkleLeaf::hash(1, rand::random(), false)]],
        true,
    )
    .unwrap();
    if known {
        f.chain.roots.lock().unwrap().insert(height, path.root());
    }
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxInput {
            source_txid: parent.txid(),
            source_vout: 0,
            sequence: u32::MAX,
            source_output: Some(parent.outputs[0].clone()),
            ..Default::default()
        }],
        outputs: vec![
            TxOutput { satoshis: sats, locking_script: Script::p2pkh_lock(&hash160(to.as_bytes())) },
            TxOutput { satoshis: 500, locking_script: Script::p2pkh_lock(&hash160(sender_pk.as_bytes())) },
        ],
        lock_time: 0,
    };
    let digest = sighash::input_digest(&tx, 0, sighash::ALL_FORKID).unwrap();
    let signer = if forged { SingleKey::from_bytes(rand::random()).unwrap() } else { sender.clone() };
    let sig = signer.sign_digest(&digest, None).await.unwrap();
    tx.inputs[0].unlocking_script =
        Script::p2pkh_unlock(&checksig_format(&sig, sighash::ALL_FORKID), sender_pk.as_bytes());
    let beef = Beef {
        version: BeefVersion::V1,
        bumps: vec![path],
        txs: vec![BeefTx::Full { tx: parent, bump: Some(0) }, BeefTx::Full { tx: tx.clone(), bump: None }],
    };
    let atomic = AtomicBeef { subject: tx.txid(), beef }.to_bytes().unwrap();
    (
        atomic,
        WalletPayment { derivation_prefix: prefix, derivation_suffix: suffix, sender_identity_key: sender_pk.to_hex() },
    )
}

fn internalize_args(tx: Vec<u8>, remittance: WalletPayment) -> InternalizeActionArgs {
    InternalizeActionArgs {
        tx,
        outputs: vec![InternalizeOutput {
            output_index: 0,
            protocol: "wallet payment".into(),
            payment_remittance: Some(remittance),
            insertion_remittance: None,
        }],
        description: "a payment in".into(),
        labels: Some(vec!["Funding ".into()]),
        seek_permission: None,
    }
}

fn pay(sats: u64, options: CreateActionOptions) -> CreateActionArgs {
    CreateActionArgs {
        description: "a payment out".into(),
        outputs: Some(vec![CreateActionOutput {
            locking_script: Script::p2pkh_lock(&rand::random()).to_hex(),
            satoshis: sats,
            output_description: "to someone".into(),
            ..Default::default()
        }]),
        options: Some(options),
        ..Default::default()
    }
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
