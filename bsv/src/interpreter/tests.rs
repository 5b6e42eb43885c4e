//! Unit tests of the interpreter: opcode semantics Spend's vectors leave out, error messages,
//! and the bounds (each refused quickly).

use k256::ecdsa::SigningKey;

use super::*;
use crate::{sighash, TxId, TxInput, TxOutput};

fn tx(version: u32, unlocking: &[u8]) -> Transaction {
    Transaction {
        version,
        inputs: vec![TxInput {
            source_txid: TxId([0; 32]),
            source_vout: 0,
            unlocking_script: Script::new(unlocking.to_vec()),
            sequence: u32::MAX,
            source_output: None,
        }],
        outputs: vec![TxOutput { satoshis: 1, locking_script: Script::new(vec![0x51]) }],
        lock_time: 0,
    }
}

fn run(version: u32, unlocking: &str, locking: &str) -> Result<()> {
    let (u, l) = (hex::decode(unlocking).unwrap(), hex::decode(locking).unwrap());
    verify_input(&tx(version, &u), 0, &Script::new(l), 1)
}

#[track_caller]
fn ok(version: u32, unlocking: &str, locking: &str) {
    if let Err(e) = run(version, unlocking, locking) {
        panic!("{unlocking} / {locking} (version {version}): {e}");
    }
}

#[track_caller]
fn fails(version: u32, unlocking: &str, locking: &str, why: &str) -> Error {
    let e = run(version, unlocking, locking).expect_err(&format!("{unlocking} / {locking} must fail"));
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains(why), "expected {why:?} in {e}");
    assert_eq!(e.context_value("input"), Some("0"));
    e
}

#[test]
fn errors_name_the_input_the_reason_and_the_place() {
    let e = fails(1, "51", "5288", "OP_EQUALVERIFY failed");
    assert!(e.message().starts_with("input 0: "), "{e}");
    assert!(e.message().contains("(locking script, byte 1)"), "{e}");
    fails(1, "", "", "empty stack");
    fails(1, "00", "", "end with false");
    fails(1, "5151", "", "clean stack");
    fails(1, "5151", "6a", "clean stack");
    fails(1, "0201", "51", "malformed push");
    fails(1, "0101", "51", "not minimally encoded");
    fails(1, "76", "51", "may only push data");
    fails(1, "51", "50", "not a valid opcode");
    fails(1, "51", "ba", "not a valid opcode");
    fails(1, "51", "63", "closed by OP_ENDIF");
    fails(1, "51", "68", "OP_ENDIF without");
    fails(1, "", "0000ae", "OP_CHECKMULTISIG requires at least 3 items");
    fails(1, "51", "0000ae", "dummy");
    let e = verify_input(&tx(1, &[]), 3, &Script::default(), 0).unwrap_err();
    assert!(e.message().starts_with("input 3: does not exist"), "{e}");
}

#[test]
fn version_two_relaxes_the_malleability_rules() {
    ok(2, "5151", "");
    ok(2, "0101", "");
    ok(2, "5176", "87");
    ok(2, "020100", "8b5287");
    ok(2, "51", "0000ae");
    ok(2, "51", "6a");
}

#[test]
fn conditionals_and_op_return() {
    ok(1, "51", "63526753685287");
    ok(1, "00", "63526753685387");
    ok(1, "00", "636a6851");
    ok(1, "51", "6367676851");
    // OP_RETURN in an executed branch ends the script when the conditionals close.
    ok(1, "5151", "636a6800");
    // A truncated push fails when reached, even in a branch not taken.
    fails(1, "00", "6305", "malformed push");
    // OP_VERIF compares with the transaction version (4 bytes, little-endian).
    ok(1, "0401000000", "6551670068");
    ok(1, "0402000000", "6651670068");
}

#[test]
fn splice_bitwise_and_arithmetic() {
    for locking in [
        "016101627e02616287",
        "03616263517f02626388016187",
        "525480040200000087",
        "040200008081018287",
        "4f5480040100008087",
        "020f0f8302f0f087",
        "020ff05198021fe087",
        "020ff0599902000787",
        "020ff001649802000087",
        "5552965287",
        "018552974f87",
        "01855296018287",
        "01858e018287",
        "018551b7018287",
        "018552b6019487",
        "09ffffffffffffffff7f76958277011287",
        "036162635151b3016287",
        "0361626352b402616287",
        "0361626352b502626387",
        "62040100000087",
    ] {
        ok(1, "", locking);
    }
    fails(1, "", "510096", "divide by zero");
    fails(1, "", "036162635351b3", "outside");
}

#[test]
fn stack_operations() {
    for locking in [
        "5152537b518853885287",
        "51525354527a5288548853885187",
        "515253527951886d",
        "51525354555671528851885688558854885387",
        "51527d528851885287",
        "51525354725288518854885387",
        "51526b51886c5287",
        "517387",
        "00737451880087",
    ] {
        ok(1, "", locking);
    }
}

#[test]
fn numbers_must_be_minimal_in_version_one() {
    fails(1, "", "0201008b", "not minimally encoded");
    fails(1, "", "01808b", "not minimally encoded");
    ok(2, "", "01808b5187");
}

/// A P2PKH output spent with a k256 signature, and the same with one byte changed.
#[test]
fn p2pkh_spends_verify_and_tampering_fails() {
    let key = SigningKey::from_slice(&[0x11; 32]).unwrap();
    let public: [u8; 33] = key.verifying_key().to_sec1_bytes().as_ref().try_into().unwrap();
    let lock = Script::p2pkh_lock_to(&public);
    let mut tx = tx(1, &[]);
    tx.inputs[0].source_output = Some(TxOutput { satoshis: 5000, locking_script: lock.clone() });
    let digest = sighash::digest(&tx, 0, lock.as_bytes(), 5000, sighash::ALL_FORKID).unwrap();
    let (sig, _) = key.sign_prehash_recoverable(&digest).unwrap();
    let mut sig = sig.to_der().as_bytes().to_vec();
    sig.push(0x41);
    tx.inputs[0].unlocking_script = Script::p2pkh_unlock(&sig, &public);
    verify_spends(&tx).unwrap();
    verify_input(&tx, 0, &lock, 5000).unwrap();
    let e = verify_input(&tx, 0, &lock, 5001).unwrap_err();
    assert!(e.message().contains("the signature does not verify"), "{e}");
    tx.outputs[0].satoshis += 1;
    let e = verify_spends(&tx).unwrap_err();
    assert!(e.message().contains("the signature does not verify"), "{e}");
    // A signature without FORKID is refused rather than checked with the original digest.
    tx.outputs[0].satoshis -= 1;
    let mut unforked = sig.clone();
    *unforked.last_mut().unwrap() = 0x01;
    tx.inputs[0].unlocking_script = Script::p2pkh_unlock(&unforked, &public);
    let e = verify_spends(&tx).unwrap_err();
    assert!(e.message().contains("FORKID"), "{e}");
    tx.inputs[0].source_output = None;
    let e = verify_spends(&tx).unwrap_err();
    assert!(e.message().contains("input 0: has no source output"), "{e}");
}

/// 2-of-3 multisig, with OP_CODESEPARATOR moving the script code.
#[test]
fn multisig_and_codeseparator() {
    let keys: Vec<SigningKey> = (1..=3u8).map(|i| SigningKey::from_slice(&[i; 32]).unwrap()).collect();
    let pubs: Vec<Vec<u8>> = keys.iter().map(|k| k.verifying_key().to_sec1_bytes().to_vec()).collect();
    let mut lock = Script::default().push_op(0xab).push_op(0x52);
    for p in &pubs {
        lock = lock.push_data(p);
    }
    let lock = lock.push_op(0x53).push_op(0xae);
    let mut t = tx(1, &[]);
    // The script code starts after the OP_CODESEPARATOR.
    let digest = sighash::digest(&t, 0, &lock.as_bytes()[1..], 7, sighash::ALL_FORKID).unwrap();
    let sign = |k: &SigningKey| {
        let (s, _) = k.sign_prehash_recoverable(&digest).unwrap();
        let mut s = s.to_der().as_bytes().to_vec();
        s.push(0x41);
        s
    };
    let unlock = |sigs: &[Vec<u8>]| sigs.iter().fold(Script::default().push_op(0), |s, sig| s.push_data(sig));
    t.inputs[0].unlocking_script = unlock(&[sign(&keys[0]), sign(&keys[2])]);
    verify_input(&t, 0, &lock, 7).unwrap();
    t.inputs[0].unlocking_script = unlock(&[sign(&keys[2]), sign(&keys[0])]);
    let e = verify_input(&t, 0, &lock, 7).unwrap_err();
    assert!(e.message().contains("signature does not verify"), "out of order: {e}");
}

/// Runs `locking` (relaxed rules, so only the bound can stop it) and expects the bound `why` to
/// stop it. How long a bound lets a script run is the work budget's business, not a timed test.
#[track_caller]
fn refused_by(unlocking: &[u8], locking: &[u8], why: &str) {
    let e = verify_input(&tx(2, unlocking), 0, &Script::new(locking.to_vec()), 0).unwrap_err();
    assert!(e.message().contains(why), "expected {why:?} in {e}");
}

/// OP_DUP OP_CAT doubles an item: the memory bound stops it at 32 MB, after 25 doublings.
#[test]
fn doubling_an_item_is_stopped_by_the_memory_bound() {
    let mut locking = vec![0x51];
    locking.extend([0x76, 0x7e].repeat(64));
    refused_by(&[], &locking, "memory usage would exceed 32000000 bytes");
    // The alt stack has its own bound.
    let mut locking = vec![0x51];
    locking.extend([0x76, 0x7e].repeat(23));
    locking.extend([0x76, 0x6b].repeat(4));
    refused_by(&[], &locking, "alt stack memory usage would exceed");
}

/// Copying an 8 MiB item over and over is stopped by the work budget.
#[test]
fn copying_is_stopped_by_the_work_budget() {
    let mut locking = vec![0x51];
    locking.extend([0x76, 0x7e].repeat(23));
    locking.extend([0x76, 0x75].repeat(1000));
    refused_by(&[], &locking, "more work than the bound");
    // Hashing the item is charged too.
    let mut locking = vec![0x51];
    locking.extend([0x76, 0x7e].repeat(23));
    locking.extend([0x76, 0xa8, 0x75].repeat(1000));
    refused_by(&[], &locking, "more work than the bound");
}

#[test]
fn item_count_number_size_and_allocation_bounds() {
    let mut locking = vec![0x51, 0x51, 0x51];
    locking.extend([0x6f].repeat(MAX_STACK_ITEMS / 3 + 1));
    refused_by(&[], &locking, "more than 1000000 items");
    // A number operand one byte longer than allowed, made with OP_NUM2BIN.
    let n = (MAX_NUMBER_SIZE + 1) as u32;
    let locking = [&[0x51, 0x04][..], &n.to_le_bytes(), &[0x80, 0x8b]].concat();
    refused_by(&[], &locking, "longer than the 750000 bytes");
    // OP_NUM2BIN and OP_LSHIFTNUM sizes past the memory bound are refused before allocating.
    refused_by(&[], &[0x51, 0x04, 1, 0, 0, 0x40, 0x80], "larger than");
    refused_by(&[], &[0x51, 0x04, 0, 0, 0, 0x3f, 0x80], "would exceed 32000000");
    refused_by(&[], &[0x51, 0x05, 0, 0, 0, 0, 1, 0xb6], "would exceed 32000000");
    refused_by(&[], &[0x51, 0x05, 0, 0, 0, 0, 1, 0x98], "2^30 bits");
    // A product of two 700 kB numbers is refused before it is computed.
    let mut locking = vec![0x01, 0x7f, 0x03, 0x60, 0xae, 0x0a, 0x80, 0x83, 0x76, 0x95];
    refused_by(&[], &locking, "more work than the bound");
    locking[9] = 0x96;
    refused_by(&[], &locking, "more work than the bound");
}

/// Signature checks are charged: a script that checks one signature thousands of times stops
/// at the budget (the signature is well formed, so each check runs ECDSA).
#[test]
fn signature_checks_are_bounded() {
    let key = SigningKey::from_slice(&[0x22; 32]).unwrap();
    let (sig, _) = key.sign_prehash_recoverable(&[1; 32]).unwrap();
    let mut sig = sig.to_der().as_bytes().to_vec();
    sig.push(0x41);
    let unlocking = Script::default().push_data(&sig).push_data(&key.verifying_key().to_sec1_bytes());
    let locking = [0x6e, 0xac, 0x75].repeat(10_000);
    refused_by(unlocking.as_bytes(), &locking, "more work than the bound");
}

#[test]
fn verify_spends_shares_one_budget() {
    // Each input copies 8 MiB ten times: fine alone, too much for forty inputs together.
    let mut locking = vec![0x51];
    locking.extend([0x76, 0x7e].repeat(23));
    locking.extend([0x76, 0x75].repeat(10));
    locking.extend([0x75, 0x51]);
    let source = TxOutput { satoshis: 0, locking_script: Script::new(locking) };
    let mut t = tx(2, &[]);
    t.inputs[0].source_output = Some(source);
    verify_spends(&t).unwrap();
    t.inputs = vec![t.inputs[0].clone(); 40];
    let e = verify_spends(&t).unwrap_err();
    assert!(e.message().contains("more work than the bound"), "{e}");
}
