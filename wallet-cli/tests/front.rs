//! The BRC-100 front's variables through the binary: invalid values of MPC_ALLOWED_ORIGINS,
//! MPC_ALLOWED_HOSTS, MPC_API_TOKEN and discovery's MPC_TRUSTED_CERTIFIERS and MPC_TRUST_LEVEL
//! fail `serve` at start (before anything is provisioned) and `config check`, naming the variable
//! and never printing the token.

use std::{path::Path, process::Command};

const SECRET: &str = "front-test-secret-correct-horse";
const TOKEN: &str = "front-cli-test-token-0123456789abcdef";

/// Runs `mpc-wallet ARGS` in `dir` with only `env` among the MPC_* variables.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MPC_")) {
        cmd.env_remove(k);
    }
    cmd.envs([("MPC_WALLET_ID", "front"), ("MPC_SHARE_SECRET", SECRET), ("MPC_STORAGE_PATH", "agent.db")]);
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

const BAD: &[(&str, &str)] = &[
    ("MPC_ALLOWED_ORIGINS", "localhost:3000"),
    ("MPC_ALLOWED_ORIGINS", "http://app.example/path"),
    ("MPC_ALLOWED_ORIGINS", "*, http://app.example"),
    ("MPC_ALLOWED_HOSTS", "*"),
    ("MPC_ALLOWED_HOSTS", "http://wallet.internal"),
    ("MPC_API_TOKEN", "short-token"),
    ("MPC_TRUSTED_CERTIFIERS", "not-a-key:3:Somebody"),
    ("MPC_TRUSTED_CERTIFIERS", "02cf6cdf466951d8dfc9e7c9367511d0007ed6fba35ed42d425cc412fd6cfd4a17:99:SocialCert"),
    ("MPC_TRUST_LEVEL", "lots"),
];

#[test]
fn invalid_front_values_fail_config_check_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in BAD {
        let (ok, out, err) = run(dir.path(), &["config", "check"], &[(var, value)]);
        assert!(!ok, "{var}={value} was accepted:\n{out}\n{err}");
        assert!(err.contains("config: invalid") && err.contains(var), "{var}: {err}");
        if *var == "MPC_API_TOKEN" {
            assert!(!out.contains(value) && !err.contains(value), "the token was printed:\n{out}\n{err}");
        }
    }
    let good = [
        ("MPC_ALLOWED_ORIGINS", "http://localhost:3000, https://app.example"),
        ("MPC_ALLOWED_HOSTS", "wallet.internal:3321"),
        ("MPC_API_TOKEN", TOKEN),
        ("MPC_TRUSTED_CERTIFIERS", "02cf6cdf466951d8dfc9e7c9367511d0007ed6fba35ed42d425cc412fd6cfd4a17:3:SocialCert"),
        ("MPC_TRUST_LEVEL", "3"),
    ];
    let (ok, out, err) = run(dir.path(), &["config", "check"], &good);
    assert!(ok, "{out}\n{err}");
    assert!(out.lines().any(|l| l.starts_with("api_token =") && l.contains("<redacted>")), "{out}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "the token was printed:\n{out}\n{err}");
}

#[test]
fn invalid_front_values_fail_serve_before_anything_starts() {
    for (var, value) in BAD {
        let dir = tempfile::tempdir().unwrap();
        let (ok, out, err) = run(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[(var, value)]);
        assert!(!ok, "{var}={value} was accepted:\n{out}\n{err}");
        assert!(err.contains(var), "{var}: {err}");
        assert!(!out.contains("listening:"), "{out}");
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(created.is_empty(), "{var}: nothing is created before the check, found {created:?}");
        if *var == "MPC_API_TOKEN" {
            assert!(!out.contains(value) && !err.contains(value), "the token was printed:\n{out}\n{err}");
        }
    }
}
