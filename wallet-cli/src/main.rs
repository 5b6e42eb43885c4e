//! `mpc-wallet`: the agent wallet, cosigner service and demo of the mpc-wallet framework.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod agent;
mod backup;
mod books;
mod chain;
mod check;
mod consolidate;
mod cosigner;
mod decode;
mod demo;
mod embedded;
mod fetch;
mod identity;
mod mcp;
mod policy;
mod serve;

/// The stores and transports this binary offers, installed explicitly (no reliance on the
/// linker keeping `inventory` registrations); the cargo features decide the optional ones.
pub(crate) fn plugins() -> wallet_traits::Plugins {
    let p = wallet_traits::Plugins::new();
    let p = wallet_backend_sqlite::install(p);
    #[cfg(feature = "backend-postgres")]
    let p = wallet_backend_postgres::install(p);
    #[cfg(feature = "backend-rocksdb")]
    let p = wallet_backend_rocksdb::install(p);
    #[cfg(feature = "plugin-example")]
    let p = wallet_plugin_example_store::install(p);
    let p = wallet_transport_local::install(p);
    let p = wallet_transport_http::install(p);
    let p = wallet_transport_grpc::install(p);
    let p = wallet_service_arc::install(p);
    wallet_service_whatsonchain::install(p)
}

/// The bytes of hex given as an argument, or read from standard input when it is `-`.
pub(crate) fn hex_input(input: &str) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let text = if input == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading standard input")?;
        s
    } else {
        input.to_string()
    };
    hex::decode(text.trim()).context("the input is not hex")
}

#[derive(Parser, Debug)]
#[command(name = "mpc-wallet", version, about = "Threshold-ECDSA (MPC) wallet for AI agents on BSV")]
struct Cli {
    /// Configuration file (TOML); default ./mpc-wallet.toml when it exists. MPC_* variables
    /// override its keys.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The embedded default: the agent and two in-process cosigners, each with its own SQLite
    /// file in DATA_DIR. First run: DKG; later runs: restore. Then signs and verifies.
    Demo {
        /// Where the three SQLite files live.
        #[arg(long, default_value = "./mpc-data")]
        data_dir: PathBuf,
    },
    /// The agent wallet server: provisions or restores from MPC_* configuration, serves /health.
    Serve {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:3321")]
        listen: SocketAddr,
    },
    /// The wallet's tools for a language-model agent over the Model Context Protocol: over stdio
    /// (the default, for an agent host that starts the wallet) or, with --listen, over streamable
    /// HTTP at /mcp behind the same checks as `serve` (MPC_ALLOWED_ORIGINS, MPC_ALLOWED_HOSTS,
    /// MPC_API_TOKEN). Starts the wallet as `serve` does; logs go to standard error only.
    Mcp {
        /// Serve streamable HTTP on this address instead of stdio.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Offer only these tools (comma-separated, e.g. wallet_status,get_balance,fetch); the
        /// default is every tool.
        #[arg(long, value_delimiter = ',')]
        tools: Option<Vec<String>>,
        /// The most one `fetch` tool call may pay, whatever the model asks (the cosigners'
        /// spending policies apply on top).
        #[arg(long, default_value_t = wallet_mcp::DEFAULT_FETCH_CAP)]
        max_fetch_sats: u64,
        /// The only hosts the `fetch` tool may reach (comma-separated; `*.example.com` for its
        /// subdomains); the default is any host.
        #[arg(long, value_delimiter = ',')]
        fetch_hosts: Option<Vec<String>>,
        /// With --listen: the most MCP sessions open at once (a session idle for 5 minutes
        /// closes).
        #[arg(long, default_value_t = wallet_mcp::DEFAULT_MAX_SESSIONS, value_parser = clap::value_parser!(u16).range(1..))]
        max_sessions: u16,
    },
    /// Starts the agent (provisioning or restoring), signs a digest, verifies, exits.
    Sign {
        /// 32-byte digest, hex (default: a fixed demo digest).
        #[arg(long)]
        digest: Option<String>,
        /// 32-byte additive tweak, hex, for the second (child key) signature.
        #[arg(long)]
        tweak: Option<String>,
    },
    /// Starts the agent (provisioning or restoring) and signs every input of a transaction in
    /// Extended Format as P2PKH (the root key, or per input a child key), then prints it.
    SignTx {
        /// The transaction in Extended Format, hex; `-` reads it from standard input.
        #[arg(default_value = "-")]
        ef: String,
        /// `INDEX=HEX`: input INDEX spends from the child key with this 32-byte tweak. Repeatable.
        #[arg(long)]
        tweak: Vec<String>,
        /// The sighash type of every input (default ALL|FORKID).
        #[arg(long, default_value_t = 0x41)]
        sighash: u32,
        /// `VOUT=HEX`: output VOUT pays the wallet's child key with this 32-byte tweak (all zeros:
        /// the root key), claimed as change so the cosigners do not count it as spent. Repeatable.
        #[arg(long)]
        change: Vec<String>,
    },
    /// Prints the provisioning state and, per cosigner, whether it is reachable and agrees.
    Status,
    /// Migrates a wallet made with cggmp21 (releases before cggmp24) to cggmp24 with every
    /// cosigner: new aux info for the same key, committed in two phases. The key, its addresses
    /// and every derived key stay the same. A wallet on cggmp24 already is left as it is.
    Migrate {
        /// The embedded default's data directory (the demo's); without it, the configured wallet
        /// (MPC_COSIGNER_ENDPOINTS, MPC_STORAGE_*).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// A cosigner service over HTTP and/or gRPC.
    Cosigner,
    /// Works with the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Decodes a transaction (raw or Extended Format), a BEEF (V1, V2, Atomic) or a merkle path
    /// (BUMP) given as hex, checks its structure and prints it as JSON. Reads nothing else: no
    /// configuration, no network.
    Decode {
        /// What the hex holds.
        #[arg(long, value_enum, default_value = "auto")]
        kind: decode::Kind,
        /// The hex; `-` reads it from standard input.
        #[arg(default_value = "-")]
        hex: String,
    },
    /// Submits a transaction (Extended Format) or a BEEF (V1), hex, to the broadcaster
    /// (MPC_ARC_URL; ARC by default) and prints its txid and status.
    Broadcast {
        /// The hex; `-` reads it from standard input.
        #[arg(default_value = "-")]
        hex: String,
    },
    /// Checks a BEEF or Atomic BEEF, hex: its structure, then every merkle root with the chain
    /// tracker (MPC_CHAIN_TRACKER_URL; WhatsOnChain by default).
    VerifyBeef {
        /// The hex; `-` reads it from standard input.
        #[arg(default_value = "-")]
        hex: String,
    },
    /// Prints the wallet's spendable balance (its change, in the `default` basket).
    Balance,
    /// Runs the books' background round once (abandoned actions failed, delayed broadcasts
    /// sent, merkle proofs fetched) and, with --utxos, checks every spendable output against the
    /// chain tracker: one the chain holds spent is marked no longer spendable.
    Reconcile {
        /// Check every spendable output against the chain (MPC_CHAIN_TRACKER_URL).
        #[arg(long)]
        utxos: bool,
        /// Report what --utxos finds without marking anything.
        #[arg(long, requires = "utxos")]
        dry_run: bool,
        /// Look on the chain for change the books lack (the payments after the backup they were
        /// restored from) and record it.
        #[arg(long, conflicts_with = "dry_run")]
        recover: bool,
    },
    /// Writes one sealed file (MPC_BACKUP_SECRET, else MPC_SHARE_SECRET) with the agent's key
    /// share record, its party key and the books (actions, outputs, labels, tags, derivation
    /// data, certificates), consistent while `serve` runs. Never replaces a file.
    Backup {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restores a wallet from `mpc-wallet backup`'s file, on a new machine with the same
    /// configuration and cosigners: the key share without a DKG (the cosigners must hold the same
    /// key), the party key when MPC_PARTY_KEY_FILE is missing, the books (imported once, however
    /// often this runs), then a reconcile against the chain. A file of another wallet, under
    /// another secret, truncated or edited is refused with nothing written.
    RestoreBackup {
        /// The backup file.
        file: PathBuf,
    },
    /// Merges the smallest confirmed change outputs into fresh change when the wallet holds more
    /// than MPC_CHANGE_TARGET_COUNT of them or dust under MPC_CHANGE_MIN_SATS: one transaction,
    /// signed with the cosigners (only the fee leaves the wallet), broadcast, and recorded as an
    /// action labelled `consolidation`.
    Consolidate {
        /// Say what would be merged without signing anything.
        #[arg(long)]
        dry_run: bool,
        /// The most outputs to merge in one transaction (2 to 168).
        #[arg(long, default_value_t = consolidate::DEFAULT_MAX_INPUTS,
              value_parser = clap::value_parser!(u16).range(2..=wallet_brc100::actions::MAX_CONSOLIDATE_INPUTS as i64))]
        max_inputs: u16,
    },
    /// Pays satoshis to an address or a locking script: funds the payment from the wallet's
    /// change, signs with the cosigners, broadcasts (MPC_ARC_URL), prints the txid and BEEF.
    Pay {
        /// A P2PKH address, or a locking script in hex.
        #[arg(long)]
        to: String,
        /// How many satoshis.
        #[arg(long)]
        sats: u64,
        /// What the payment is for (5 to 2000 bytes).
        #[arg(long, default_value = "payment (mpc-wallet pay)")]
        description: String,
    },
    /// Without arguments prints what a sender needs for a BRC-29 payment; with `--beef` takes
    /// in a payment: checks its proofs (MPC_CHAIN_TRACKER_URL) and scripts, broadcasts it if
    /// it is new, and records it.
    Receive {
        /// The payment's Atomic BEEF, hex; `-` reads it from standard input.
        #[arg(long, requires_all = ["vout", "prefix", "suffix", "sender"])]
        beef: Option<String>,
        /// The index of the output that pays this wallet.
        #[arg(long)]
        vout: Option<u32>,
        /// The BRC-29 derivation prefix (base64).
        #[arg(long)]
        prefix: Option<String>,
        /// The BRC-29 derivation suffix (base64).
        #[arg(long)]
        suffix: Option<String>,
        /// The sender's identity key (hex).
        #[arg(long)]
        sender: Option<String>,
    },
    /// An HTTP request authenticated with the wallet's identity key (BRC-103 over HTTP, as
    /// @bsv/sdk's AuthFetch): only a response the server signed for this request is printed
    /// (status line and body on standard output; the server's identity key, and what was paid, on
    /// standard error). A server answering 402 is paid from the wallet's change (BRC-41) and asked
    /// again, up to --max-pay satoshis. Exits 1 for a status of 400 or more.
    Fetch {
        /// The URL (http:// or https://).
        url: String,
        /// The method (default GET, or POST with --body).
        #[arg(long, short = 'X')]
        method: Option<String>,
        /// The body; @FILE reads it from FILE. Without a content-type header it is sent as
        /// application/json when it is JSON, else as text/plain.
        #[arg(long, short = 'd')]
        body: Option<String>,
        /// 'Name: value'; only content-type, authorization and x-bsv-* headers can be sent
        /// authenticated. Repeatable.
        #[arg(long = "header", short = 'H', value_name = "HEADER")]
        headers: Vec<String>,
        /// The most this request may pay, in satoshis; a server asking more is refused before
        /// anything is paid.
        #[arg(long, default_value_t = wallet_auth::DEFAULT_MAX_PAYMENT_SATOSHIS)]
        max_pay: u64,
        /// Show no certificates: a server that asks for some is refused before any request is
        /// sent. Without it, the wallet's certificates a server asks for are proven for that
        /// server (only the fields it names) and each is reported on standard error.
        #[arg(long)]
        no_certificates: bool,
    },
    /// Lists the wallet's transactions: txid, net satoshis, status, description.
    History {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Generates a party identity key pair (X25519) and prints its public key; with
    /// `--approver`, an approver key (secp256k1) for the cosigners' spending policies.
    Keys {
        /// Write the secret key here (created 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// An approver key instead of a party key.
        #[arg(long)]
        approver: bool,
    },
    /// A person's approval of one payment past the cosigners' limits and allowlist: signed with
    /// an approver key (`keys --approver`) whose public key the cosigners' policy files pin, and
    /// handed to each cosigner. A later transaction paying at most SATS (fee included) to TO, and
    /// nothing else, is then allowed once.
    Approve {
        /// The approver's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The wallet id.
        #[arg(long)]
        wallet: String,
        /// The destination: a P2PKH address or a locking script in hex.
        #[arg(long)]
        to: String,
        /// The most the payment may send out, fee included.
        #[arg(long)]
        sats: u64,
        /// How long the approval counts, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// A cosigner's HTTP URL (repeat for each cosigner).
        #[arg(long)]
        cosigner: Vec<String>,
        /// The embedded default's data directory: its cosigners' files get the approval.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Lists a cosigner's audit log of spending decisions (the cosigner configuration's store, or
    /// the embedded default's cosigners with `--data-dir`); `--verify` checks its hash chain.
    Audit {
        /// Only this wallet's decisions.
        #[arg(long)]
        wallet: Option<String>,
        /// Check the chain: an edited, removed or reordered record fails naming it.
        #[arg(long)]
        verify: bool,
        /// The embedded default's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Resolves defaults < file < MPC_* variables, checks every value, prints the result with
    /// secrets redacted. Exits non-zero naming the offending key when something is invalid.
    Check {
        /// Check a cosigner's configuration instead of the agent's.
        #[arg(long)]
        cosigner: bool,
    },
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// What is logged: `MPC_LOG`, else the usual `RUST_LOG`, else warnings and the line `mcp`
/// writes per tool call (what an agent asked and what came of it). A filter that does not parse
/// is said, not silently dropped.
fn log_filter() -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    for var in ["MPC_LOG", "RUST_LOG"] {
        let Ok(value) = std::env::var(var) else { continue };
        match EnvFilter::try_new(&value) {
            Ok(filter) => return filter,
            Err(e) => {
                eprintln!("warning: {var}={value:?} is not a log filter ({e}); logging warnings only");
                break;
            }
        }
    }
    EnvFilter::new("warn,wallet_mcp=info")
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(log_filter()).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "mpc-wallet starting");
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let file = cli.config.as_deref();
    let result = rt.block_on(async {
        match cli.command {
            Command::Demo { data_dir } => demo::run(file, &data_dir).await.map(|_| true),
            Command::Migrate { data_dir } => agent::migrate(file, data_dir.as_deref()).await.map(|_| true),
            Command::Serve { listen } => agent::serve(file, listen).await.map(|_| true),
            Command::Mcp { listen, tools, max_fetch_sats, fetch_hosts, max_sessions } => {
                let limits = mcp::Limits { tools, max_fetch_sats, fetch_hosts, max_sessions: max_sessions.into() };
                mcp::run(file, listen, limits).await.map(|_| true)
            }
            Command::Sign { digest, tweak } => agent::sign(file, digest, tweak).await.map(|_| true),
            Command::SignTx { ef, tweak, sighash, change } => {
                agent::sign_tx(file, &ef, &tweak, sighash, &change).await.map(|_| true)
            }
            Command::Status => agent::status(file).await,
            Command::Cosigner => cosigner::run(file).await.map(|_| true),
            Command::Config { command: ConfigCommand::Check { cosigner } } => check::run(file, cosigner),
            Command::Keys { out, approver: false } => agent::keys(out).map(|_| true),
            Command::Keys { out, approver: true } => policy::approver_key(out).map(|_| true),
            Command::Approve { key, wallet, to, sats, ttl, cosigner, data_dir } => {
                policy::approve(policy::Approve { key, wallet, to, sats, ttl_secs: ttl, cosigners: cosigner, data_dir })
                    .await
            }
            Command::Audit { wallet, verify, data_dir } => {
                policy::audit(file, wallet.as_deref(), verify, data_dir.as_deref()).await
            }
            Command::Balance => books::balance(file).await.map(|_| true),
            Command::Reconcile { utxos, dry_run, recover } => {
                books::reconcile(file, utxos, dry_run, recover).await.map(|_| true)
            }
            Command::Backup { out } => backup::backup(file, &out).await.map(|_| true),
            Command::RestoreBackup { file: backup } => backup::restore(file, &backup).await.map(|_| true),
            Command::Consolidate { dry_run, max_inputs } => {
                consolidate::run(file, usize::from(max_inputs), dry_run).await.map(|_| true)
            }
            Command::Pay { to, sats, description } => books::pay(file, &to, sats, &description).await.map(|_| true),
            Command::Receive { beef, vout, prefix, suffix, sender } => {
                let incoming = match (beef, vout, prefix, suffix, sender) {
                    (Some(beef), Some(vout), Some(prefix), Some(suffix), Some(sender)) => {
                        Some(books::Incoming { beef, vout, prefix, suffix, sender })
                    }
                    _ => None,
                };
                books::receive(file, incoming).await.map(|_| true)
            }
            Command::History { limit } => books::history(file, limit).await.map(|_| true),
            Command::Fetch { url, method, body, headers, max_pay, no_certificates } => {
                fetch::run(file, fetch::Fetch { url, method, body, headers, max_pay, no_certificates }).await
            }
            Command::Decode { kind, hex } => decode::run(kind, &hex).map(|_| true),
            Command::Broadcast { hex } => chain::broadcast(file, &hex).await.map(|_| true),
            Command::VerifyBeef { hex } => chain::verify_beef(file, &hex).await.map(|_| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
