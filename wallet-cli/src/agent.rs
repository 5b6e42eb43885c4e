//! The agent's commands: `serve`, `sign`, `status`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use k256::elliptic_curve::{ops::Reduce, sec1::ToEncodedPoint};
use sha2::{Digest, Sha256};
use wallet_brc100::{actions::Actions, identity::Identity, KeyMethods};
use wallet_engine::{
    PartyKey, Phase, Progress, Protocol, Provisioned, StoreLocation, Wallet, WalletBuilder, WalletConfig, PROBE_TIMEOUT,
};
use wallet_traits::{EcdsaSignature, InputToSign, KeyId, ShareState};

use crate::embedded;

/// The agent's store: the configured one, else the embedded default's SQLite file.
pub(crate) fn default_store(cfg: &mut WalletConfig) -> &StoreLocation {
    cfg.store.get_or_insert_with(|| StoreLocation::Path(PathBuf::from("./mpc-data/agent.db")))
}

/// A builder from the parsed configuration; without MPC_COSIGNER_ENDPOINTS, the embedded default.
pub(crate) async fn builder_from_config(mut cfg: WalletConfig) -> Result<(WalletBuilder, PathBuf)> {
    // Fail before anything is created or started.
    let plugins = crate::plugins();
    cfg.validate_with(&plugins)?;
    let store = default_store(&mut cfg);
    // The embedded cosigners' files sit beside the agent's SQLite file.
    let dir = store.path().and_then(Path::parent).map_or_else(|| PathBuf::from("./mpc-data"), Path::to_path_buf);
    let embedded = cfg.cosigner_endpoints.is_empty();
    let (secret, multiexp_tables, policy) = (cfg.share_secret.clone(), cfg.multiexp_tables, cfg.policy.clone());
    let mut b = WalletBuilder::from_config(cfg)?.plugins(plugins);
    if let Some(primes) = crate::embedded::insecure_test_primes(0) {
        b = b.prime_source(primes);
    }
    if embedded {
        eprintln!("{}", embedded::WARNING);
        let secret = secret.context("set MPC_SHARE_SECRET")?;
        let (keyring, transports) = embedded::start(&dir, &secret, multiexp_tables, policy.as_ref()).await?;
        b = b.keyring(keyring);
        for t in transports {
            b = b.cosigner(t);
        }
    }
    #[cfg(feature = "fault-injection")]
    if let Some(ms) = std::env::var("MPC_FAULT_PAUSE_BEFORE_AGENT_COMMIT_MS").ok().and_then(|v| v.parse().ok()) {
        b = b.pause_before_local_commit(std::time::Duration::from_millis(ms));
    }
    Ok((b, dir))
}

/// Hears each provisioning phase as it starts, in words (`mcp` turns them into progress
/// notifications).
pub(crate) type PhaseHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds with a progress display and prints `provisioned: ...` and `identity: ...`.
pub(crate) async fn provision(builder: WalletBuilder, dir: &Path) -> Result<Wallet> {
    provision_reporting(builder, dir, |line| println!("{line}"), Arc::new(|_| {})).await
}

/// [`provision`] with its report on standard error: for the everyday commands, whose standard
/// output is their answer alone.
pub(crate) async fn provision_quietly(builder: WalletBuilder, dir: &Path) -> Result<Wallet> {
    provision_reporting(builder, dir, |line| eprintln!("{line}"), Arc::new(|_| {})).await
}

async fn provision_reporting(builder: WalletBuilder, dir: &Path, say: fn(&str), phase: PhaseHook) -> Result<Wallet> {
    let t0 = Instant::now();
    let builder = builder.on_progress(move |p| {
        let started = match p {
            Progress::Started(Phase::Primes) => {
                "primes: getting a Paillier prime pair per party (generating one takes 10 to 90 s)..."
            }
            Progress::Started(Phase::Keygen) => "keygen: running threshold key generation with the cosigners...",
            Progress::Started(Phase::AuxInfo) => "aux info: running aux info generation (about a minute)...",
            Progress::Started(Phase::Commit) => "commit: sealing shares and committing on every party...",
            Progress::Started(_) => return,
            Progress::Finished(done, d) => return say(&format!("phase {done}: {:.2}s", d.as_secs_f64())),
        };
        eprintln!("  {started}");
        phase(started);
    });
    let (wallet, provisioned) = builder.build().await?;
    say(&format!("phase provision total: {:.2}s", t0.elapsed().as_secs_f64()));
    say(&format!("provisioned: {provisioned}"));
    say(&format!("identity: {}", wallet.identity_key()));
    say(&format!("protocol: {}", wallet.protocol()));
    if wallet.protocol() != Protocol::CURRENT {
        eprintln!(
            "note: this wallet's key shares were made with {}, whose maintainers recommend upgrading to {} \
             (its zero-knowledge proofs lack checks the revised paper added). Run `mpc-wallet migrate` (add \
             --data-dir for the embedded default) with every cosigner running: the key, its addresses and every \
             derived key stay the same.",
            wallet.protocol(),
            Protocol::CURRENT
        );
    }
    if provisioned == Provisioned::Created {
        eprintln!("  (the next start restores this wallet from {} without a DKG)", dir.display());
    }
    report_cosigners(&wallet, say).await;
    Ok(wallet)
}

/// Prints which cosigners can serve the key (`cosigner N: can serve` or why not), and warns
/// when fewer than t-1 can, so an operator sees a lost cosigner at start, not at the first
/// signature.
async fn report_cosigners(wallet: &Wallet, say: fn(&str)) {
    let reports = wallet.cosigner_reports().await;
    let serving = reports.iter().filter(|r| r.can_serve()).count();
    for r in &reports {
        say(&r.to_string());
        if let Some(detail) = &r.detail {
            eprintln!("  cosigner {} at {}: {detail}", r.index, wallet_traits::redact_url(&r.endpoint));
        }
    }
    let need = usize::from(wallet.threshold() - 1);
    if serving < need {
        eprintln!(
            "warning: only {serving} of the {} cosigner(s) can serve this key and signing needs {need}; \
             start or repair the others",
            reports.len()
        );
    }
    // The probe asked each cosigner about the key; its answer carries the policy too.
    let policies: Vec<_> = reports.iter().filter(|r| r.answered()).map(|r| (r.index, r.policy.clone())).collect();
    for (index, policy) in &policies {
        say(&format!("cosigner {index} policy: {}", crate::policy::describe(policy.as_ref())));
    }
    for warning in crate::policy::warnings(&policies) {
        eprintln!("warning: {warning}");
    }
}

/// `mpc-wallet migrate`: restores the wallet (the embedded default in `data_dir`, else the
/// configured one) and migrates its shares to the current protocol with every cosigner.
pub(crate) async fn migrate(file: Option<&Path>, data_dir: Option<&Path>) -> Result<()> {
    let (builder, dir) = match data_dir {
        Some(d) => crate::demo::embedded_builder(file, d).await?,
        None => builder_from_config(WalletConfig::load(file)?).await?,
    };
    // Test only: pauses the migration at a step (logging "fault injection") so a test can kill
    // the process there.
    #[cfg(feature = "fault-injection")]
    let builder = {
        use wallet_engine::MigrationStep::*;
        let step = match std::env::var("MPC_FAULT_PAUSE_MIGRATION_AT").ok().as_deref() {
            Some("cosigners-staged") => Some(CosignersStaged),
            Some("agent-staged") => Some(AgentStaged),
            Some("first-cosigner-committed") => Some(FirstCosignerCommitted),
            Some("cosigners-committed") => Some(CosignersCommitted),
            _ => None,
        };
        match step {
            Some(step) => builder.pause_migration_at(step, std::time::Duration::from_secs(3600)),
            None => builder,
        }
    };
    let wallet = provision(builder.migrate(), &dir).await?;
    if wallet.protocol() != Protocol::CURRENT {
        bail!("the wallet is still on {} after the migration", wallet.protocol());
    }
    println!("migrated: {} (identity unchanged: {})", wallet.protocol(), wallet.identity_key());
    Ok(())
}

/// Signs a digest (and a tweaked one) and verifies both with k256.
pub(crate) async fn sign_and_verify(wallet: &Wallet, digest: Option<[u8; 32]>, tweak: Option<[u8; 32]>) -> Result<()> {
    let digest = digest.unwrap_or_else(|| Sha256::digest(b"mpc-wallet demo: sign this digest").into());
    let pk = wallet.identity_key();
    let t = Instant::now();
    let sig = wallet.sign_digest(&digest, None).await?;
    println!("phase sign: {:.2}s", t.elapsed().as_secs_f64());
    let ok = k256_verify(pk.as_bytes(), &digest, &sig)?;
    println!("signature: {}", hex::encode(sig.to_der()));
    println!("signature verified: {ok}");
    let tweak = tweak.unwrap_or_else(|| Sha256::digest(b"mpc-wallet demo: child key tweak").into());
    let t = Instant::now();
    let tsig = wallet.sign_digest(&digest, Some(&tweak)).await?;
    println!("phase tweaked sign: {:.2}s", t.elapsed().as_secs_f64());
    let tweaked_ok = k256_verify(&k256_child(pk.as_bytes(), &tweak)?, &digest, &tsig)?;
    println!("tweaked signature verified: {tweaked_ok}");
    if !ok || !tweaked_ok {
        bail!("a signature did not verify");
    }
    Ok(())
}

/// Verifies with k256, independently of the engine.
fn k256_verify(public_key: &[u8], digest: &[u8; 32], sig: &EcdsaSignature) -> Result<bool> {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).context("public key")?;
    let s = k256::ecdsa::Signature::from_slice(&sig.to_compact()).context("signature")?;
    Ok(vk.verify_prehash(digest, &s).is_ok())
}

/// P + h*G, computed with k256.
fn k256_child(public_key: &[u8], tweak: &[u8; 32]) -> Result<Vec<u8>> {
    let p = k256::PublicKey::from_sec1_bytes(public_key).context("public key")?.to_projective();
    let h = <k256::Scalar as Reduce<k256::U256>>::reduce_bytes(&(*tweak).into());
    Ok((p + k256::ProjectivePoint::GENERATOR * h).to_affine().to_encoded_point(true).as_bytes().to_vec())
}

fn hex32(name: &str, v: Option<String>) -> Result<Option<[u8; 32]>> {
    v.map(|s| {
        let b = hex::decode(s.trim()).with_context(|| format!("--{name} is not hex"))?;
        <[u8; 32]>::try_from(b).map_err(|_| anyhow::anyhow!("--{name} must be 32 bytes (64 hex characters)"))
    })
    .transpose()
}

/// `mpc-wallet sign`: start the agent (provisioning or restoring), sign, verify, exit.
pub(crate) async fn sign(file: Option<&Path>, digest: Option<String>, tweak: Option<String>) -> Result<()> {
    let (digest, tweak) = (hex32("digest", digest)?, hex32("tweak", tweak)?);
    let (builder, dir) = builder_from_config(WalletConfig::load(file)?).await?;
    let wallet = provision(builder, &dir).await?;
    sign_and_verify(&wallet, digest, tweak).await
}

/// `mpc-wallet sign-tx`: start the agent, sign every input of the Extended Format transaction
/// `ef` (hex, or `-` for standard input) as P2PKH of the root key or of the child key its
/// `--tweak INDEX=HEX` names, print the signed transaction.
pub(crate) async fn sign_tx(
    file: Option<&Path>,
    ef: &str,
    tweaks: &[String],
    sighash_type: u32,
    change: &[String],
) -> Result<()> {
    let tx = wallet_bsv::Transaction::from_bytes(&crate::hex_input(ef)?)?;
    let mut inputs: Vec<InputToSign> =
        (0..tx.inputs.len() as u32).map(|index| InputToSign { index, sighash_type, tweak: None }).collect();
    for t in tweaks {
        let (index, tweak) = t.split_once('=').context("--tweak takes INDEX=HEX")?;
        let index: usize = index.trim().parse().context("--tweak INDEX must be an input index")?;
        let input = inputs.get_mut(index).with_context(|| format!("--tweak {index}: no such input"))?;
        input.tweak = hex32("tweak", Some(tweak.to_string()))?;
    }
    let mut claims = Vec::new();
    for c in change {
        let (vout, tweak) = c.split_once('=').context("--change takes VOUT=HEX")?;
        let vout: u32 = vout.trim().parse().context("--change VOUT must be an output index")?;
        let tweak = hex32("change tweak", Some(tweak.to_string()))?.context("--change needs a 32-byte tweak")?;
        claims.push(wallet_traits::ChangeClaim { vout, tweak });
    }
    claims.sort_by_key(|c| c.vout);
    let (builder, dir) = builder_from_config(WalletConfig::load(file)?).await?;
    let wallet = provision(builder, &dir).await?;
    let t = Instant::now();
    let signed = wallet.sign_p2pkh_inputs(&tx, &inputs, &claims).await?;
    println!("phase sign-tx: {:.2}s ({} inputs)", t.elapsed().as_secs_f64(), inputs.len());
    println!("txid: {}", signed.txid());
    println!("signed: {}", signed.to_hex());
    Ok(())
}

/// The wallet as `serve` and `mcp` run it: provisioned or restored, its books (their background
/// task started), its key and identity methods.
pub(crate) struct Agent {
    pub(crate) wallet: Arc<Wallet>,
    pub(crate) books: Option<Arc<Actions>>,
    pub(crate) keys: Arc<KeyMethods>,
    pub(crate) identity: Arc<Identity>,
}

/// An agent configured and checked, its cosigners connected, not yet provisioned.
pub(crate) struct Prepared {
    cfg: WalletConfig,
    builder: WalletBuilder,
    dir: PathBuf,
}

/// What `serve` and `mcp` do before provisioning: the trust settings and the configuration are
/// checked (an invalid value fails naming its variable, before anything is created), the store
/// defaults to the embedded default's, and the builder is made (the embedded cosigners start).
pub(crate) async fn prepare(mut cfg: WalletConfig) -> Result<Prepared> {
    crate::identity::trust_settings(&cfg)?;
    default_store(&mut cfg);
    let (builder, dir) = builder_from_config(cfg.clone()).await?;
    Ok(Prepared { cfg, builder, dir })
}

impl Prepared {
    /// Provisions or restores the wallet (the plan decides; never a DKG over a live share), opens
    /// its books and starts their background task, and builds the key and identity methods.
    /// `say` prints the start report (standard output for `serve`, standard error for `mcp`);
    /// `phase` hears each provisioning phase.
    pub(crate) async fn start(self, say: fn(&str), phase: PhaseHook) -> Result<Agent> {
        let wallet = Arc::new(provision_reporting(self.builder, &self.dir, say, phase).await?);
        let books = crate::books::open(&self.cfg, &wallet).await?;
        if let Some(books) = &books {
            crate::books::start_background(books.clone(), self.cfg.clone());
            crate::backup::start_scheduled(self.cfg.clone());
        }
        let keys = crate::books::key_methods(&wallet);
        let identity = crate::identity::open(keys.clone(), books.as_ref(), &self.cfg, say)?;
        Ok(Agent { wallet, books, keys, identity })
    }
}

/// `mpc-wallet serve`: start the agent and stay up with `/health`.
pub(crate) async fn serve(file: Option<&Path>, listen: SocketAddr) -> Result<()> {
    // The front's variables (MPC_ALLOWED_ORIGINS, MPC_ALLOWED_HOSTS, MPC_API_TOKEN) are checked
    // before anything is started or provisioned.
    let cfg = WalletConfig::load(file)?;
    let policy = crate::serve::policy(&cfg)?;
    let agent = prepare(cfg).await?.start(|line| println!("{line}"), Arc::new(|_| {})).await?;
    let identity = agent.wallet.identity_key().to_hex();
    crate::serve::serve(agent.keys, agent.books, agent.identity, identity, policy, listen).await
}

/// `mpc-wallet status`: the local record's state and each cosigner's view.
pub(crate) async fn status(file: Option<&Path>) -> Result<bool> {
    let cfg = WalletConfig::load(file)?;
    let wallet = cfg.wallet_id.clone().context("set MPC_WALLET_ID")?;
    let key = KeyId::new(wallet, 0);
    let url = cfg.store.as_ref().map(StoreLocation::url).context("set MPC_STORAGE_PATH or MPC_STORAGE_URL")?;
    let plugins = crate::plugins();
    let store = plugins.open_store(&url, cfg.store_options.clone()).await?;
    let local = store.load_share(&key).await?;
    match &local {
        None => println!("state: not provisioned"),
        Some(r) => {
            println!("state: {}", r.meta.state);
            println!("identity: {}", hex::encode(&r.meta.public_key));
            match wallet_engine::share_labels(&r.sealed) {
                Ok(l) => {
                    println!("protocol: {}", l.protocol);
                    if let Some((run, next)) = l.next {
                        println!("migration staged: {next} (run {run}); the next start completes or rolls it back");
                    }
                }
                Err(e) => println!("protocol: unreadable ({e})"),
            }
            println!("threshold: {} of {}", r.meta.threshold, r.meta.parties);
        }
    }
    let need = local.as_ref().map_or(1, |r| usize::from(r.meta.threshold.saturating_sub(1)));
    let mut serving = 0;
    let mut policies = Vec::new();
    let options = cfg.transport_options();
    for (i, url) in cfg.cosigner_endpoints.iter().enumerate() {
        let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
        let line = match plugins.connect_transport(url, options.clone()).await {
            Err(e) => format!("cannot serve: unreachable ({e})"),
            Ok(t) => match &local {
                Some(r) => {
                    let protocol = wallet_engine::share_labels(&r.sealed)
                        .and_then(|l| Protocol::from_label(&l.protocol))
                        .unwrap_or(Protocol::CURRENT);
                    let report =
                        wallet_engine::probe(index, t.as_ref(), &key, &r.meta.public_key, protocol, PROBE_TIMEOUT)
                            .await;
                    serving += usize::from(report.can_serve());
                    if report.answered() {
                        policies.push((index, report.policy.clone()));
                    }
                    match (&report.unfit, &report.detail) {
                        (None, _) => "can serve (holds this key's active share)".to_string(),
                        (Some(why), Some(detail)) => format!("cannot serve: {why}: {detail}"),
                        (Some(why), None) => format!("cannot serve: {why}"),
                    }
                }
                // Nothing to compare with: say what it holds.
                None => match tokio::time::timeout(PROBE_TIMEOUT, t.key_info(&key)).await {
                    Err(_) => "unreachable (no answer in time)".to_string(),
                    Ok(Err(e)) => format!("unreachable ({e})"),
                    Ok(Ok(None)) => "reachable, holds no share of this key".to_string(),
                    Ok(Ok(Some(info))) => {
                        policies.push((index, info.policy));
                        format!("reachable, holds key {} ({})", hex::encode(&info.public_key), info.state)
                    }
                },
            },
        };
        println!("cosigner {index} {}: {line}", wallet_traits::redact_url(url));
        if let Some((_, policy)) = policies.last().filter(|(i, _)| *i == index) {
            println!("cosigner {index} policy: {}", crate::policy::describe(policy.as_ref()));
        }
    }
    for warning in crate::policy::warnings(&policies) {
        println!("warning: {warning}");
    }
    let active = local.as_ref().is_some_and(|r| r.meta.state == ShareState::Active);
    if local.is_some() {
        println!("signing: {serving} of {} cosigner(s) can serve, {need} needed", cfg.cosigner_endpoints.len());
    }
    // Healthy: the wallet can sign now; a lost cosigner beyond that is reported above.
    Ok(active && serving >= need)
}

/// `mpc-wallet keys`: a new party identity key pair.
pub(crate) fn keys(out: Option<PathBuf>) -> Result<()> {
    let key = PartyKey::generate();
    match out {
        Some(path) => {
            write_secret_file(&path, key.to_hex().as_bytes())?;
            println!("secret key written to {}", path.display());
        }
        None => println!("secret key: {}", key.to_hex().as_str()),
    }
    println!("public key: {}", key.public());
    Ok(())
}

/// Writes a file readable only by its owner.
pub(crate) fn write_secret_file(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}
