//! Two `mpc-wallet cosigner` processes on 127.0.0.1 and what an agent needs to reach them, shared
//! by the multi-process tests and the networked benchmark.
//!
//! Prime pools are filled ahead of time with the INSECURE fixture primes through the ordinary
//! sealed pool, so each DKG takes seconds; the binaries contain no test switch for that.

// The test and the benchmark each use a subset.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

// The `as _` imports link crates for their store and transport registrations.
use wallet_backend_postgres as _;
use wallet_backend_rocksdb as _;
use wallet_backend_sqlite as _;
use wallet_engine::{InsecureTestPrimes, Keyring, PrimeSource, Sealer, ShareSecret, StorePrimePool, WalletBuilder};
use wallet_traits::ShareStore;
use wallet_transport_grpc as _;
use wallet_transport_http as _;

pub(crate) const SECRET: &str = "multiprocess test secret";
pub(crate) const JWT: &str = "multiprocess-jwt-secret-0123456789abcdef";
pub(crate) const WALLET: &str = "mp-wallet";

/// A child process whose output lines are collected as they arrive.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) out: Arc<Mutex<Vec<String>>>,
    pub(crate) err: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) fn spawn(args: &[&str], envs: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpc-wallet"));
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).env_clear();
        for k in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = cmd.spawn().expect("spawn mpc-wallet");
        let collect = |r: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
            lines
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        Proc { child, out, err }
    }

    pub(crate) fn wait_line(&self, stdout: bool, contains: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = if stdout { &self.out } else { &self.err };
            if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(contains)) {
                return l.clone();
            }
            assert!(Instant::now() < deadline, "no line containing {contains:?} within {timeout:?}:\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn finish(mut self, timeout: Duration) -> (bool, String, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "process did not finish within {timeout:?}:\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.success(), self.out.lock().unwrap().join("\n"), self.err.lock().unwrap().join("\n"))
    }

    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub(crate) fn dump(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.out.lock().unwrap().join("\n"), self.err.lock().unwrap().join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a party keeps its shares: a store URL and its options, as the processes get them.
#[derive(Clone)]
pub(crate) struct StoreSpec {
    pub(crate) url: String,
    pub(crate) options: wallet_traits::Options,
}

impl StoreSpec {
    pub(crate) fn sqlite(path: &Path) -> Self {
        Self::url(format!("sqlite://{}", path.display()))
    }

    pub(crate) fn url(url: String) -> Self {
        Self { url, options: Default::default() }
    }

    /// Opens the store in this process (a RocksDB one only while its party's process is stopped).
    pub(crate) async fn open(&self) -> Arc<dyn ShareStore> {
        wallet_traits::open_store(&self.url, self.options.clone()).await.unwrap()
    }

    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let options = self.options.iter().map(|(k, v)| (format!("MPC_STORAGE__{}", k.to_ascii_uppercase()), v.clone()));
        std::iter::once(("MPC_STORAGE_URL".to_string(), self.url.clone())).chain(options).collect()
    }
}

/// Two cosigner processes and what the agent needs to reach them.
pub(crate) struct Fleet {
    pub(crate) dir: PathBuf,
    /// Scheme of cosigner 1 and cosigner 2.
    pub(crate) schemes: [&'static str; 2],
    /// The agent's store, then cosigner 1's and 2's.
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) keys: Vec<Keyring>,
    pub(crate) key_hex: Vec<String>,
    pub(crate) cosigners: Vec<Option<Proc>>,
    pub(crate) endpoints: Vec<String>,
    /// Variables every cosigner process gets besides its own.
    pub(crate) cosigner_env: Vec<(String, String)>,
}

/// A builder for the test wallet on `store` with the agent's `keyring`; cosigners still to add.
pub(crate) fn agent_builder(store: &StoreSpec, keyring: Keyring) -> WalletBuilder {
    WalletBuilder::new()
        .wallet_id(WALLET)
        .share_secret(ShareSecret::new(SECRET).unwrap())
        .store_url(store.url.clone())
        .store_options(store.options.clone())
        .keyring(keyring)
        // As the binary reads MPC_MULTIEXP_TABLES (scripts/test.sh turns the tables off).
        .multiexp_tables(std::env::var("MPC_MULTIEXP_TABLES").map_or(true, |v| v != "false"))
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Adds `count` fixture prime pairs to `pool` in the store of `spec`, then closes it.
pub(crate) fn prefill(spec: &StoreSpec, pool: &str, count: usize) {
    runtime().block_on(async {
        let store = spec.open().await;
        let sealer = Sealer::new(ShareSecret::new(SECRET).unwrap(), Default::default());
        let pool = StorePrimePool::new(store, sealer, pool);
        for _ in 0..count {
            pool.add(InsecureTestPrimes.take().await.unwrap()).await.unwrap();
        }
    });
}

impl Fleet {
    pub(crate) fn new(scheme: &'static str) -> Fleet {
        Fleet::mixed([scheme, scheme])
    }

    pub(crate) fn mixed(schemes: [&'static str; 2]) -> Fleet {
        Fleet::with_stores(schemes, |dir, party| {
            StoreSpec::sqlite(&dir.join(if party == 0 { "agent.db".into() } else { format!("cosigner-{party}.db") }))
        })
    }

    /// Cosigners over `scheme` that also get `env`.
    pub(crate) fn with_cosigner_env(scheme: &'static str, env: &[(&str, &str)]) -> Fleet {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Fleet::build([scheme, scheme], env, |dir, party| {
            StoreSpec::sqlite(&dir.join(if party == 0 { "agent.db".into() } else { format!("cosigner-{party}.db") }))
        })
    }

    /// `store(dir, party)` says where party 0 (the agent), 1 and 2 keep their shares.
    pub(crate) fn with_stores(schemes: [&'static str; 2], store: impl Fn(&Path, usize) -> StoreSpec) -> Fleet {
        Fleet::build(schemes, Vec::new(), store)
    }

    fn build(
        schemes: [&'static str; 2],
        cosigner_env: Vec<(String, String)>,
        store: impl Fn(&Path, usize) -> StoreSpec,
    ) -> Fleet {
        let dir = tempfile::Builder::new().prefix("mpc-mp-").tempdir().unwrap().keep();
        let stores: Vec<StoreSpec> = (0..3).map(|party| store(&dir, party)).collect();
        let mut keys = Vec::new();
        let mut key_hex = Vec::new();
        for _ in 0..3 {
            let k = wallet_engine::PartyKey::generate();
            key_hex.push(k.to_hex().to_string());
            keys.push(k);
        }
        let publics: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| {
                let peers = publics.iter().enumerate().filter(|(j, _)| *j != i).map(|(j, p)| (j as u16, *p)).collect();
                Keyring::new(i as u16, k, peers)
            })
            .collect();
        prefill(&stores[0], "agent", 2);
        for spec in &stores[1..] {
            prefill(spec, "cosigner", 2);
        }
        let mut f = Fleet {
            dir,
            schemes,
            stores,
            keys,
            key_hex,
            cosigners: vec![None, None],
            endpoints: vec![String::new(); 2],
            cosigner_env,
        };
        for i in 1..=2 {
            f.start_cosigner(i);
        }
        f
    }

    pub(crate) fn peers_for(&self, me: usize) -> String {
        (0..3).filter(|j| *j != me).map(|j| format!("{j}={}", self.keys[j].public())).collect::<Vec<_>>().join(",")
    }

    pub(crate) fn start_cosigner(&mut self, i: usize) {
        let listen_var = if self.schemes[i - 1] == "http" { "MPC_HTTP_LISTEN" } else { "MPC_GRPC_LISTEN" };
        let mut env = self.stores[i].env();
        env.extend([
            ("MPC_PARTY_INDEX".to_string(), i.to_string()),
            (listen_var.to_string(), "127.0.0.1:0".to_string()),
            ("MPC_SHARE_SECRET".to_string(), SECRET.to_string()),
            ("MPC_JWT_SECRET".to_string(), JWT.to_string()),
            ("MPC_PARTY_KEY".to_string(), self.key_hex[i].clone()),
            ("MPC_PEER_KEYS".to_string(), self.peers_for(i)),
            ("MPC_PRIME_POOL_TARGET".to_string(), "0".to_string()),
        ]);
        env.extend(self.cosigner_env.iter().cloned());
        let p = Proc::spawn(&["cosigner"], &env);
        let line = p.wait_line(true, "listening: ", Duration::from_secs(30));
        self.endpoints[i - 1] = line.trim_start_matches("listening: ").to_string();
        self.cosigners[i - 1] = Some(p);
    }

    pub(crate) fn agent_env(&self) -> Vec<(String, String)> {
        let mut env = self.stores[0].env();
        env.extend([
            ("MPC_WALLET_ID".to_string(), WALLET.to_string()),
            ("MPC_SHARE_SECRET".to_string(), SECRET.to_string()),
            ("MPC_JWT_SECRET".to_string(), JWT.to_string()),
            ("MPC_PARTY_KEY".to_string(), self.key_hex[0].clone()),
            ("MPC_PEER_KEYS".to_string(), self.peers_for(0)),
            ("MPC_COSIGNER_ENDPOINTS".to_string(), self.endpoints.join(",")),
        ]);
        env
    }

    /// A builder for an agent wallet in this process, on the agent's store and both cosigners.
    pub(crate) fn wallet_builder(&self) -> WalletBuilder {
        let mut options = wallet_traits::Options::new();
        options.insert("jwt_secret".into(), JWT.into());
        let b = agent_builder(&self.stores[0], self.keys[0].clone()).transport_options(options);
        self.endpoints.iter().fold(b, |b, e| b.cosigner_url(e))
    }

    pub(crate) fn agent(&self, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        let mut env = self.agent_env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Proc::spawn(args, &env)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.cosigners.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A wallet of `protocol` in every party's store of `fleet`, of the known key `[byte; 32]`
/// (trusted dealer, fixture primes: no DKG), and its identity key. A cggmp21 one is what
/// releases before cggmp24 made.
pub(crate) fn imported_wallet(fleet: &Fleet, protocol: wallet_engine::Protocol, byte: u8) -> String {
    let key = wallet_traits::KeyId::new(wallet_traits::WalletId::new(WALLET).unwrap(), 0);
    let sealer = wallet_engine::Sealer::new(wallet_engine::ShareSecret::new(SECRET).unwrap(), Default::default());
    let records =
        wallet_engine::insecure_testing::import_key([byte; 32], 2, &key, &[&sealer, &sealer, &sealer], protocol)
            .unwrap();
    runtime().block_on(async {
        for (spec, r) in fleet.stores.iter().zip(&records) {
            spec.open().await.create_share(r).await.unwrap();
        }
    });
    public_key_of(byte)
}

/// The compressed public key of the secret key `[byte; 32]`, hex.
pub(crate) fn public_key_of(byte: u8) -> String {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let secret = k256::SecretKey::from_slice(&[byte; 32]).unwrap();
    hex::encode(secret.public_key().to_encoded_point(true).as_bytes())
}

/// A raw `POST` of `json` to `addr` (host:port) with `Connection: close`; the whole response.
pub(crate) fn http_post(addr: &str, path: &str, json: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
