//! The argument and result types of the BRC-100 key methods, with @bsv/sdk's JSON field names.

use serde::{Deserialize, Serialize};

use wallet_bsv::brc42::WalletProtocol;

/// The error `code` field of a BRC-100 error, kept as error context.
pub const CODE: &str = "code";

/// `getPublicKey` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct GetPublicKeyArgs {
    #[serde(default)]
    pub identity_key: bool,
    #[serde(rename = "protocolID")]
    pub protocol_id: Option<WalletProtocol>,
    #[serde(rename = "keyID")]
    pub key_id: Option<String>,
    pub counterparty: Option<String>,
    pub for_self: Option<bool>,
}

/// `getPublicKey` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPublicKeyResult {
    /// Compressed hex.
    pub public_key: String,
}

/// Arguments naming a derived key (createSignature, createHmac, encrypt, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct KeyArgs {
    #[serde(rename = "protocolID")]
    pub protocol_id: WalletProtocol,
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub counterparty: Option<String>,
}

/// `createSignature` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateSignatureArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub data: Option<Vec<u8>>,
    pub hash_to_directly_sign: Option<Vec<u8>>,
}

/// `verifySignature` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct VerifySignatureArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub data: Option<Vec<u8>>,
    pub hash_to_directly_verify: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    pub for_self: Option<bool>,
}

/// `createHmac` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct CreateHmacArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub data: Vec<u8>,
}

/// `verifyHmac` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct VerifyHmacArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub data: Vec<u8>,
    pub hmac: Vec<u8>,
}

/// `encrypt` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct EncryptArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub plaintext: Vec<u8>,
}

/// `decrypt` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct DecryptArgs {
    #[serde(flatten)]
    pub key: KeyArgs,
    pub ciphertext: Vec<u8>,
}

/// `revealSpecificKeyLinkage` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RevealSpecificArgs {
    pub counterparty: String,
    pub verifier: String,
    #[serde(rename = "protocolID")]
    pub protocol_id: WalletProtocol,
    #[serde(rename = "keyID")]
    pub key_id: String,
}

/// `revealSpecificKeyLinkage` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RevealSpecificResult {
    pub prover: String,
    pub verifier: String,
    pub counterparty: String,
    #[serde(rename = "protocolID")]
    pub protocol_id: WalletProtocol,
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub encrypted_linkage: Vec<u8>,
    pub encrypted_linkage_proof: Vec<u8>,
    pub proof_type: u8,
}

/// `revealCounterpartyKeyLinkage` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RevealCounterpartyArgs {
    pub counterparty: String,
    pub verifier: String,
}

/// `revealCounterpartyKeyLinkage` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RevealCounterpartyResult {
    pub prover: String,
    pub verifier: String,
    pub counterparty: String,
    pub revelation_time: String,
    pub encrypted_linkage: Vec<u8>,
    pub encrypted_linkage_proof: Vec<u8>,
}
