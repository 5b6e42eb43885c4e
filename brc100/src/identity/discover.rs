//! `discoverByIdentityKey` and `discoverByAttributes`: identity certificates published on an
//! overlay (`ls_identity`), checked and filtered by the certifiers the wallet trusts.
//! (Being written: until then both methods answer "not supported".)

use std::sync::Arc;

use wallet_traits::{Error, ErrorKind, Result};

/// A certifier the wallet trusts, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCertifier {
    /// Its identity key, compressed hex.
    pub identity_key: String,
    /// Its name, shown in `certifierInfo`.
    pub name: String,
    /// The trust its certificates earn.
    pub trust: u32,
}

/// Which certifiers count, and how much trust a certificate's certifiers must add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSettings {
    /// The certifiers the wallet trusts.
    pub trusted_certifiers: Vec<TrustedCertifier>,
    /// The trust a discovered identity needs.
    pub trust_level: u32,
}

/// What the discovery methods ask an overlay with.
#[derive(Debug)]
pub struct Discovery {
    _trust: TrustSettings,
}

impl Discovery {
    /// Discovery with `trust` (being written).
    pub fn new(trust: TrustSettings) -> Arc<Self> {
        Arc::new(Self { _trust: trust })
    }
}

impl super::Identity {
    /// `discoverByIdentityKey` (being written).
    pub async fn discover_by_identity_key(&self, _args: serde_json::Value) -> Result<serde_json::Value> {
        self.discovery()?;
        Err(Error::new(ErrorKind::Unsupported, "discovery is not written yet"))
    }

    /// `discoverByAttributes` (being written).
    pub async fn discover_by_attributes(&self, _args: serde_json::Value) -> Result<serde_json::Value> {
        self.discovery()?;
        Err(Error::new(ErrorKind::Unsupported, "discovery is not written yet"))
    }
}
