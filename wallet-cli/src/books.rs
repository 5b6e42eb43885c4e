//! The wallet's books: the BRC-100 action methods over the agent's output store (`serve`), the
//! background task that rebroadcasts and cleans up, and the everyday commands `balance`, `pay`,
//! `receive` and `history`.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{bail, Context, Result};
use wallet_brc100::{
    actions::{Actions, ChangeParams, CreateActionArgs, CreateActionOutput, InternalizeActionArgs, InternalizeOutput},
    KeyMethods,
};
use wallet_engine::{StoreLocation, Wallet, WalletConfig};
use wallet_traits::ErrorKind;

/// How many delayed broadcasts, and how many proof look-ups, the background task makes per round.
const PER_ROUND: u32 = 20;

/// The key methods of `wallet`.
pub(crate) fn key_methods(wallet: &Arc<Wallet>) -> Arc<KeyMethods> {
    Arc::new(KeyMethods::new(wallet.clone(), wallet.clone(), wallet.network()))
}

/// The action methods over the agent's output store, which lives in its store (the same SQLite
/// file or Postgres database, rows under the wallet id). `None`, said once, when the store's
/// kind keeps no outputs (RocksDB, the example plugin).
pub(crate) async fn open(cfg: &WalletConfig, wallet: &Arc<Wallet>) -> Result<Option<Arc<Actions>>> {
    let store = cfg.store.as_ref().map(StoreLocation::url).context("set MPC_STORAGE_PATH or MPC_STORAGE_URL")?;
    let plugins = crate::plugins();
    let scheme = store.split_once("://").map(|(s, _)| s).unwrap_or_default();
    if plugins.output_stores().get(scheme).is_err() {
        eprintln!("note: the {scheme} store keeps no outputs: transactions and outputs are not available");
        return Ok(None);
    }
    let scope = cfg.wallet_id.as_ref().context("set MPC_WALLET_ID")?.to_string();
    let outputs = plugins.open_output_store(&store, cfg.store_options.clone(), &scope).await?;
    let chain = wallet.chain_services().clone();
    let signer: Arc<dyn wallet_traits::Signer> = wallet.clone();
    let change = ChangeParams { target_count: cfg.change_target_count, min_sats: cfg.change_min_sats };
    let actions = Actions::new(key_methods(wallet), signer, outputs, chain, cfg.fee_sat_per_kb)
        .change_params(change)
        .context("MPC_CHANGE_TARGET_COUNT or MPC_CHANGE_MIN_SATS")?;
    #[cfg(feature = "fault-injection")]
    let actions = match std::env::var("MPC_FAULT_PAUSE_BEFORE_ACTION_COMMIT_MS").ok().and_then(|v| v.parse().ok()) {
        Some(ms) => actions.pause_before_commit(Duration::from_millis(ms)),
        None => actions,
    };
    Ok(Some(Arc::new(actions)))
}

/// Starts the background task of `serve`: every `every` (MPC_BACKGROUND_INTERVAL_SECS), fail
/// actions abandoned unsigned, rebroadcast delayed ones and ask for the merkle proofs of unproven
/// ones (a bounded number of each per round), logging what it did.
pub(crate) fn start_background(actions: Arc<Actions>, every: Duration, purge_after: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            round(&actions, purge_after).await;
        }
    });
}

/// One round of the background task; each step's count (`None`: it failed, as logged).
async fn round(actions: &Actions, purge_after: Duration) -> [(&'static str, Option<usize>); 7] {
    /// A step's count, or `None` with the failure logged.
    fn counted<T: TryInto<usize>>(step: wallet_traits::Result<T>, what: &str) -> Option<usize> {
        match step {
            Ok(n) => Some(n.try_into().unwrap_or(usize::MAX)),
            Err(e) => {
                tracing::warn!(error = %e, "could not {what}");
                None
            }
        }
    }
    let abandoned = counted(actions.fail_abandoned().await, "check for abandoned actions");
    let rebroadcast = counted(actions.rebroadcast_pending(PER_ROUND).await, "rebroadcast delayed transactions");
    let unfailed = counted(actions.review_failed(PER_ROUND).await, "look for failed actions on the chain");
    let no_send = counted(actions.review_no_send(PER_ROUND).await, "look for noSend transactions on the chain");
    let reorged = counted(actions.review_proofs(PER_ROUND).await, "check stored proofs against the chain");
    let proven = counted(actions.fetch_proofs(PER_ROUND).await, "fetch merkle proofs");
    let purged = counted(actions.purge_failed(purge_after, PER_ROUND).await, "purge old failed actions");
    let done = [
        ("abandoned actions failed (inputs released)", abandoned),
        ("delayed transactions rebroadcast", rebroadcast),
        ("failed actions found on the chain (un-failed)", unfailed),
        ("noSend transactions someone broadcast (now unproven)", no_send),
        ("proofs of blocks the chain dropped (reorg), now unproven", reorged),
        ("merkle proofs recorded", proven),
        ("old failed actions purged of their transaction bytes", purged),
    ];
    for (what, n) in done {
        if let Some(n @ 1..) = n {
            tracing::info!(count = n, "{what}");
        }
    }
    done
}

/// `mpc-wallet reconcile [--utxos [--dry-run]]`: the background round once, then the UTXO review.
pub(crate) async fn reconcile(file: Option<&Path>, utxos: bool, dry_run: bool) -> Result<()> {
    let (actions, cfg) = start_configured(file).await?;
    for (what, n) in round(&actions, cfg.purge_failed_after).await {
        match n {
            Some(n) => println!("{what}: {n}"),
            None => println!("{what}: could not run (see the warning above)"),
        }
    }
    if !utxos {
        return Ok(());
    }
    let review = actions
        .review_utxos(None, !dry_run, wallet_brc100::actions::MAX_REVIEW)
        .await
        .context("the UTXO review needs a chain tracker that reports transactions and unspent outputs")?;
    for o in &review.spent_elsewhere {
        let done = if dry_run { "not marked (--dry-run)" } else { "marked no longer spendable" };
        println!("spent elsewhere: {} {} sats: {done}", o.outpoint, o.satoshis);
    }
    println!(
        "utxos: {} checked, {} spent elsewhere, {} not judged (their transaction is not known to the chain yet)",
        review.checked,
        review.spent_elsewhere.len(),
        review.not_yet_known
    );
    Ok(())
}

/// Starts the agent (restoring it, or provisioning it the first time) with its books.
pub(crate) async fn start(file: Option<&Path>) -> Result<Arc<Actions>> {
    Ok(start_configured(file).await?.0)
}

/// [`start`], with the configuration it started from.
async fn start_configured(file: Option<&Path>) -> Result<(Arc<Actions>, WalletConfig)> {
    let mut cfg = WalletConfig::load(file)?;
    crate::agent::default_store(&mut cfg);
    let (builder, dir) = crate::agent::builder_from_config(cfg.clone()).await?;
    let wallet = Arc::new(crate::agent::provision_quietly(builder, &dir).await?);
    let actions = open(&cfg, &wallet).await?.context("this wallet's store keeps no outputs; use SQLite or Postgres")?;
    Ok((actions, cfg))
}

/// `mpc-wallet balance`: the spendable change.
pub(crate) async fn balance(file: Option<&Path>) -> Result<()> {
    let actions = start(file).await?;
    let query = wallet_traits::OutputQuery {
        basket: Some(wallet_brc100::actions::CHANGE_BASKET.into()),
        spendable_only: true,
        limit: Some(0),
        ..Default::default()
    };
    let outputs = actions.store().list_outputs(&query).await?.total;
    let sats = actions.store().balance(wallet_brc100::actions::CHANGE_BASKET).await?;
    println!("balance: {sats} satoshis in {outputs} spendable output(s)");
    Ok(())
}

/// `mpc-wallet pay`: pays `sats` to an address or a locking script (hex).
pub(crate) async fn pay(file: Option<&Path>, to: &str, sats: u64, description: &str) -> Result<()> {
    let (network, script) = wallet_bsv::address::payee(to).map_err(|e| anyhow::anyhow!("--to: {}", e.message()))?;
    let actions = start(file).await?;
    let ours = actions.keys().network();
    if let Some(theirs) = network.filter(|n| *n != ours) {
        bail!("--to is a {theirs} address and this wallet is on {ours}: nobody on {ours} could spend it; ask for a {ours} address");
    }
    eprintln!("  pay: funding {sats} satoshis from the wallet's change, signing with the cosigners, broadcasting...");
    let args = CreateActionArgs {
        description: description.to_string(),
        outputs: Some(vec![CreateActionOutput {
            locking_script: script.to_hex(),
            satoshis: sats,
            output_description: "payment".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let result = match actions.create_action(args).await {
        Err(e) if e.kind() == ErrorKind::InsufficientFunds => bail!("{}", e.message()),
        r => r?,
    };
    println!("txid: {}", result.txid.unwrap_or_default());
    if let Some(tx) = result.tx {
        println!("beef: {}", hex::encode(tx));
    }
    Ok(())
}

/// What `mpc-wallet receive` takes in: a payment's Atomic BEEF and its BRC-29 remittance.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) beef: String,
    pub(crate) vout: u32,
    pub(crate) prefix: String,
    pub(crate) suffix: String,
    pub(crate) sender: String,
}

/// `mpc-wallet receive`: without a payment, prints what a sender needs; with one, checks it
/// and takes it into the books.
pub(crate) async fn receive(file: Option<&Path>, incoming: Option<Incoming>) -> Result<()> {
    let actions = start(file).await?;
    let Some(p) = incoming else {
        println!("identity key: {}", actions.keys().identity_key().to_hex());
        println!("network: {}", actions.keys().network());
        println!(
            "to pay this wallet, a sender pays P2PKH to the BRC-29 key (protocol [2, \"3241645161d8\"], key id \
             \"<derivation prefix> <derivation suffix>\", counterparty: this identity key) and hands over the \
             transaction's Atomic BEEF with the prefix, suffix and its own identity key; then run \
             mpc-wallet receive --beef HEX --vout N --prefix P --suffix S --sender KEY"
        );
        return Ok(());
    };
    eprintln!("  receive: checking the transaction's proofs and scripts, broadcasting it if it is new...");
    let args = InternalizeActionArgs {
        tx: crate::hex_input(&p.beef)?,
        outputs: vec![InternalizeOutput {
            output_index: p.vout,
            protocol: "wallet payment".into(),
            payment_remittance: Some(wallet_brc100::actions::WalletPayment {
                derivation_prefix: p.prefix,
                derivation_suffix: p.suffix,
                sender_identity_key: p.sender,
            }),
            insertion_remittance: None,
        }],
        description: "payment received (mpc-wallet receive)".into(),
        ..Default::default()
    };
    actions.internalize_action(args).await?;
    println!("received: the payment is in the wallet's books");
    Ok(())
}

/// `mpc-wallet history`: the wallet's actions, newest last.
pub(crate) async fn history(file: Option<&Path>, limit: u32) -> Result<()> {
    let actions = start(file).await?;
    let page = actions
        .list_actions(wallet_brc100::actions::ListActionsArgs { limit: Some(limit), ..Default::default() })
        .await?;
    println!("actions: {}", page.total_actions);
    for a in page.actions {
        println!("{} {:>12} {:<11} {}", a.txid, a.satoshis, a.status.as_str(), a.description);
    }
    Ok(())
}
