#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::Deserialize;
use wallet_traits::{
    redact_url, Broadcast, Broadcaster, BroadcasterFactory, Error, ErrorKind, Plugins, Result, ServiceConfig,
};

/// The mainnet default, as @bsv/sdk's default broadcaster.
pub const MAINNET_URL: &str = "https://arc.gorillapool.io";
/// The testnet default.
pub const TESTNET_URL: &str = "https://testnet.arc.gorillapool.io";

/// `txStatus` values ARC answers with HTTP 200 that mean the transaction was refused.
const FAILED_STATUSES: [&str; 5] =
    ["DOUBLE_SPEND_ATTEMPTED", "REJECTED", "INVALID", "MALFORMED", "MINED_IN_STALE_BLOCK"];

/// How often and how patiently a submission is tried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait after the first failed attempt; it doubles after each.
    pub first_delay: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 4, first_delay: Duration::from_millis(500), timeout: Duration::from_secs(30) }
    }
}

/// A broadcaster submitting to one ARC endpoint.
pub struct ArcBroadcaster {
    url: String,
    api_key: Option<String>,
    deployment_id: String,
    retry: Retry,
    client: reqwest::Client,
}

impl fmt::Debug for ArcBroadcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArcBroadcaster")
            .field("url", &redact_url(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .finish()
    }
}

/// ARC's answer to `POST /v1/tx`, success or RFC 7807 problem alike.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Answer {
    txid: Option<String>,
    tx_status: Option<String>,
    extra_info: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

/// One attempt's outcome: done (either way), or worth another try.
enum Attempt {
    Done(Result<Broadcast>),
    Again(Error),
}

impl ArcBroadcaster {
    /// A broadcaster for `config`: its URL, else the default of its network.
    pub fn new(config: ServiceConfig) -> Result<Self> {
        let url =
            config.url.unwrap_or_else(|| if config.network == "test" { TESTNET_URL } else { MAINNET_URL }.to_string());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::new(ErrorKind::Config, "MPC_ARC_URL must be an http:// or https:// URL")
                .with_context("url", redact_url(&url)));
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the HTTP client for ARC: {e}")))?;
        let deployment_id = format!("mpc-wallet-{}", hex::encode(rand::random::<[u8; 8]>()));
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            api_key: config.api_key,
            deployment_id,
            retry: Retry::default(),
            client,
        })
    }

    /// The same broadcaster with other retry settings.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    async fn attempt(&self, body: &serde_json::Value) -> Attempt {
        let mut request = self
            .client
            .post(format!("{}/v1/tx", self.url))
            .timeout(self.retry.timeout)
            .header("XDeployment-ID", &self.deployment_id)
            .json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Again(unavailable(format!("ARC could not be reached: {}", without_url(&e)))),
        };
        let status = response.status();
        let answer: Answer = response.json().await.unwrap_or_default();
        let detail = answer.detail.clone().or(answer.title.clone()).unwrap_or_else(|| status.to_string());
        if status.is_server_error() {
            return Attempt::Again(unavailable(format!("ARC failed on its side ({status}): {detail}")));
        }
        if status.is_client_error() {
            let kind = if matches!(status.as_u16(), 401 | 403) { ErrorKind::Unauthorized } else { ErrorKind::Rejected };
            let hint = if kind == ErrorKind::Unauthorized { "; check MPC_ARC_API_KEY" } else { "" };
            return Attempt::Done(Err(Error::new(
                kind,
                format!("ARC refused the transaction ({status}): {detail}{hint}"),
            )
            .with_context("http_status", status.as_u16())
            .with_context("txid", answer.txid.unwrap_or_default())));
        }
        Attempt::Done(judge(answer))
    }
}

/// A 2xx answer: accepted, unless its status says ARC refused the transaction.
fn judge(answer: Answer) -> Result<Broadcast> {
    let status = answer.tx_status.unwrap_or_default();
    let extra = answer.extra_info.unwrap_or_default();
    let upper = status.to_ascii_uppercase();
    let orphan = upper.contains("ORPHAN") || extra.to_ascii_uppercase().contains("ORPHAN");
    let txid = answer.txid.unwrap_or_default();
    if FAILED_STATUSES.contains(&upper.as_str()) || orphan {
        return Err(Error::new(ErrorKind::Rejected, format!("ARC: {} {}", status, extra).trim_end().to_string())
            .with_context("tx_status", status)
            .with_context("txid", txid));
    }
    Ok(Broadcast { txid, status, detail: (!extra.is_empty()).then_some(extra) })
}

fn unavailable(message: String) -> Error {
    Error::new(ErrorKind::ServiceUnavailable, message)
}

/// reqwest's error text without the URL it names (it may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// ARC's answer to `GET /v1/tx/{txid}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TxState {
    merkle_path: Option<String>,
}

#[async_trait]
impl Broadcaster for ArcBroadcaster {
    async fn merkle_path(&self, txid: &str) -> Result<Option<Vec<u8>>> {
        if txid.len() != 64 || !txid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(ErrorKind::InvalidInput, "a txid is 64 hex digits"));
        }
        let mut request = self.client.get(format!("{}/v1/tx/{txid}", self.url)).timeout(self.retry.timeout);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response =
            request.send().await.map_err(|e| unavailable(format!("ARC could not be reached: {}", without_url(&e))))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(unavailable(format!("ARC did not answer for the transaction's state ({status})")));
        }
        let state: TxState = response.json().await.unwrap_or_default();
        match state.merkle_path.filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(p) => hex::decode(p).map(Some).map_err(|_| unavailable("ARC's merkle path is not hex".to_string())),
        }
    }

    async fn broadcast(&self, tx: &[u8]) -> Result<Broadcast> {
        let body = serde_json::json!({ "rawTx": hex::encode(tx) });
        let mut delay = self.retry.first_delay;
        let mut last = unavailable("ARC was not tried".into());
        for attempt in 1..=self.retry.attempts.max(1) {
            match self.attempt(&body).await {
                Attempt::Done(result) => return result,
                Attempt::Again(e) => {
                    tracing::warn!(attempt, error = %e, "ARC broadcast failed; retrying");
                    last = e;
                }
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(last.with_context("attempts", self.retry.attempts))
    }
}

fn build(config: ServiceConfig) -> Result<Arc<dyn Broadcaster>> {
    Ok(Arc::new(ArcBroadcaster::new(config)?))
}

const FACTORY: BroadcasterFactory = BroadcasterFactory { name: "arc", build };

wallet_traits::inventory::submit! { FACTORY }

/// Adds the `arc` broadcaster to `plugins`, for a program that installs its plugins explicitly.
pub fn install(plugins: Plugins) -> Plugins {
    static F: BroadcasterFactory = FACTORY;
    plugins.with_broadcaster(&F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: &str, extra: &str) -> Answer {
        Answer {
            txid: Some("ab".into()),
            tx_status: Some(status.into()),
            extra_info: Some(extra.into()),
            ..Default::default()
        }
    }

    #[test]
    fn statuses_that_mean_refused_are_errors_with_arcs_detail() {
        for status in FAILED_STATUSES {
            let e = judge(answer(status, "why")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Rejected);
            assert!(e.message().contains(status) && e.message().contains("why"), "{e}");
        }
        let e = judge(answer("SEEN_IN_ORPHAN_MEMPOOL", "")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(judge(answer("SEEN_ON_NETWORK", "orphan parents")).unwrap_err().kind(), ErrorKind::Rejected);
        let ok = judge(answer("SEEN_ON_NETWORK", "")).unwrap();
        assert_eq!((ok.txid.as_str(), ok.status.as_str(), ok.detail), ("ab", "SEEN_ON_NETWORK", None));
    }

    #[test]
    fn the_default_url_follows_the_network_and_the_key_is_hidden() {
        let b = ArcBroadcaster::new(ServiceConfig {
            network: "test",
            api_key: Some("k-secret".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(b.url, TESTNET_URL);
        assert!(!format!("{b:?}").contains("k-secret"));
        let e = ArcBroadcaster::new(ServiceConfig { url: Some("ftp://x".into()), ..Default::default() }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
