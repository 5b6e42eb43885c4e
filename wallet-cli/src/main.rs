//! `mpc-wallet`: the agent wallet, cosigner service and demo of the mpc-wallet framework.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod agent;
mod cosigner;
mod demo;
mod embedded;

// Referenced so the linker keeps their inventory registrations.
use wallet_backend_sqlite as _;
#[cfg(feature = "plugin-example")]
use wallet_plugin_example_store as _;
use wallet_transport_grpc as _;
use wallet_transport_http as _;
use wallet_transport_local as _;

#[derive(Parser, Debug)]
#[command(name = "mpc-wallet", version, about = "Threshold-ECDSA (MPC) wallet for AI agents on BSV")]
struct Cli {
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
    /// Starts the agent (provisioning or restoring), signs a digest, verifies, exits.
    Sign {
        /// 32-byte digest, hex (default: a fixed demo digest).
        #[arg(long)]
        digest: Option<String>,
        /// 32-byte additive tweak, hex, for the second (child key) signature.
        #[arg(long)]
        tweak: Option<String>,
    },
    /// Prints the provisioning state and, per cosigner, whether it is reachable and agrees.
    Status,
    /// A cosigner service over HTTP and/or gRPC.
    Cosigner {
        /// TOML configuration file; MPC_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Generates a party identity key pair (X25519) and prints its public key.
    Keys {
        /// Write the secret key here (created 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MPC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Demo { data_dir } => demo::run(&data_dir).await.map(|_| true),
            Command::Serve { listen } => agent::serve(listen).await.map(|_| true),
            Command::Sign { digest, tweak } => agent::sign(digest, tweak).await.map(|_| true),
            Command::Status => agent::status().await,
            Command::Cosigner { config } => cosigner::run(config).await.map(|_| true),
            Command::Keys { out } => agent::keys(out).map(|_| true),
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
