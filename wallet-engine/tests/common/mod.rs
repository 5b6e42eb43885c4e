//! Shared setup for the engine's end-to-end tests: real cggmp24, real SQLite files, in-process
//! cosigners behind the serializing `local://` transport, INSECURE fixture primes. Shares go
//! without multiexponentiation tables (seconds per party per DKG) unless a test asks for them.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use std::sync::atomic::AtomicUsize;
use wallet_backend_sqlite::SqliteShareStore;
use wallet_engine::{
    CosignerService, InsecureTestPrimes, Keyring, Provisioned, SealOptions, Sealer, ShareSecret, WalletBuilder,
};

use wallet_traits::{CosignerTransport, KeyId, ShareStore, StoredShare, WalletId};
use wallet_transport_local::{register_local_cosigner, unregister_local_cosigner, LocalTransport};

pub const SECRET: &str = "correct horse battery staple (test)";
pub const WALLET: &str = "fixture-wallet";

pub fn key() -> KeyId {
    KeyId::new(WalletId::new(WALLET).unwrap(), 0)
}

pub fn sealer(secret: &str) -> Sealer {
    Sealer::new(ShareSecret::new(secret).unwrap(), SealOptions::default())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", wallet_traits::ExecutionId::random().to_string().split_at(12).0)
}

/// Two in-process cosigners on `dir/cosigner-{1,2}.db`, registered under unique names, and the
/// agent's keyring that pins them (party keys are per process; shares do not depend on them).
pub struct Cosigners {
    pub agent_keyring: Keyring,
    pub names: Vec<String>,
    pub services: Vec<CosignerService>,
    pub stores: Vec<Arc<dyn ShareStore>>,
}

impl Cosigners {
    pub async fn start(dir: &Path, secret: &str) -> Self {
        Self::start_with(dir, secret, None, false).await
    }

    /// [`Cosigners::start`], each cosigner reviewing transactions with `policy`.
    pub async fn start_with_policy(
        dir: &Path,
        secret: &str,
        policy: Option<Arc<dyn wallet_engine::SigningPolicy>>,
    ) -> Self {
        Self::start_with(dir, secret, policy, false).await
    }

    /// [`Cosigners::start`] with `policy`, making multiexponentiation tables when `tables`.
    pub async fn start_with(
        dir: &Path,
        secret: &str,
        policy: Option<Arc<dyn wallet_engine::SigningPolicy>>,
        tables: bool,
    ) -> Self {
        Self::start_full(dir, secret, policy, tables, None).await
    }

    /// [`Cosigners::start`], each cosigner enforcing the spending policy `spending`, counted in
    /// its own SQLite file.
    pub async fn start_spending(dir: &Path, secret: &str, spending: &wallet_policy::Policy) -> Self {
        Self::start_full(dir, secret, None, false, Some(spending)).await
    }

    async fn start_full(
        dir: &Path,
        secret: &str,
        policy: Option<Arc<dyn wallet_engine::SigningPolicy>>,
        tables: bool,
        spending: Option<&wallet_policy::Policy>,
    ) -> Self {
        let mut keyrings = Keyring::generate_group(3).into_iter();
        let agent_keyring = keyrings.next().unwrap();
        let mut out = Cosigners { agent_keyring, names: vec![], services: vec![], stores: vec![] };
        for (i, keyring) in (1..=2u16).zip(keyrings) {
            let store: Arc<dyn ShareStore> =
                Arc::new(SqliteShareStore::open(dir.join(format!("cosigner-{i}.db"))).await.unwrap());
            let mut svc = CosignerService::new(keyring, store.clone(), sealer(secret), Arc::new(InsecureTestPrimes))
                .unwrap()
                .with_multiexp_tables(tables);
            if let Some(p) = &policy {
                svc = svc.with_policy(p.clone());
            }
            if let Some(s) = spending {
                svc =
                    svc.with_spending_policy(wallet_engine::SpendingPolicy::new(s.clone(), store.clone(), i).unwrap());
            }
            let name = unique(&format!("cosigner{i}"));
            register_local_cosigner(&name, Arc::new(svc.clone()));
            out.names.push(name);
            out.services.push(svc);
            out.stores.push(store);
        }
        out
    }

    pub fn transports(&self) -> Vec<Arc<dyn CosignerTransport>> {
        self.names.iter().map(|n| Arc::new(LocalTransport::new(n)) as Arc<dyn CosignerTransport>).collect()
    }
}

impl Drop for Cosigners {
    fn drop(&mut self) {
        for n in &self.names {
            unregister_local_cosigner(n);
        }
    }
}

pub async fn agent_store(dir: &Path) -> Arc<dyn ShareStore> {
    Arc::new(SqliteShareStore::open(dir.join("agent.db")).await.unwrap())
}

/// A builder for the agent on `dir/agent.db` with `cosigners`.
pub async fn builder(dir: &Path, secret: &str, cosigners: &Cosigners) -> WalletBuilder {
    counting_builder(dir, secret, cosigners).await.0
}

/// [`builder`] with `transports` in place of the cosigners' own (for example one unreachable).
pub async fn builder_with(
    dir: &Path,
    secret: &str,
    cosigners: &Cosigners,
    transports: Vec<Arc<dyn CosignerTransport>>,
) -> WalletBuilder {
    let mut b = WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(ShareSecret::new(secret).unwrap())
        .store(agent_store(dir).await)
        .keyring(cosigners.agent_keyring.clone())
        .prime_source(Arc::new(InsecureTestPrimes))
        .multiexp_tables(false);
    for t in transports {
        b = b.cosigner(t);
    }
    b
}

/// [`builder`], and the number of sessions its wallet opens with the cosigners.
pub async fn counting_builder(dir: &Path, secret: &str, cosigners: &Cosigners) -> (WalletBuilder, Arc<AtomicUsize>) {
    let sessions = Arc::new(AtomicUsize::new(0));
    let counted = cosigners
        .transports()
        .into_iter()
        .map(|t| {
            Arc::new(wallet_testkit::Intercept::new(t).sessions_into(sessions.clone())) as Arc<dyn CosignerTransport>
        })
        .collect();
    (builder_with(dir, secret, cosigners, counted).await, sessions)
}

/// A directory holding a provisioned 2-of-3 wallet, made once per test binary and name by a
/// real DKG; tests copy it with [`copy_fixture`].
pub fn fixture(name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<PathBuf>>>>> = OnceLock::new();
    let cell = DONE.get_or_init(Default::default).lock().unwrap().entry(name.to_string()).or_default().clone();
    cell.get_or_init(|| {
        // Kept for the whole binary (statics are never dropped), so it lives under the build's
        // own scratch directory, which `cargo clean` removes, not in the system's /tmp.
        let dir =
            tempfile::Builder::new().prefix("mpc-fixture-").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
        let d = dir.clone();
        // Its own runtime on its own thread: every test has its own runtime, this outlives them.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let cosigners = Cosigners::start(&d, SECRET).await;
                let (_wallet, p) = builder(&d, SECRET, &cosigners).await.build().await.expect("fixture DKG");
                assert_eq!(p, Provisioned::Created);
            });
        })
        .join()
        .expect("fixture thread");
        dir
    })
    .clone()
}

/// A private copy of fixture `name`.
///
/// Each database is copied with `VACUUM INTO`, a consistent snapshot: a plain file copy could
/// race the fixture's connections, which close (checkpointing and deleting their WAL files) in
/// the background after the fixture is made.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = fixture(name);
    let dst = tempfile::Builder::new().prefix("mpc-test-").tempdir().unwrap();
    let to = dst.path().to_path_buf();
    // Its own runtime on its own thread, so sync and async tests can both call it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for f in ["agent.db", "cosigner-1.db", "cosigner-2.db"] {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(src.join(f)).read_only(true);
                let mut conn = sqlx::ConnectOptions::connect(&options).await.unwrap();
                let target = to.join(f).display().to_string();
                sqlx::query("VACUUM INTO ?").bind(target).execute(&mut conn).await.unwrap();
                sqlx::Connection::close(conn).await.unwrap();
            }
        });
    })
    .join()
    .expect("copying the fixture");
    dst
}

/// Every record of the key in the agent's and cosigners' files.
pub async fn snapshot(dir: &Path) -> Vec<Option<StoredShare>> {
    let mut out = vec![];
    for f in ["agent.db", "cosigner-1.db", "cosigner-2.db"] {
        let s = SqliteShareStore::open(dir.join(f)).await.unwrap();
        out.push(s.load_share(&key()).await.unwrap());
        s.close().await;
    }
    out
}

/// k256's verdict, independent of the engine.
pub fn k256_verifies(public_key: &[u8], digest: &[u8; 32], sig: &wallet_traits::EcdsaSignature) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
    let s = k256::ecdsa::Signature::from_slice(&sig.to_compact()).unwrap();
    s.normalize_s().is_none() && vk.verify_prehash(digest, &s).is_ok()
}

pub fn digest(msg: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(msg.as_bytes()).into()
}

/// A request to sign `digest` with the agent and cosigner 1 (key 0 of the test wallet).
pub fn sign_request(digest: [u8; 32]) -> wallet_traits::SessionRequest {
    wallet_traits::SessionRequest {
        key: key(),
        execution_id: wallet_traits::ExecutionId::random(),
        parties: vec![0, 1],
        params: wallet_traits::SessionParams::Sign { digest, tweak: None },
    }
}

/// A transaction spending one P2PKH output per key of `keys`, with a change and a data output.
pub fn spending(keys: &[wallet_traits::PublicKey], pay_to: wallet_bsv::Script) -> wallet_bsv::Transaction {
    use wallet_bsv::{hash::hash160, Script, TxId, TxInput, TxOutput};
    wallet_bsv::Transaction {
        version: 1,
        inputs: keys
            .iter()
            .enumerate()
            .map(|(i, k)| TxInput {
                source_txid: TxId(digest(&format!("source {i}"))),
                source_vout: i as u32,
                unlocking_script: Script::default(),
                sequence: u32::MAX,
                source_output: Some(TxOutput {
                    satoshis: 10_000 + i as u64,
                    locking_script: Script::p2pkh_lock(&hash160(k.as_bytes())),
                }),
            })
            .collect(),
        outputs: vec![
            TxOutput { satoshis: 5_000, locking_script: pay_to },
            TxOutput { satoshis: 0, locking_script: Script::new(vec![0x00, 0x6a, 0x02, 0xbe, 0xef]) },
        ],
        lock_time: 0,
    }
}
