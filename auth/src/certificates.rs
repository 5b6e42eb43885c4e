//! Where the certificates a server asks for come from ([`CertificateSource`]), and a source of
//! fixed certificates ([`StaticCertificates`]).
//!
//! A server asks in its handshake answer (`requestedCertificates`: certifiers and, per certificate
//! type, the fields it wants to see) or later in a `certificateRequest` message. The client answers
//! with a `certificateResponse` holding verifiable certificates: each certificate with a keyring
//! that opens the requested fields for that server (the verifier) alone, @bsv/sdk's
//! `VerifiableCertificate` as JSON.

use serde_json::Value;
use wallet_traits::{Error, ErrorKind, Result};

/// The wallet's certificates, shown to servers that ask for them.
#[async_trait::async_trait]
pub trait CertificateSource: Send + Sync {
    /// Certificates for `verifier` (compressed hex) matching `requested`
    /// (`{certifiers: [hex], types: {typeBase64: [fieldName]}}`), each as @bsv/sdk's
    /// VerifiableCertificate JSON:
    /// `{type, serialNumber, subject, certifier, revocationOutpoint, fields, signature, keyring}`.
    async fn certificates_for(&self, requested: &Value, verifier: &str) -> Result<Vec<Value>>;
}

/// Whether a server's `requestedCertificates` asks for anything: as @bsv/sdk's `Peer`, only a
/// non-empty array of certifiers does.
pub(crate) fn asks_for_certificates(requested: Option<&Value>) -> bool {
    requested.and_then(|r| r.get("certifiers")).and_then(Value::as_array).is_some_and(|c| !c.is_empty())
}

/// What a request asks for, for messages: `certifiers [...] of types [...]`.
pub(crate) fn describe(requested: &Value) -> String {
    let certifiers: Vec<&str> = requested
        .get("certifiers")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let types: Vec<&str> = requested
        .get("types")
        .and_then(Value::as_object)
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    format!("certifiers [{}] of types [{}]", certifiers.join(", "), types.join(", "))
}

/// The fields every verifiable certificate carries.
const FIELDS: [&str; 8] =
    ["type", "serialNumber", "subject", "certifier", "revocationOutpoint", "fields", "signature", "keyring"];

/// Fixed verifiable certificates (each already carrying its keyring for the verifier it is shown
/// to), offered to every server whose request names their certifier and type.
#[derive(Clone)]
pub struct StaticCertificates {
    certificates: Vec<Value>,
}

impl std::fmt::Debug for StaticCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCertificates").field("certificates", &self.certificates.len()).finish()
    }
}

impl StaticCertificates {
    /// These certificates; each must be an object with the fields of a VerifiableCertificate.
    pub fn new(certificates: Vec<Value>) -> Result<Self> {
        for (i, c) in certificates.iter().enumerate() {
            let missing: Vec<&str> = FIELDS.iter().copied().filter(|f| c.get(f).is_none()).collect();
            if !missing.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("certificate {i} is not a VerifiableCertificate: it has no {}", missing.join(", ")),
                ));
            }
        }
        Ok(Self { certificates })
    }

    /// From JSON text: one VerifiableCertificate or an array of them.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("the certificates are not JSON: {e}")))?;
        match value {
            Value::Array(items) => Self::new(items),
            one => Self::new(vec![one]),
        }
    }
}

#[async_trait::async_trait]
impl CertificateSource for StaticCertificates {
    async fn certificates_for(&self, requested: &Value, _verifier: &str) -> Result<Vec<Value>> {
        let certifiers: Vec<&str> = requested
            .get("certifiers")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let types = requested.get("types").and_then(Value::as_object);
        Ok(self
            .certificates
            .iter()
            .filter(|c| {
                let certifier = c.get("certifier").and_then(Value::as_str).unwrap_or_default();
                let kind = c.get("type").and_then(Value::as_str).unwrap_or_default();
                certifiers.contains(&certifier) && types.is_some_and(|t| t.contains_key(kind))
            })
            .cloned()
            .collect())
    }
}

/// The wallet's own certificates: those matching the request's certifiers and types, each proven
/// for the verifier with exactly the fields the request names for its type
/// ([`Identity::verifiable_certificates`](wallet_brc100::identity::Identity::verifiable_certificates)).
#[async_trait::async_trait]
impl CertificateSource for wallet_brc100::identity::Identity {
    async fn certificates_for(&self, requested: &Value, verifier: &str) -> Result<Vec<Value>> {
        let malformed = |what: &str| {
            Error::new(ErrorKind::InvalidInput, format!("the server's certificate request has malformed {what}"))
        };
        let certifiers: Vec<String> = match requested.get("certifiers") {
            Some(c) => serde_json::from_value(c.clone()).map_err(|_| malformed("certifiers"))?,
            None => Vec::new(),
        };
        let types: std::collections::BTreeMap<String, Vec<String>> = match requested.get("types") {
            Some(t) => serde_json::from_value(t.clone()).map_err(|_| malformed("types"))?,
            None => Default::default(),
        };
        let found = self.verifiable_certificates(&certifiers, &types, verifier).await?;
        found.iter().map(|c| serde_json::to_value(c).map_err(|_| malformed("certificates"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(certifier: &str, kind: &str) -> Value {
        serde_json::json!({
            "type": kind, "serialNumber": "c2VyaWFs", "subject": "02aa", "certifier": certifier,
            "revocationOutpoint": format!("{}.0", "00".repeat(32)), "fields": {"name": "ZW5j"},
            "signature": "3044", "keyring": {"name": "a2V5"}
        })
    }

    #[tokio::test]
    async fn static_certificates_match_certifier_and_type() {
        let source =
            StaticCertificates::new(vec![cert("02c1", "dA=="), cert("02c2", "dA=="), cert("02c1", "dQ==")]).unwrap();
        let requested = serde_json::json!({"certifiers": ["02c1"], "types": {"dA==": ["name"]}});
        let found = source.certificates_for(&requested, "02ff").await.unwrap();
        assert_eq!(found, vec![cert("02c1", "dA==")]);
        let nothing = serde_json::json!({"certifiers": [], "types": {}});
        assert!(source.certificates_for(&nothing, "02ff").await.unwrap().is_empty());
        assert!(asks_for_certificates(Some(&requested)));
        assert!(!asks_for_certificates(Some(&nothing)));
        assert!(!asks_for_certificates(Some(&serde_json::json!({"certifiers": "02c1"}))));
        assert!(!asks_for_certificates(None));
        assert_eq!(describe(&requested), "certifiers [02c1] of types [dA==]");
    }

    #[test]
    fn refuses_what_is_not_a_verifiable_certificate() {
        let e = StaticCertificates::from_json(r#"[{"type":"x"}]"#).unwrap_err();
        assert!(e.message().contains("serialNumber"), "{e}");
        assert!(StaticCertificates::from_json("nope").is_err());
        let one = serde_json::to_string(&cert("02c1", "dA==")).unwrap();
        assert!(StaticCertificates::from_json(&one).is_ok());
    }
}
