#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{fmt, time::Duration};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{value::RawValue, Value};
use wallet_brc100::identity::discover::{Lookup, LookupOutput};
use wallet_traits::{redact_url, Error, ErrorKind, Result};

/// The variable that names the overlay.
pub const URL_VAR: &str = "MPC_LOOKUP_URL";

/// How much and how long one lookup may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest answer body read.
    pub max_body_bytes: usize,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long the whole request may take, the body included.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The lookup service of one overlay host, over HTTP.
pub struct OverlayLookup {
    url: String,
    limits: Limits,
    client: reqwest::Client,
}

impl fmt::Debug for OverlayLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OverlayLookup").field("url", &redact_url(&self.url)).field("limits", &self.limits).finish()
    }
}

/// A lookup answer; the outputs are kept raw so each is read (or skipped) on its own.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow, default)]
    outputs: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    beef: Vec<u8>,
    output_index: u32,
}

impl OverlayLookup {
    /// A lookup at `url` (`http://` or `https://`; `/lookup` is appended) with the default
    /// [`Limits`].
    pub fn new(url: &str) -> Result<Self> {
        Self::with_limits(url, Limits::default())
    }

    /// A lookup at `url` with `limits`.
    pub fn with_limits(url: &str, limits: Limits) -> Result<Self> {
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(Error::new(ErrorKind::Config, format!("{URL_VAR} must be an http:// or https:// URL"))
                .with_context("variable", URL_VAR)
                .with_context("url", redact_url(&url)));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            // An overlay that moved should be configured where it is now, not followed blindly.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the HTTP client for the overlay: {e}")))?;
        Ok(Self { url, limits, client })
    }

    /// The overlay's URL, credentials redacted.
    pub fn url(&self) -> String {
        redact_url(&self.url)
    }

    fn unavailable(&self, what: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::ServiceUnavailable,
            format!(
                "the overlay at {} {what}; check {URL_VAR} and that the overlay is up, or unset {URL_VAR} to turn discovery off",
                self.url()
            ),
        )
        .with_context("url", self.url())
    }

    /// The body of a 2xx answer, read chunk by chunk and refused once past the limit.
    async fn fetch(&self, service: &str, query: Value) -> Result<Vec<u8>> {
        let body = serde_json::json!({ "service": service, "query": query });
        let request = self.client.post(format!("{}/lookup", self.url)).json(&body);
        let mut response = request.send().await.map_err(|e| self.unavailable(failure(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self
                .unavailable(format!("answered HTTP {status} to the lookup"))
                .with_context("http_status", status.as_u16()));
        }
        let max = self.limits.max_body_bytes;
        let too_large = || self.unavailable(format!("answered more than {max} bytes"));
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut out = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unavailable(failure(&e)))? {
            if out.len() + chunk.len() > max {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The outputs of an answer: an `output-list`'s well-formed outputs, none for another type.
    fn outputs(&self, body: &[u8]) -> Result<Vec<LookupOutput>> {
        let garbage = |why: String| self.unavailable(format!("did not answer a lookup answer ({why})"));
        let answer: Answer<'_> = serde_json::from_slice(body).map_err(|e| garbage(e.to_string()))?;
        if answer.kind != "output-list" {
            tracing::debug!(kind = %answer.kind, "the overlay's answer is not an output list; nothing found");
            return Ok(Vec::new());
        }
        let raw = answer.outputs.ok_or_else(|| garbage("an output-list without outputs".into()))?;
        let mut outputs = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            match serde_json::from_str::<Output>(r.get()) {
                Ok(o) => outputs.push(LookupOutput { beef: o.beef, output_index: o.output_index }),
                Err(e) => tracing::debug!(output = i, error = %e, "an overlay output is malformed; skipped"),
            }
        }
        Ok(outputs)
    }
}

/// reqwest's failure without its text, which names the URL (it may carry credentials).
fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "could not be reached"
    } else if e.is_body() || e.is_decode() {
        "broke off its answer"
    } else {
        "failed the request"
    }
}

#[async_trait]
impl Lookup for OverlayLookup {
    async fn lookup(&self, service: &str, query: Value) -> Result<Vec<LookupOutput>> {
        // reqwest's timeout covers the body too; this one also bounds anything it does not.
        let budget = self.limits.timeout + Duration::from_millis(500);
        let body = tokio::time::timeout(budget, self.fetch(service, query))
            .await
            .map_err(|_| self.unavailable("did not answer in time"))??;
        self.outputs(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_redacted() {
        for bad in ["", "ftp://x", "overlay.example", "https://"] {
            let e = OverlayLookup::new(bad).unwrap_err();
            assert_eq!((e.kind(), e.context_value("variable")), (ErrorKind::Config, Some(URL_VAR)), "{bad:?}");
        }
        let l = OverlayLookup::new("https://user:pw@overlay.example/ ").unwrap();
        assert!(!format!("{l:?}").contains("pw") && !l.url().contains("pw"));
    }

    #[test]
    fn answers_read_as_the_toolbox_reads_them() {
        let l = OverlayLookup::new("http://127.0.0.1:1").unwrap();
        let got = l
            .outputs(br#"{"type":"output-list","outputs":[{"beef":[1,2],"outputIndex":3},{"beef":"x","outputIndex":1},{"beef":[300],"outputIndex":0},{"outputIndex":1},{"beef":[4],"outputIndex":0,"context":[1]}]}"#)
            .unwrap();
        assert_eq!(
            got,
            vec![LookupOutput { beef: vec![1, 2], output_index: 3 }, LookupOutput { beef: vec![4], output_index: 0 }]
        );
        assert!(l.outputs(br#"{"type":"freeform","result":{}}"#).unwrap().is_empty());
        for garbage in [&b"<html>"[..], br#"{"outputs":[]}"#, br#"{"type":"output-list"}"#, b"[]", b""] {
            let e = l.outputs(garbage).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ServiceUnavailable);
            assert!(e.message().contains(URL_VAR) && e.message().contains("127.0.0.1:1"), "{e}");
        }
    }
}
