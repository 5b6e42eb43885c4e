//! `mpc-wallet broadcast` and `mpc-wallet verify-beef`: the chain services of the configuration
//! (MPC_BROADCASTER / MPC_ARC_URL, MPC_CHAIN_TRACKER / MPC_CHAIN_TRACKER_URL), without a wallet.

use std::path::Path;

use anyhow::{bail, Context, Result};
use wallet_bsv::{AtomicBeef, Beef, TxId};
use wallet_engine::WalletConfig;

/// Submits a transaction (Extended Format) or a BEEF (V1) to the broadcaster.
pub(crate) async fn broadcast(file: Option<&Path>, input: &str) -> Result<()> {
    let bytes = crate::hex_input(input)?;
    let cfg = WalletConfig::load(file)?;
    let broadcaster = cfg.chain.broadcaster(&crate::plugins(), cfg.network)?.context("no broadcaster is installed")?;
    let accepted = broadcaster.broadcast(&bytes).await?;
    println!("txid: {}", accepted.txid);
    println!("status: {}", accepted.status);
    if let Some(detail) = accepted.detail {
        println!("detail: {detail}");
    }
    Ok(())
}

/// Checks a BEEF's structure (every transaction proven or spending only transactions of the
/// BEEF, no txid-only entries) and has the chain tracker confirm the root of every block it
/// proves against. Prints `valid: true` or fails naming what does not hold.
pub(crate) async fn verify_beef(file: Option<&Path>, input: &str) -> Result<()> {
    let bytes = crate::hex_input(input)?;
    let beef =
        if bytes.starts_with(&[1, 1, 1, 1]) { AtomicBeef::from_bytes(&bytes)?.beef } else { Beef::from_bytes(&bytes)? };
    let roots = beef.verify_structure(false)?;
    let cfg = WalletConfig::load(file)?;
    let tracker = cfg.chain.chain_tracker(&crate::plugins(), cfg.network)?.context("no chain tracker is installed")?;
    for (height, root) in &roots {
        let shown = TxId(*root);
        if !tracker.is_valid_root_for_height(root, *height).await? {
            bail!("the chain tracker does not confirm merkle root {shown} for block {height}: the BEEF's proofs do not hold");
        }
        println!("confirmed: block {height} root {shown}");
    }
    println!("valid: true");
    Ok(())
}
