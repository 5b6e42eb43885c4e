//! `mpc-wallet backup` and `mpc-wallet restore-backup`: one sealed file with what a new machine
//! cannot find again on the chain (the agent's key share record as it is sealed, its party key,
//! and the books: actions, outputs with their baskets, tags and BRC-29 derivation data, labels,
//! certificates), and its restore without a DKG (docs/guides/backup.md).
//!
//! The file is a sealed record ([`Sealer::seal_backup`]): Argon2id over MPC_BACKUP_SECRET (else
//! MPC_SHARE_SECRET), then AES-256-GCM over the books, bound to the wallet id; its header (wallet,
//! identity key, counts) is readable without the secret and authenticated with the rest.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_engine::{
    backup_header, config::Settings, PartyKey, SealOptions, Sealer, ShareSecret, StoreLocation, WalletConfig,
};
use wallet_traits::{
    Books, CertificateQuery, CertificateRecord, ErrorKind, KeyId, OutputStore, ShareState, ShareStore, StoredShare,
    WalletId,
};
use zeroize::Zeroizing;

/// What the header says a file is.
const KIND: &str = "mpc-wallet backup";
/// The layout of header and payload this release writes and reads.
const FORMAT: u32 = 1;
/// The largest file `restore-backup` reads: far above any wallet's books, far below memory.
const MAX_FILE: u64 = 1 << 30;
/// The file names scheduled backups get: `<wallet id>-<milliseconds>.mpcbackup`.
const SCHEDULED_SUFFIX: &str = ".mpcbackup";

/// The header: public, authenticated with the rest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    kind: String,
    format: u32,
    wallet_id: String,
    /// The wallet's identity (collective public) key, hex.
    identity_key: String,
    network: String,
    /// Milliseconds since the Unix epoch.
    created_at: u64,
    actions: usize,
    outputs: usize,
    certificates: usize,
}

/// The encrypted part. No `Debug`: it holds the party key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    format: u32,
    wallet_id: String,
    share: StoredShare,
    /// The agent's X25519 party key, hex, when the configuration has one.
    party_key: Option<Zeroizing<String>>,
    books: Books,
    certificates: Vec<CertificateRecord>,
}

/// The configuration with the agent's store filled in, and its wallet id.
fn configured(file: Option<&Path>) -> Result<(WalletConfig, WalletId)> {
    let mut cfg = WalletConfig::load(file)?;
    crate::agent::default_store(&mut cfg);
    let wallet = cfg.wallet_id.clone().context("set MPC_WALLET_ID")?;
    Ok((cfg, wallet))
}

/// The sealer of backups: MPC_BACKUP_SECRET, else MPC_SHARE_SECRET.
fn sealer(cfg: &WalletConfig) -> Result<Sealer> {
    let secret = cfg.backup_secret.clone().or_else(|| cfg.share_secret.clone());
    let secret = secret.context("set MPC_SHARE_SECRET (or MPC_BACKUP_SECRET): backups are sealed under it")?;
    Ok(Sealer::new(secret, SealOptions { cipher: cfg.cipher, ..Default::default() }))
}

/// The agent's stores: its share store, and its output store when the store's kind keeps one.
async fn stores(cfg: &WalletConfig, wallet: &WalletId) -> Result<(Arc<dyn ShareStore>, Option<Arc<dyn OutputStore>>)> {
    let url = cfg.store.as_ref().map(StoreLocation::url).context("set MPC_STORAGE_PATH or MPC_STORAGE_URL")?;
    let plugins = crate::plugins();
    let shares = plugins.open_store(&url, cfg.store_options.clone()).await?;
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    let outputs = match plugins.output_stores().get(scheme) {
        Ok(_) => Some(plugins.open_output_store(&url, cfg.store_options.clone(), wallet.as_str()).await?),
        Err(_) => None,
    };
    Ok((shares, outputs))
}

/// Every certificate of `store`, a page at a time.
async fn all_certificates(store: &Arc<dyn OutputStore>) -> Result<Vec<CertificateRecord>> {
    let Some(certs) = store.clone().certificates() else { return Ok(Vec::new()) };
    let mut all = Vec::new();
    loop {
        let query = CertificateQuery { limit: 1000, offset: u32::try_from(all.len())?, ..Default::default() };
        let page = certs.list_certificates(&query).await?;
        let done = page.items.len() < 1000;
        all.extend(page.items);
        if done {
            return Ok(all);
        }
    }
}

/// A sealed backup of the wallet `cfg` names, read from its store (consistent while `serve`
/// writes: the books in one read snapshot), its header, and the fingerprint of what it holds;
/// `None` when that fingerprint is `unless` (nothing changed since the backup it names).
async fn snapshot(
    cfg: &WalletConfig,
    wallet: &WalletId,
    unless: Option<[u8; 32]>,
) -> Result<Option<(Vec<u8>, Header, [u8; 32])>> {
    let sealer = sealer(cfg)?;
    let (shares, outputs) = stores(cfg, wallet).await?;
    let share = shares.load_share(&KeyId::new(wallet.clone(), 0)).await?.with_context(|| {
        format!("wallet {wallet} has no key share in its store yet: start it once (`mpc-wallet serve`) so it is created, then back it up")
    })?;
    if share.meta.state != ShareState::Active {
        bail!(
            "the key share is {} (its provisioning or migration is unfinished): start the wallet once, then back it up",
            share.meta.state.as_str()
        );
    }
    let (books, certificates) = match &outputs {
        Some(o) => (o.export_books().await?, all_certificates(o).await?),
        None => (Books::default(), Vec::new()),
    };
    let header = Header {
        kind: KIND.into(),
        format: FORMAT,
        wallet_id: wallet.to_string(),
        identity_key: hex::encode(&share.meta.public_key),
        network: cfg.network.to_string(),
        created_at: now_millis(),
        actions: books.actions.len(),
        outputs: books.outputs.len(),
        certificates: certificates.len(),
    };
    let payload = Payload {
        format: FORMAT,
        wallet_id: wallet.to_string(),
        share,
        party_key: cfg.party_key.as_ref().map(|k| k.to_hex()),
        books,
        certificates,
    };
    let labels = serde_json::to_vec(&header)?;
    let wallet = wallet.clone();
    // Argon2id and the encryption of every book: off the reactor, which serves payments meanwhile.
    let sealed = tokio::task::spawn_blocking(move || -> Result<Option<(Vec<u8>, [u8; 32])>> {
        let plain = Zeroizing::new(serde_json::to_vec(&payload)?);
        let fingerprint: [u8; 32] = Sha256::digest(plain.as_slice()).into();
        if unless == Some(fingerprint) {
            return Ok(None);
        }
        Ok(Some((sealer.seal_backup(&wallet, &labels, &plain)?, fingerprint)))
    })
    .await??;
    Ok(sealed.map(|(sealed, fingerprint)| (sealed, header, fingerprint)))
}

/// Writes `bytes` to `path` whole or not at all (a temporary file beside it, synced, renamed),
/// readable by its owner only.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.partial", path.file_name().and_then(|n| n.to_str()).unwrap_or("backup")));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move the backup to {}", path.display()))?;
    Ok(())
}

/// `mpc-wallet backup --out FILE`.
pub(crate) async fn backup(file: Option<&Path>, out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{} exists: choose another file name (a backup never replaces a file)", out.display());
    }
    let (cfg, wallet) = configured(file)?;
    if cfg.cosigner_endpoints.is_empty() {
        eprintln!(
            "note: the embedded default keeps its two cosigners' shares beside the agent's, in the same data \
             directory; this backup holds the agent's alone. Restoring needs the cosigners' files too."
        );
    }
    let (sealed, header, _) = snapshot(&cfg, &wallet, None).await?.context("no backup was made")?;
    write_whole(out, &sealed)?;
    println!("backup: {}", out.display());
    report(&header);
    Ok(())
}

fn report(h: &Header) {
    println!("wallet: {}", h.wallet_id);
    println!("identity: {}", h.identity_key);
    println!("actions: {}, outputs: {}, certificates: {}", h.actions, h.outputs, h.certificates);
}

/// The header and payload of the backup in `bytes` of `wallet` on `network`, opened with
/// `sealer`: every check made before anything is written.
fn open_backup(bytes: &[u8], sealer: &Sealer, network: &str, wallet: &WalletId) -> Result<(Header, Payload)> {
    let damaged = "the file is not an intact mpc-wallet backup (truncated, edited or another kind of file): nothing \
                   was written; use another copy of the backup";
    let header = backup_header(bytes).ok().and_then(|h| serde_json::from_slice::<Header>(h).ok());
    let header = match header {
        Some(h) if h.kind == KIND => h,
        _ => bail!("{damaged}"),
    };
    if header.format != FORMAT {
        bail!(
            "the backup is of format {}; this release reads format {FORMAT}: use a release that reads it",
            header.format
        );
    }
    if header.wallet_id != wallet.as_str() {
        bail!(
            "the backup is of wallet {:?} and MPC_WALLET_ID is {:?}: nothing was written; restore a backup of this wallet \
             or set MPC_WALLET_ID (and the rest of that wallet's configuration)",
            header.wallet_id,
            wallet.as_str()
        );
    }
    if header.network != network {
        bail!("the backup is of a {} wallet and MPC_NETWORK is {network}: nothing was written", header.network);
    }
    let plain = sealer.open_backup(wallet, bytes).map_err(|e| match e.kind() {
        ErrorKind::WrongSecret => anyhow::anyhow!(
            "the secret does not open this backup: nothing was written; set MPC_BACKUP_SECRET (or MPC_SHARE_SECRET when \
             no backup secret was set) to the secret the backup was written under"
        ),
        _ => anyhow::anyhow!("{damaged}"),
    })?;
    let payload: Payload = serde_json::from_slice(&plain).map_err(|_| anyhow::anyhow!("{damaged}"))?;
    let share = &payload.share;
    let consistent = payload.format == FORMAT
        && payload.wallet_id == header.wallet_id
        && share.key == KeyId::new(wallet.clone(), 0)
        && hex::encode(&share.meta.public_key) == header.identity_key
        && share.meta.state == ShareState::Active
        && (payload.books.actions.len(), payload.books.outputs.len(), payload.certificates.len())
            == (header.actions, header.outputs, header.certificates);
    if !consistent {
        bail!("{damaged}");
    }
    Ok((header, payload))
}

/// Writes the backup's party key to MPC_PARTY_KEY_FILE when that file is missing (the agent's
/// machine was lost with it), so the configuration loads and the cosigners know the agent again.
fn restore_party_key(settings: &Settings, backup_key: Option<&str>) -> Result<()> {
    if settings.get("party_key").is_some() {
        return Ok(());
    }
    let (Some(path), Some(key)) = (settings.get("party_key_file"), backup_key) else { return Ok(()) };
    let path = PathBuf::from(path);
    if path.exists() {
        return Ok(());
    }
    let key = PartyKey::from_hex(key).map_err(|_| anyhow::anyhow!("the backup's party key is damaged"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_whole(&path, format!("{}\n", key.to_hex().as_str()).as_bytes())?;
    eprintln!("  restore: wrote the agent's party key from the backup to {}", path.display());
    Ok(())
}

/// `mpc-wallet restore-backup FILE`: on a new machine (or the same one), the share without a
/// DKG, checked with the cosigners, then the books, imported idempotently, then reconciled
/// against the chain.
pub(crate) async fn restore(file: Option<&Path>, backup: &Path) -> Result<()> {
    let size = std::fs::metadata(backup).with_context(|| format!("cannot read {}", backup.display()))?.len();
    if size > MAX_FILE {
        bail!("{} is {size} bytes, more than any backup this release writes: nothing was written", backup.display());
    }
    let bytes = std::fs::read(backup).with_context(|| format!("cannot read {}", backup.display()))?;
    // Opened from the raw settings: the whole configuration cannot load before the party key
    // file, which may be in the backup, is back.
    let settings = Settings::load(WalletConfig::KEYS, file)?;
    let wallet = WalletId::new(settings.get("wallet_id").context("set MPC_WALLET_ID")?)?;
    let secret = settings.get("backup_secret").or_else(|| settings.get("share_secret"));
    let secret = secret.context("set MPC_SHARE_SECRET (or MPC_BACKUP_SECRET): the backup is sealed under it")?;
    let sealer = Sealer::new(ShareSecret::new(secret)?, SealOptions::default());
    let network: wallet_engine::Network = settings.get("network").unwrap_or("mainnet").parse()?;
    let (header, payload) = open_backup(&bytes, &sealer, &network.to_string(), &wallet)?;
    restore_party_key(&settings, payload.party_key.as_deref().map(String::as_str))?;
    let (cfg, wallet) = configured(file)?;
    if let (Some(ours), Some(theirs)) = (cfg.party_key.as_ref(), payload.party_key.as_deref().map(String::as_str)) {
        if ours.to_hex().as_str() != theirs {
            bail!(
                "the configured party key (MPC_PARTY_KEY or MPC_PARTY_KEY_FILE) is not the one this backup was written \
                 with, which the cosigners pin: nothing was written; remove the new key file or configure the old key"
            );
        }
    }

    let (shares, outputs) = stores(&cfg, &wallet).await?;
    let key = KeyId::new(wallet.clone(), 0);
    let created = match shares.load_share(&key).await? {
        Some(held) if held.meta.public_key == payload.share.meta.public_key => false,
        Some(_) => bail!(
            "this machine's store already holds a different key for wallet {wallet}: the store was not changed; restore \
             into an empty store (a fresh MPC_STORAGE_PATH or database)"
        ),
        None => {
            shares.create_share(&payload.share).await?;
            true
        }
    };
    eprintln!("  restore: the key share is in the store; restoring the wallet with the cosigners (no DKG)...");
    let started = start_checked(&cfg, &header).await;
    let actions = match started {
        Ok(a) => a,
        Err(e) => {
            if created {
                // Leave the store as it was: the share goes again, so nothing half-restored stays.
                if let Ok(Some(s)) = shares.load_share(&key).await {
                    let _ = shares.delete_share(&key, s.version).await;
                }
            }
            return Err(e.context("the restore was undone: the store is as it was"));
        }
    };

    let Some(outputs) = outputs else {
        println!("restored: identity {} (this store's kind keeps no books)", header.identity_key);
        return Ok(());
    };
    let imported = outputs.import_books(&payload.books).await?;
    if let Some(certs) = outputs.clone().certificates() {
        for c in &payload.certificates {
            certs.put_certificate(c).await?;
        }
    }
    println!("identity: {}", header.identity_key);
    println!(
        "imported: {} of {} actions, {} of {} outputs new; {} rows this store held now as in the backup; {} certificates",
        imported.actions,
        payload.books.actions.len(),
        imported.outputs,
        payload.books.outputs.len(),
        imported.replaced,
        payload.certificates.len()
    );
    if imported.skipped > 0 {
        println!("left out: {} actions whose transaction this store records under another reference", imported.skipped);
    }
    reconcile(&actions, &cfg).await?;
    let balance = actions.store().balance(wallet_brc100::actions::CHANGE_BASKET).await?;
    println!("balance: {balance} satoshis");
    println!("restored: the wallet is ready; start it as before (`mpc-wallet serve`)");
    Ok(())
}

/// Starts the wallet from the restored share and checks that enough cosigners hold the same key.
async fn start_checked(cfg: &WalletConfig, header: &Header) -> Result<Arc<wallet_brc100::actions::Actions>> {
    let (builder, dir) = crate::agent::builder_from_config(cfg.clone()).await?;
    let wallet = Arc::new(crate::agent::provision_quietly(builder, &dir).await?);
    if hex::encode(wallet.identity_key().as_bytes()) != header.identity_key {
        bail!("the restored wallet's identity is not the backup's");
    }
    let reports = wallet.cosigner_reports().await;
    let serving = reports.iter().filter(|r| r.can_serve()).count();
    if serving + 1 < usize::from(cfg.threshold) {
        let why: Vec<String> = reports.iter().map(|r| r.to_string()).collect();
        bail!(
            "only {serving} cosigner(s) hold this wallet's key and can sign, and {} are needed: {}",
            cfg.threshold - 1,
            why.join("; ")
        );
    }
    crate::books::open(cfg, &wallet).await?.context("this wallet's store keeps no outputs")
}

/// What was in flight when the backup was taken, settled against the chain: unsigned actions
/// failed (their signing sessions died with the old machine), delayed ones broadcast, proofs
/// fetched, failed ones the chain knows un-failed, then every spendable output checked.
async fn reconcile(actions: &wallet_brc100::actions::Actions, cfg: &WalletConfig) -> Result<()> {
    let failed = actions.fail_unsigned().await?;
    println!("reconcile: unsigned actions failed (inputs released): {failed}");
    for (what, n) in crate::books::round(actions, cfg).await {
        match n {
            Some(n) => println!("reconcile: {what}: {n}"),
            None => println!("reconcile: {what}: could not run (see the warning above)"),
        }
    }
    match actions.review_utxos(None, true, wallet_brc100::actions::MAX_REVIEW).await {
        Ok(r) => println!(
            "reconcile: utxos: {} checked, {} spent elsewhere (marked), {} not judged (their transaction is not known to \
             the chain yet)",
            r.checked,
            r.spent_elsewhere.len(),
            r.not_yet_known
        ),
        Err(e) => println!("reconcile: utxos: not checked ({}); run `mpc-wallet reconcile --utxos` later", e.message()),
    }
    // After the review: the backup's outputs the later payments spent are marked, and their
    // change comes in here.
    match actions.recover_change(wallet_brc100::actions::RECOVERY_GAP, wallet_brc100::actions::MAX_RECOVERY_KEYS).await {
        Ok(found) => println!("reconcile: {}", crate::books::recovered(&found)),
        Err(e) => println!(
            "reconcile: recover: change made after the backup not looked for ({}); run `mpc-wallet reconcile --recover` \
             later",
            e.message()
        ),
    }
    Ok(())
}

/// Starts `serve`'s scheduled backups when MPC_BACKUP_DIR is set: one now, then every
/// MPC_BACKUP_INTERVAL_SECS when the wallet changed since the last one (its books,
/// certificates or share), keeping the newest MPC_BACKUP_KEEP of this wallet's.
pub(crate) fn start_scheduled(cfg: WalletConfig) {
    let (Some(dir), Some(wallet)) = (cfg.backup_dir.clone(), cfg.wallet_id.clone()) else { return };
    tokio::spawn(async move {
        let mut last: Option<(PathBuf, [u8; 32])> = None;
        loop {
            // A last backup the operator moved away is written again, changed or not.
            let unless = last.as_ref().filter(|(path, _)| path.exists()).map(|(_, f)| *f);
            match scheduled(&cfg, &wallet, &dir, unless).await {
                Ok(Some((path, header, fingerprint))) => {
                    tracing::info!(
                        path = %path.display(),
                        actions = header.actions,
                        outputs = header.outputs,
                        "backup written"
                    );
                    last = Some((path, fingerprint));
                }
                Ok(None) => tracing::debug!("the wallet is as its last backup: none written"),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), dir = %dir.display(), "could not write a scheduled backup")
                }
            }
            tokio::time::sleep(cfg.backup_interval).await;
        }
    });
}

async fn scheduled(
    cfg: &WalletConfig,
    wallet: &WalletId,
    dir: &Path,
    unless: Option<[u8; 32]>,
) -> Result<Option<(PathBuf, Header, [u8; 32])>> {
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("cannot create {}", dir.display()))?;
    let Some((sealed, header, fingerprint)) = snapshot(cfg, wallet, unless).await? else { return Ok(None) };
    let path = dir.join(format!("{wallet}-{}{SCHEDULED_SUFFIX}", header.created_at));
    // The write syncs to disk: off the reactor too.
    let (to, dir, wallet, keep) = (path.clone(), dir.to_path_buf(), wallet.clone(), cfg.backup_keep);
    tokio::task::spawn_blocking(move || write_whole(&to, &sealed).and_then(|()| prune(&dir, &wallet, keep))).await??;
    Ok(Some((path, header, fingerprint)))
}

/// Removes this wallet's scheduled backups in `dir` but the newest `keep`.
fn prune(dir: &Path, wallet: &WalletId, keep: usize) -> Result<()> {
    let prefix = format!("{wallet}-");
    let mut ours: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stamp = name.strip_prefix(&prefix)?.strip_suffix(SCHEDULED_SUFFIX)?.parse().ok()?;
            Some((stamp, e.path()))
        })
        .collect();
    ours.sort();
    let surplus = ours.len().saturating_sub(keep);
    for (_, path) in ours.into_iter().take(surplus) {
        std::fs::remove_file(&path).with_context(|| format!("cannot remove the old backup {}", path.display()))?;
    }
    Ok(())
}

fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
