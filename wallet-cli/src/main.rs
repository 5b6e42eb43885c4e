//! `mpc-wallet`: the agent wallet, cosigner service and demo of the mpc-wallet framework.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

mod demo;

// Referenced so the linker keeps their inventory registrations.
use wallet_backend_sqlite as _;
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
            Command::Demo { data_dir } => demo::run(&data_dir).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
