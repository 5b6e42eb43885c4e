//! Signing transaction inputs with the MPC key: every party computes each digest from the
//! transaction; inputs of root and child keys sign in one session; a cosigner refuses an input
//! not locked to the key it is asked for, and its policy can refuse a transaction.

mod common;

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use common::*;
use wallet_bsv::{sighash, Script};
use wallet_engine::{DenyOutputScripts, TransactionsOnly, Wallet};
use wallet_traits::{CosignerTransport, ErrorKind, ExecutionId, InputToSign, PublicKey, SessionParams, SessionRequest};

/// The provisioned fixture wallet, restored with fresh cosigners (`policy` on each), and a
/// counter of the sessions it opens.
async fn wallet(
    dir: &std::path::Path,
    policy: Option<Arc<dyn wallet_engine::SigningPolicy>>,
) -> (Wallet, Cosigners, Arc<AtomicUsize>) {
    let cosigners = Cosigners::start_with_policy(dir, SECRET, policy).await;
    let (b, sessions) = counting_builder(dir, SECRET, &cosigners).await;
    let (wallet, p) = b.build().await.unwrap();
    assert_eq!(p, wallet_engine::Provisioned::Restored);
    (wallet, cosigners, sessions)
}

fn key_of(wallet: &Wallet, tweak: Option<[u8; 32]>) -> PublicKey {
    match tweak {
        Some(t) => wallet_engine::tweaked_public_key(&wallet.identity_key(), &t).unwrap(),
        None => wallet.identity_key(),
    }
}

fn tweak(n: u8) -> Option<[u8; 32]> {
    Some(digest(&format!("child key {n}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn inputs_of_root_and_child_keys_sign_in_one_session() {
    let dir = copy_fixture("sign-tx");
    let (wallet, _cosigners, sessions) = wallet(dir.path(), None).await;
    let tweaks = [None, tweak(1), tweak(2)];
    let keys: Vec<PublicKey> = tweaks.iter().map(|t| key_of(&wallet, *t)).collect();
    let tx = spending(&keys, Script::p2pkh_lock(&[7; 20]));
    // ALL, NONE|ANYONECANPAY and SINGLE, each with FORKID.
    let types = [0x41, 0xc2, 0x43];
    let inputs: Vec<InputToSign> =
        (0..3).map(|i| InputToSign { index: i as u32, sighash_type: types[i], tweak: tweaks[i] }).collect();
    let before = sessions.load(Ordering::SeqCst);
    let signed = wallet.sign_p2pkh_inputs(&tx, &inputs, &[]).await.unwrap();
    // One session with the one cosigner a 2-of-3 signing takes, for all three inputs.
    assert_eq!(sessions.load(Ordering::SeqCst) - before, 1);
    assert_eq!(signed.txid(), {
        let mut t = signed.clone();
        t.inputs.iter_mut().for_each(|i| i.source_output = None);
        t.txid()
    });
    for (i, input) in signed.inputs.iter().enumerate() {
        let chunks = input.unlocking_script.chunks().unwrap();
        assert_eq!(chunks.len(), 2, "input {i}");
        let (sig, key) = (chunks[0].data.clone().unwrap(), chunks[1].data.clone().unwrap());
        assert_eq!(key, keys[i].as_bytes().to_vec(), "input {i} carries its key");
        assert_eq!(*sig.last().unwrap() as u32, types[i]);
        // The digest computed here, independently, verifies the DER signature with k256.
        let source = tx.inputs[i].source_output.as_ref().unwrap();
        let d = sighash::digest(&tx, i, source.locking_script.as_bytes(), source.satoshis, types[i]).unwrap();
        let der = k256::ecdsa::Signature::from_der(&sig[..sig.len() - 1]).unwrap();
        let rs = der.to_bytes();
        let compact =
            wallet_traits::EcdsaSignature { r: rs[..32].try_into().unwrap(), s: rs[32..].try_into().unwrap() };
        assert!(k256_verifies(&key, &d, &compact), "input {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn more_inputs_than_one_session_holds_sign_in_sessions_side_by_side() {
    let dir = copy_fixture("sign-tx");
    let (wallet, _cosigners, sessions) = wallet(dir.path(), None).await;
    let n = wallet_traits::max_inputs_per_session(2) + 3;
    let keys: Vec<PublicKey> =
        (0..n).map(|i| key_of(&wallet, if i % 2 == 0 { None } else { tweak(i as u8) })).collect();
    let tx = spending(&keys, Script::p2pkh_lock(&[7; 20]));
    let inputs: Vec<InputToSign> = (0..n)
        .map(|i| InputToSign {
            index: i as u32,
            sighash_type: 0x41,
            tweak: if i % 2 == 0 { None } else { tweak(i as u8) },
        })
        .collect();
    let before = sessions.load(Ordering::SeqCst);
    let signatures = wallet.sign_transaction(&tx, &inputs, &[]).await.unwrap();
    assert_eq!(signatures.len(), n);
    assert_eq!(sessions.load(Ordering::SeqCst) - before, 2);
    for (i, sig) in signatures.iter().enumerate() {
        let d = sighash::input_digest(&tx, i, 0x41).unwrap();
        assert!(k256_verifies(keys[i].as_bytes(), &d, sig), "input {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_computes_what_it_signs_and_refuses_inputs_of_other_keys() {
    let dir = copy_fixture("sign-tx");
    let (wallet, cosigners, _) = wallet(dir.path(), None).await;
    let stranger = PublicKey::from_slice(
        &hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap(),
    )
    .unwrap();
    // The agent refuses first, naming the input.
    let tx = spending(&[wallet.identity_key(), stranger], Script::p2pkh_lock(&[7; 20]));
    let inputs = [0, 1].map(|index| InputToSign { index, sighash_type: 0x41, tweak: None });
    let e = wallet.sign_transaction(&tx, &inputs, &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("input 1") && e.message().contains("not P2PKH"), "{e}");
    // A cosigner asked directly (an agent that skips its own checks) refuses too: with the
    // wrong key, a wrong tweak, a raw transaction without source outputs, or a legacy sighash.
    let service = &cosigners.services[0];
    let ask = |tx: Vec<u8>, inputs: Vec<InputToSign>| SessionRequest {
        key: key(),
        execution_id: ExecutionId::random(),
        parties: vec![0, 1],
        params: SessionParams::SignTx { tx, inputs, change: vec![] },
    };
    let wrong_tweak = vec![InputToSign { index: 0, sighash_type: 0x41, tweak: tweak(9) }];
    let legacy = vec![InputToSign { index: 0, sighash_type: 0x01, tweak: None }];
    for (bytes, inputs, says) in [
        (tx.to_ef().unwrap(), inputs.to_vec(), "not P2PKH"),
        (tx.to_ef().unwrap(), wrong_tweak, "not P2PKH"),
        (tx.to_bytes(), inputs[..1].to_vec(), "Extended Format"),
        (tx.to_ef().unwrap(), legacy, "FORKID"),
    ] {
        let e = service.open_session(ask(bytes, inputs)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains(says), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cosigner_policy_refuses_a_transaction_and_nothing_is_signed() {
    let dir = copy_fixture("sign-tx");
    let denied = Script::p2pkh_lock(&[0xde; 20]);
    let policy = Arc::new(DenyOutputScripts::new([denied.as_bytes().to_vec()]));
    let (wallet, _cosigners, _) = wallet(dir.path(), Some(policy)).await;
    let input = [InputToSign { index: 0, sighash_type: 0x41, tweak: None }];
    let e = wallet.sign_transaction(&spending(&[wallet.identity_key()], denied), &input, &[]).await.unwrap_err();
    // Both cosigners refused by policy, so no pair of parties could sign: the error is their
    // refusal, in their words.
    assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
    assert!(e.message().contains("cosigner 1 refused") && e.message().contains("cosigner 2 refused"), "{e}");
    // Another destination signs.
    let ok =
        wallet.sign_transaction(&spending(&[wallet.identity_key()], Script::p2pkh_lock(&[7; 20])), &input, &[]).await;
    assert_eq!(ok.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transactions_only_cosigner_refuses_raw_digests_and_signs_transactions() {
    let dir = copy_fixture("sign-tx");
    let (wallet, _cosigners, _) = wallet(dir.path(), Some(Arc::new(TransactionsOnly))).await;
    let e = wallet.sign_digest(&[7; 32], None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
    let input = [InputToSign { index: 0, sighash_type: 0x41, tweak: None }];
    let tx = spending(&[wallet.identity_key()], Script::p2pkh_lock(&[7; 20]));
    assert_eq!(wallet.sign_transaction(&tx, &input, &[]).await.unwrap().len(), 1);
}
