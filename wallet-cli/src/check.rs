//! `mpc-wallet config check`: the resolved configuration, redacted, and whether it is valid.

use std::path::Path;

use anyhow::Result;
use wallet_engine::{config::Settings, CosignerConfig, WalletConfig};

/// Prints the resolved configuration; returns whether it is valid (the exit code says so too).
pub(crate) fn run(file: Option<&Path>, as_cosigner: bool) -> Result<bool> {
    let (role, keys) = if as_cosigner { ("cosigner", CosignerConfig::KEYS) } else { ("agent", WalletConfig::KEYS) };
    let settings = match Settings::load(keys, file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("config: invalid: {e}");
            return Ok(false);
        }
    };
    let source = settings.file().map_or_else(|| "no file".to_string(), |f| f.display().to_string());
    println!("# the {role} configuration: defaults < {source} < MPC_* variables");
    print!("{}", settings.render());
    for var in settings.ignored_env() {
        println!("# note: {var} is not a key of the {role} configuration; it is ignored");
    }
    let checked = if as_cosigner {
        CosignerConfig::from_settings(&settings).and_then(|c| c.validate_with(&crate::plugins()))
    } else {
        // The BRC-100 front's and discovery's variables too, as `serve` checks them at start.
        WalletConfig::from_settings(&settings).and_then(|c| {
            c.validate_with(&crate::plugins())?;
            crate::serve::policy(&c)?;
            crate::identity::trust_settings(&c).map(drop)
        })
    };
    match checked {
        Ok(()) => {
            println!("config: ok");
            Ok(true)
        }
        Err(e) => {
            eprintln!("config: invalid: {e:#}");
            Ok(false)
        }
    }
}
