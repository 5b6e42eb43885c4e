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

/// How many actions a step of the background task takes at most each time it runs.
const PER_ROUND: u32 = 20;

/// How many unproven transactions the proof step asks after at most per new block.
const PROOFS_PER_BLOCK: u32 = 100;

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
        .proof_attempts(cfg.proof_attempts)
        .change_params(change)
        .context("MPC_CHANGE_TARGET_COUNT or MPC_CHANGE_MIN_SATS")?;
    #[cfg(feature = "fault-injection")]
    let actions = match std::env::var("MPC_FAULT_PAUSE_BEFORE_ACTION_COMMIT_MS").ok().and_then(|v| v.parse().ok()) {
        Some(ms) => actions.pause_before_commit(Duration::from_millis(ms)),
        None => actions,
    };
    Ok(Some(Arc::new(actions)))
}

/// One step of the background task, run on its own interval by `serve` and all in a row by
/// `mpc-wallet reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Abandoned,
    Rebroadcast,
    Unfail,
    NoSend,
    Reorg,
    Proofs,
    Purge,
    /// Only in `serve`, only with MPC_CONSOLIDATE_INTERVAL_SECS (`mpc-wallet consolidate` on demand).
    Consolidate,
}

impl Step {
    /// Every step, in the order one round runs them: proofs after the reviews that make
    /// actions unproven again, so a round fetches what they found.
    const ALL: [Step; 7] =
        [Step::Abandoned, Step::Rebroadcast, Step::Unfail, Step::NoSend, Step::Reorg, Step::Proofs, Step::Purge];

    /// How often `serve` runs it; `None`: not at all.
    fn every(self, cfg: &WalletConfig) -> Option<Duration> {
        Some(match self {
            Step::Abandoned | Step::Rebroadcast => cfg.background_interval,
            Step::Proofs => cfg.proof_interval,
            Step::Unfail | Step::NoSend | Step::Reorg => cfg.review_interval,
            Step::Purge => cfg.purge_interval,
            Step::Consolidate => return cfg.consolidate_interval,
        })
    }

    /// What its count counts.
    fn done(self) -> &'static str {
        match self {
            Step::Abandoned => "abandoned actions failed (inputs released)",
            Step::Rebroadcast => "delayed transactions rebroadcast",
            Step::Unfail => "failed actions found on the chain (un-failed)",
            Step::NoSend => "noSend transactions someone broadcast (now unproven)",
            Step::Reorg => "proofs of blocks the chain dropped (reorg), now unproven",
            Step::Proofs => "merkle proofs recorded",
            Step::Purge => "old failed actions purged of their transaction bytes",
            Step::Consolidate => "change outputs merged (consolidation)",
        }
    }

    /// Runs it once: its count, or `None` with the failure logged.
    async fn run(self, actions: &Actions, cfg: &WalletConfig) -> Option<usize> {
        fn counted<T: TryInto<usize>>(step: wallet_traits::Result<T>, what: &str) -> Option<usize> {
            match step {
                Ok(n) => Some(n.try_into().unwrap_or(usize::MAX)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not {what}");
                    None
                }
            }
        }
        let n = match self {
            Step::Abandoned => counted(actions.fail_abandoned().await, "check for abandoned actions"),
            Step::Rebroadcast => {
                counted(actions.rebroadcast_pending(PER_ROUND).await, "rebroadcast delayed transactions")
            }
            Step::Unfail => counted(actions.review_failed(PER_ROUND).await, "look for failed actions on the chain"),
            Step::NoSend => {
                counted(actions.review_no_send(PER_ROUND).await, "look for noSend transactions on the chain")
            }
            Step::Reorg => counted(actions.review_proofs(PER_ROUND).await, "check stored proofs against the chain"),
            Step::Proofs => counted(actions.check_for_proofs(PROOFS_PER_BLOCK).await, "fetch merkle proofs"),
            Step::Purge => {
                counted(actions.purge_failed(cfg.purge_failed_after, PER_ROUND).await, "purge old failed actions")
            }
            Step::Consolidate => counted(
                actions
                    .consolidate(usize::from(crate::consolidate::DEFAULT_MAX_INPUTS), false)
                    .await
                    .map(|c| c.map_or(0, |c| c.inputs)),
                "consolidate change outputs",
            ),
        };
        if let Some(n @ 1..) = n {
            tracing::info!(count = n, "{}", self.done());
        }
        n
    }
}

/// Starts the background task of `serve`: each [`Step`] on its own interval (the MPC_*_INTERVAL_SECS
/// settings), one at a time, a bounded number of actions each, logging what it did.
pub(crate) fn start_background(actions: Arc<Actions>, cfg: WalletConfig) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let scheduled = Step::ALL.into_iter().chain([Step::Consolidate]);
        let mut due: Vec<(Step, Duration, tokio::time::Instant)> =
            scheduled.filter_map(|step| step.every(&cfg).map(|every| (step, every, start))).collect();
        loop {
            for (step, every, at) in &mut due {
                if *at <= tokio::time::Instant::now() {
                    step.run(&actions, &cfg).await;
                    *at = tokio::time::Instant::now() + *every;
                }
            }
            let next = due.iter().map(|(_, _, at)| *at).min().unwrap_or(start);
            tokio::time::sleep_until(next).await;
        }
    });
}

/// Every step once, in order: each one's count (`None`: it failed, as logged).
pub(crate) async fn round(actions: &Actions, cfg: &WalletConfig) -> Vec<(&'static str, Option<usize>)> {
    let mut done = Vec::with_capacity(Step::ALL.len());
    for step in Step::ALL {
        done.push((step.done(), step.run(actions, cfg).await));
    }
    done
}

/// `mpc-wallet reconcile [--utxos [--dry-run]] [--recover]`: the background round once, then
/// the UTXO review, then the recovery of change the books lack.
pub(crate) async fn reconcile(file: Option<&Path>, utxos: bool, dry_run: bool, recover: bool) -> Result<()> {
    let (actions, cfg) = start_configured(file).await?;
    for (what, n) in round(&actions, &cfg).await {
        match n {
            Some(n) => println!("{what}: {n}"),
            None => println!("{what}: could not run (see the warning above)"),
        }
    }
    if utxos {
        review(&actions, dry_run).await?;
    }
    if recover {
        let found = actions
            .recover_change(wallet_brc100::actions::RECOVERY_GAP, wallet_brc100::actions::MAX_RECOVERY_KEYS)
            .await
            .context("recovering change needs a chain tracker that reports script usage and serves transactions")?;
        println!("{}", recovered(&found));
    }
    Ok(())
}

/// What a recovery scan found, in a line.
pub(crate) fn recovered(r: &wallet_brc100::actions::Recovered) -> String {
    let mut line = format!(
        "recover: {} change keys asked after, {} outputs the books lacked recorded ({} sats)",
        r.scanned, r.outputs, r.satoshis
    );
    if r.cut_short {
        line += "; stopped at its limit of keys (the chain tracker calls every key used: check MPC_CHAIN_TRACKER_URL)";
    }
    if r.unconfirmed + r.refused > 0 {
        line += &format!(
            "; {} in transactions not yet mined and {} not taken in (see the log): run `mpc-wallet reconcile --recover` \
             after the next block",
            r.unconfirmed, r.refused
        );
    }
    line
}

async fn review(actions: &Actions, dry_run: bool) -> Result<()> {
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
