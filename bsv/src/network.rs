//! Which BSV network a wallet lives on.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, Result};

/// BSV network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The main network, where coins have value (default).
    #[default]
    Mainnet,
    /// The test network.
    Testnet,
}

impl FromStr for Network {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mainnet" | "main" => Ok(Network::Mainnet),
            "testnet" | "test" => Ok(Network::Testnet),
            _ => Err(Error::new(ErrorKind::Config, "MPC_NETWORK must be mainnet or testnet")),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
        })
    }
}
