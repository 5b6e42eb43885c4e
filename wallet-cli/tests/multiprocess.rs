//! The wallet across real process boundaries: two `mpc-wallet cosigner` processes and the agent
//! (`mpc-wallet sign`, or an in-test wallet) talking over HTTP or gRPC on 127.0.0.1.

use std::{path::Path, time::Duration};

mod common;
mod fleet;

use common::line;
use fleet::*;
use wallet_traits::{ShareState, StoredShare};

fn records(dir: &Path) -> Vec<Option<StoredShare>> {
    runtime().block_on(common::records(dir, WALLET))
}

fn provision_restart_sign(scheme: &'static str) {
    let fleet = Fleet::new(scheme);
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "first agent run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    let identity = line(&out, "identity: ").unwrap().to_string();

    // The agent is a new process each time: this is a restart.
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "second agent run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("restored"), "{out}");
    assert_eq!(line(&out, "identity: "), Some(identity.as_str()));
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert_eq!(line(&out, "tweaked signature verified: "), Some("true"));
    assert!(line(&out, "phase keygen: ").is_none(), "no DKG on restart");

    let (ok, out, err) = fleet.agent(&["status"], &[]).finish(Duration::from_secs(60));
    assert!(ok, "status reports a healthy wallet:\n{out}\n{err}");
    assert_eq!(out.matches(": can serve").count(), 2, "{out}");

    // The BRC-100 front over this transport: a derivation (distributed ECDH) and a joint linkage proof.
    let (_serve, addr) = serve(&fleet);
    derive_and_reveal(&addr, "025edd5cc23c51e87a497ca815d5dce0f8ab52554f849ed8995de64c5f34ce7143", "restarted");
}

/// `mpc-wallet serve` for `fleet` on a free port, and its address.
fn serve(fleet: &Fleet) -> (Proc, String) {
    let serve = fleet.agent(&["serve", "--listen", "127.0.0.1:0"], &[]);
    let addr = serve.wait_line(true, "listening: http://", Duration::from_secs(120));
    let addr = addr.trim_start_matches("listening: http://").to_string();
    (serve, addr)
}

/// Through the front at `addr`: a derivation for counterparty `other` (distributed ECDH unless
/// cached) and a joint linkage proof.
fn derive_and_reveal(addr: &str, other: &str, case: &str) {
    let body = http_post(
        addr,
        "/getPublicKey",
        &format!(r#"{{"protocolID":[2,"multi process"],"keyID":"1","counterparty":"{other}"}}"#),
    );
    assert!(body.starts_with("HTTP/1.1 200") && body.contains("publicKey"), "{case}: {body}");
    let body = http_post(
        addr,
        "/revealCounterpartyKeyLinkage",
        &format!(r#"{{"counterparty":"{other}","verifier":"{other}"}}"#),
    );
    assert!(body.starts_with("HTTP/1.1 200") && body.contains("encryptedLinkageProof"), "{case}: {body}");
}

#[test]
fn three_processes_over_http() {
    provision_restart_sign("http");
}

#[test]
fn three_processes_over_grpc() {
    provision_restart_sign("grpc");
}

#[test]
fn one_cosigner_over_http_and_one_over_grpc() {
    let fleet = Fleet::mixed(["http", "grpc"]);
    assert!(fleet.endpoints[0].starts_with("http://") && fleet.endpoints[1].starts_with("grpc://"));
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    // The agent server restores and stays up with /health.
    let (serve, addr) = serve(&fleet);
    assert!(serve.out.lock().unwrap().iter().any(|l| l == "provisioned: restored"), "{}", serve.dump());
    let body = http_get(&addr, "/health");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\"") && body.contains(line(&out, "identity: ").unwrap()), "{body}");
    // The BRC-100 JSON front on the same listener.
    let body = http_post(&addr, "/getPublicKey", r#"{"identityKey":true}"#);
    assert!(body.starts_with("HTTP/1.1 200") && body.contains(line(&out, "identity: ").unwrap()), "{body}");
    let body = http_post(&addr, "/isAuthenticated", "{}");
    assert!(body.contains(r#"{"authenticated":true}"#), "{body}");
    let body = http_post(&addr, "/getPublicKey", r#"{"protocolID":[3,"bad level"],"keyID":"1"}"#);
    assert!(body.starts_with("HTTP/1.1 400") && body.contains("Protocol security level must be 0, 1, or 2"), "{body}");
    assert!(body.contains(r#""isError":true"#), "{body}");
}

/// Cosigner `i`'s share replaced by `record`, or deleted (`None`), while its process is stopped.
fn replace_share(fleet: &mut Fleet, i: usize, record: Option<StoredShare>) {
    fleet.cosigners[i - 1] = None;
    runtime().block_on(async {
        let store = fleet.stores[i].open().await;
        let key = wallet_traits::KeyId::new(wallet_traits::WalletId::new(WALLET).unwrap(), 0);
        if let Some(current) = store.load_share(&key).await.unwrap() {
            store.delete_share(&key, current.version).await.unwrap();
        }
        if let Some(r) = record {
            store.create_share(&r).await.unwrap();
        }
    });
    fleet.start_cosigner(i);
}

/// Party 1's record of another, unrelated key under this wallet's key id, sealed like a real one.
fn another_keys_share() -> StoredShare {
    let key = wallet_traits::KeyId::new(wallet_traits::WalletId::new(WALLET).unwrap(), 0);
    let sealer = wallet_engine::Sealer::new(wallet_engine::ShareSecret::new(SECRET).unwrap(), Default::default());
    let mut secret = [7u8; 32];
    secret[0] = 0x42;
    let records = wallet_engine::insecure_testing::import_key(
        secret,
        2,
        &key,
        &[&sealer, &sealer, &sealer],
        wallet_engine::Protocol::CURRENT,
    )
    .unwrap();
    records.into_iter().nth(1).unwrap()
}

/// Signing, derivation (distributed ECDH) and linkage go on with cosigner 2 when cosigner 1 lost
/// its share, and when it holds another key's share; when neither can serve, the error lists
/// both and the front's answer names no cosigner URL.
///
/// The wallet is imported (DKG across processes has its own tests).
fn failover(scheme: &'static str) {
    let mut fleet = Fleet::new(scheme);
    let identity = imported_wallet(&fleet, wallet_engine::Protocol::CURRENT, 0x24);

    for (case, record) in [("lost share", None), ("another key's share", Some(another_keys_share()))] {
        replace_share(&mut fleet, 1, record);
        let why = if case == "lost share" { "holds no share of this key" } else { "holds a share of another key" };
        let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
        assert!(ok, "{case}: signing through cosigner 2 failed:\n{out}\n{err}");
        assert_eq!(line(&out, "provisioned: "), Some("restored"), "{case}: {out}");
        assert_eq!(line(&out, "identity: "), Some(identity.as_str()), "{case}");
        assert_eq!(line(&out, "signature verified: "), Some("true"), "{case}");
        assert_eq!(line(&out, "tweaked signature verified: "), Some("true"), "{case}");
        assert_eq!(line(&out, "cosigner 1: "), Some(why), "{case}: start-up says why:\n{out}");
        assert_eq!(line(&out, "cosigner 2: "), Some("can serve"), "{case}:\n{out}");

        let (ok, out, err) = fleet.agent(&["status"], &[]).finish(Duration::from_secs(60));
        assert!(ok, "{case}: the wallet can still sign, so status succeeds:\n{out}\n{err}");
        assert!(out.contains(&format!("cannot serve: {why}")), "{case}:\n{out}");
        assert!(out.contains("signing: 1 of 2 cosigner(s) can serve, 1 needed"), "{case}:\n{out}");

        let (_serve, addr) = serve(&fleet);
        // A counterparty never seen before, so the derivation needs the cosigners.
        derive_and_reveal(&addr, &public_key_of(if case == "lost share" { 3 } else { 4 }), case);
        let body = http_post(&addr, "/createSignature", r#"{"protocolID":[2,"fail over"],"keyID":"1","data":[1,2,3]}"#);
        assert!(body.starts_with("HTTP/1.1 200") && body.contains("signature"), "{case}: {body}");

        if case == "another key's share" {
            // Cosigner 2 gone too: nobody can serve; the answer says so per cosigner, no URLs.
            fleet.cosigners[1] = None;
            let body =
                http_post(&addr, "/createSignature", r#"{"protocolID":[2,"fail over"],"keyID":"2","data":[4,5,6]}"#);
            assert!(body.starts_with("HTTP/1.1 400"), "{body}");
            assert!(body.contains("cosigner 1: holds a share of another key"), "{body}");
            assert!(body.contains("cosigner 2: unreachable"), "{body}");
            for endpoint in &fleet.endpoints {
                let port = endpoint.rsplit(':').next().unwrap();
                assert!(!body.contains(endpoint.as_str()) && !body.contains(&format!(":{port}")), "{body}");
            }
        }
    }
}

#[test]
fn failover_over_http() {
    failover("http");
}

#[test]
fn failover_over_grpc() {
    failover("grpc");
}

/// A cosigner policy (MPC_POLICY_DENY_SCRIPTS) refuses a transaction paying to a denied script
/// over `scheme`, end to end across processes; the same wallet signs a transaction paying
/// elsewhere, and every signature verifies against the digest computed here.
fn policy_refuses_a_transaction(scheme: &'static str) {
    use wallet_bsv::{hash::hash160, sighash, Script, Transaction, TxId, TxInput, TxOutput};
    let denied = Script::p2pkh_lock(&[0xde; 20]);
    let fleet = Fleet::with_cosigner_env(scheme, &[("MPC_POLICY_DENY_SCRIPTS", &denied.to_hex())]);
    imported_wallet(&fleet, wallet_engine::Protocol::CURRENT, 0x25);
    runtime().block_on(async {
        let (wallet, p) = fleet.wallet_builder().build().await.unwrap();
        assert_eq!(p, wallet_engine::Provisioned::Restored);
        let key = wallet.identity_key();
        let paying = |to: Script| Transaction {
            version: 1,
            inputs: vec![TxInput {
                source_txid: TxId([5; 32]),
                source_vout: 0,
                unlocking_script: Script::default(),
                sequence: u32::MAX,
                source_output: Some(TxOutput {
                    satoshis: 2_000,
                    locking_script: Script::p2pkh_lock(&hash160(key.as_bytes())),
                }),
            }],
            outputs: vec![TxOutput { satoshis: 1_500, locking_script: to }],
            lock_time: 0,
        };
        let input = [wallet_traits::InputToSign { index: 0, sighash_type: 0x41, tweak: None }];
        let e = wallet.sign_transaction(&paying(denied.clone()), &input, &[]).await.unwrap_err();
        assert_eq!(e.kind(), wallet_traits::ErrorKind::PolicyDenied, "{scheme}: {e}");
        assert!(e.message().contains("cosigner 1 refused: output 0 pays to a script"), "{scheme}: {e}");
        let fine = paying(Script::p2pkh_lock(&[7; 20]));
        let sigs = wallet.sign_transaction(&fine, &input, &[]).await.unwrap();
        let digest = sighash::input_digest(&fine, 0, 0x41).unwrap();
        assert!(wallet_engine::verify_signature(&key, &digest, &sigs[0]), "{scheme}");
    });
}

#[test]
fn cosigner_policy_refuses_over_http() {
    policy_refuses_a_transaction("http");
}

#[test]
fn cosigner_policy_refuses_over_grpc() {
    policy_refuses_a_transaction("grpc");
}

/// A plain HTTP/1.1 GET with the standard library.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn kill_a_cosigner_during_aux_info_then_recover() {
    let mut fleet = Fleet::new("http");
    let agent = fleet.agent(&["sign"], &[]);
    agent.wait_line(false, "aux info:", Duration::from_secs(120));
    fleet.cosigners[1].as_mut().unwrap().kill9();
    let (ok, out, err) = agent.finish(Duration::from_secs(120));
    assert!(!ok, "provisioning cannot succeed without cosigner 2:\n{out}");
    assert!(err.contains("cosigner 2"), "the error names the cosigner:\n{err}");
    for (i, r) in records(&fleet.dir).iter().enumerate() {
        assert!(r.as_ref().is_none_or(|r| r.meta.state != ShareState::Active), "party {i} holds no Active share");
    }
    fleet.start_cosigner(2);
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "provisioning after the restart failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    let recs = records(&fleet.dir);
    assert!(recs.iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
}

// The pause is compiled into the binary only with the test feature `fault-injection`
// (scripts/test.sh enables it).
#[cfg(feature = "fault-injection")]
#[test]
fn kill_the_agent_after_the_cosigners_committed() {
    let fleet = Fleet::new("http");
    let mut agent = fleet.agent(&["sign"], &[("MPC_FAULT_PAUSE_BEFORE_AGENT_COMMIT_MS", "60000")]);
    agent.wait_line(false, "fault injection", Duration::from_secs(300));
    agent.kill9();
    let recs = records(&fleet.dir);
    assert_eq!(recs[0].as_ref().unwrap().meta.state, ShareState::Pending, "the agent died before its commit");
    assert!(recs[1..].iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active), "cosigners committed");
    let pk = hex::encode(&recs[0].as_ref().unwrap().meta.public_key);

    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "restart failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("restored"), "{out}");
    assert!(line(&out, "phase keygen: ").is_none(), "no new DKG:\n{out}");
    assert_eq!(line(&out, "identity: "), Some(pk.as_str()));
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert!(records(&fleet.dir).iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
}

#[test]
fn sixteen_concurrent_signatures_over_http() {
    let fleet = Fleet::new("http");
    imported_wallet(&fleet, wallet_engine::Protocol::CURRENT, 0x26);
    runtime().block_on(async {
        let (wallet, p) = fleet.wallet_builder().build().await.unwrap();
        assert_eq!(p, wallet_engine::Provisioned::Restored);
        let pk = wallet.identity_key();
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let w = wallet.clone();
                tokio::spawn(async move {
                    let d = [i; 32];
                    (d, w.sign_digest(&d, None).await)
                })
            })
            .collect();
        for t in tasks {
            let (d, sig) = t.await.unwrap();
            let sig = sig.expect("every concurrent signature succeeds");
            assert!(wallet_engine::verify_signature(&pk, &d, &sig));
        }
    });
}

/// MPC_STORAGE_URL selects the store of every process by scheme: the agent (`sign`, then
/// `serve`) on Postgres, cosigner 1 on RocksDB, cosigner 2 on the same Postgres database under
/// another namespace.
#[test]
fn stores_by_url_postgres_agent_rocksdb_and_postgres_cosigners() {
    let pg = std::env::var("MPC_TEST_POSTGRES_URL")
        .expect("MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` and export the URL it prints");
    let run = wallet_traits::ExecutionId::random().to_string()[..12].to_string();
    let fleet = Fleet::with_stores(["http", "grpc"], |dir, party| match party {
        1 => StoreSpec::url(format!("rocksdb://{}", dir.join("cosigner-1").display())),
        _ => StoreSpec {
            url: pg.clone(),
            options: wallet_traits::options(&[("namespace", &format!("mp-{run}-party-{party}"))]),
        },
    });
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert!(fleet.dir.join("cosigner-1/CURRENT").is_file(), "cosigner 1 wrote a RocksDB directory");

    let (serve, addr) = serve(&fleet);
    assert!(serve.out.lock().unwrap().iter().any(|l| l == "provisioned: restored"), "{}", serve.dump());
    let body = http_post(&addr, "/getPublicKey", r#"{"identityKey":true}"#);
    assert!(body.starts_with("HTTP/1.1 200") && body.contains(line(&out, "identity: ").unwrap()), "{body}");

    // The agent's and cosigner 2's records are Active in Postgres, each under its namespace.
    runtime().block_on(async {
        let key = wallet_traits::KeyId::new(wallet_traits::WalletId::new(WALLET).unwrap(), 0);
        for party in [0usize, 2] {
            let store = fleet.stores[party].open().await;
            let record = store.load_share(&key).await.unwrap().expect("a record in Postgres");
            assert_eq!(record.meta.state, ShareState::Active);
            assert_eq!(usize::from(record.meta.party_index), party);
        }
    });
}

/// Each party's record protocol and whether a migration is staged in it.
#[cfg(feature = "fault-injection")]
fn protocols(dir: &Path) -> Vec<(String, bool)> {
    records(dir)
        .iter()
        .map(|r| {
            let l = wallet_engine::share_labels(&r.as_ref().unwrap().sealed).unwrap();
            (l.protocol, l.next.is_some())
        })
        .collect()
}

/// Kills the agent (SIGKILL) in the middle of `mpc-wallet migrate` at `step`, and cosigner 2 too
/// when `cosigner_too`, restarts what it killed, and checks the next `mpc-wallet sign` leaves every
/// party on `settled` (one protocol, nothing staged) and signs with the unchanged key.
#[cfg(feature = "fault-injection")]
fn kill_during_migration(step: &str, cosigner_too: bool, settled: &str) {
    let mut fleet = Fleet::new("http");
    let identity = imported_wallet(&fleet, wallet_engine::Protocol::Cggmp21, 0x21);
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "the cggmp21 wallet does not sign:\n{out}\n{err}");
    assert_eq!(line(&out, "protocol: "), Some("cggmp21/0.6.3"), "{out}");
    assert_eq!(err.matches("mpc-wallet migrate").count(), 1, "says once that it should migrate:\n{err}");

    let mut agent = fleet.agent(&["migrate"], &[("MPC_FAULT_PAUSE_MIGRATION_AT", step)]);
    agent.wait_line(false, "fault injection", Duration::from_secs(300));
    agent.kill9();
    if cosigner_too {
        fleet.cosigners[1].as_mut().unwrap().kill9();
        fleet.start_cosigner(2);
    }
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "{step}: restart failed:\n{out}\n{err}");
    assert_eq!(line(&out, "identity: "), Some(identity.as_str()), "{step}");
    assert_eq!(line(&out, "protocol: "), Some(settled), "{step}:\n{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"), "{step}");
    assert_eq!(line(&out, "tweaked signature verified: "), Some("true"), "{step}");
    assert_eq!(protocols(&fleet.dir), vec![(settled.to_string(), false); 3], "{step}");
}

#[cfg(feature = "fault-injection")]
#[test]
fn kill_the_agent_after_the_cosigners_staged_a_migration_rolls_it_back() {
    kill_during_migration("cosigners-staged", false, "cggmp21/0.6.3");
}

#[cfg(feature = "fault-injection")]
#[test]
fn kill_the_agent_and_a_cosigner_after_every_party_staged_completes_the_migration() {
    kill_during_migration("agent-staged", true, "cggmp24/0.7.0-alpha.3");
}

#[cfg(feature = "fault-injection")]
#[test]
fn kill_the_agent_after_the_first_cosigner_committed_completes_the_migration() {
    kill_during_migration("first-cosigner-committed", false, "cggmp24/0.7.0-alpha.3");
}
