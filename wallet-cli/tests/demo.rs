//! `mpc-wallet demo` as a user runs it: real prime generation, real DKG, real SQLite files.

use std::{path::Path, process::Command};

mod common;

use common::{line, records};

fn demo(dir: &Path, secret: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
    cmd.arg("demo").arg("--data-dir").arg(dir).env("MPC_WALLET_ID", "cli-test-wallet");
    for var in ["MPC_SHARE_SECRET", "MPC_STORAGE_PATH", "MPC_STORAGE_URL", "MPC_COSIGNER_ENDPOINTS", "MPC_THRESHOLD"] {
        cmd.env_remove(var);
    }
    if let Some(s) = secret {
        cmd.env("MPC_SHARE_SECRET", s);
    }
    let out = cmd.output().expect("run mpc-wallet");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_creates_then_restores_and_refuses_a_wrong_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = Some("cli test secret");

    let (ok, out, err) = demo(dir.path(), secret);
    assert!(ok, "first run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"), "{out}");
    assert_eq!(line(&out, "tweaked signature verified: "), Some("true"), "{out}");
    for phase in ["primes", "keygen", "aux info", "commit"] {
        assert!(line(&out, &format!("phase {phase}: ")).is_some(), "no timing for {phase}:\n{out}");
    }
    let identity = line(&out, "identity: ").expect("identity line").to_string();
    assert_eq!(identity.len(), 66);

    let (ok, out, err) = demo(dir.path(), secret);
    assert!(ok, "second run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("restored"), "{out}");
    assert_eq!(line(&out, "identity: "), Some(identity.as_str()));
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert!(line(&out, "phase keygen: ").is_none(), "a restore runs no DKG:\n{out}");

    let before = records(dir.path(), "cli-test-wallet").await;
    let (ok, out, err) = demo(dir.path(), Some("the wrong secret"));
    assert!(!ok, "a wrong secret must fail:\n{out}");
    assert!(err.contains("MPC_SHARE_SECRET") && err.contains("does not match the stored share"), "{err}");
    assert!(!err.contains("the wrong secret") && !out.contains("the wrong secret"), "the secret is never echoed");
    assert_eq!(records(dir.path(), "cli-test-wallet").await, before, "every stored record unchanged");
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"))
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .env_remove("MPC_SHARE_SECRET")
        .env("MPC_NETWORK", "moon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MPC_NETWORK"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was created");
}

#[test]
fn store_configuration_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
        cmd.arg("status").env_clear().env("MPC_WALLET_ID", "w");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&[("MPC_STORAGE_URL", "nosuch://x".into())]);
    assert!(!ok && err.contains("unknown store scheme 'nosuch'") && err.contains("sqlite"), "{err}");
    let db = dir.path().join("a.db").display().to_string();
    let (ok, err) = run(&[("MPC_STORAGE_PATH", db.clone()), ("MPC_STORAGE__NO_SUCH_OPTION", "1".into())]);
    assert!(!ok && err.contains("no_such_option"), "{err}");
    // A known option is accepted and the store opens (nothing provisioned yet).
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"))
        .arg("status")
        .env_clear()
        .env("MPC_WALLET_ID", "w")
        .env("MPC_STORAGE_PATH", &db)
        .env("MPC_STORAGE__BUSY_TIMEOUT_MS", "100")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("state: not provisioned"));
}
