//! Layered configuration and `mpc-wallet config check`, through the binary.

use std::{path::Path, process::Command};

const SECRET: &str = "file-secret-correct-horse-battery";

/// Runs `mpc-wallet ARGS` in `dir` with only `env` among the MPC_* variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MPC_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn agent_file(dir: &Path) {
    std::fs::write(
        dir.join("mpc-wallet.toml"),
        format!(
            "wallet_id = \"from-file\"\nshare_secret = \"{SECRET}\"\nthreshold = 2\nstorage_path = \"agent.db\"\n\
             cosigner_endpoints = [\"http://127.0.0.1:8001\", \"grpc://127.0.0.1:9002\"]\n\
             [storage]\nbusy_timeout_ms = 250\n"
        ),
    )
    .unwrap();
}

#[test]
fn check_layers_defaults_file_and_environment_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    agent_file(dir.path());
    let (ok, out, err) = run(
        dir.path(),
        &["config", "check"],
        &[("MPC_WALLET_ID", "from-env"), ("MPC_JWT_SECRET", "jwt-secret-value"), ("MPC_WALLT_ID", "typo")],
    );
    assert!(ok, "{out}\n{err}");
    let line = |key: &str| out.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or_default().to_string();
    assert!(line("wallet_id").contains("\"from-env\"") && line("wallet_id").contains("from environment"), "{out}");
    assert!(line("threshold").contains("from mpc-wallet.toml"), "{out}");
    assert!(line("network").contains("\"mainnet\"") && line("network").contains("from default"), "{out}");
    assert!(line("storage.busy_timeout_ms").contains("MPC_STORAGE__BUSY_TIMEOUT_MS"), "{out}");
    assert!(line("cosigner_endpoints").contains("http://127.0.0.1:8001,grpc://127.0.0.1:9002"), "{out}");
    for secret in [SECRET, "jwt-secret-value"] {
        assert!(!out.contains(secret) && !err.contains(secret), "a secret was printed:\n{out}\n{err}");
    }
    assert!(line("share_secret").contains("<redacted>"), "{out}");
    assert!(out.contains("MPC_WALLT_ID is not a key"), "{out}");
    assert!(out.lines().any(|l| l == "config: ok"), "{out}");

    // --config names another file; the environment still wins over it.
    std::fs::rename(dir.path().join("mpc-wallet.toml"), dir.path().join("other.toml")).unwrap();
    let (ok, out, _) = run(dir.path(), &["--config", "other.toml", "config", "check"], &[("MPC_THRESHOLD", "3")]);
    assert!(ok, "{out}");
    assert!(line_of(&out, "threshold").contains("\"3\"") && line_of(&out, "wallet_id").contains("from other.toml"));
}

fn line_of(out: &str, key: &str) -> String {
    out.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or_default().to_string()
}

#[test]
fn check_fails_naming_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    agent_file(dir.path());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("MPC_THRESHOLD", "two")], "MPC_THRESHOLD"),
        (&[("MPC_THRESHOLD", "5")], "MPC_THRESHOLD"),
        (&[("MPC_NETWORK", "moon")], "MPC_NETWORK"),
        (&[("MPC_WALLET_ID", "bad id with spaces")], "MPC_WALLET_ID"),
        (&[("MPC_STORAGE_URL", "nosuch://x")], "known schemes: "),
        (&[("MPC_STORAGE__BUSY_TIMEOUT", "5")], "MPC_STORAGE__BUSY_TIMEOUT"),
        (&[("MPC_STORAGE__BUSY_TIMEOUT_MS", "soon")], "MPC_STORAGE__BUSY_TIMEOUT_MS"),
        (&[("MPC_COSIGNER_ENDPOINTS", "ftp://127.0.0.1:1")], "MPC_COSIGNER_ENDPOINTS"),
        (&[("MPC_PARTY_KEY", "not-hex")], "MPC_PARTY_KEY"),
        (&[("MPC_TLS_CA_FILE", "/nonexistent/ca.pem")], "MPC_TLS_CA_FILE"),
    ];
    for (env, named) in cases {
        let (ok, out, err) = run(dir.path(), &["config", "check"], env);
        assert!(!ok, "{env:?} was accepted:\n{out}");
        let verdict = err.lines().find(|l| l.starts_with("config: invalid")).unwrap_or_default();
        assert!(verdict.contains(named), "{env:?}: the error does not name {named}: {err}");
        assert!(!err.contains(SECRET), "{err}");
    }

    // A typo in the file names the key and the file.
    std::fs::write(dir.path().join("typo.toml"), "wallet_id = \"w\"\nthresold = 2\n").unwrap();
    let (ok, _, err) = run(dir.path(), &["--config", "typo.toml", "config", "check"], &[]);
    assert!(!ok && err.contains("`thresold`") && err.contains("typo.toml"), "{err}");
    // A missing --config file is an error, not a silent fallback.
    let (ok, _, err) = run(dir.path(), &["--config", "missing.toml", "config", "check"], &[]);
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

#[test]
fn cosigner_check_and_start_refuse_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let key = "11".repeat(32);
    let peers = format!("0={}", "22".repeat(32));
    let base = [
        ("MPC_PARTY_INDEX", "1"),
        ("MPC_SHARE_SECRET", SECRET),
        ("MPC_JWT_SECRET", "jwt-secret-value-long-enough"),
        ("MPC_HTTP_LISTEN", "127.0.0.1:0"),
        ("MPC_STORAGE_PATH", "cosigner.db"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        base.iter().chain(extra).map(|(k, v)| (*k, v.to_string())).collect()
    };
    let run_with = |args: &[&str], env: Vec<(&str, String)>, key: &str, peers: &str| {
        let mut env: Vec<(&str, String)> = env;
        env.push(("MPC_PARTY_KEY", key.to_string()));
        env.push(("MPC_PEER_KEYS", peers.to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(dir.path(), args, &env)
    };

    let (ok, out, err) = run_with(&["config", "check", "--cosigner"], with(&[]), &key, &peers);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("party_index = \"1\"") && out.contains("max_sessions = \"64\""), "{out}");
    assert!(!out.contains(SECRET) && !out.contains(&key), "{out}");

    let (ok, _, err) =
        run_with(&["config", "check", "--cosigner"], with(&[("MPC_MAX_SESSIONS", "lots")]), &key, &peers);
    assert!(!ok && err.contains("MPC_MAX_SESSIONS"), "{err}");
    let (ok, _, err) =
        run_with(&["config", "check", "--cosigner"], with(&[("MPC_HTTP_LISTEN", "nowhere")]), &key, &peers);
    assert!(!ok && err.contains("MPC_HTTP_LISTEN"), "{err}");

    // The service itself refuses an unknown store scheme at start, listing the known ones.
    let (ok, _, err) = run_with(&["cosigner"], with(&[("MPC_STORAGE_URL", "nosuch:///x")]), &key, &peers);
    assert!(!ok && err.contains("unknown store scheme 'nosuch'") && err.contains("sqlite"), "{err}");
    assert!(!dir.path().join("cosigner.db").exists(), "nothing was created before the check");
}

#[test]
fn serve_refuses_an_unknown_store_scheme_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:0"],
        &[("MPC_WALLET_ID", "w"), ("MPC_SHARE_SECRET", SECRET), ("MPC_STORAGE_URL", "nosuch:///x")],
    );
    assert!(!ok, "{err}");
    assert!(err.contains("unknown store scheme 'nosuch'; known schemes:") && err.contains("sqlite"), "{err}");
}

#[test]
fn logs_follow_mpc_log_else_rust_log() {
    let dir = tempfile::tempdir().unwrap();
    let starting = "mpc-wallet starting";
    let with = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
        cmd.current_dir(dir.path()).args(["config", "check"]).env_remove("RUST_LOG").env_remove("MPC_LOG");
        cmd.envs(env.iter().copied());
        String::from_utf8_lossy(&cmd.output().unwrap().stderr).to_string()
    };
    assert!(!with(&[]).contains(starting), "warnings only by default");
    assert!(with(&[("RUST_LOG", "debug")]).contains(starting), "RUST_LOG is honoured");
    assert!(with(&[("MPC_LOG", "debug")]).contains(starting));
    assert!(!with(&[("MPC_LOG", "warn"), ("RUST_LOG", "debug")]).contains(starting), "MPC_LOG wins");
    let bad = with(&[("MPC_LOG", "mpc=[")]);
    assert!(bad.contains("MPC_LOG=\"mpc=[\" is not a log filter"), "{bad}");
}
