//! The argument and result types of the identity methods, with @bsv/sdk's JSON field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wallet_bsv::certificate::Certificate;

/// `acquireCertificate` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct AcquireCertificateArgs {
    #[serde(rename = "type")]
    pub cert_type: String,
    pub certifier: String,
    pub acquisition_protocol: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    pub serial_number: Option<String>,
    pub revocation_outpoint: Option<String>,
    pub signature: Option<String>,
    pub certifier_url: Option<String>,
    pub keyring_revealer: Option<String>,
    pub keyring_for_subject: Option<BTreeMap<String, String>>,
    pub privileged: Option<bool>,
    pub privileged_reason: Option<String>,
}

/// `listCertificates` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListCertificatesArgs {
    #[serde(default)]
    pub certifiers: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub privileged: Option<bool>,
    pub privileged_reason: Option<String>,
}

/// One certificate of a `listCertificates` result: the certificate, its master keyring and who
/// revealed that keyring, as @bsv/wallet-toolbox returns them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CertificateResult {
    #[serde(flatten)]
    pub certificate: Certificate,
    pub keyring: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
}

/// `listCertificates` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListCertificatesResult {
    pub total_certificates: u64,
    pub certificates: Vec<CertificateResult>,
}

/// The certificate `proveCertificate` names: any of its parts, which together must name exactly
/// one the wallet holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct PartialCertificate {
    #[serde(rename = "type")]
    pub cert_type: Option<String>,
    pub serial_number: Option<String>,
    pub certifier: Option<String>,
    pub subject: Option<String>,
    pub revocation_outpoint: Option<String>,
    pub signature: Option<String>,
}

/// `proveCertificate` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ProveCertificateArgs {
    #[serde(default)]
    pub certificate: PartialCertificate,
    #[serde(default)]
    pub fields_to_reveal: Vec<String>,
    pub verifier: String,
    pub privileged: Option<bool>,
    pub privileged_reason: Option<String>,
}

/// `proveCertificate` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProveCertificateResult {
    /// Field name → the field's revelation key encrypted for the verifier, base64.
    pub keyring_for_verifier: BTreeMap<String, String>,
}

/// `relinquishCertificate` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RelinquishCertificateArgs {
    #[serde(rename = "type")]
    pub cert_type: String,
    pub serial_number: String,
    pub certifier: String,
}

/// A certificate with a keyring for one verifier (@bsv/sdk's `VerifiableCertificate` as JSON):
/// what a BRC-103 `certificateResponse` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiableCertificate {
    /// The certificate.
    #[serde(flatten)]
    pub certificate: Certificate,
    /// Field name → the field's key encrypted for the verifier, base64.
    pub keyring: BTreeMap<String, String>,
}
