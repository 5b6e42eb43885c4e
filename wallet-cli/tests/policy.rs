//! A hijacked agent against cosigner processes that enforce a spending policy (MPC_POLICY_FILE)
//! over HTTP and gRPC on 127.0.0.1. The attacker holds what a turned agent holds: the agent's
//! share, its share secret and the JWT secret, and talks to the cosigners directly (an in-test
//! `Wallet`, and the transports themselves). Every attempt must be refused, say why, and leave
//! each cosigner's audit chain whole; a person's approval (`mpc-wallet approve`) lets one payment
//! through.

use std::{path::Path, time::Duration};

mod fleet;

use fleet::*;
use wallet_bsv::{hash::hash160, Script, Transaction, TxId, TxInput, TxOutput};
use wallet_engine::Wallet;
use wallet_traits::{ErrorKind, ExecutionId, InputToSign, KeyId, SessionParams, SessionRequest, WalletId};

/// A stranger's P2PKH script.
fn stranger(n: u8) -> Script {
    Script::p2pkh_lock(&[n; 20])
}

/// Spends an output of `input` satoshis of the wallet's root key (`n` makes it another
/// transaction), paying all but a 500-satoshi fee to `to`: its net outflow is `input`.
fn payment(wallet: &Wallet, n: u8, to: Script, input: u64) -> Transaction {
    let key = wallet.identity_key();
    Transaction {
        version: 1,
        inputs: vec![TxInput {
            source_txid: TxId([n; 32]),
            source_vout: 0,
            unlocking_script: Script::default(),
            sequence: u32::MAX,
            source_output: Some(TxOutput {
                satoshis: input,
                locking_script: Script::p2pkh_lock(&hash160(key.as_bytes())),
            }),
        }],
        outputs: vec![TxOutput { satoshis: input - 500, locking_script: to }],
        lock_time: 0,
    }
}

fn all() -> [InputToSign; 1] {
    [InputToSign { index: 0, sighash_type: 0x41, tweak: None }]
}

/// A policy file in `dir`: 12,000 sats per transaction, 25,000 per window, `approver` pinned.
fn policy_file(dir: &Path, approver: &str) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        format!("max_sats_per_tx = 12000\nmax_sats_per_window = 25000\napprover_keys = [\"{approver}\"]\n"),
    )
    .unwrap();
    path.display().to_string()
}

/// `mpc-wallet audit --verify` on cosigner `i`'s store: whether the chain holds, and the output.
fn audit(fleet: &Fleet, i: usize) -> (bool, String) {
    let mut env = fleet.stores[i].env();
    env.push(("MPC_PARTY_INDEX".into(), i.to_string()));
    let (ok, out, err) = Proc::spawn(&["audit", "--verify"], &env).finish(Duration::from_secs(60));
    (ok, format!("{out}\n{err}"))
}

fn attack(scheme: &'static str) {
    let approver = wallet_policy::ApproverKey::generate();
    let scratch = tempfile::tempdir().unwrap();
    let policy = policy_file(scratch.path(), &approver.public_hex());
    let mut fleet = Fleet::with_cosigner_env(scheme, &[("MPC_POLICY_FILE", &policy)]);
    imported_wallet(&fleet, wallet_engine::Protocol::CURRENT, 0x27);
    let rt = runtime();
    let (wallet, _) = rt.block_on(fleet.wallet_builder().build()).unwrap();
    let sign = |tx: &Transaction| rt.block_on(wallet.sign_transaction(tx, &all(), &[]));
    let refused = |tx: &Transaction, rule: &str| {
        let e = sign(tx).unwrap_err();
        assert_eq!((e.kind(), e.context_value("rule")), (ErrorKind::PolicyDenied, Some(rule)), "{scheme}: {e}");
        e
    };

    // Above the cap of one transaction: both cosigners refuse, and say how to get it approved.
    let e = refused(&payment(&wallet, 1, stranger(1), 15_000), "max_sats_per_tx");
    assert!(e.message().contains("cosigner 1 refused") && e.message().contains("cosigner 2 refused"), "{e}");
    assert!(e.context_value("approve").is_some_and(|c| c.contains("mpc-wallet approve --wallet mp-wallet")), "{e}");
    // NONE, SINGLE, ANYONECANPAY; a raw digest (a sighash passed off as a digest).
    for t in [0x42u32, 0x43, 0xc1] {
        let e = rt
            .block_on(wallet.sign_transaction(
                &payment(&wallet, 2, stranger(2), 1_000),
                &[InputToSign { sighash_type: t, ..all()[0] }],
                &[],
            ))
            .unwrap_err();
        assert_eq!(e.context_value("rule"), Some("sighash"), "{scheme} {t:#x}: {e}");
    }
    let e = rt.block_on(wallet.sign_digest(&[7; 32], None)).unwrap_err();
    assert_eq!(e.context_value("rule"), Some("raw_digest"), "{scheme}: {e}");
    // Many payments: each cosigner's window holds 25,000 (two of 10,000), so four go through,
    // two per cosigner, and the fifth is refused by both.
    for n in 10..14 {
        sign(&payment(&wallet, n, stranger(n), 10_000)).unwrap_or_else(|e| panic!("{scheme} payment {n}: {e}"));
    }
    refused(&payment(&wallet, 14, stranger(14), 10_000), "window_sats");

    // A cosigner restarted mid-window remembers it, and refuses a session it saw before.
    let key = KeyId::new(WalletId::new(WALLET).unwrap(), 0);
    let replayed = SessionRequest {
        key: key.clone(),
        execution_id: ExecutionId::random(),
        parties: vec![0, 1],
        params: SessionParams::Sign { digest: [9; 32], tweak: None },
    };
    let connect = |fleet: &Fleet| {
        let mut options = wallet_traits::Options::new();
        options.insert("jwt_secret".into(), JWT.into());
        rt.block_on(wallet_traits::Plugins::from_inventory().connect_transport(&fleet.endpoints[0], options)).unwrap()
    };
    let Err(first) = rt.block_on(connect(&fleet).open_session(replayed.clone())) else {
        panic!("{scheme}: a raw digest is refused")
    };
    assert_eq!(first.kind(), ErrorKind::PolicyDenied, "{first}");
    fleet.cosigners[0].as_mut().unwrap().kill9();
    fleet.start_cosigner(1);
    let (wallet, _) = rt.block_on(fleet.wallet_builder().build()).unwrap();
    let e = rt.block_on(wallet.sign_transaction(&payment(&wallet, 15, stranger(15), 10_000), &all(), &[])).unwrap_err();
    assert_eq!(e.context_value("rule"), Some("window_sats"), "{scheme} after a restart: {e}");
    let Err(again) = rt.block_on(connect(&fleet).open_session(replayed)) else {
        panic!("{scheme}: a replay is refused")
    };
    assert!(again.message().contains("execution id was used before"), "{scheme}: {again}");

    for i in 1..=2 {
        let (ok, out) = audit(&fleet, i);
        assert!(ok && out.contains("the chain holds"), "{scheme} cosigner {i}:\n{out}");
    }
}

#[test]
fn a_hijacked_agent_is_refused_over_http() {
    attack("http");
}

#[test]
fn a_hijacked_agent_is_refused_over_grpc() {
    attack("grpc");
}

/// Approvals over `scheme`: `mpc-wallet approve` lifts the limits for one payment per approval
/// and cosigner that holds it; an expired, smaller or foreign-key approval does nothing; an edited
/// audit record breaks the chain.
fn approvals(scheme: &'static str) {
    let approver = wallet_policy::ApproverKey::generate();
    let scratch = tempfile::tempdir().unwrap();
    let policy = policy_file(scratch.path(), &approver.public_hex());
    let key_file = scratch.path().join("approver.key");
    std::fs::write(&key_file, approver.secret_hex().as_bytes()).unwrap();
    let fleet = Fleet::with_cosigner_env(scheme, &[("MPC_POLICY_FILE", &policy)]);
    imported_wallet(&fleet, wallet_engine::Protocol::CURRENT, 0x28);
    let rt = runtime();
    let (wallet, _) = rt.block_on(fleet.wallet_builder().build()).unwrap();
    let to = stranger(0xab);
    let approve = |key: &Path, sats: &str, ttl: &str| {
        let mut args = vec!["approve", "--key", key.to_str().unwrap(), "--wallet", WALLET, "--to"];
        let to_hex = to.to_hex();
        args.push(&to_hex);
        args.extend(["--sats", sats, "--ttl", ttl]);
        let urls: Vec<String> = fleet.endpoints.clone();
        for u in &urls {
            args.extend(["--cosigner", u.as_str()]);
        }
        Proc::spawn(&args, &[]).finish(Duration::from_secs(60))
    };
    if scheme == "http" {
        // The route takes no token, so anyone can reach it: garbage, an oversized body and the
        // same bytes twice change nothing and say what is wrong.
        let addr = fleet.endpoints[0].trim_start_matches("http://").to_string();
        let garbage = http_post(&addr, "/v1/approvals", r#"{"approval":{"wallet":"mp-wallet"}}"#);
        assert!(garbage.starts_with("HTTP/1.1 400") && garbage.contains("not an approval"), "{garbage}");
        let huge = http_post(&addr, "/v1/approvals", &"x".repeat(64 * 1024));
        assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    }
    let over = payment(&wallet, 1, to.clone(), 15_000);
    let sign = |tx: &Transaction| rt.block_on(wallet.sign_transaction(tx, &all(), &[]));
    assert_eq!(sign(&over).unwrap_err().context_value("rule"), Some("max_sats_per_tx"));
    // An approval for less than the payment's outflow, one that expired, one by an unpinned key.
    let (ok, out, err) = approve(&key_file, "14999", "3600");
    assert!(ok, "{out}\n{err}");
    assert_eq!(sign(&over).unwrap_err().context_value("rule"), Some("max_sats_per_tx"), "14,999 < 15,000 out");
    let (ok, out, err) = approve(&key_file, "15000", "1");
    assert!(ok, "{out}\n{err}");
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(sign(&over).is_err(), "an expired approval does nothing");
    let stranger_key = scratch.path().join("stranger.key");
    std::fs::write(&stranger_key, wallet_policy::ApproverKey::generate().secret_hex().as_bytes()).unwrap();
    let (ok, _, err) = approve(&stranger_key, "15000", "3600");
    assert!(!ok && err.contains("not among this cosigner's approver_keys"), "{err}");
    // The real one: each cosigner holding it allows one such payment; then the limits hold again.
    let (ok, out, err) = approve(&key_file, "15000", "3600");
    assert!(ok && out.contains("approval kept"), "{out}\n{err}");
    let (ok, out, _) = approve(&key_file, "15000", "3600");
    assert!(ok && out.contains("approval kept"), "a new approval (another nonce) is another approval: {out}");
    // Two approvals at each cosigner: four such payments, then the limits hold again.
    for n in 1..5 {
        sign(&payment(&wallet, n, to.clone(), 15_000)).unwrap_or_else(|e| panic!("approved payment {n}: {e}"));
    }
    assert_eq!(
        sign(&payment(&wallet, 5, to.clone(), 15_000)).unwrap_err().context_value("rule"),
        Some("max_sats_per_tx")
    );
    // Edit one record of cosigner 1's audit log behind its back: --verify finds it.
    let (ok, out) = audit(&fleet, 1);
    assert!(ok, "{out}");
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&fleet.stores[1].url).await.unwrap();
        sqlx::query("UPDATE mpc_policy_audit SET body = CAST(replace(CAST(body AS TEXT), 'false', 'true') AS BLOB) WHERE seq = 1")
            .execute(&pool)
            .await
            .unwrap();
    });
    let (ok, out) = audit(&fleet, 1);
    assert!(!ok && out.contains("broken"), "{out}");
}

#[test]
fn an_approval_lets_one_payment_through_over_http() {
    approvals("http");
}

#[test]
fn an_approval_lets_one_payment_through_over_grpc() {
    approvals("grpc");
}
