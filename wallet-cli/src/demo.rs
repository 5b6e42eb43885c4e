//! `mpc-wallet demo`: provision (or restore) the embedded 2-of-3 wallet, sign, verify.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};
use wallet_backend_sqlite::SqliteShareStore;
use wallet_engine::{ShareSecret, WalletBuilder, WalletConfig};
use wallet_traits::ShareStore;

use crate::{agent, embedded};

/// Used only when MPC_SHARE_SECRET is unset, and announced loudly.
const DEV_SECRET: &str = "mpc-wallet-demo-development-secret-do-not-use";

pub(crate) async fn run(file: Option<&Path>, data_dir: &Path) -> Result<()> {
    let mut cfg = WalletConfig::load(file)?;
    let wallet_id = cfg.wallet_id.clone().unwrap_or_else(|| "demo-wallet".to_string());
    if cfg.share_secret.is_none() {
        eprintln!(
            "warning: MPC_SHARE_SECRET is not set; using the fixed development secret. \
             Set MPC_SHARE_SECRET for anything but this demo."
        );
        cfg.share_secret = Some(DEV_SECRET.to_string());
    }
    eprintln!("{}", embedded::WARNING);
    let agent_path = cfg.storage_path.clone().unwrap_or_else(|| data_dir.join("agent.db"));
    let dir = agent_path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let secret = ShareSecret::new(cfg.share_secret.clone().unwrap_or_default())?;
    println!("data dir: {}", dir.display());
    println!("wallet: {wallet_id} (network {})", cfg.network);

    let agent_store: Arc<dyn ShareStore> = Arc::new(
        SqliteShareStore::open(&agent_path).await.with_context(|| format!("opening {}", agent_path.display()))?,
    );
    let (keyring, transports) = embedded::start(&dir, &secret).await?;
    let mut builder =
        WalletBuilder::from_config(cfg)?.wallet_id(&wallet_id).share_secret(secret).store(agent_store).keyring(keyring);
    for t in transports {
        builder = builder.cosigner(t);
    }
    let wallet = agent::provision(builder, &dir).await?;
    agent::sign_and_verify(&wallet, None, None).await
}
