//! The wallet across real process boundaries: two `mpc-wallet cosigner` processes and the agent
//! (`mpc-wallet sign`, or an in-test wallet) talking over HTTP or gRPC on 127.0.0.1.
//!
//! Prime pools are filled ahead of time with the INSECURE fixture primes through the ordinary
//! sealed pool, so each DKG takes seconds; the binaries contain no test switch for that.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

mod common;

use common::line;
// The `as _` imports link crates for their store and transport registrations.
use wallet_backend_postgres as _;
use wallet_backend_rocksdb as _;
use wallet_backend_sqlite as _;
use wallet_engine::{InsecureTestPrimes, Keyring, PrimeSource, Sealer, ShareSecret, StorePrimePool};
use wallet_traits::{ShareState, ShareStore, StoredShare};
use wallet_transport_http as _;

const SECRET: &str = "multiprocess test secret";
const JWT: &str = "multiprocess-jwt-secret-0123456789abcdef";
const WALLET: &str = "mp-wallet";

/// A child process whose output lines are collected as they arrive.
struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(args: &[&str], envs: &[(String, String)]) -> Proc {
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

    fn wait_line(&self, stdout: bool, contains: &str, timeout: Duration) -> String {
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

    fn finish(mut self, timeout: Duration) -> (bool, String, String) {
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

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    fn dump(&self) -> String {
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
struct StoreSpec {
    url: String,
    options: wallet_traits::Options,
}

impl StoreSpec {
    fn sqlite(path: &Path) -> Self {
        Self::url(format!("sqlite://{}", path.display()))
    }

    fn url(url: String) -> Self {
        Self { url, options: Default::default() }
    }

    /// Opens the store in this process (a RocksDB one only while its party's process is stopped).
    async fn open(&self) -> Arc<dyn ShareStore> {
        wallet_traits::open_store(&self.url, self.options.clone()).await.unwrap()
    }

    fn env(&self) -> Vec<(String, String)> {
        let options = self.options.iter().map(|(k, v)| (format!("MPC_STORAGE__{}", k.to_ascii_uppercase()), v.clone()));
        std::iter::once(("MPC_STORAGE_URL".to_string(), self.url.clone())).chain(options).collect()
    }
}

/// Two cosigner processes and what the agent needs to reach them.
struct Fleet {
    dir: PathBuf,
    /// Scheme of cosigner 1 and cosigner 2.
    schemes: [&'static str; 2],
    /// The agent's store, then cosigner 1's and 2's.
    stores: Vec<StoreSpec>,
    keys: Vec<Keyring>,
    key_hex: Vec<String>,
    cosigners: Vec<Option<Proc>>,
    endpoints: Vec<String>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Adds `count` fixture prime pairs to `pool` in the store of `spec`, then closes it.
fn prefill(spec: &StoreSpec, pool: &str, count: usize) {
    runtime().block_on(async {
        let store = spec.open().await;
        let sealer = Sealer::new(ShareSecret::new(SECRET).unwrap(), Default::default());
        let pool = StorePrimePool::new(store, sealer, pool);
        for _ in 0..count {
            pool.add(InsecureTestPrimes.take().await.unwrap()).await.unwrap();
        }
    });
}

fn records(dir: &Path) -> Vec<Option<StoredShare>> {
    runtime().block_on(common::records(dir, WALLET))
}

impl Fleet {
    fn new(scheme: &'static str) -> Fleet {
        Fleet::mixed([scheme, scheme])
    }

    fn mixed(schemes: [&'static str; 2]) -> Fleet {
        Fleet::with_stores(schemes, |dir, party| {
            StoreSpec::sqlite(&dir.join(if party == 0 { "agent.db".into() } else { format!("cosigner-{party}.db") }))
        })
    }

    /// `store(dir, party)` says where party 0 (the agent), 1 and 2 keep their shares.
    fn with_stores(schemes: [&'static str; 2], store: impl Fn(&Path, usize) -> StoreSpec) -> Fleet {
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
        };
        for i in 1..=2 {
            f.start_cosigner(i);
        }
        f
    }

    fn peers_for(&self, me: usize) -> String {
        (0..3).filter(|j| *j != me).map(|j| format!("{j}={}", self.keys[j].public())).collect::<Vec<_>>().join(",")
    }

    fn start_cosigner(&mut self, i: usize) {
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
        let p = Proc::spawn(&["cosigner"], &env);
        let line = p.wait_line(true, "listening: ", Duration::from_secs(30));
        self.endpoints[i - 1] = line.trim_start_matches("listening: ").to_string();
        self.cosigners[i - 1] = Some(p);
    }

    fn agent_env(&self) -> Vec<(String, String)> {
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

    fn agent(&self, args: &[&str], extra: &[(&str, &str)]) -> Proc {
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

fn provision_restart_sign(scheme: &'static str) {
    let fleet = Fleet::new(scheme);
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "first agent run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    let identity = line(&out, "identity: ").unwrap().to_string();

    // The agent is a new process each time: this is a restart.
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "second agent run failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("restored"), "{out}");
    assert_eq!(line(&out, "identity: "), Some(identity.as_str()));
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert_eq!(line(&out, "tweaked signature verified: "), Some("true"));
    assert!(line(&out, "phase keygen: ").is_none(), "no DKG on restart");

    let (ok, out, err) = fleet.agent(&["status"], &[]).finish(Duration::from_secs(60));
    assert!(ok, "status reports a healthy wallet:\n{out}\n{err}");
    assert_eq!(out.matches("reachable, agrees on the collective key").count(), 2, "{out}");

    // The BRC-100 front over this transport: a derivation (distributed ECDH) and a joint linkage proof.
    let serve = fleet.agent(&["serve", "--listen", "127.0.0.1:0"], &[]);
    let addr = serve.wait_line(true, "listening: http://", Duration::from_secs(120));
    let addr = addr.trim_start_matches("listening: http://").to_string();
    let other = "025edd5cc23c51e87a497ca815d5dce0f8ab52554f849ed8995de64c5f34ce7143";
    let body = http_post(
        &addr,
        "/getPublicKey",
        &format!(r#"{{"protocolID":[2,"multi process"],"keyID":"1","counterparty":"{other}"}}"#),
    );
    assert!(body.starts_with("HTTP/1.1 200") && body.contains("publicKey"), "{body}");
    let body = http_post(
        &addr,
        "/revealCounterpartyKeyLinkage",
        &format!(r#"{{"counterparty":"{other}","verifier":"{other}"}}"#),
    );
    assert!(body.starts_with("HTTP/1.1 200") && body.contains("encryptedLinkageProof"), "{body}");
}

#[test]
fn three_processes_over_http() {
    provision_restart_sign("http");
}

#[test]
fn three_processes_over_grpc() {
    provision_restart_sign("grpc");
}

#[test]
fn one_cosigner_over_http_and_one_over_grpc() {
    let fleet = Fleet::mixed(["http", "grpc"]);
    assert!(fleet.endpoints[0].starts_with("http://") && fleet.endpoints[1].starts_with("grpc://"));
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    // The agent server restores and stays up with /health.
    let serve = fleet.agent(&["serve", "--listen", "127.0.0.1:0"], &[]);
    let addr = serve.wait_line(true, "listening: http://", Duration::from_secs(120));
    assert!(serve.out.lock().unwrap().iter().any(|l| l == "provisioned: restored"), "{}", serve.dump());
    let addr = addr.trim_start_matches("listening: http://").to_string();
    let body = http_get(&addr, "/health");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\"") && body.contains(line(&out, "identity: ").unwrap()), "{body}");
    // The BRC-100 JSON front on the same listener.
    let body = http_post(&addr, "/getPublicKey", r#"{"identityKey":true}"#);
    assert!(body.starts_with("HTTP/1.1 200") && body.contains(line(&out, "identity: ").unwrap()), "{body}");
    let body = http_post(&addr, "/isAuthenticated", "{}");
    assert!(body.contains(r#"{"authenticated":true}"#), "{body}");
    let body = http_post(&addr, "/getPublicKey", r#"{"protocolID":[3,"bad level"],"keyID":"1"}"#);
    assert!(body.starts_with("HTTP/1.1 400") && body.contains("Protocol security level must be 0, 1, or 2"), "{body}");
    assert!(body.contains(r#""isError":true"#), "{body}");
}

fn http_post(addr: &str, path: &str, json: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
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

/// A plain HTTP/1.1 GET with the standard library.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn kill_a_cosigner_during_aux_info_then_recover() {
    let mut fleet = Fleet::new("http");
    let agent = fleet.agent(&["sign"], &[]);
    agent.wait_line(false, "aux info:", Duration::from_secs(120));
    fleet.cosigners[1].as_mut().unwrap().kill9();
    let (ok, out, err) = agent.finish(Duration::from_secs(120));
    assert!(!ok, "provisioning cannot succeed without cosigner 2:\n{out}");
    assert!(err.contains("cosigner 2"), "the error names the cosigner:\n{err}");
    for (i, r) in records(&fleet.dir).iter().enumerate() {
        assert!(r.as_ref().is_none_or(|r| r.meta.state != ShareState::Active), "party {i} holds no Active share");
    }
    fleet.start_cosigner(2);
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "provisioning after the restart failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    let recs = records(&fleet.dir);
    assert!(recs.iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
}

#[test]
fn kill_the_agent_after_the_cosigners_committed() {
    let fleet = Fleet::new("http");
    let mut agent = fleet.agent(&["sign"], &[("MPC_FAULT_PAUSE_BEFORE_AGENT_COMMIT_MS", "60000")]);
    agent.wait_line(false, "fault injection", Duration::from_secs(300));
    agent.kill9();
    let recs = records(&fleet.dir);
    assert_eq!(recs[0].as_ref().unwrap().meta.state, ShareState::Pending, "the agent died before its commit");
    assert!(recs[1..].iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active), "cosigners committed");
    let pk = hex::encode(&recs[0].as_ref().unwrap().meta.public_key);

    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(120));
    assert!(ok, "restart failed:\n{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("restored"), "{out}");
    assert!(line(&out, "phase keygen: ").is_none(), "no new DKG:\n{out}");
    assert_eq!(line(&out, "identity: "), Some(pk.as_str()));
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert!(records(&fleet.dir).iter().all(|r| r.as_ref().unwrap().meta.state == ShareState::Active));
}

#[test]
fn sixteen_concurrent_signatures_over_http() {
    let fleet = Fleet::new("http");
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "{out}\n{err}");
    runtime().block_on(async {
        let mut options = wallet_traits::Options::new();
        options.insert("jwt_secret".into(), JWT.into());
        let mut b = wallet_engine::WalletBuilder::new()
            .wallet_id(WALLET)
            .share_secret(ShareSecret::new(SECRET).unwrap())
            .store_url(format!("sqlite://{}", fleet.dir.join("agent.db").display()))
            .keyring(fleet.keys[0].clone())
            .transport_options(options);
        for e in &fleet.endpoints {
            b = b.cosigner_url(e);
        }
        let (wallet, p) = b.build().await.unwrap();
        assert_eq!(p, wallet_engine::Provisioned::Restored);
        let pk = wallet.identity_key();
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let w = wallet.clone();
                tokio::spawn(async move {
                    let d = [i; 32];
                    (d, w.sign_digest(&d, None).await)
                })
            })
            .collect();
        for t in tasks {
            let (d, sig) = t.await.unwrap();
            let sig = sig.expect("every concurrent signature succeeds");
            assert!(wallet_engine::verify_signature(&pk, &d, &sig));
        }
    });
}

/// MPC_STORAGE_URL selects the store of every process by scheme: the agent (`sign`, then
/// `serve`) on Postgres, cosigner 1 on RocksDB, cosigner 2 on the same Postgres database under
/// another namespace.
#[test]
fn stores_by_url_postgres_agent_rocksdb_and_postgres_cosigners() {
    let pg = std::env::var("MPC_TEST_POSTGRES_URL")
        .expect("MPC_TEST_POSTGRES_URL is not set: run `bash scripts/postgres.sh` and export the URL it prints");
    let run = wallet_traits::ExecutionId::random().to_string()[..12].to_string();
    let fleet = Fleet::with_stores(["http", "grpc"], |dir, party| match party {
        1 => StoreSpec::url(format!("rocksdb://{}", dir.join("cosigner-1").display())),
        _ => StoreSpec { url: pg.clone(), options: [("namespace".into(), format!("mp-{run}-party-{party}"))].into() },
    });
    let (ok, out, err) = fleet.agent(&["sign"], &[]).finish(Duration::from_secs(300));
    assert!(ok, "{out}\n{err}");
    assert_eq!(line(&out, "provisioned: "), Some("created"), "{out}");
    assert_eq!(line(&out, "signature verified: "), Some("true"));
    assert!(fleet.dir.join("cosigner-1/CURRENT").is_file(), "cosigner 1 wrote a RocksDB directory");

    let serve = fleet.agent(&["serve", "--listen", "127.0.0.1:0"], &[]);
    let addr = serve.wait_line(true, "listening: http://", Duration::from_secs(120));
    assert!(serve.out.lock().unwrap().iter().any(|l| l == "provisioned: restored"), "{}", serve.dump());
    let addr = addr.trim_start_matches("listening: http://").to_string();
    let body = http_post(&addr, "/getPublicKey", r#"{"identityKey":true}"#);
    assert!(body.starts_with("HTTP/1.1 200") && body.contains(line(&out, "identity: ").unwrap()), "{body}");

    // The agent's and cosigner 2's records are Active in Postgres, each under its namespace.
    runtime().block_on(async {
        let key = wallet_traits::KeyId::new(wallet_traits::WalletId::new(WALLET).unwrap(), 0);
        for party in [0usize, 2] {
            let store = fleet.stores[party].open().await;
            let record = store.load_share(&key).await.unwrap().expect("a record in Postgres");
            assert_eq!(record.meta.state, ShareState::Active);
            assert_eq!(usize::from(record.meta.party_index), party);
        }
    });
}
