//! In-process chain services and BRC-29 payments into a wallet, shared by `tests/actions.rs` and
//! the action benchmark of mpc-wallet (`wallet-cli/benches/actions.rs`, which includes this file).

// The test and the benchmark each use a subset.
#![allow(dead_code)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use wallet_brc100::{
    actions::{
        CreateActionArgs, CreateActionOptions, CreateActionOutput, InternalizeActionArgs, InternalizeOutput,
        WalletPayment,
    },
    GetPublicKeyArgs, KeyMethods, SingleKey,
};
use wallet_bsv::{
    brc29, hash::hash160, sighash, signature::checksig_format, AtomicBeef, Beef, BeefTx, BeefVersion, MerkleLeaf,
    MerklePath, Network, Script, Transaction, TxId, TxInput, TxOutput,
};
use wallet_traits::{Broadcast, Broadcaster, ChainTracker, Error, ErrorKind, PublicKey, Result, Signer};

/// A broadcaster that records what it is handed (refusing once when asked) and a chain tracker
/// that knows the blocks [`payment`] mined.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    /// (height, merkle root): a set, as random heights of many payments may coincide.
    pub(crate) roots: Mutex<HashSet<(u64, [u8; 32])>>,
    pub(crate) sent: Mutex<Vec<Vec<u8>>>,
    pub(crate) refuse_next: Mutex<bool>,
    /// The next broadcast is answered "double spend" although the network takes it.
    pub(crate) refuse_but_take_next: Mutex<bool>,
    /// Txids the network knows: those broadcast and not refused.
    pub(crate) known: Mutex<HashSet<String>>,
    /// Outpoints (`txid.vout`) something outside the wallet spent.
    pub(crate) spent: Mutex<HashSet<String>>,
    /// Txids in a block (the others it knows are in a mempool).
    pub(crate) mined: Mutex<HashSet<String>>,
    /// Txids the chain tracker says it does not know, whatever else holds.
    pub(crate) unknown: Mutex<HashSet<String>>,
    /// Blocks found since the chain started at 900,000: the tip is 900,000 plus this.
    pub(crate) new_blocks: Mutex<u64>,
    /// Merkle paths (BRC-74 binary) the broadcaster reports, by txid.
    pub(crate) paths: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// The proof service answers with an error while this is set.
    pub(crate) proofs_down: Mutex<bool>,
    /// The chain tracker calls every script used.
    pub(crate) all_used: Mutex<bool>,
}

/// The txid of what a broadcaster is handed: a BEEF's last transaction, or a transaction.
pub(crate) fn broadcast_txid(bytes: &[u8]) -> String {
    match Beef::from_bytes(bytes) {
        Ok(beef) => beef.txs.last().map(|t| t.txid().to_string()).unwrap_or_default(),
        Err(_) => Transaction::from_bytes(bytes).map(|t| t.txid().to_string()).unwrap_or_default(),
    }
}

#[async_trait]
impl Broadcaster for Chain {
    async fn broadcast(&self, tx: &[u8]) -> Result<Broadcast> {
        if std::mem::take(&mut *self.refuse_next.lock().unwrap()) {
            return Err(Error::new(ErrorKind::Rejected, "ARC: DOUBLE_SPEND_ATTEMPTED"));
        }
        if std::mem::take(&mut *self.refuse_but_take_next.lock().unwrap()) {
            self.known.lock().unwrap().insert(broadcast_txid(tx));
            return Err(Error::new(ErrorKind::Rejected, "ARC: DOUBLE_SPEND_ATTEMPTED"));
        }
        self.known.lock().unwrap().insert(broadcast_txid(tx));
        self.sent.lock().unwrap().push(tx.to_vec());
        Ok(Broadcast { txid: String::new(), status: "SEEN_ON_NETWORK".into(), detail: None })
    }

    async fn merkle_path(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        if *self.proofs_down.lock().unwrap() {
            return Err(Error::new(ErrorKind::ServiceUnavailable, "ARC: 503 Service Unavailable"));
        }
        Ok(self.paths.lock().unwrap().get(txid).cloned())
    }
}

#[async_trait]
impl ChainTracker for Chain {
    async fn is_valid_root_for_height(&self, root: &[u8; 32], height: u64) -> Result<bool> {
        Ok(self.roots.lock().unwrap().contains(&(height, *root)))
    }

    async fn current_height(&self) -> Result<u64> {
        Ok(900_000 + *self.new_blocks.lock().unwrap())
    }

    async fn tx_status(&self, txids: &[String]) -> Result<Vec<wallet_traits::TxOnChain>> {
        let (unknown, known, mined) =
            (self.unknown.lock().unwrap(), self.known.lock().unwrap(), self.mined.lock().unwrap());
        Ok(txids
            .iter()
            .map(|t| {
                if unknown.contains(t) {
                    wallet_traits::TxOnChain::Unknown
                } else if mined.contains(t) {
                    wallet_traits::TxOnChain::Mined { depth: 1 }
                } else if known.contains(t) {
                    wallet_traits::TxOnChain::Known
                } else {
                    wallet_traits::TxOnChain::Unknown
                }
            })
            .collect())
    }

    async fn is_utxo(&self, outpoint: &wallet_traits::Outpoint, _locking_script: &[u8]) -> Result<bool> {
        Ok(!self.spent.lock().unwrap().contains(&outpoint.to_string()) && !self.spent_by_sent(outpoint))
    }

    async fn script_used(&self, locking_script: &[u8]) -> Result<bool> {
        Ok(*self.all_used.lock().unwrap()
            || self
                .sent_txs()
                .iter()
                .any(|tx| tx.outputs.iter().any(|o| o.locking_script.as_bytes() == locking_script)))
    }

    async fn unspent_outputs(&self, locking_script: &[u8]) -> Result<Vec<wallet_traits::ScriptUtxo>> {
        let mut found = Vec::new();
        for tx in self.sent_txs() {
            let txid = wallet_traits::parse_txid(&tx.txid().to_string()).unwrap();
            for (vout, o) in tx.outputs.iter().enumerate() {
                let outpoint = wallet_traits::Outpoint::new(txid, vout as u32);
                if o.locking_script.as_bytes() == locking_script && self.is_utxo(&outpoint, locking_script).await? {
                    found.push(wallet_traits::ScriptUtxo { outpoint, satoshis: o.satoshis });
                }
            }
        }
        Ok(found)
    }

    async fn raw_tx(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.sent_txs().into_iter().find(|t| t.txid().to_string() == txid).map(|t| t.to_bytes()))
    }
}

impl Chain {
    /// The transactions broadcast (a BEEF's last one) that the network has not lost.
    pub(crate) fn sent_txs(&self) -> Vec<Transaction> {
        let (sent, unknown) = (self.sent.lock().unwrap(), self.unknown.lock().unwrap().clone());
        sent.iter()
            .filter_map(|b| match Beef::from_bytes(b) {
                Ok(beef) => beef.txs.last().and_then(|t| match t {
                    BeefTx::Full { tx, .. } => Some(tx.clone()),
                    BeefTx::TxidOnly(_) => None,
                }),
                Err(_) => Transaction::from_bytes(b).ok(),
            })
            .filter(|t| !unknown.contains(&t.txid().to_string()))
            .collect()
    }

    /// Whether a broadcast transaction spends `outpoint`.
    fn spent_by_sent(&self, outpoint: &wallet_traits::Outpoint) -> bool {
        let shown = outpoint.to_string();
        self.sent_txs()
            .iter()
            .any(|tx| tx.inputs.iter().any(|i| format!("{}.{}", i.source_txid, i.source_vout) == shown))
    }
}

/// A fresh BRC-29 derivation prefix and suffix from `sender` to `recipient` (hex), and the key
/// they derive: what a sender pays to.
async fn brc29_key(sender: &SingleKey, recipient: &str) -> (String, String, PublicKey) {
    let sender_keys = KeyMethods::new(Arc::new(sender.clone()), Arc::new(sender.clone()), Network::Mainnet);
    let (prefix, suffix) = ("cHJlZml4".to_string(), format!("{:x}", rand::random::<u64>()));
    let to = sender_keys
        .get_public_key(GetPublicKeyArgs {
            protocol_id: Some(brc29::protocol()),
            key_id: Some(brc29::key_id(&prefix, &suffix)),
            counterparty: Some(recipient.to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .public_key;
    (prefix, suffix, wallet_bsv::brc42::parse_public_key(&to).unwrap())
}

/// A BRC-29 payment of `sats` from `sender` to the wallet whose identity key is `recipient`
/// (hex): its funds mined in a block `chain` knows (unless `known` is false), the payment output
/// first, its input signed by the sender (or, with `forged`, by another key).
pub(crate) async fn payment(
    chain: &Chain,
    sender: &SingleKey,
    recipient: &str,
    sats: u64,
    known: bool,
    forged: bool,
) -> (Vec<u8>, WalletPayment) {
    let (prefix, suffix, to) = brc29_key(sender, recipient).await;
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
        chain.roots.lock().unwrap().insert((height, path.root()));
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

/// One transaction from `sender` paying the wallet whose identity key is `recipient` (hex) a
/// BRC-29 output of each of `amounts` (outputs 0, 1, ...), its funds mined in a block `chain`
/// knows; with `mined` the payment itself is in a block too (taken in, its action is
/// `completed`). Returns its Atomic BEEF and each output's remittance.
pub(crate) async fn payments_in(
    chain: &Chain,
    sender: &SingleKey,
    recipient: &str,
    amounts: &[u64],
    mined: bool,
) -> (Vec<u8>, Vec<WalletPayment>) {
    let sender_pk = sender.public_key();
    let mut outputs = Vec::with_capacity(amounts.len() + 1);
    let mut remittances = Vec::with_capacity(amounts.len());
    for &sats in amounts {
        let (prefix, suffix, to) = brc29_key(sender, recipient).await;
        outputs.push(TxOutput { satoshis: sats, locking_script: Script::p2pkh_lock(&hash160(to.as_bytes())) });
        remittances.push(WalletPayment {
            derivation_prefix: prefix,
            derivation_suffix: suffix,
            sender_identity_key: sender_pk.to_hex(),
        });
    }
    outputs.push(TxOutput { satoshis: 500, locking_script: Script::p2pkh_lock(&hash160(sender_pk.as_bytes())) });
    let parent = Transaction {
        version: 1,
        inputs: vec![TxInput { source_txid: TxId(rand::random()), sequence: u32::MAX, ..Default::default() }],
        outputs: vec![TxOutput {
            satoshis: amounts.iter().sum::<u64>() + 1000,
            locking_script: Script::p2pkh_lock(&hash160(sender_pk.as_bytes())),
        }],
        lock_time: 0,
    };
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxInput {
            source_txid: parent.txid(),
            source_vout: 0,
            sequence: u32::MAX,
            source_output: Some(parent.outputs[0].clone()),
            ..Default::default()
        }],
        outputs,
        lock_time: 0,
    };
    let digest = sighash::input_digest(&tx, 0, sighash::ALL_FORKID).unwrap();
    let sig = sender.sign_digest(&digest, None).await.unwrap();
    tx.inputs[0].unlocking_script =
        Script::p2pkh_unlock(&checksig_format(&sig, sighash::ALL_FORKID), sender_pk.as_bytes());
    let mined_at = |txid: TxId| {
        let height = 800_000 + u64::from(rand::random::<u16>());
        let leaves = vec![MerkleLeaf::hash(0, txid.0, true), MerkleLeaf::hash(1, rand::random(), false)];
        let path = MerklePath::new(height, vec![leaves], true).unwrap();
        chain.roots.lock().unwrap().insert((height, path.root()));
        path
    };
    let beef = if mined {
        chain.mined.lock().unwrap().insert(tx.txid().to_string());
        Beef {
            version: BeefVersion::V1,
            bumps: vec![mined_at(tx.txid())],
            txs: vec![BeefTx::Full { tx: tx.clone(), bump: Some(0) }],
        }
    } else {
        Beef {
            version: BeefVersion::V1,
            bumps: vec![mined_at(parent.txid())],
            txs: vec![BeefTx::Full { tx: parent, bump: Some(0) }, BeefTx::Full { tx: tx.clone(), bump: None }],
        }
    };
    (AtomicBeef { subject: tx.txid(), beef }.to_bytes().unwrap(), remittances)
}

/// `internalizeAction` of outputs 0, 1, ... of `tx` as wallet payments, one per remittance.
pub(crate) fn internalize_all(tx: Vec<u8>, remittances: Vec<WalletPayment>) -> InternalizeActionArgs {
    InternalizeActionArgs {
        tx,
        outputs: remittances
            .into_iter()
            .enumerate()
            .map(|(i, r)| InternalizeOutput {
                output_index: i as u32,
                protocol: "wallet payment".into(),
                payment_remittance: Some(r),
                insertion_remittance: None,
            })
            .collect(),
        description: "payments in".into(),
        labels: None,
        seek_permission: None,
    }
}

/// `internalizeAction` of output 0 of `tx` as a wallet payment.
pub(crate) fn internalize_args(tx: Vec<u8>, remittance: WalletPayment) -> InternalizeActionArgs {
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

/// `createAction` paying `sats` to a random P2PKH address.
pub(crate) fn pay(sats: u64, options: CreateActionOptions) -> CreateActionArgs {
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
