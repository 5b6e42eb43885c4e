//! The argument and result types of the BRC-100 action methods, with the JSON field names of
//! @bsv/sdk's `Wallet.interfaces` (byte fields are JSON arrays of numbers, as `HTTPWalletJSON`
//! sends and expects them; scripts are hex; outpoints `"<txid>.<vout>"`).

use serde::{Deserialize, Serialize};

/// `createAction` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateActionArgs {
    pub description: String,
    #[serde(rename = "inputBEEF")]
    pub input_beef: Option<Vec<u8>>,
    pub inputs: Option<Vec<CreateActionInput>>,
    pub outputs: Option<Vec<CreateActionOutput>>,
    pub lock_time: Option<u32>,
    pub version: Option<u32>,
    pub labels: Option<Vec<String>>,
    pub options: Option<CreateActionOptions>,
}

/// An input the caller supplies to `createAction`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateActionInput {
    pub outpoint: String,
    pub input_description: String,
    pub unlocking_script: Option<String>,
    pub unlocking_script_length: Option<u32>,
    pub sequence_number: Option<u32>,
}

/// An output of `createAction`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateActionOutput {
    pub locking_script: String,
    pub satoshis: u64,
    pub output_description: String,
    pub basket: Option<String>,
    pub custom_instructions: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// `createAction` options; every field as BRC-100 defaults it when absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateActionOptions {
    pub sign_and_process: Option<bool>,
    pub accept_delayed_broadcast: Option<bool>,
    pub trust_self: Option<String>,
    pub known_txids: Option<Vec<String>>,
    #[serde(rename = "returnTXIDOnly")]
    pub return_txid_only: Option<bool>,
    pub no_send: Option<bool>,
    pub no_send_change: Option<Vec<String>>,
    pub send_with: Option<Vec<String>>,
    pub randomize_outputs: Option<bool>,
}

/// A transaction waiting for `signAction`.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct SignableTransaction {
    /// Atomic BEEF of the unsigned transaction.
    pub tx: Vec<u8>,
    pub reference: String,
}

/// `createAction` / `signAction` result.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct CreateActionResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
    /// Atomic BEEF of the new transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_send_change: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_with_results: Option<Vec<SendWithResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signable_transaction: Option<SignableTransaction>,
}

/// How a transaction sent along fared.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct SendWithResult {
    pub txid: String,
    /// `unproven`, `sending` or `failed`.
    pub status: String,
}

/// `signAction` arguments: the unlocking scripts of the inputs the caller supplied, by index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct SignActionArgs {
    pub spends: std::collections::BTreeMap<String, SignActionSpend>,
    pub reference: String,
    pub options: Option<CreateActionOptions>,
}

/// One input's unlocking script for `signAction`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct SignActionSpend {
    pub unlocking_script: String,
    pub sequence_number: Option<u32>,
}

/// `abortAction` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct AbortActionArgs {
    pub reference: String,
}

/// `internalizeAction` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct InternalizeActionArgs {
    /// Atomic BEEF.
    pub tx: Vec<u8>,
    pub outputs: Vec<InternalizeOutput>,
    pub description: String,
    pub labels: Option<Vec<String>>,
    pub seek_permission: Option<bool>,
}

/// One output of an internalized transaction and what it is to the wallet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct InternalizeOutput {
    pub output_index: u32,
    /// `"wallet payment"` or `"basket insertion"`.
    pub protocol: String,
    pub payment_remittance: Option<WalletPayment>,
    pub insertion_remittance: Option<BasketInsertion>,
}

/// A BRC-29 payment's remittance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct WalletPayment {
    pub derivation_prefix: String,
    pub derivation_suffix: String,
    pub sender_identity_key: String,
}

/// Where an inserted output goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct BasketInsertion {
    pub basket: String,
    pub custom_instructions: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// `listOutputs` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListOutputsArgs {
    pub basket: String,
    pub tags: Option<Vec<String>>,
    pub tag_query_mode: Option<wallet_traits::QueryMode>,
    /// `"locking scripts"` or `"entire transactions"`.
    pub include: Option<String>,
    pub include_custom_instructions: Option<bool>,
    pub include_tags: Option<bool>,
    pub include_labels: Option<bool>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub seek_permission: Option<bool>,
}

/// One output as `listOutputs` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct WalletOutput {
    pub satoshis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locking_script: Option<String>,
    pub spendable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_instructions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    pub outpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// `listOutputs` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListOutputsResult {
    pub total_outputs: u64,
    /// A BEEF of the listed outputs' transactions, with `include: "entire transactions"`.
    #[serde(rename = "BEEF", skip_serializing_if = "Option::is_none")]
    pub beef: Option<Vec<u8>>,
    pub outputs: Vec<WalletOutput>,
}

/// `listActions` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListActionsArgs {
    pub labels: Vec<String>,
    pub label_query_mode: Option<wallet_traits::QueryMode>,
    pub include_labels: Option<bool>,
    pub include_inputs: Option<bool>,
    pub include_input_source_locking_scripts: Option<bool>,
    pub include_input_unlocking_scripts: Option<bool>,
    pub include_outputs: Option<bool>,
    pub include_output_locking_scripts: Option<bool>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub seek_permission: Option<bool>,
}

/// An input of a listed action.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct WalletActionInput {
    pub source_outpoint: String,
    pub source_satoshis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_locking_script: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlocking_script: Option<String>,
    pub input_description: String,
    pub sequence_number: u32,
}

/// An output of a listed action.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct WalletActionOutput {
    pub satoshis: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locking_script: Option<String>,
    pub spendable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_instructions: Option<String>,
    pub tags: Vec<String>,
    pub output_index: u32,
    pub output_description: String,
    pub basket: String,
}

/// One action as `listActions` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct WalletAction {
    pub txid: String,
    pub satoshis: i64,
    pub status: wallet_traits::ActionStatus,
    pub is_outgoing: bool,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    pub version: u32,
    pub lock_time: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<WalletActionInput>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<WalletActionOutput>>,
}

/// `listActions` result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ListActionsResult {
    pub total_actions: u64,
    pub actions: Vec<WalletAction>,
}

/// `relinquishOutput` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct RelinquishOutputArgs {
    pub basket: String,
    pub output: String,
}

/// `getHeaderForHeight` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct GetHeaderArgs {
    pub height: u64,
}
