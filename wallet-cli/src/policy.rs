//! The spending policy from the command line: approver keys (`keys --approver`), a person's
//! approval of one payment (`approve`), the cosigners' audit log (`audit`), and what `status`
//! and the agent's start say about each cosigner's policy.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{bail, Context, Result};
use wallet_engine::CosignerConfig;
use wallet_policy::{sign_approval, ApprovalBody, ApproverKey};
use wallet_traits::{CosignerTransport, PartyIndex, PolicyReport, ShareStore};

/// `mpc-wallet keys --approver`: a new approver key. The secret goes to `out` (0600) or standard
/// output; the public key, for the cosigners' `approver_keys`, to standard output.
pub(crate) fn approver_key(out: Option<PathBuf>) -> Result<()> {
    let key = ApproverKey::generate();
    match out {
        Some(path) => {
            crate::agent::write_secret_file(&path, key.secret_hex().as_bytes())?;
            println!("approver secret key: written to {}", path.display());
        }
        None => println!("approver secret key: {}", key.secret_hex().as_str()),
    }
    println!("approver public key: {}", key.public_hex());
    println!("add the public key to approver_keys in each cosigner's policy file (MPC_POLICY_FILE)");
    Ok(())
}

/// What `approve` approves.
pub(crate) struct Approve {
    pub(crate) key: PathBuf,
    pub(crate) wallet: String,
    pub(crate) to: String,
    pub(crate) sats: u64,
    pub(crate) ttl_secs: u64,
    pub(crate) cosigners: Vec<String>,
    pub(crate) data_dir: Option<PathBuf>,
}

/// `mpc-wallet approve`: signs an approval of one payment with the approver key and hands it to
/// each cosigner (over HTTP), or to the embedded default's cosigners' files (`--data-dir`).
pub(crate) async fn approve(a: Approve) -> Result<bool> {
    let secret =
        std::fs::read_to_string(&a.key).with_context(|| format!("reading the approver key {}", a.key.display()))?;
    let key = ApproverKey::from_hex(secret.trim()).context("the approver key file does not hold an approver key")?;
    let destination = wallet_bsv::address::locking_script_of(&a.to)
        .or_else(|_| hex::decode(&a.to).map(wallet_bsv::Script::new))
        .map_err(|_| anyhow::anyhow!("--to must be a P2PKH address or a locking script in hex"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let body = ApprovalBody {
        wallet: a.wallet.clone(),
        destination: destination.as_bytes().to_vec(),
        sats: a.sats,
        expires_at_ms: now.saturating_add(a.ttl_secs.saturating_mul(1000)),
        nonce: ApprovalBody::random_nonce(),
    };
    let signed = sign_approval(body, key.signing_key());
    let bytes = signed.to_bytes();
    println!(
        "approval {}: wallet {}, {} sats to {}, for {} s",
        hex::encode(signed.id()),
        a.wallet,
        a.sats,
        a.to,
        a.ttl_secs
    );
    let mut targets: Vec<(String, Arc<dyn CosignerTransport>)> = Vec::new();
    for url in &a.cosigners {
        let t: Arc<dyn CosignerTransport> = if url.starts_with("grpc://") || url.starts_with("grpcs://") {
            Arc::new(wallet_transport_grpc::GrpcTransport::for_approvals(url, None).await?)
        } else {
            Arc::new(wallet_transport_http::HttpTransport::for_approvals(url, None)?)
        };
        targets.push((wallet_traits::redact_url(url), t));
    }
    if let Some(dir) = &a.data_dir {
        targets.extend(embedded_cosigners(dir).await?);
    }
    if targets.is_empty() {
        bail!("name the cosigners to hand the approval to: --cosigner URL (repeat for each), or --data-dir DIR");
    }
    let mut all = true;
    for (name, t) in targets {
        match t.submit_approval(&bytes).await {
            Ok(true) => println!("{name}: approval kept"),
            Ok(false) => println!("{name}: it had this approval already"),
            Err(e) => {
                all = false;
                eprintln!("{name}: refused the approval: {e}");
            }
        }
    }
    Ok(all)
}

/// The embedded default's cosigners over their files in `dir` (as `demo` and `serve` start
/// them), enforcing the policy of MPC_POLICY_FILE: what `approve` reaches with `--data-dir`.
async fn embedded_cosigners(dir: &Path) -> Result<Vec<(String, Arc<dyn CosignerTransport>)>> {
    let cfg = wallet_engine::WalletConfig::from_env()?;
    let policy = cfg.policy.context("set MPC_POLICY_FILE: the embedded cosigners' policy file")?;
    for i in 1..=2 {
        let path = dir.join(format!("cosigner-{i}.db"));
        if !path.is_file() {
            bail!("{} does not exist: --data-dir must be the embedded default's data directory", path.display());
        }
    }
    let secret = cfg.share_secret.unwrap_or_else(crate::demo::dev_secret);
    let (_, transports) = crate::embedded::start(dir, &secret, false, Some(&policy)).await?;
    Ok(transports.into_iter().enumerate().map(|(i, t)| (format!("embedded cosigner {}", i + 1), t)).collect())
}

/// `mpc-wallet audit`: the audit log of the cosigner this configuration describes (or of the
/// embedded default's cosigners in `data_dir`), for `wallet` or every wallet; with `verify`, the
/// hash chain is checked from its first record and a break is an error naming the record.
pub(crate) async fn audit(
    file: Option<&Path>,
    wallet: Option<&str>,
    verify: bool,
    data_dir: Option<&Path>,
) -> Result<bool> {
    let mut stores: Vec<(String, Arc<dyn ShareStore>)> = Vec::new();
    match data_dir {
        Some(dir) => {
            for i in 1..=2u16 {
                let path = dir.join(format!("cosigner-{i}.db"));
                stores.push((
                    format!("embedded cosigner {i}"),
                    Arc::new(wallet_backend_sqlite::SqliteShareStore::open(&path).await?),
                ));
            }
        }
        None => {
            let cfg = CosignerConfig::load(file)?;
            let location =
                cfg.store.clone().context("set MPC_STORAGE_PATH or MPC_STORAGE_URL (the cosigner's store)")?;
            let store = crate::plugins().open_store(&location.url(), cfg.store_options.clone()).await?;
            stores.push((format!("cosigner {}", cfg.party_index.unwrap_or_default()), store));
        }
    }
    let mut whole = true;
    for (name, store) in stores {
        let state = store.policy_state().context("this store keeps no policy state, so there is no audit log")?;
        let mut records = Vec::new();
        let mut after = 0;
        loop {
            let page = state.audit(None, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            records.extend(page);
        }
        println!("== {name}: {} record(s)", records.len());
        for r in records.iter().filter(|r| wallet.is_none_or(|w| r.wallet == w)) {
            println!("{} {}", r.seq, String::from_utf8_lossy(&r.body));
        }
        if verify {
            match wallet_policy::verify_chain(&records) {
                Ok(head) => {
                    println!("{name}: the chain holds ({} record(s), head {})", head.seq, hex::encode(head.hash))
                }
                Err(e) => {
                    whole = false;
                    eprintln!("{name}: the audit chain is broken: {e}");
                }
            }
        }
    }
    Ok(whole)
}

/// One line about a cosigner's policy, for `status` and the agent's start.
pub(crate) fn describe(report: Option<&PolicyReport>) -> String {
    let Some(p) = report else { return "none: it signs whatever the agent asks".to_string() };
    let sats = |v: Option<u64>| v.map_or_else(|| "any amount".to_string(), |n| format!("{n} sats"));
    let txs =
        |v: Option<u64>| v.map_or_else(|| "any number of transactions".to_string(), |n| format!("{n} transactions"));
    let (sats_left, txs_left) = p.left();
    format!(
        "{} (per transaction {}; per {} s window {} in {}, {} in {} left; destinations {}; {} approver key(s); raw \
         digests {})",
        p.fingerprint,
        sats(p.max_sats_per_tx),
        p.window_secs,
        sats(p.max_sats_per_window),
        txs(p.max_tx_per_window),
        sats(sats_left),
        txs(txs_left),
        p.allowed_destinations.map_or_else(|| "any".to_string(), |n| format!("{n} allowed")),
        p.approvers,
        if p.raw_digests { "signed" } else { "refused" },
    )
}

/// Warnings about the cosigners' policies: one without any, or policies that differ (each
/// cosigner counts its own window: the wallet's worst case is the sum of them, and holds only
/// while every cosigner enforces one).
pub(crate) fn warnings(reports: &[(PartyIndex, Option<PolicyReport>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (index, report) in reports {
        if report.is_none() {
            out.push(format!(
                "cosigner {index} enforces no spending policy: a hijacked agent can get any payment signed with it \
                 (set MPC_POLICY_FILE on it)"
            ));
        }
    }
    let prints: std::collections::BTreeSet<&str> =
        reports.iter().filter_map(|(_, r)| r.as_ref().map(|p| p.fingerprint.as_str())).collect();
    if prints.len() > 1 {
        out.push(format!(
            "the cosigners' spending policies differ ({}): each counts its own window, so the wallet's worst case is \
             the sum of theirs",
            prints.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(fingerprint: &str) -> PolicyReport {
        PolicyReport {
            fingerprint: fingerprint.into(),
            max_sats_per_tx: Some(50_000),
            window_secs: 86_400,
            max_sats_per_window: Some(200_000),
            max_tx_per_window: None,
            allowed_destinations: None,
            approvers: 1,
            raw_digests: false,
            window_sats: 60_000,
            window_txs: 3,
        }
    }

    #[test]
    fn a_cosigner_without_a_policy_and_policies_that_differ_are_warned_about() {
        assert!(warnings(&[(1, Some(report("aa"))), (2, Some(report("aa")))]).is_empty());
        let none = warnings(&[(1, Some(report("aa"))), (2, None)]);
        assert_eq!(none.len(), 1);
        assert!(none[0].starts_with("cosigner 2 enforces no spending policy"), "{none:?}");
        let differ = warnings(&[(1, Some(report("aa"))), (2, Some(report("bb")))]);
        assert_eq!(differ.len(), 1);
        assert!(differ[0].contains("differ (aa, bb)") && differ[0].contains("sum"), "{differ:?}");
    }

    #[test]
    fn a_policy_reads_with_what_its_window_has_left() {
        let line = describe(Some(&report("aa")));
        assert!(line.starts_with("aa (per transaction 50000 sats"), "{line}");
        assert!(line.contains("140000 sats in any number of transactions left"), "{line}");
        assert!(line.contains("raw digests refused"), "{line}");
        assert_eq!(describe(None), "none: it signs whatever the agent asks");
    }
}
