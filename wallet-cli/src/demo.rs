//! `mpc-wallet demo`: provision (or restore) the embedded 2-of-3 wallet, sign, verify.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use k256::elliptic_curve::{ops::Reduce, sec1::ToEncodedPoint};
use sha2::{Digest, Sha256};
use wallet_backend_sqlite::SqliteShareStore;
use wallet_engine::{
    CosignerService, Keyring, Phase, Progress, Provisioned, Sealer, ShareSecret, StorePrimePool, WalletBuilder,
    WalletConfig,
};
use wallet_traits::{EcdsaSignature, ShareStore};
use wallet_transport_local::{register_local_cosigner, LocalTransport};

/// Used only when MPC_SHARE_SECRET is unset, and announced loudly.
const DEV_SECRET: &str = "mpc-wallet-demo-development-secret-do-not-use";

pub(crate) async fn run(data_dir: &Path) -> Result<()> {
    let mut cfg = WalletConfig::from_env()?;
    let wallet_id = cfg.wallet_id.clone().unwrap_or_else(|| "demo-wallet".to_string());
    if cfg.share_secret.is_none() {
        eprintln!(
            "warning: MPC_SHARE_SECRET is not set; using the fixed development secret. \
             Set MPC_SHARE_SECRET for anything but this demo."
        );
        cfg.share_secret = Some(DEV_SECRET.to_string());
    }
    eprintln!(
        "warning: embedded default: the agent and both cosigners run in this process and all shares sit \
         on this machine. For trying the wallet and for tests, not for production."
    );
    let agent_path = cfg.storage_path.clone().unwrap_or_else(|| data_dir.join("agent.db"));
    let dir = agent_path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let secret = ShareSecret::new(cfg.share_secret.clone().unwrap_or_default())?;
    let sealer = Sealer::new(secret.clone(), Default::default());
    println!("data dir: {}", dir.display());
    println!("wallet: {wallet_id} (network {})", cfg.network);

    let agent_store: Arc<dyn ShareStore> = Arc::new(
        SqliteShareStore::open(&agent_path).await.with_context(|| format!("opening {}", agent_path.display()))?,
    );
    // Party keys seal the messages between parties; in-process they can be fresh every run.
    let mut keyrings = Keyring::generate_group(3).into_iter();
    let mut builder = WalletBuilder::from_config(cfg)?
        .wallet_id(&wallet_id)
        .share_secret(secret)
        .store(agent_store)
        .keyring(keyrings.next().expect("three keyrings"));
    for (i, keyring) in (1..=2u16).zip(keyrings) {
        let path = dir.join(format!("cosigner-{i}.db"));
        let store: Arc<dyn ShareStore> =
            Arc::new(SqliteShareStore::open(&path).await.with_context(|| format!("opening {}", path.display()))?);
        let primes = Arc::new(StorePrimePool::new(store.clone(), sealer.clone(), "cosigner"));
        let service = CosignerService::new(keyring, store, sealer.clone(), primes)?;
        let name = format!("demo-cosigner-{i}");
        register_local_cosigner(&name, Arc::new(service));
        builder = builder.cosigner(Arc::new(LocalTransport::new(&name)));
    }

    let t0 = Instant::now();
    let builder = builder.on_progress(|p| match p {
        Progress::Started(Phase::Primes) => {
            eprintln!("  primes: getting a Paillier prime pair per party (generating one takes 10 to 90 s)...")
        }
        Progress::Started(Phase::Keygen) => eprintln!("  keygen: running threshold key generation with 2 cosigners..."),
        Progress::Started(Phase::AuxInfo) => eprintln!("  aux info: running aux info generation (about a minute)..."),
        Progress::Started(Phase::Commit) => eprintln!("  commit: sealing shares and committing on every party..."),
        Progress::Started(_) => {}
        Progress::Finished(phase, d) => println!("phase {phase}: {:.2}s", d.as_secs_f64()),
    });
    let (wallet, provisioned) = builder.build().await?;
    println!("phase provision total: {:.2}s", t0.elapsed().as_secs_f64());
    println!("provisioned: {provisioned}");
    let pk = wallet.identity_key();
    println!("identity: {pk}");
    if provisioned == Provisioned::Created {
        eprintln!("  (the next run restores this wallet from {} without a DKG)", dir.display());
    }

    let digest: [u8; 32] = Sha256::digest(b"mpc-wallet demo: sign this digest").into();
    let t = Instant::now();
    let sig = wallet.sign_digest(&digest, None).await?;
    println!("phase sign: {:.2}s", t.elapsed().as_secs_f64());
    let ok = k256_verify(pk.as_bytes(), &digest, &sig)?;
    println!("signature verified: {ok}");

    let tweak: [u8; 32] = Sha256::digest(b"mpc-wallet demo: child key tweak").into();
    let t = Instant::now();
    let sig = wallet.sign_digest(&digest, Some(&tweak)).await?;
    println!("phase tweaked sign: {:.2}s", t.elapsed().as_secs_f64());
    let child = k256_child(pk.as_bytes(), &tweak)?;
    let tweaked_ok = k256_verify(&child, &digest, &sig)?;
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
