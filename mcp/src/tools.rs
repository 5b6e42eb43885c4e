//! The tools: each an input type (its JSON schema is the tool's input schema), a result type (its
//! output schema), a static description written for a model, and the call. Every payment goes
//! through the action methods (`Actions::create_action`), so the cosigners' spending policies
//! count it like any payment of the BRC-100 front.

use std::{future::Future, sync::Arc, time::Duration};

use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use wallet_auth::{ActionsPayer, AuthClient, AuthRequest};
use wallet_brc100::{
    actions::{
        Actions, CreateActionArgs, CreateActionOutput, InternalizeActionArgs, InternalizeOutput, ListActionsArgs,
        ListOutputsArgs, WalletPayment, CHANGE_BASKET,
    },
    identity::{ListCertificatesArgs, ProveCertificateArgs},
};
use wallet_traits::{ActionQuery, ActionStatus, Error, ErrorKind, OutputQuery, QueryMode};

use crate::{validate, Progress, WalletMcp, WalletParts};

/// Most tools take a few short strings.
const SMALL_ARGS: usize = 64 * 1024;
/// `internalize_payment` takes a transaction with its ancestors.
const BEEF_ARGS: usize = 8 * 1024 * 1024;
/// `fetch` takes a request body.
const FETCH_ARGS: usize = 1024 * 1024 + SMALL_ARGS;
/// The most of a fetched answer's body handed to the model.
const FETCH_BODY_CHARS: usize = 64 * 1024;
/// The most of an answer the wallet reads at all.
const FETCH_READ_BYTES: usize = 4 * 1024 * 1024;
/// How often a long call reports that it is still working.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// The key `sign_message`, `verify_message`, `encrypt` and `decrypt` use: fixed here, so a model
/// can neither pick another application's protocol nor a key id that makes a signature stand for
/// something else (BRC-3 signatures over data the parties hash themselves).
const SIGN_PROTOCOL: &str = "mcp message signature";
const ENCRYPT_PROTOCOL: &str = "mcp message encryption";
const KEY_ID: &str = "1";
/// BRC-42's "anyone": the public key of the private key 1.
const ANYONE: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Debug, Serialize, JsonSchema)]
struct PolicyLeft {
    /// The cosigner's party index.
    cosigner: u16,
    /// The most one transaction may send out (fee included); absent: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_sats_per_tx: Option<u64>,
    /// The rolling window, in seconds.
    window_secs: u64,
    /// Satoshis the window still allows; absent: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    window_sats_left: Option<u64>,
    /// Transactions the window still allows; absent: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    window_txs_left: Option<u64>,
    /// Whether payments are limited to an allowlist of destinations.
    destinations_restricted: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
struct CosignerOut {
    /// The cosigner's party index.
    index: u16,
    /// Whether it can take part in signing now.
    can_serve: bool,
    /// Why it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Its spending policy; absent when it enforces none (or did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<PolicyLeft>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct StatusOut {
    /// The wallet's identity public key (compressed hex).
    identity_key: String,
    /// mainnet or testnet.
    network: String,
    /// The threshold protocol of the key's shares.
    protocol: String,
    /// How many parties sign together: this agent and threshold-1 cosigners.
    threshold: u16,
    /// Whether enough cosigners can serve to sign now.
    can_sign: bool,
    /// Each cosigner.
    cosigners: Vec<CosignerOut>,
    /// Whether the wallet keeps books (payments need them).
    books: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
struct BalanceOut {
    /// Spendable satoshis in the wallet's change (the default basket).
    satoshis: u64,
    /// How many spendable outputs hold them.
    spendable_outputs: u64,
    /// What each cosigner's spending policy still allows in its current window (cosigners with a policy only).
    policy: Vec<PolicyLeft>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Remittance {
    /// BRC-29 derivation prefix (base64).
    derivation_prefix: String,
    /// BRC-29 derivation suffix (base64).
    derivation_suffix: String,
    /// The sender identity key to give internalize_payment for a payment to `address`.
    sender_identity_key: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ReceiveOut {
    /// The wallet's identity key: a BRC-29 sender derives the payment key from it.
    identity_key: String,
    /// mainnet or testnet.
    network: String,
    /// The BRC-29 protocol: security level and protocol name.
    brc29_protocol: (u8, String),
    /// How a BRC-29 sender derives the key id.
    brc29_key_id: String,
    /// A P2PKH address of this wallet, for a sender without BRC-29 support. Once paid, call
    /// internalize_payment with the transaction's Atomic BEEF and `address_remittance`.
    address: String,
    /// What internalize_payment needs for a payment to `address`.
    address_remittance: Remittance,
    /// What to tell a sender.
    instructions: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InternalizeIn {
    /// The payment's transaction as Atomic BEEF (BRC-95), hex.
    beef: String,
    /// The index of the output that pays this wallet.
    output_index: u32,
    /// The BRC-29 derivation prefix the sender used (base64).
    derivation_prefix: String,
    /// The BRC-29 derivation suffix the sender used (base64).
    derivation_suffix: String,
    /// The sender's identity key (compressed hex).
    sender_identity_key: String,
    /// What the payment is for (5 to 2000 characters).
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct InternalizeOut {
    /// Whether the payment is in the wallet's books.
    accepted: bool,
    /// The payment's transaction id.
    txid: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PayIn {
    /// Where to pay: a P2PKH address, or a locking script in hex.
    to: String,
    /// How many satoshis (1 BSV = 100000000 satoshis). The fee comes on top.
    satoshis: u64,
    /// What the payment is for (5 to 2000 characters); kept in the wallet's history.
    description: String,
    /// A key unique to this intended payment (1 to 128 characters), e.g. an invoice number or a
    /// fresh UUID. Calling pay again with the same key returns the first payment instead of paying
    /// twice; use a new key only for a new payment.
    idempotency_key: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct PayOut {
    /// The payment's transaction id.
    txid: String,
    /// Its status: unproven (accepted by the network), unprocessed or sending (broadcast pending),
    /// completed (mined).
    status: String,
    /// The satoshis paid to `to`.
    satoshis: u64,
    /// True when this idempotency key had paid already and nothing new was paid.
    already_paid: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PageIn {
    /// At most this many (1 to 1000; default 25).
    #[serde(default)]
    limit: Option<u32>,
    /// Skip this many first (default 0).
    #[serde(default)]
    offset: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct HistoryEntry {
    /// Transaction id.
    txid: String,
    /// Net satoshis for this wallet: negative for a payment out.
    satoshis: i64,
    /// completed, unproven, unprocessed, sending, nosend, nonfinal, unsigned.
    status: String,
    /// Whether the wallet sent it.
    outgoing: bool,
    /// Its description.
    description: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct HistoryOut {
    /// How many transactions there are in all.
    total: u64,
    /// This page, oldest first.
    transactions: Vec<HistoryEntry>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OutputsIn {
    /// The basket (default: "default", the wallet's spendable change).
    #[serde(default)]
    basket: Option<String>,
    /// Only outputs with these tags.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Whether an output needs all the tags or any of them (default any).
    #[serde(default)]
    tags_mode: Option<TagsMode>,
    /// At most this many (1 to 1000; default 25).
    #[serde(default)]
    limit: Option<u32>,
    /// Skip this many first (default 0).
    #[serde(default)]
    offset: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum TagsMode {
    All,
    Any,
}

#[derive(Debug, Serialize, JsonSchema)]
struct OutputEntry {
    /// `txid.vout`.
    outpoint: String,
    /// Satoshis.
    satoshis: u64,
    /// Whether the wallet can spend it.
    spendable: bool,
    /// Its tags.
    tags: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct OutputsOut {
    /// How many outputs match in all.
    total: u64,
    /// This page.
    outputs: Vec<OutputEntry>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FetchIn {
    /// The URL: http:// or https:// only.
    url: String,
    /// GET (default), or POST/PUT/PATCH/DELETE.
    #[serde(default)]
    method: Option<String>,
    /// Extra headers: only content-type and x-bsv-* headers can be sent authenticated.
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    /// The request body (text, at most 1 MiB); sent as application/json when it is JSON.
    #[serde(default)]
    body: Option<String>,
    /// The most this request may pay, in satoshis (0: pay nothing). A server asking more is refused before anything is paid.
    max_sats: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Paid {
    /// Satoshis paid.
    satoshis: u64,
    /// The payment's transaction id.
    txid: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct FetchOut {
    /// The HTTP status.
    status: u16,
    /// The answer's headers (the authentication headers left out).
    headers: std::collections::BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced), at most 64 KiB of it.
    body: String,
    /// Whether `body` was cut short.
    body_truncated: bool,
    /// The server's identity key, which signed this answer.
    server_identity_key: String,
    /// What was paid, when the server asked for payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    paid: Option<Paid>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The message to sign (text, at most 64 KiB).
    message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct SignOut {
    /// The DER signature, hex.
    signature: String,
    /// The signer: this wallet's identity key.
    signer: String,
    /// The BRC-43 protocol the key was derived under (security level, name).
    protocol_id: (u8, String),
    /// The key id.
    key_id: String,
    /// Who can verify it: anyone, with the signer's identity key.
    verifier: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct VerifyIn {
    /// The signed message (text).
    message: String,
    /// The DER signature, hex.
    signature: String,
    /// The signer's identity key (compressed hex); default this wallet.
    #[serde(default)]
    signer: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct VerifyOut {
    /// Whether the signature is the signer's over the message (made with sign_message).
    valid: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EncryptIn {
    /// The text to encrypt (at most 64 KiB).
    plaintext: String,
    /// Who may decrypt it: their identity key (compressed hex); default this wallet itself.
    #[serde(default)]
    counterparty: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct EncryptOut {
    /// The ciphertext, hex.
    ciphertext: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DecryptIn {
    /// The ciphertext, hex (from encrypt).
    ciphertext: String,
    /// Who encrypted it: their identity key (compressed hex); default this wallet itself.
    #[serde(default)]
    counterparty: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct DecryptOut {
    /// The plaintext (invalid UTF-8 replaced).
    plaintext: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CertificatesIn {
    /// Only certificates from these certifiers (identity keys, hex).
    #[serde(default)]
    certifiers: Vec<String>,
    /// Only certificates of these types (base64).
    #[serde(default)]
    types: Vec<String>,
    /// At most this many (1 to 1000; default 25).
    #[serde(default)]
    limit: Option<u32>,
    /// Skip this many first.
    #[serde(default)]
    offset: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct CertificateOut {
    /// The certificate type (base64).
    #[serde(rename = "type")]
    cert_type: String,
    /// Its serial number (base64).
    serial_number: String,
    /// The certifier's identity key.
    certifier: String,
    /// The subject: this wallet's identity key.
    subject: String,
    /// The names of its fields (their values are encrypted; prove_certificate reveals chosen ones).
    fields: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct CertificatesOut {
    /// How many match in all.
    total: u64,
    /// This page.
    certificates: Vec<CertificateOut>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProveIn {
    /// The certificate's serial number (base64), from list_certificates.
    serial_number: String,
    /// The fields to reveal (names from list_certificates); nothing else is revealed.
    fields_to_reveal: Vec<String>,
    /// Who may read them: the verifier's identity key (compressed hex), or "anyone".
    verifier: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ProveOut {
    /// The certificate, as the verifier needs it (fields still encrypted).
    certificate: Value,
    /// Field name → the field's key encrypted for the verifier (base64): hand these with the
    /// certificate to the verifier.
    keyring_for_verifier: std::collections::BTreeMap<String, String>,
}

/// One tool's name, description and schemas.
fn tool<I: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, rmcp::handler::server::tool::schema_for_type::<I>())
        .with_raw_output_schema(rmcp::handler::server::tool::schema_for_output::<O>())
        .with_annotations(annotations)
}

fn reads() -> ToolAnnotations {
    ToolAnnotations::new().read_only(true).destructive(false).open_world(false)
}

const NAMES: [&str; 14] = [
    "wallet_status",
    "get_balance",
    "receive_info",
    "internalize_payment",
    "pay",
    "list_history",
    "list_outputs",
    "fetch",
    "sign_message",
    "verify_message",
    "encrypt",
    "decrypt",
    "list_certificates",
    "prove_certificate",
];

pub(crate) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Every tool, in a fixed order.
pub(crate) fn list() -> Vec<Tool> {
    vec![
        tool::<NoArgs, StatusOut>(
            "wallet_status",
            "The wallet's identity key, network, threshold protocol, and which cosigners can sign now, with each \
             cosigner's spending policy. Call it first, or when a payment fails for want of cosigners.",
            reads(),
        ),
        tool::<NoArgs, BalanceOut>(
            "get_balance",
            "Spendable satoshis in the wallet (its default basket), and what each cosigner's spending policy still \
             allows in its current window. A payment above what a policy allows is refused.",
            reads(),
        ),
        tool::<NoArgs, ReceiveOut>(
            "receive_info",
            "What a sender needs to pay this wallet: its identity key and the BRC-29 derivation a BSV wallet uses, or \
             a plain address with the values to hand internalize_payment once that address is paid.",
            reads().read_only(false).idempotent(false),
        ),
        tool::<InternalizeIn, InternalizeOut>(
            "internalize_payment",
            "Take a BRC-29 payment into the wallet: the transaction as Atomic BEEF (hex) with the sender's derivation \
             prefix, suffix and identity key. The wallet checks proofs, scripts and that the output is its own before \
             recording anything; the same payment twice counts once.",
            ToolAnnotations::new().read_only(false).destructive(false).idempotent(true).open_world(true),
        ),
        tool::<PayIn, PayOut>(
            "pay",
            "Pay satoshis to a BSV address or locking script from the wallet's balance (the fee is added). Requires an \
             idempotency_key unique to the intended payment: the same key again returns the first payment and pays \
             nothing. The cosigners' spending policy checks every payment; a refusal is final until a person approves \
             it with `mpc-wallet approve`: report it, do not retry.",
            ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(true),
        ),
        tool::<PageIn, HistoryOut>(
            "list_history",
            "The wallet's transactions, oldest first, a page at a time: txid, net satoshis (negative when paying out), \
             status and description.",
            reads(),
        ),
        tool::<OutputsIn, OutputsOut>(
            "list_outputs",
            "The wallet's outputs in a basket (default: \"default\", its spendable change), optionally by tags, a page \
             at a time.",
            reads(),
        ),
        tool::<FetchIn, FetchOut>(
            "fetch",
            "An HTTP(S) request made as the wallet's identity (BRC-103 mutual authentication, as @bsv/sdk's AuthFetch). \
             When the server asks for payment (HTTP 402, BRC-41) the wallet pays it if the price is at most max_sats; \
             the payment goes through the cosigners' spending policy. Returns the status, headers and body (at most 64 \
             KiB) of an answer the server signed.",
            ToolAnnotations::new().read_only(false).destructive(true).idempotent(false).open_world(true),
        ),
        tool::<SignIn, SignOut>(
            "sign_message",
            "Sign a text message with a key derived from the wallet's identity for this purpose (BRC-3); anyone, or the \
             verifier named, can check it with verify_message or @bsv/sdk's verifySignature using the returned \
             protocol and key id.",
            ToolAnnotations::new().read_only(false).destructive(false).idempotent(true).open_world(false),
        ),
        tool::<VerifyIn, VerifyOut>(
            "verify_message",
            "Check a signature that sign_message made (by this wallet, or by another wallet's sign_message) over a \
             text message.",
            reads(),
        ),
        tool::<EncryptIn, EncryptOut>(
            "encrypt",
            "Encrypt a text for a counterparty (its identity key) or for this wallet itself; only that counterparty's \
             wallet can decrypt it.",
            reads().read_only(false),
        ),
        tool::<DecryptIn, DecryptOut>(
            "decrypt",
            "Decrypt a ciphertext (hex) that a counterparty (its identity key) encrypted for this wallet with encrypt.",
            reads(),
        ),
        tool::<CertificatesIn, CertificatesOut>(
            "list_certificates",
            "The identity certificates (BRC-52) the wallet holds: type, serial number, certifier and field names.",
            reads(),
        ),
        tool::<ProveIn, ProveOut>(
            "prove_certificate",
            "Reveal chosen fields of one of the wallet's certificates to one verifier: returns the certificate and a \
             keyring that opens exactly those fields for that verifier. Reveal only what the task needs.",
            ToolAnnotations::new().read_only(false).destructive(false).idempotent(true).open_world(false),
        ),
    ]
}

/// Runs tool `name`. `Err` is the tool error's text, for the model.
pub(crate) async fn call(
    server: &WalletMcp,
    w: &WalletParts,
    name: &str,
    arguments: Map<String, Value>,
    progress: &Progress,
) -> Result<Value, String> {
    fn out<T: Serialize>(v: T) -> Result<Value, String> {
        serde_json::to_value(v).map_err(|e| format!("internal error: {e}"))
    }
    fn small<T: DeserializeOwned>(a: Map<String, Value>) -> Result<T, String> {
        validate::args(a, SMALL_ARGS)
    }
    match name {
        "wallet_status" => small::<NoArgs>(arguments).and(out(status(w).await?)),
        "get_balance" => small::<NoArgs>(arguments).and(out(balance(w).await?)),
        "receive_info" => small::<NoArgs>(arguments).and(out(receive_info(w).await?)),
        "internalize_payment" => out(internalize(w, validate::args(arguments, BEEF_ARGS)?, progress).await?),
        "pay" => out(pay(server, w, small(arguments)?, progress).await?),
        "list_history" => out(history(w, small(arguments)?).await?),
        "list_outputs" => out(outputs(w, small(arguments)?).await?),
        "fetch" => out(fetch(w, validate::args(arguments, FETCH_ARGS)?, progress).await?),
        "sign_message" => out(sign(w, small(arguments)?).await?),
        "verify_message" => out(verify(w, small(arguments)?)?),
        "encrypt" => out(encrypt(w, small(arguments)?).await?),
        "decrypt" => out(decrypt(w, small(arguments)?).await?),
        "list_certificates" => out(certificates(w, small(arguments)?).await?),
        "prove_certificate" => out(prove(w, small(arguments)?).await?),
        _ => Err(format!("no tool named {:?}", validate::echo(name))),
    }
}

/// A wallet error as the model should read it: what happened and what to do. A policy refusal
/// names its rule and the approval a person can give; it is not worth retrying.
fn explain(e: &Error) -> String {
    match e.kind() {
        ErrorKind::PolicyDenied => {
            let mut text = format!("refused by the cosigners' spending policy: {}", e.message());
            if let Some(rule) = e.context_value("rule") {
                text.push_str(&format!(" [rule: {rule}]"));
            }
            match e.context_value("approve") {
                Some(cmd) => text
                    .push_str(&format!(". Only a person holding an approver key can allow this payment, with: {cmd}")),
                None => text.push_str(". Only a person can allow it, with `mpc-wallet approve`"),
            }
            text.push_str(". Do not retry: tell the user what was refused and why.");
            text
        }
        ErrorKind::InsufficientFunds => {
            let more = e.context_value("moreSatoshisNeeded").unwrap_or("some");
            format!(
                "not enough funds: {} ({more} more satoshis needed). Get paid first (receive_info) or pay less.",
                e.message()
            )
        }
        ErrorKind::InvalidInput => format!("invalid input: {}. Fix the argument and call again.", e.message()),
        _ => e.message().to_string(),
    }
}

fn books(w: &WalletParts) -> Result<&Arc<Actions>, String> {
    w.actions.as_ref().ok_or_else(|| {
        "this wallet's store keeps no books (transactions and outputs); its operator must use SQLite or Postgres".into()
    })
}

/// Runs `work`, saying `message` now and every few seconds until it ends, so a client sees a long
/// call (signing with the cosigners, a broadcast) is alive.
async fn with_heartbeat<T>(progress: &Progress, message: &str, work: impl Future<Output = T>) -> T {
    progress.say(message).await;
    tokio::pin!(work);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => progress.say(&format!("{message} (still working)")).await,
        }
    }
}

fn policy_left(index: u16, p: &wallet_traits::PolicyReport) -> PolicyLeft {
    let (sats, txs) = p.left();
    PolicyLeft {
        cosigner: index,
        max_sats_per_tx: p.max_sats_per_tx,
        window_secs: p.window_secs,
        window_sats_left: sats,
        window_txs_left: txs,
        destinations_restricted: p.allowed_destinations.is_some(),
    }
}

async fn status(w: &WalletParts) -> Result<StatusOut, String> {
    let cosigners = w.engine.cosigners().await;
    let serving = cosigners.iter().filter(|c| c.can_serve).count();
    let threshold = w.engine.threshold();
    Ok(StatusOut {
        identity_key: w.keys.identity_key().to_hex(),
        network: w.keys.network().to_string(),
        protocol: w.engine.protocol(),
        threshold,
        can_sign: serving + 1 >= usize::from(threshold),
        cosigners: cosigners
            .into_iter()
            .map(|c| CosignerOut {
                index: c.index,
                can_serve: c.can_serve,
                reason: c.reason,
                policy: c.policy.as_ref().map(|p| policy_left(c.index, p)),
            })
            .collect(),
        books: w.actions.is_some(),
    })
}

async fn balance(w: &WalletParts) -> Result<BalanceOut, String> {
    let a = books(w)?;
    let query =
        OutputQuery { basket: Some(CHANGE_BASKET.into()), spendable_only: true, limit: Some(0), ..Default::default() };
    let spendable_outputs = a.store().list_outputs(&query).await.map_err(|e| explain(&e))?.total;
    let satoshis = a.store().balance(CHANGE_BASKET).await.map_err(|e| explain(&e))?;
    let policy =
        w.engine.cosigners().await.iter().filter_map(|c| c.policy.as_ref().map(|p| policy_left(c.index, p))).collect();
    Ok(BalanceOut { satoshis, spendable_outputs, policy })
}

/// Fresh base64 derivation values (16 random bytes each), as BRC-29 senders make them.
fn fresh_derivation() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

async fn receive_info(w: &WalletParts) -> Result<ReceiveOut, String> {
    let (prefix, suffix) = (fresh_derivation(), fresh_derivation());
    let key_id = wallet_bsv::brc29::key_id(&prefix, &suffix);
    // The wallet's own BRC-29 key for a payment from "anyone": whoever pays the address, the
    // wallet takes it in with this remittance (sender = anyone's public key).
    let args = serde_json::from_value(json!({
        "protocolID": [wallet_bsv::brc29::SECURITY_LEVEL, wallet_bsv::brc29::PROTOCOL_NAME],
        "keyID": key_id,
        "counterparty": ANYONE,
        "forSelf": true,
    }))
    .map_err(|e| format!("internal error: {e}"))?;
    let key = w.keys.get_public_key(args).await.map_err(|e| explain(&e))?;
    let key = hex::decode(&key.public_key).map_err(|e| format!("internal error: {e}"))?;
    let address = wallet_bsv::address::p2pkh_address(&wallet_bsv::hash::hash160(&key), w.keys.network());
    let identity_key = w.keys.identity_key().to_hex();
    Ok(ReceiveOut {
        instructions: format!(
            "A BSV wallet pays this wallet with BRC-29: it pays P2PKH to the key derived with protocol [2, \"{}\"], key \
             id \"<derivation prefix> <derivation suffix>\" and counterparty {identity_key}, then hands over the \
             transaction's Atomic BEEF with the prefix, suffix and its identity key, which go to internalize_payment. \
             Any other sender can pay the address {address}; then call internalize_payment with that transaction's \
             Atomic BEEF and address_remittance.",
            wallet_bsv::brc29::PROTOCOL_NAME
        ),
        identity_key,
        network: w.keys.network().to_string(),
        brc29_protocol: (2, wallet_bsv::brc29::PROTOCOL_NAME.into()),
        brc29_key_id: "<derivation prefix> <derivation suffix>".into(),
        address,
        address_remittance: Remittance {
            derivation_prefix: prefix,
            derivation_suffix: suffix,
            sender_identity_key: ANYONE.into(),
        },
    })
}

fn description(value: Option<&str>, default: &str) -> Result<String, String> {
    let d = value.unwrap_or(default).trim();
    if !(5..=2000).contains(&d.len()) {
        return Err(format!("description must be 5 to 2000 characters; it is {}", d.len()));
    }
    Ok(d.to_string())
}

async fn internalize(w: &WalletParts, a: InternalizeIn, progress: &Progress) -> Result<InternalizeOut, String> {
    let actions = books(w)?;
    let beef = hex::decode(a.beef.trim())
        .map_err(|_| "beef must be the Atomic BEEF in hex (an even number of 0-9a-f characters)".to_string())?;
    let txid = wallet_bsv::AtomicBeef::from_bytes(&beef)
        .map(|b| b.subject.to_string())
        .map_err(|e| format!("beef is not an Atomic BEEF (BRC-95): {}", e.message()))?;
    let sender = validate::public_key("sender_identity_key", &a.sender_identity_key)?;
    for (name, v) in [("derivation_prefix", &a.derivation_prefix), ("derivation_suffix", &a.derivation_suffix)] {
        validate::text(name, v, 100)?;
    }
    let args = InternalizeActionArgs {
        tx: beef,
        outputs: vec![InternalizeOutput {
            output_index: a.output_index,
            protocol: "wallet payment".into(),
            payment_remittance: Some(WalletPayment {
                derivation_prefix: a.derivation_prefix,
                derivation_suffix: a.derivation_suffix,
                sender_identity_key: sender,
            }),
            insertion_remittance: None,
        }],
        description: description(a.description.as_deref(), "payment received (mcp)")?,
        ..Default::default()
    };
    let accepted = with_heartbeat(
        progress,
        "checking the payment's proofs and scripts, broadcasting it if it is new",
        actions.internalize_action(args),
    )
    .await
    .map_err(|e| explain(&e))?;
    Ok(InternalizeOut { accepted, txid })
}

/// The labels that record a `pay` call with the action it made: one for the idempotency key, one
/// for what it paid (so a key reused for another payment is noticed). Labels are lower-case hex of
/// SHA-256, never the key itself.
fn pay_labels(key: &str, to: &wallet_bsv::Script, satoshis: u64) -> (String, String) {
    let key_hash = Sha256::digest(key.as_bytes());
    let mut terms = Sha256::new();
    terms.update(key_hash);
    terms.update(to.as_bytes());
    terms.update(satoshis.to_le_bytes());
    (
        format!("mcp-pay-{}", hex::encode(&key_hash[..20])),
        format!("mcp-pay-terms-{}", hex::encode(&terms.finalize()[..20])),
    )
}

/// Every status but `failed`: a failed action paid nothing, so its key may pay.
const LIVE: [ActionStatus; 7] = [
    ActionStatus::Completed,
    ActionStatus::Unprocessed,
    ActionStatus::Sending,
    ActionStatus::Unproven,
    ActionStatus::Unsigned,
    ActionStatus::NoSend,
    ActionStatus::NonFinal,
];

/// The live action recorded under `label`, if any.
async fn paid_under(actions: &Actions, label: &str) -> Result<Option<wallet_traits::ActionRecord>, String> {
    let query = ActionQuery {
        labels: vec![label.to_string()],
        label_mode: QueryMode::Any,
        statuses: LIVE.to_vec(),
        limit: Some(1),
        offset: 0,
    };
    Ok(actions.store().list_actions(&query).await.map_err(|e| explain(&e))?.items.into_iter().next())
}

/// `pay`, idempotent: the key's hash is a label of the action the payment makes (recorded before
/// anything is signed, in the same store as the books), and a call first looks for a live action
/// under that label, returning it instead of paying again. Calls with one key are serialized in
/// this process, so two at once pay once. A restart keeps the label with the action, so the key
/// still holds. Limits: a payment that failed (refused by a policy, rejected by the network)
/// leaves a failed action, and the same key may then pay; an action interrupted before its
/// signature stays `unsigned` until the background task fails it (ten minutes), and the key is
/// answered "in progress" until then; two server processes on one store are not serialized
/// against each other.
async fn pay(server: &WalletMcp, w: &WalletParts, a: PayIn, progress: &Progress) -> Result<PayOut, String> {
    let actions = books(w)?;
    let key = a.idempotency_key.trim();
    if key.is_empty() || key.chars().count() > 128 || key.chars().any(char::is_control) {
        return Err("idempotency_key must be 1 to 128 printable characters, unique to this intended payment".into());
    }
    let satoshis = validate::satoshis("satoshis", a.satoshis)?;
    let script = validate::destination(&a.to)?;
    let description = description(Some(&a.description), "")?;
    let (key_label, terms_label) = pay_labels(key, &script, satoshis);
    let lock = server.pay_lock(&key_label);
    let _held = lock.lock().await;
    if let Some(done) = paid_under(actions, &key_label).await? {
        if !done.labels.contains(&terms_label) {
            return Err(format!(
                "this idempotency_key was already used for a different payment (txid {}); a new payment needs a new key",
                done.txid.map(hex::encode).unwrap_or_default()
            ));
        }
        if done.status == ActionStatus::Unsigned {
            return Err(
                "the payment with this idempotency_key was interrupted and is being released; call pay again with \
                        the same key in ten minutes"
                    .into(),
            );
        }
        return Ok(PayOut {
            txid: done.txid.map(hex::encode).unwrap_or_default(),
            status: done.status.as_str().to_string(),
            satoshis,
            already_paid: true,
        });
    }
    let args = CreateActionArgs {
        description,
        outputs: Some(vec![CreateActionOutput {
            locking_script: script.to_hex(),
            satoshis,
            output_description: "payment (mcp pay)".into(),
            ..Default::default()
        }]),
        labels: Some(vec![key_label.clone(), terms_label]),
        ..Default::default()
    };
    let result = with_heartbeat(
        progress,
        "funding the payment, signing it with the cosigners (their spending policy checks it), broadcasting",
        actions.create_action(args),
    )
    .await
    .map_err(|e| explain(&e))?;
    let txid = result.txid.unwrap_or_default();
    let status = paid_under(actions, &key_label).await?.map_or("unproven", |a| a.status.as_str()).to_string();
    progress.say(&format!("paid {satoshis} satoshis in {txid} ({status})")).await;
    Ok(PayOut { txid, status, satoshis, already_paid: false })
}

fn page(limit: Option<u32>, offset: Option<u32>) -> Result<(u32, u32), String> {
    let limit = limit.unwrap_or(25);
    if !(1..=1000).contains(&limit) {
        return Err(format!("limit must be 1 to 1000; got {limit}"));
    }
    Ok((limit, offset.unwrap_or(0)))
}

async fn history(w: &WalletParts, a: PageIn) -> Result<HistoryOut, String> {
    let (limit, offset) = page(a.limit, a.offset)?;
    let args = ListActionsArgs { limit: Some(limit), offset: Some(offset), ..Default::default() };
    let r = books(w)?.list_actions(args).await.map_err(|e| explain(&e))?;
    Ok(HistoryOut {
        total: r.total_actions,
        transactions: r
            .actions
            .into_iter()
            .map(|a| HistoryEntry {
                txid: a.txid,
                satoshis: a.satoshis,
                status: a.status.as_str().to_string(),
                outgoing: a.is_outgoing,
                description: a.description,
            })
            .collect(),
    })
}

async fn outputs(w: &WalletParts, a: OutputsIn) -> Result<OutputsOut, String> {
    let (limit, offset) = page(a.limit, a.offset)?;
    if let Some(tags) = &a.tags {
        if tags.len() > 32 || tags.iter().any(|t| t.len() > 300) {
            return Err("tags: at most 32, each at most 300 characters".into());
        }
    }
    let basket = a.basket.unwrap_or_else(|| CHANGE_BASKET.into());
    validate::text("basket", &basket, 300)?;
    let args = ListOutputsArgs {
        basket,
        tags: a.tags,
        tag_query_mode: a.tags_mode.map(|m| match m {
            TagsMode::All => QueryMode::All,
            TagsMode::Any => QueryMode::Any,
        }),
        include_tags: Some(true),
        limit: Some(limit),
        offset: Some(offset),
        ..Default::default()
    };
    let r = books(w)?.list_outputs(args).await.map_err(|e| explain(&e))?;
    Ok(OutputsOut {
        total: r.total_outputs,
        outputs: r
            .outputs
            .into_iter()
            .map(|o| OutputEntry {
                outpoint: o.outpoint,
                satoshis: o.satoshis,
                spendable: o.spendable,
                tags: o.tags.unwrap_or_default(),
            })
            .collect(),
    })
}

async fn fetch(w: &WalletParts, a: FetchIn, progress: &Progress) -> Result<FetchOut, String> {
    let actions = books(w)?;
    let url = validate::url(&a.url)?.to_string();
    if a.max_sats > wallet_bsv::amount::MAX_SATOSHIS {
        return Err("max_sats is more than there are satoshis".into());
    }
    let method = a.method.as_deref().unwrap_or(if a.body.is_some() { "POST" } else { "GET" }).to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
        return Err(format!("method must be GET, POST, PUT, PATCH, DELETE or HEAD; got {}", validate::echo(&method)));
    }
    let mut headers = Vec::new();
    for (name, value) in a.headers.unwrap_or_default() {
        validate::text("a header", &value, 8192)?;
        if name.is_empty() || name.len() > 256 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("header name {:?} is not a valid HTTP header name", validate::echo(&name)));
        }
        headers.push((name, value));
    }
    let body = match a.body {
        Some(b) => Some(validate::text("body", &b, 1024 * 1024)?.as_bytes().to_vec()),
        None => None,
    };
    if let Some(b) = &body {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            let json = serde_json::from_slice::<Value>(b).is_ok();
            headers.push(("content-type".into(), if json { "application/json" } else { "text/plain" }.into()));
        }
    }
    // A client per call: its price limit is this call's, and it shows no certificates (a server
    // that asks for some is refused), so a model cannot reveal the wallet's identity attributes.
    let client = AuthClient::new(w.keys.clone())
        .with_payer(Arc::new(ActionsPayer::new(actions.clone())))
        .max_payment_satoshis(a.max_sats)
        .max_response_bytes(FETCH_READ_BYTES);
    let request = AuthRequest { method, headers, body };
    let response =
        with_heartbeat(progress, &format!("requesting {url} as the wallet's identity"), client.fetch(&url, request))
            .await
            .map_err(|e| explain(&e))?;
    let text = String::from_utf8_lossy(&response.body);
    let body_truncated = text.chars().count() > FETCH_BODY_CHARS;
    let body = if body_truncated { text.chars().take(FETCH_BODY_CHARS).collect() } else { text.into_owned() };
    let headers = response
        .headers
        .iter()
        .filter(|(n, _)| !n.to_ascii_lowercase().starts_with("x-bsv-auth"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    Ok(FetchOut {
        status: response.status,
        headers,
        body,
        body_truncated,
        server_identity_key: response.server_identity_key,
        paid: response.payment.map(|p| Paid { satoshis: p.satoshis, txid: p.txid }),
    })
}

fn key_args(protocol: &str, counterparty: &str) -> Value {
    json!({ "protocolID": [2, protocol], "keyID": KEY_ID, "counterparty": counterparty })
}

fn with(mut base: Value, extra: Value) -> Result<Value, String> {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    Ok(base)
}

fn brc100<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("internal error: {e}"))
}

fn counterparty(name: &str, value: Option<&str>, default: &str) -> Result<String, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(default.to_string()),
        Some("anyone") => Ok("anyone".into()),
        Some("self") => Ok("self".into()),
        Some(v) => validate::public_key(name, v),
    }
}

async fn sign(w: &WalletParts, a: SignIn) -> Result<SignOut, String> {
    let message = validate::text("message", &a.message, SMALL_ARGS)?;
    let args = with(key_args(SIGN_PROTOCOL, "anyone"), json!({ "data": message.as_bytes() }))?;
    let signature = w.keys.create_signature(brc100(args)?).await.map_err(|e| explain(&e))?;
    Ok(SignOut {
        signature: hex::encode(signature),
        signer: w.keys.identity_key().to_hex(),
        protocol_id: (2, SIGN_PROTOCOL.into()),
        key_id: KEY_ID.into(),
        verifier: "anyone".into(),
    })
}

/// Checks a `sign_message` signature as anyone can: the signer made it for "anyone" (private key
/// 1), so the shared secret is the signer's identity key itself and nothing secret is needed.
fn verify(w: &WalletParts, a: VerifyIn) -> Result<VerifyOut, String> {
    use wallet_bsv::brc42;
    let message = validate::text("message", &a.message, SMALL_ARGS)?;
    let signature = hex::decode(a.signature.trim()).map_err(|_| "signature must be hex (DER)".to_string())?;
    if signature.len() > 80 {
        return Err("signature is too long for a DER signature".into());
    }
    let signer = match a.signer.as_deref().map(str::trim) {
        None | Some("") => w.keys.identity_key(),
        Some(v) => brc42::parse_public_key(&validate::public_key("signer", v)?).map_err(|e| explain(&e))?,
    };
    let invoice = brc42::invoice_number(2, SIGN_PROTOCOL, KEY_ID).map_err(|e| explain(&e))?;
    let child = brc42::child_public_key(&signer, &brc42::tweak(&signer, &invoice)).map_err(|e| explain(&e))?;
    let digest = wallet_bsv::hash::sha256(message.as_bytes());
    Ok(VerifyOut { valid: wallet_bsv::signature::verify_der(&child, &digest, &signature) })
}

async fn encrypt(w: &WalletParts, a: EncryptIn) -> Result<EncryptOut, String> {
    let plaintext = validate::text("plaintext", &a.plaintext, SMALL_ARGS)?;
    let to = counterparty("counterparty", a.counterparty.as_deref(), "self")?;
    let args = with(key_args(ENCRYPT_PROTOCOL, &to), json!({ "plaintext": plaintext.as_bytes() }))?;
    let ciphertext = w.keys.encrypt(brc100(args)?).await.map_err(|e| explain(&e))?;
    Ok(EncryptOut { ciphertext: hex::encode(ciphertext) })
}

async fn decrypt(w: &WalletParts, a: DecryptIn) -> Result<DecryptOut, String> {
    let ciphertext = validate::text("ciphertext", a.ciphertext.trim(), SMALL_ARGS)?;
    let ciphertext =
        hex::decode(ciphertext).map_err(|_| "ciphertext must be hex, as encrypt returns it".to_string())?;
    let from = counterparty("counterparty", a.counterparty.as_deref(), "self")?;
    let args = with(key_args(ENCRYPT_PROTOCOL, &from), json!({ "ciphertext": ciphertext }))?;
    let plaintext = w.keys.decrypt(brc100(args)?).await.map_err(|e| explain(&e))?;
    Ok(DecryptOut { plaintext: String::from_utf8_lossy(&plaintext).into_owned() })
}

fn identity(w: &WalletParts) -> Result<&Arc<wallet_brc100::identity::Identity>, String> {
    w.identity.as_ref().ok_or_else(|| "this wallet was started without its identity methods".into())
}

async fn certificates(w: &WalletParts, a: CertificatesIn) -> Result<CertificatesOut, String> {
    let (limit, offset) = page(a.limit, a.offset)?;
    if a.certifiers.len() > 100 || a.types.len() > 100 {
        return Err("certifiers and types: at most 100 each".into());
    }
    let args = ListCertificatesArgs {
        certifiers: a.certifiers,
        types: a.types,
        limit: Some(limit),
        offset: Some(offset),
        privileged: None,
        privileged_reason: None,
    };
    let r = identity(w)?.list_certificates(args).await.map_err(|e| explain(&e))?;
    // The master keyring stays in the wallet: only what identifies a certificate goes out.
    Ok(CertificatesOut {
        total: r.total_certificates,
        certificates: r
            .certificates
            .into_iter()
            .map(|c| CertificateOut {
                cert_type: c.certificate.cert_type,
                serial_number: c.certificate.serial_number,
                certifier: c.certificate.certifier,
                subject: c.certificate.subject,
                fields: c.certificate.fields.into_keys().collect(),
            })
            .collect(),
    })
}

async fn prove(w: &WalletParts, a: ProveIn) -> Result<ProveOut, String> {
    validate::text("serial_number", &a.serial_number, 100)?;
    if a.fields_to_reveal.is_empty() || a.fields_to_reveal.len() > 100 {
        return Err("fields_to_reveal: name 1 to 100 fields".into());
    }
    let verifier = counterparty("verifier", Some(&a.verifier), "anyone")?;
    let id = identity(w)?;
    let found = id
        .list_certificates(ListCertificatesArgs { limit: Some(1000), ..Default::default() })
        .await
        .map_err(|e| explain(&e))?
        .certificates
        .into_iter()
        .find(|c| c.certificate.serial_number == a.serial_number)
        .ok_or_else(|| {
            format!("no certificate with serial number {}; see list_certificates", validate::echo(&a.serial_number))
        })?;
    let args: ProveCertificateArgs = brc100(json!({
        "certificate": { "serialNumber": a.serial_number, "certifier": found.certificate.certifier, "type": found.certificate.cert_type },
        "fieldsToReveal": a.fields_to_reveal,
        "verifier": verifier,
    }))?;
    let r = id.prove_certificate(args).await.map_err(|e| explain(&e))?;
    Ok(ProveOut {
        certificate: serde_json::to_value(&found.certificate).map_err(|e| format!("internal error: {e}"))?,
        keyring_for_verifier: r.keyring_for_verifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let tools = list();
        assert_eq!(tools.len(), NAMES.len());
        for (t, name) in tools.iter().zip(NAMES) {
            assert_eq!(t.name, name);
            assert_eq!(t.input_schema.get("type"), Some(&json!("object")), "{name}");
            assert!(t.output_schema.is_some(), "{name}");
            assert!(t.description.as_ref().is_some_and(|d| d.len() > 40), "{name}");
        }
        let pay = tools.iter().find(|t| t.name == "pay").unwrap();
        let required = pay.input_schema["required"].as_array().unwrap();
        for field in ["to", "satoshis", "description", "idempotency_key"] {
            assert!(required.contains(&json!(field)), "{field}");
        }
    }

    #[test]
    fn pay_labels_are_valid_labels_and_bind_the_terms() {
        let to = wallet_bsv::Script::new(vec![0x51]);
        let (k, t) = pay_labels("invoice 42", &to, 1000);
        assert!(k.len() <= 300 && k == k.to_lowercase());
        assert_eq!(pay_labels("invoice 42", &to, 1000), (k.clone(), t.clone()));
        assert_ne!(pay_labels("invoice 42", &to, 1001).1, t);
        assert_ne!(pay_labels("invoice 43", &to, 1000).0, k);
    }
}
