//! BRC-41 payments for HTTP requests, as `@bsv/payment-express-middleware` 2.0.2 asks for them
//! and @bsv/sdk's `AuthFetch` makes them (payment version 1.0).
//!
//! The server answers 402 with `x-bsv-payment-version: 1.0`, `x-bsv-payment-satoshis-required`
//! and `x-bsv-payment-derivation-prefix` (a nonce of its wallet), all signed with the rest of its
//! response. The client makes a derivation suffix (a nonce of its own wallet), derives the BRC-29
//! key (protocol `[2, "3241645161d8"]`, key id `"<prefix> <suffix>"`, counterparty the server's
//! identity key), pays that much to P2PKH of it as output 0 of a new transaction, and sends the
//! request again with `x-bsv-payment: {"derivationPrefix", "derivationSuffix", "transaction"}`
//! (the transaction as base64 Atomic BEEF). The middleware checks its prefix, hands the
//! transaction to its wallet's `internalizeAction` with our identity key as the sender, and
//! lets the request through.

use std::sync::Arc;

use serde::Serialize;
use wallet_brc100::actions::{Actions, CreateActionArgs, CreateActionOptions, CreateActionOutput};
use wallet_traits::{Error, ErrorKind, Result};

/// The payment protocol version this client speaks.
pub const PAYMENT_VERSION: &str = "1.0";

/// BRC-29's key derivation protocol (security level 2).
pub const BRC29_PROTOCOL: &str = "3241645161d8";

/// The headers of a 402 answer and of the paid request.
pub mod header {
    /// The payment protocol version.
    pub const VERSION: &str = "x-bsv-payment-version";
    /// The price in satoshis.
    pub const SATOSHIS_REQUIRED: &str = "x-bsv-payment-satoshis-required";
    /// The server's derivation prefix.
    pub const DERIVATION_PREFIX: &str = "x-bsv-payment-derivation-prefix";
    /// The payment, on the paid request.
    pub const PAYMENT: &str = "x-bsv-payment";
    /// What the server took, on its answer to the paid request.
    pub const SATOSHIS_PAID: &str = "x-bsv-payment-satoshis-paid";
}

/// Makes the transaction that pays a server.
#[async_trait::async_trait]
pub trait Payer: Send + Sync {
    /// Pays `satoshis` to P2PKH(`key`); returns the txid and the Atomic BEEF bytes.
    async fn pay(&self, satoshis: u64, locking_script: Vec<u8>, description: &str) -> Result<(String, Vec<u8>)>;
}

/// What a request cost: recorded in [`AuthResponse::payment`](crate::AuthResponse::payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReceipt {
    /// Satoshis paid.
    pub satoshis: u64,
    /// The paying transaction.
    pub txid: String,
    /// The server's identity key (compressed hex), to whom the output is derived.
    pub payee: String,
    /// The server's BRC-29 derivation prefix.
    pub derivation_prefix: String,
    /// Our BRC-29 derivation suffix.
    pub derivation_suffix: String,
}

/// What a 402 answer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaymentRequest {
    pub(crate) satoshis: u64,
    pub(crate) derivation_prefix: String,
}

impl PaymentRequest {
    /// From a 402 answer's signed headers; `None` when it carries no payment terms (a plain 402).
    pub(crate) fn from_headers(headers: &[(String, String)]) -> Option<Result<Self>> {
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let version = get(header::VERSION)?;
        Some(Self::parse(version, get(header::SATOSHIS_REQUIRED), get(header::DERIVATION_PREFIX)))
    }

    fn parse(version: &str, satoshis: Option<&str>, prefix: Option<&str>) -> Result<Self> {
        let bad = |msg: String| Error::new(ErrorKind::Unsupported, msg);
        if version != PAYMENT_VERSION {
            return Err(bad(format!(
                "the server asks for payment with version {:?} of the payment protocol; this client speaks \
                 {PAYMENT_VERSION}",
                version.chars().take(40).collect::<String>()
            )));
        }
        let satoshis = satoshis
            .ok_or_else(|| bad(format!("the server asks for payment without {}", header::SATOSHIS_REQUIRED)))?;
        let satoshis = satoshis
            .parse::<u64>()
            .ok()
            .filter(|s| {
                (1..=wallet_bsv::amount::MAX_SATOSHIS).contains(s) && satoshis.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| {
                bad(format!(
                    "the server asks for {:?} satoshis, which is not an amount",
                    satoshis.chars().take(40).collect::<String>()
                ))
            })?;
        let prefix = prefix.unwrap_or_default();
        // A base64 nonce in practice; bounded so the BRC-43 key id stays within its 800 bytes.
        if prefix.is_empty() || prefix.len() > 256 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!("the server's {} is missing or malformed", header::DERIVATION_PREFIX)));
        }
        Ok(Self { satoshis, derivation_prefix: prefix.to_string() })
    }
}

/// The `x-bsv-payment` header's JSON, with the names and order @bsv/sdk writes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentHeader<'a> {
    pub(crate) derivation_prefix: &'a str,
    pub(crate) derivation_suffix: &'a str,
    /// Atomic BEEF, base64.
    pub(crate) transaction: String,
}

/// A [`Payer`] over the wallet's action methods: `createAction` with the one output, not
/// shuffled (the middleware takes output 0), as `AuthFetch` asks its wallet.
#[derive(Clone)]
pub struct ActionsPayer {
    actions: Arc<Actions>,
}

impl std::fmt::Debug for ActionsPayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionsPayer").finish_non_exhaustive()
    }
}

impl ActionsPayer {
    /// Pays from these action methods' wallet.
    pub fn new(actions: Arc<Actions>) -> Self {
        Self { actions }
    }
}

#[async_trait::async_trait]
impl Payer for ActionsPayer {
    async fn pay(&self, satoshis: u64, locking_script: Vec<u8>, description: &str) -> Result<(String, Vec<u8>)> {
        let args = CreateActionArgs {
            description: description.to_string(),
            outputs: Some(vec![CreateActionOutput {
                locking_script: hex::encode(locking_script),
                satoshis,
                output_description: "HTTP request payment".into(),
                ..Default::default()
            }]),
            options: Some(CreateActionOptions { randomize_outputs: Some(false), ..Default::default() }),
            ..Default::default()
        };
        let result = self.actions.create_action(args).await?;
        match (result.txid, result.tx) {
            (Some(txid), Some(tx)) => Ok((txid, tx)),
            _ => Err(Error::new(ErrorKind::Internal, "createAction returned no signed transaction for a payment")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reads_the_middlewares_terms_and_refuses_odd_ones() {
        let ok = headers(&[
            (header::VERSION, "1.0"),
            (header::SATOSHIS_REQUIRED, "100"),
            (header::DERIVATION_PREFIX, "cHJlZml4"),
        ]);
        assert_eq!(
            PaymentRequest::from_headers(&ok).unwrap().unwrap(),
            PaymentRequest { satoshis: 100, derivation_prefix: "cHJlZml4".into() }
        );
        assert!(PaymentRequest::from_headers(&[]).is_none(), "a plain 402");
        for (version, sats, prefix) in [
            ("2.0", Some("100"), Some("p")),
            ("1.0", None, Some("p")),
            ("1.0", Some("0"), Some("p")),
            ("1.0", Some("-5"), Some("p")),
            ("1.0", Some("+5"), Some("p")),
            ("1.0", Some("1e3"), Some("p")),
            ("1.0", Some("2100000000000001"), Some("p")),
            ("1.0", Some("100"), None),
            ("1.0", Some("100"), Some("")),
            ("1.0", Some("100"), Some("a b")),
        ] {
            let e = PaymentRequest::parse(version, sats, prefix).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{version} {sats:?} {prefix:?}");
        }
    }

    #[test]
    fn the_payment_header_is_the_sdks_json() {
        let h = PaymentHeader { derivation_prefix: "p", derivation_suffix: "s", transaction: "AQI=".into() };
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"derivationPrefix":"p","derivationSuffix":"s","transaction":"AQI="}"#
        );
    }
}
