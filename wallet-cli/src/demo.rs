//! `mpc-wallet demo`: provision (or restore) the embedded 2-of-3 wallet, sign, verify.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use wallet_backend_sqlite::SqliteShareStore;
use wallet_engine::{ShareSecret, StoreLocation, WalletBuilder, WalletConfig};
use wallet_traits::ShareStore;

use crate::{agent, embedded};

/// Used only when MPC_SHARE_SECRET is unset, and announced loudly.
const DEV_SECRET: &str = "mpc-wallet-demo-development-secret-do-not-use";

pub(crate) async fn run(file: Option<&Path>, data_dir: &Path) -> Result<()> {
    let (builder, dir) = embedded_builder(file, data_dir).await?;
    let wallet = agent::provision(builder, &dir).await?;
    agent::sign_and_verify(&wallet, None, None).await
}

/// The fixed development secret (the demo's, when MPC_SHARE_SECRET is unset).
pub(crate) fn dev_secret() -> ShareSecret {
    ShareSecret::new(DEV_SECRET).expect("the development secret is a valid secret")
}

/// The embedded default's builder over `data_dir` (the demo's wallet), and that directory.
pub(crate) async fn embedded_builder(file: Option<&Path>, data_dir: &Path) -> Result<(WalletBuilder, PathBuf)> {
    let mut cfg = WalletConfig::load(file)?;
    let wallet_id = cfg.wallet_id.as_ref().map_or("demo-wallet", |w| w.as_str()).to_string();
    let secret = match cfg.share_secret.take() {
        Some(s) => s,
        None => {
            eprintln!(
                "warning: MPC_SHARE_SECRET is not set; using the fixed development secret. \
                 Set MPC_SHARE_SECRET for anything but this demo."
            );
            ShareSecret::new(DEV_SECRET)?
        }
    };
    eprintln!("{}", embedded::WARNING);
    // The demo's store is always a SQLite file: MPC_STORAGE_PATH, else DATA_DIR/agent.db.
    let agent_path =
        cfg.store.as_ref().and_then(StoreLocation::path).map_or_else(|| data_dir.join("agent.db"), Path::to_path_buf);
    let dir = agent_path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    println!("data dir: {}", dir.display());
    println!("wallet: {wallet_id} (network {})", cfg.network);

    let agent_store: Arc<dyn ShareStore> = Arc::new(
        SqliteShareStore::open(&agent_path).await.with_context(|| format!("opening {}", agent_path.display()))?,
    );
    let (keyring, transports) = embedded::start(&dir, &secret, cfg.multiexp_tables, cfg.policy.as_ref()).await?;
    let mut builder =
        WalletBuilder::from_config(cfg)?.wallet_id(&wallet_id).share_secret(secret).store(agent_store).keyring(keyring);
    for t in transports {
        builder = builder.cosigner(t);
    }
    if let Some(primes) = crate::embedded::insecure_test_primes(0) {
        builder = builder.prime_source(primes);
    }
    Ok((builder, dir))
}
