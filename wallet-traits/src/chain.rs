//! The chain as the wallet sees it: a [`Broadcaster`] that submits transactions and a
//! [`ChainTracker`] that confirms merkle roots. Implementations live in their own crates
//! (`services/*`) and are found by name through [`crate::Plugins`].

use async_trait::async_trait;

use crate::Result;

/// What a broadcaster accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The txid the service names (display hex).
    pub txid: String,
    /// The service's status for it (ARC's `txStatus`, for example `SEEN_ON_NETWORK`).
    pub status: String,
    /// The service's extra information, if any.
    pub detail: Option<String>,
}

/// Submits transactions to the network.
#[async_trait]
pub trait Broadcaster: std::fmt::Debug + Send + Sync + 'static {
    /// Submits `tx`: a transaction in Extended Format or a BEEF (V1). A refusal by the network
    /// is [`crate::ErrorKind::Rejected`] with the service's detail; a service that cannot be
    /// reached or fails on its side, after retries, is [`crate::ErrorKind::ServiceUnavailable`].
    async fn broadcast(&self, tx: &[u8]) -> Result<Broadcast>;

    /// The merkle path (BRC-74, binary) of the transaction `txid` (display hex) once the
    /// service has seen it mined; `None` while it has not, or when the service does not tell.
    async fn merkle_path(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        let _ = txid;
        Ok(None)
    }
}

/// What the chain knows of a transaction ([`ChainTracker::tx_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOnChain {
    /// Nobody the service asks knows it.
    Unknown,
    /// Known (in a mempool), not yet in a block.
    Known,
    /// In a block, `depth` blocks deep (1: the tip's block).
    Mined {
        /// Confirmations.
        depth: u64,
    },
}

/// Answers whether a merkle root is the root of the block at a height.
#[async_trait]
pub trait ChainTracker: std::fmt::Debug + Send + Sync + 'static {
    /// Whether `root` (internal byte order, as a merkle path computes it) is the merkle root of
    /// the block at `height`; `false` when no such block is known.
    async fn is_valid_root_for_height(&self, root: &[u8; 32], height: u64) -> Result<bool>;

    /// The height of the chain's tip.
    async fn current_height(&self) -> Result<u64>;

    /// The 80-byte header of the block at `height` (BRC-100's `getHeaderForHeight`);
    /// [`crate::ErrorKind::NotFound`] when the tracker knows no such block.
    async fn header_for_height(&self, height: u64) -> Result<[u8; 80]> {
        let _ = height;
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not serve block headers"))
    }

    /// What the chain knows of each of `txids` (display hex), in their order: what tells a
    /// transaction the network took after all from one it never saw.
    async fn tx_status(&self, txids: &[String]) -> Result<Vec<TxOnChain>> {
        let _ = txids;
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not report transactions"))
    }

    /// Whether the output `outpoint`, locked by `locking_script`, is unspent on the chain; an
    /// output a mempool transaction spends is spent.
    async fn is_utxo(&self, outpoint: &crate::Outpoint, locking_script: &[u8]) -> Result<bool> {
        let _ = (outpoint, locking_script);
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not report unspent outputs"))
    }

    /// Whether any transaction, mined or in a mempool, ever paid `locking_script`: how a
    /// recovery scan tells a key the wallet used from one it never did.
    async fn script_used(&self, locking_script: &[u8]) -> Result<bool> {
        let _ = locking_script;
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not report script usage"))
    }

    /// The unspent outputs locked by `locking_script`, mined or in a mempool (an output a
    /// mempool transaction spends is spent).
    async fn unspent_outputs(&self, locking_script: &[u8]) -> Result<Vec<ScriptUtxo>> {
        let _ = locking_script;
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not report unspent outputs"))
    }

    /// The transaction `txid` (display hex), raw bytes; `None` when the chain does not know it.
    async fn raw_tx(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        let _ = txid;
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "this chain tracker does not serve transactions"))
    }
}

/// An unspent output at a script ([`ChainTracker::unspent_outputs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUtxo {
    /// Where it is.
    pub outpoint: crate::Outpoint,
    /// What it holds.
    pub satoshis: u64,
}

/// The chain services a wallet was built with; either may be absent, and an operation that
/// needs one then says which setting provides it.
#[derive(Debug, Clone, Default)]
pub struct ChainServices {
    /// Submits transactions (`MPC_BROADCASTER`, `MPC_ARC_URL`).
    pub broadcaster: Option<std::sync::Arc<dyn Broadcaster>>,
    /// Confirms merkle roots (`MPC_CHAIN_TRACKER`, `MPC_CHAIN_TRACKER_URL`).
    pub chain_tracker: Option<std::sync::Arc<dyn ChainTracker>>,
}

impl ChainServices {
    /// The broadcaster, or a [`crate::ErrorKind::Config`] error naming its settings.
    pub fn broadcaster(&self) -> Result<&std::sync::Arc<dyn Broadcaster>> {
        self.broadcaster.as_ref().ok_or_else(|| missing("broadcaster", "MPC_ARC_URL (and MPC_BROADCASTER)"))
    }

    /// The chain tracker, or a [`crate::ErrorKind::Config`] error naming its settings.
    pub fn chain_tracker(&self) -> Result<&std::sync::Arc<dyn ChainTracker>> {
        self.chain_tracker
            .as_ref()
            .ok_or_else(|| missing("chain tracker", "MPC_CHAIN_TRACKER_URL (and MPC_CHAIN_TRACKER)"))
    }
}

fn missing(what: &str, settings: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Config,
        format!("this wallet has no {what}: set {settings}, or install the default plugin"),
    )
}

/// What a chain service factory is built from.
#[derive(Clone, Default)]
pub struct ServiceConfig {
    /// The service's base URL; `None` for the factory's default for the network.
    pub url: Option<String>,
    /// `"main"` or `"test"`.
    pub network: &'static str,
    /// An API key, if the service takes one. Never logged.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("url", &self.url.as_deref().map(crate::redact_url))
            .field("network", &self.network)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Builds a broadcaster from its configuration.
pub type BroadcasterBuildFn = fn(ServiceConfig) -> Result<std::sync::Arc<dyn Broadcaster>>;
/// Builds a chain tracker from its configuration.
pub type ChainTrackerBuildFn = fn(ServiceConfig) -> Result<std::sync::Arc<dyn ChainTracker>>;

/// A broadcaster factory, found by name (`MPC_BROADCASTER`, default `arc`): submit one with
/// `inventory::submit!` or install it with [`crate::Plugins::with_broadcaster`].
#[derive(Debug)]
pub struct BroadcasterFactory {
    /// Its name.
    pub name: &'static str,
    /// The constructor.
    pub build: BroadcasterBuildFn,
}

/// A chain tracker factory, found by name (`MPC_CHAIN_TRACKER`, default `whatsonchain`).
#[derive(Debug)]
pub struct ChainTrackerFactory {
    /// Its name.
    pub name: &'static str,
    /// The constructor.
    pub build: ChainTrackerBuildFn,
}

inventory::collect!(BroadcasterFactory);
inventory::collect!(ChainTrackerFactory);
