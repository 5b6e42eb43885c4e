#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize};
use wallet_traits::{
    redact_url, ChainTracker, ChainTrackerFactory, Error, ErrorKind, Outpoint, Plugins, Result, ScriptUtxo,
    ServiceConfig, TxOnChain,
};

/// The API of mainnet; `/test` for testnet.
pub const DEFAULT_URL: &str = "https://api.whatsonchain.com/v1/bsv";

/// Attempts per request (the first included), the first wait between them (it doubles), and
/// how long one may take.
const ATTEMPTS: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_secs(20);

/// A chain tracker asking one WhatsOnChain-compatible API.
pub struct WhatsOnChain {
    url: String,
    api_key: Option<String>,
    client: reqwest::Client,
    /// Merkle roots the service confirmed, by height (internal byte order).
    /// Roots the service confirmed, by height, with when: trusted for [`ROOT_TTL`] only, since a
    /// reorg gives a height another block.
    roots: Mutex<HashMap<u64, ([u8; 32], Instant)>>,
}

/// How long a confirmed root is taken from the cache.
const ROOT_TTL: Duration = Duration::from_secs(600);

impl fmt::Debug for WhatsOnChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsOnChain")
            .field("url", &redact_url(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Header {
    merkleroot: String,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    previousblockhash: Option<String>,
    #[serde(default)]
    time: Option<u32>,
    #[serde(default)]
    bits: Option<String>,
    #[serde(default)]
    nonce: Option<u32>,
}

impl Header {
    /// The 80 bytes the block hash is computed over: version, previous hash, merkle root (both
    /// internal order), time, bits, nonce, little-endian.
    fn to_bytes(&self) -> Option<[u8; 80]> {
        let bits = u32::from_str_radix(self.bits.as_deref()?, 16).ok()?;
        // The genesis block has no previous block.
        let previous = match self.previousblockhash.as_deref() {
            Some(p) => internal_order(p)?,
            None => [0; 32],
        };
        let mut out = [0u8; 80];
        out[..4].copy_from_slice(&self.version?.to_le_bytes());
        out[4..36].copy_from_slice(&previous);
        out[36..68].copy_from_slice(&internal_order(&self.merkleroot)?);
        out[68..72].copy_from_slice(&self.time?.to_le_bytes());
        out[72..76].copy_from_slice(&bits.to_le_bytes());
        out[76..].copy_from_slice(&self.nonce?.to_le_bytes());
        Some(out)
    }
}

#[derive(Deserialize)]
struct Tip {
    height: u64,
}

fn unavailable(message: String) -> Error {
    Error::new(ErrorKind::ServiceUnavailable, message)
}

impl WhatsOnChain {
    /// A tracker for `config`: its URL, else the default of its network.
    pub fn new(config: ServiceConfig) -> Result<Self> {
        let url = config
            .url
            .unwrap_or_else(|| format!("{DEFAULT_URL}/{}", if config.network == "test" { "test" } else { "main" }));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::new(ErrorKind::Config, "MPC_CHAIN_TRACKER_URL must be an http:// or https:// URL")
                .with_context("url", redact_url(&url)));
        }
        let client = reqwest::Client::builder().build().map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot build the HTTP client for the chain tracker: {e}"))
        })?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            api_key: config.api_key,
            client,
            roots: Mutex::default(),
        })
    }

    /// `GET {url}{path}` as JSON: `None` on 404; retried on 5xx, timeouts and refused connections.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        self.call(path, None).await
    }

    /// `GET`, or `POST` of `body` as JSON, as [`Self::get`].
    async fn call<T: DeserializeOwned>(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Option<T>> {
        let Some(text) = self.call_text(path, body).await? else { return Ok(None) };
        serde_json::from_str(&text).map(Some).map_err(|_| {
            Error::new(ErrorKind::ServiceUnavailable, format!("the chain tracker's answer to {path} does not parse"))
        })
    }

    /// As [`Self::call`], the answer's text as it came.
    async fn call_text(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Option<String>> {
        let mut delay = FIRST_DELAY;
        let mut last = unavailable("the chain tracker was not tried".into());
        for attempt in 1..=ATTEMPTS {
            let url = format!("{}{path}", self.url);
            let request = match body {
                Some(b) => self.client.post(url).json(b),
                None => self.client.get(url),
            };
            let mut request = request.timeout(TIMEOUT).header("Accept", "application/json");
            if let Some(key) = &self.api_key {
                request = request.header("Authorization", key);
            }
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(None),
                Ok(r) if r.status().is_success() => {
                    return r.text().await.map(Some).map_err(|_| {
                        Error::new(
                            ErrorKind::ServiceUnavailable,
                            format!("the chain tracker's answer to {path} was cut off"),
                        )
                    })
                }
                Ok(r) if r.status().is_server_error() => {
                    last = unavailable(format!("the chain tracker failed on its side ({}) for {path}", r.status()));
                }
                Ok(r) => {
                    return Err(Error::new(
                        ErrorKind::ServiceUnavailable,
                        format!(
                            "the chain tracker refused {path} ({}); check MPC_CHAIN_TRACKER_URL and its API key",
                            r.status()
                        ),
                    ))
                }
                Err(e) => {
                    let what = if e.is_timeout() { "timed out" } else { "could not be reached" };
                    last = unavailable(format!("the chain tracker {what} for {path}"));
                }
            }
            tracing::warn!(attempt, error = %last, "chain tracker request failed");
            if attempt < ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(last.with_context("attempts", ATTEMPTS))
    }
}

/// A display-order hex hash as internal-order bytes.
fn internal_order(display: &str) -> Option<[u8; 32]> {
    let mut b: [u8; 32] = hex::decode(display.trim()).ok()?.try_into().ok()?;
    b.reverse();
    Some(b)
}

/// One entry of `POST /txs/status`: no `error` and no `confirmations` is a mempool transaction.
#[derive(Deserialize)]
struct TxStatusEntry {
    txid: String,
    #[serde(default)]
    confirmations: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /script/{hash}/unspent/all`.
#[derive(Deserialize)]
struct Unspent {
    #[serde(default)]
    result: Vec<UnspentEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnspentEntry {
    #[serde(rename = "tx_hash")]
    tx_hash: String,
    #[serde(rename = "tx_pos")]
    tx_pos: u32,
    #[serde(default)]
    value: u64,
    #[serde(default)]
    is_spent_in_mempool_tx: bool,
}

/// WhatsOnChain's name for a locking script: its SHA-256, byte-reversed, hex.
fn script_hash(locking_script: &[u8]) -> String {
    use sha2::Digest;
    let mut h: [u8; 32] = sha2::Sha256::digest(locking_script).into();
    h.reverse();
    hex::encode(h)
}

/// WhatsOnChain answers `/txs/status` for at most this many txids a call.
const STATUS_BATCH: usize = 20;

#[async_trait]
impl ChainTracker for WhatsOnChain {
    async fn tx_status(&self, txids: &[String]) -> Result<Vec<TxOnChain>> {
        let mut out = Vec::with_capacity(txids.len());
        for batch in txids.chunks(STATUS_BATCH) {
            let body = serde_json::json!({ "txids": batch });
            let entries: Vec<TxStatusEntry> = self.call("/txs/status", Some(&body)).await?.unwrap_or_default();
            for txid in batch {
                let entry = entries.iter().find(|e| e.txid.eq_ignore_ascii_case(txid));
                out.push(match entry {
                    None => TxOnChain::Unknown,
                    Some(e) if e.error.is_some() => TxOnChain::Unknown,
                    Some(TxStatusEntry { confirmations: Some(depth), .. }) if *depth > 0 => {
                        TxOnChain::Mined { depth: *depth }
                    }
                    Some(_) => TxOnChain::Known,
                });
            }
        }
        Ok(out)
    }

    async fn is_utxo(&self, outpoint: &Outpoint, locking_script: &[u8]) -> Result<bool> {
        Ok(self.unspent_outputs(locking_script).await?.iter().any(|u| u.outpoint == *outpoint))
    }

    async fn unspent_outputs(&self, locking_script: &[u8]) -> Result<Vec<ScriptUtxo>> {
        let path = format!("/script/{}/unspent/all", script_hash(locking_script));
        let unspent: Unspent = self.get(&path).await?.unwrap_or(Unspent { result: Vec::new() });
        unspent
            .result
            .into_iter()
            .filter(|u| !u.is_spent_in_mempool_tx)
            .map(|u| {
                let txid =
                    hex::decode(&u.tx_hash).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::ServiceUnavailable,
                            format!("the chain tracker's answer to {path} names a bad txid"),
                        )
                    })?;
                Ok(ScriptUtxo { outpoint: Outpoint::new(txid, u.tx_pos), satoshis: u.value })
            })
            .collect()
    }

    async fn script_used(&self, locking_script: &[u8]) -> Result<bool> {
        Ok(self.get::<bool>(&format!("/script/{}/used", script_hash(locking_script))).await?.unwrap_or(false))
    }

    async fn raw_tx(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        let path = format!("/tx/{txid}/hex");
        let Some(text) = self.call_text(&path, None).await? else { return Ok(None) };
        hex::decode(text.trim().trim_matches('"')).map(Some).map_err(|_| {
            Error::new(ErrorKind::ServiceUnavailable, format!("the chain tracker's answer to {path} is not hex"))
        })
    }

    async fn is_valid_root_for_height(&self, root: &[u8; 32], height: u64) -> Result<bool> {
        // A cached root that matches is trusted while fresh; one that does not is asked again,
        // since the block at that height may have changed (a reorg).
        if let Some((known, at)) = self.roots.lock().expect("roots lock").get(&height) {
            if known == root && at.elapsed() < ROOT_TTL {
                return Ok(true);
            }
        }
        let Some(header) = self.get::<Header>(&format!("/block/{height}/header")).await? else { return Ok(false) };
        let confirmed = internal_order(&header.merkleroot).ok_or_else(|| {
            Error::new(
                ErrorKind::ServiceUnavailable,
                format!("the chain tracker's merkle root for block {height} is not a 32-byte hex hash"),
            )
        })?;
        self.roots.lock().expect("roots lock").insert(height, (confirmed, Instant::now()));
        Ok(confirmed == *root)
    }

    async fn header_for_height(&self, height: u64) -> Result<[u8; 80]> {
        let header = self.get::<Header>(&format!("/block/{height}/header")).await?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("the chain tracker knows no block at height {height}"))
        })?;
        header.to_bytes().ok_or_else(|| {
            Error::new(
                ErrorKind::ServiceUnavailable,
                format!("the chain tracker's header of block {height} lacks a field of the 80-byte header"),
            )
        })
    }

    async fn current_height(&self) -> Result<u64> {
        let tips: Vec<Tip> = self
            .get("/block/headers")
            .await?
            .ok_or_else(|| unavailable("the chain tracker has no /block/headers".into()))?;
        tips.first().map(|t| t.height).ok_or_else(|| unavailable("the chain tracker listed no block headers".into()))
    }
}

fn build(config: ServiceConfig) -> Result<Arc<dyn ChainTracker>> {
    Ok(Arc::new(WhatsOnChain::new(config)?))
}

const FACTORY: ChainTrackerFactory = ChainTrackerFactory { name: "whatsonchain", build };

wallet_traits::inventory::submit! { FACTORY }

/// Adds the `whatsonchain` chain tracker to `plugins`, for a program that installs its plugins
/// explicitly.
pub fn install(plugins: Plugins) -> Plugins {
    static F: ChainTrackerFactory = FACTORY;
    plugins.with_chain_tracker(&F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_compared_in_internal_order_and_defaults_follow_the_network() {
        let display = "00".repeat(31) + "ff";
        let mut expected = [0u8; 32];
        expected[0] = 0xff;
        assert_eq!(internal_order(&display), Some(expected));
        assert_eq!(internal_order("zz"), None);
        let t =
            WhatsOnChain::new(ServiceConfig { network: "test", api_key: Some("woc-key".into()), ..Default::default() })
                .unwrap();
        assert_eq!(t.url, "https://api.whatsonchain.com/v1/bsv/test");
        assert!(!format!("{t:?}").contains("woc-key"));
    }

    #[test]
    fn a_script_hash_is_reversed_sha256() {
        // SHA-256 of nothing is e3b0c442...7852b855; the script hash is those bytes reversed.
        assert_eq!(script_hash(&[]), "55b852781b9995a44c939b64e441ae2724b96f99c8f4fb9a141cfc9842c4b0e3");
    }
}
