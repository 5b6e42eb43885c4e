//! Cosigners that enforce a spending policy, counted in their own SQLite files: what a hijacked
//! agent holding its share can no longer get signed. The agent here is the real `Wallet` over
//! in-process cosigners; `wallet-cli/tests/policy.rs` runs the same attacks against cosigner
//! processes over HTTP and gRPC.

mod common;

use std::sync::Arc;

use common::*;
use wallet_bsv::{hash::hash160, Script, Transaction, TxOutput};
use wallet_engine::Wallet;
use wallet_policy::Policy;
use wallet_traits::{ChangeClaim, ErrorKind, InputToSign};

const INPUT: u64 = 10_000;

async fn start(dir: &std::path::Path, policy: &str) -> (Wallet, Cosigners) {
    let cosigners = Cosigners::start_spending(dir, SECRET, &Policy::from_toml(policy).unwrap()).await;
    let (wallet, _) = builder(dir, SECRET, &cosigners).await.build().await.unwrap();
    (wallet, cosigners)
}

/// A transaction spending one 10,000-satoshi output of the wallet's root key (`n` makes it
/// another transaction), paying `pay` to a stranger and the rest, when `change` is given, back
/// to the wallet's child key of that tweak.
fn payment(wallet: &Wallet, n: u8, pay: u64, change: Option<[u8; 32]>) -> (Transaction, Vec<ChangeClaim>) {
    let mut tx = spending(&[wallet.identity_key()], Script::p2pkh_lock(&[n; 20]));
    tx.inputs[0].source_output.as_mut().unwrap().satoshis = INPUT;
    tx.outputs[0].satoshis = pay;
    let mut claims = Vec::new();
    if let Some(tweak) = change {
        let key = wallet_engine::tweaked_public_key(&wallet.identity_key(), &tweak).unwrap();
        claims.push(ChangeClaim { vout: tx.outputs.len() as u32, tweak });
        tx.outputs.push(TxOutput {
            satoshis: INPUT - pay - 200,
            locking_script: Script::p2pkh_lock(&hash160(key.as_bytes())),
        });
    }
    (tx, claims)
}

fn all(sighash_type: u32) -> Vec<InputToSign> {
    vec![InputToSign { index: 0, sighash_type, tweak: None }]
}

async fn audit_is_whole(cosigners: &Cosigners) -> usize {
    let mut records = 0;
    for store in &cosigners.stores {
        let log = store.policy_state().unwrap().audit(None, 0, 10_000).await.unwrap();
        wallet_policy::verify_chain(&log).unwrap();
        records += log.len();
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_per_cosigner_and_a_refusal_says_which_rule() {
    let dir = copy_fixture("sign-tx");
    let (wallet, cosigners) = start(dir.path(), "max_sats_per_tx = 12000\nmax_sats_per_window = 30000\n").await;
    // Each cosigner's window is its own: cosigner 1 signs three, then cosigner 2 three more.
    for n in 0..6 {
        let (tx, change) = payment(&wallet, n, 5_000, None);
        wallet.sign_transaction(&tx, &all(0x41), &change).await.unwrap_or_else(|e| panic!("payment {n}: {e}"));
    }
    let (tx, change) = payment(&wallet, 6, 5_000, None);
    let e = wallet.sign_transaction(&tx, &all(0x41), &change).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
    assert_eq!(e.context_value("rule"), Some("window_sats"), "{e}");
    assert!(e.message().contains("cosigner 1 refused") && e.message().contains("cosigner 2 refused"), "{e}");
    assert!(e.message().contains("left"), "the refusal says what the window has left: {e}");
    // Above the cap per transaction (no window room needed to see it).
    let over = Policy::from_toml("max_sats_per_tx = 9000\n").unwrap();
    let dir2 = copy_fixture("sign-tx");
    let strict = Cosigners::start_spending(dir2.path(), SECRET, &over).await;
    let (capped, _) = builder(dir2.path(), SECRET, &strict).await.build().await.unwrap();
    let (tx, change) = payment(&capped, 1, 5_000, None);
    let e = capped.sign_transaction(&tx, &all(0x41), &change).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("max_sats_per_tx"), "{e}");
    // A true change claim counts only what leaves: 10,000 in, 7,000 back.
    let (tx, change) = payment(&capped, 2, 2_800, Some(digest("change 1")));
    capped.sign_transaction(&tx, &all(0x41), &change).await.unwrap();
    // Cosigner 1: three allowed, three refused (the next three went to cosigner 2), the last
    // refused; cosigner 2: three allowed, the last refused.
    assert_eq!(audit_is_whole(&cosigners).await, 7 + 4, "every decision is in the chains");
}

#[tokio::test(flavor = "multi_thread")]
async fn what_would_escape_the_review_is_refused() {
    let dir = copy_fixture("sign-tx");
    let (wallet, cosigners) = start(dir.path(), "max_sats_per_tx = 50000\n").await;
    // NONE, SINGLE and ANYONECANPAY leave outputs or inputs open after signing.
    for t in [0x42, 0x43, 0xc1] {
        let (tx, change) = payment(&wallet, t as u8, 5_000, None);
        let e = wallet.sign_transaction(&tx, &all(t), &change).await.unwrap_err();
        assert_eq!((e.kind(), e.context_value("rule")), (ErrorKind::PolicyDenied, Some("sighash")), "{t:#x}: {e}");
    }
    // A false change claim: the stranger's output claimed as the wallet's.
    let (tx, _) = payment(&wallet, 9, 5_000, None);
    let lie = [ChangeClaim { vout: 0, tweak: digest("not the stranger's key") }];
    let e = wallet.sign_transaction(&tx, &all(0x41), &lie).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("change_claim"), "{e}");
    // A raw digest, which could be a sighash passed off as something else.
    let e = wallet.sign_digest(&digest("a sighash in disguise"), None).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("rule")), (ErrorKind::PolicyDenied, Some("raw_digest")), "{e}");
    // Data of 32 bytes could be a sighash preimage's first hash: refused as a raw digest.
    let e = wallet.sign_data(&digest("a preimage's first hash"), None).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("raw_digest"), "{e}");
    assert_eq!(audit_is_whole(&cosigners).await, 2 * 6, "each refusal audited by both cosigners");
    // Any other data (BRC-3, BRC-103/104 signatures) is signed: its hash is no transaction's.
    let message = b"POST /api/pay HTTP/1.1 (an AuthFetch request to sign)";
    let tweak = digest("a BRC-42 child key");
    let sig = wallet.sign_data(message, Some(&tweak)).await.unwrap();
    let child = wallet_engine::tweaked_public_key(&wallet.identity_key(), &tweak).unwrap();
    let hashed: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(message).into()
    };
    assert!(wallet_engine::verify_signature(&child, &hashed, &sig));
    // Data longer than a session carries is hashed by the agent: a raw digest to the cosigners.
    let long = vec![7u8; wallet_traits::MAX_SIGN_DATA + 1];
    let e = wallet.sign_data(&long, None).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("raw_digest"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_sessions_never_share_a_budget_and_a_restart_forgets_nothing() {
    let dir = copy_fixture("sign-tx");
    let policy = "max_sats_per_window = 30000\n";
    let (wallet, cosigners) = start(dir.path(), policy).await;
    // Ten payments at once against two windows of three payments each.
    let tasks: Vec<_> = (0..10u8)
        .map(|n| {
            let wallet = wallet.clone();
            tokio::spawn(async move {
                let (tx, change) = payment(&wallet, 100 + n, 5_000, None);
                wallet.sign_transaction(&tx, &all(0x41), &change).await
            })
        })
        .collect();
    let mut signed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => signed += 1,
            Err(e) => assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}"),
        }
    }
    assert_eq!(signed, 6, "exactly what the two windows hold");
    for store in &cosigners.stores {
        let (sats, txs) = store.policy_state().unwrap().window(key().wallet.as_str(), 0).await.unwrap();
        assert!(sats <= 30_000 && txs <= 3, "a cosigner charged {sats} sats in {txs} transactions");
    }
    audit_is_whole(&cosigners).await;
    // New cosigner services over the same files: the windows are as full as before.
    drop((wallet, cosigners));
    let (wallet, cosigners) = start(dir.path(), policy).await;
    let (tx, change) = payment(&wallet, 200, 5_000, None);
    let e = wallet.sign_transaction(&tx, &all(0x41), &change).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("window_sats"), "{e}");
    audit_is_whole(&cosigners).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_without_policy_state_cannot_carry_a_policy() {
    let store: Arc<dyn wallet_traits::ShareStore> = Arc::new(wallet_testkit::MemoryShareStore::shares_only());
    let e = wallet_engine::SpendingPolicy::new(Policy::from_toml("").unwrap(), store, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("MPC_POLICY_FILE"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowlist_holds_and_a_payment_split_over_sessions_counts_once() {
    let dir = copy_fixture("sign-tx");
    let listed = Script::p2pkh_lock(&[0x11; 20]);
    let policy = format!(
        "allowed_destinations = [\"{}\"]\nmax_sats_per_tx = 60000\nmax_sats_per_window = 60000\n",
        listed.to_hex()
    );
    let (wallet, cosigners) = start(dir.path(), &policy).await;
    // A destination off the list is refused by both cosigners.
    let (tx, change) = payment(&wallet, 1, 5_000, None);
    let e = wallet.sign_transaction(&tx, &all(0x41), &change).await.unwrap_err();
    assert_eq!(e.context_value("rule"), Some("allowed_destinations"), "{e}");
    // One payment split over two sessions, each signing one input and claiming the same change:
    // 20,000 in, 14,700 back, so 5,300 leaves; crediting the change twice would count nothing.
    let mut tx = spending(&[wallet.identity_key(), wallet.identity_key()], listed.clone());
    for input in &mut tx.inputs {
        input.source_output.as_mut().unwrap().satoshis = INPUT;
    }
    tx.outputs[0].satoshis = 5_000;
    let tweak = digest("split change");
    let back = wallet_engine::tweaked_public_key(&wallet.identity_key(), &tweak).unwrap();
    tx.outputs.push(TxOutput { satoshis: 14_700, locking_script: Script::p2pkh_lock(&hash160(back.as_bytes())) });
    let claim = [ChangeClaim { vout: 2, tweak }];
    for index in [0, 1] {
        let one = [InputToSign { index, sighash_type: 0x41, tweak: None }];
        wallet.sign_transaction(&tx, &one, &claim).await.unwrap_or_else(|e| panic!("input {index}: {e}"));
    }
    let mut charged = Vec::new();
    for store in &cosigners.stores {
        charged.push(store.policy_state().unwrap().window(key().wallet.as_str(), 0).await.unwrap());
    }
    assert!(charged.contains(&(5_300, 1)), "one transaction, its real outflow, charged once: {charged:?}");
    audit_is_whole(&cosigners).await;
}
