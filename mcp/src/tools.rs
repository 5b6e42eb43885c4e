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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReceiveIn {
    /// The UTC day (YYYY-MM-DD) whose address to give; default today. An earlier day gives back
    /// the address and remittance receive_info gave that day.
    #[serde(default)]
    date: Option<String>,
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
    /// The UTC day the address belongs to: the address changes daily, and receive_info with this
    /// date gives the same address and remittance again.
    address_date: String,
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
    /// The most this request may pay, in satoshis (0: pay nothing; at most the wallet's cap, 1000
    /// unless its operator set another). A server asking more is refused before anything is paid.
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
pub(crate) struct ProveIn {
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
    use rmcp::handler::server::tool::{schema_for_output, schema_for_type};
    Tool::new(name, description, portable(&schema_for_type::<I>()))
        .with_raw_output_schema(portable(&schema_for_output::<O>()))
        .with_annotations(annotations)
}

/// The schema without schemars' Rust-only number formats (`uint16`, `uint64`, `int64`, ...),
/// which JSON Schema does not define and clients' validators warn about; `minimum` still says
/// what an unsigned integer allows.
fn portable(schema: &Map<String, Value>) -> Arc<Map<String, Value>> {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                let rust_only = o
                    .get("format")
                    .and_then(Value::as_str)
                    .is_some_and(|f| ["int", "uint", "float", "double"].iter().any(|p| f.starts_with(p)));
                if rust_only {
                    o.remove("format");
                }
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = Value::Object(schema.clone());
    strip(&mut v);
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(Map::new()),
    }
}

fn reads() -> ToolAnnotations {
    ToolAnnotations::new().read_only(true).destructive(false).open_world(false)
}

pub(crate) const NAMES: [&str; 14] = [
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
        tool::<ReceiveIn, ReceiveOut>(
            "receive_info",
            "What a sender needs to pay this wallet: its identity key and the BRC-29 derivation a BSV wallet uses, or \
             a plain address (a new one each UTC day) with the values to hand internalize_payment once that address \
             is paid. Give a date to get an earlier day's address and values again.",
            reads(),
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

/// A tool call whose arguments were read and checked. Everything that needs no wallet is refused
/// here, at once, so a malformed call does not wait for a wallet that is still starting.
pub(crate) enum Call {
    Status,
    Balance,
    Receive(Option<Day>),
    Internalize(Internalize),
    Pay(Pay),
    History { limit: u32, offset: u32 },
    Outputs(ListOutputsArgs),
    Fetch(Fetch),
    Sign(String),
    Verify(Verify),
    Encrypt { plaintext: String, counterparty: String },
    Decrypt { ciphertext: Vec<u8>, counterparty: String },
    Certificates(ListCertificatesArgs),
    Prove(ProveIn),
}

fn out<T: Serialize>(v: T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("internal error: {e}"))
}

fn small<T: DeserializeOwned>(a: Map<String, Value>) -> Result<T, String> {
    validate::args(a, SMALL_ARGS)
}

impl Call {
    /// Reads and checks the arguments of tool `name`. `Err` is the tool error's text.
    pub(crate) fn parse(name: &str, arguments: Map<String, Value>) -> Result<Self, String> {
        Ok(match name {
            "wallet_status" => small::<NoArgs>(arguments).map(|_| Call::Status)?,
            "get_balance" => small::<NoArgs>(arguments).map(|_| Call::Balance)?,
            "receive_info" => {
                let a: ReceiveIn = small(arguments)?;
                Call::Receive(a.date.as_deref().map(Day::parse).transpose()?)
            }
            "internalize_payment" => Call::Internalize(Internalize::check(validate::args(arguments, BEEF_ARGS)?)?),
            "pay" => Call::Pay(Pay::check(small(arguments)?)?),
            "list_history" => {
                let a: PageIn = small(arguments)?;
                let (limit, offset) = page(a.limit, a.offset)?;
                Call::History { limit, offset }
            }
            "list_outputs" => Call::Outputs(outputs_args(small(arguments)?)?),
            "fetch" => Call::Fetch(Fetch::check(validate::args(arguments, FETCH_ARGS)?)?),
            "sign_message" => Call::Sign(small::<SignIn>(arguments)?.message),
            "verify_message" => Call::Verify(Verify::check(small(arguments)?)?),
            "encrypt" => {
                let a: EncryptIn = small(arguments)?;
                let counterparty = counterparty("counterparty", a.counterparty.as_deref(), "self")?;
                Call::Encrypt { plaintext: a.plaintext, counterparty }
            }
            "decrypt" => {
                let a: DecryptIn = small(arguments)?;
                let ciphertext = hex::decode(a.ciphertext.trim())
                    .map_err(|_| "ciphertext must be hex, as encrypt returns it".to_string())?;
                let counterparty = counterparty("counterparty", a.counterparty.as_deref(), "self")?;
                Call::Decrypt { ciphertext, counterparty }
            }
            "list_certificates" => Call::Certificates(certificates_args(small(arguments)?)?),
            "prove_certificate" => {
                let mut a: ProveIn = small(arguments)?;
                validate::text("serial_number", &a.serial_number, 100)?;
                if a.fields_to_reveal.is_empty() || a.fields_to_reveal.len() > 100 {
                    return Err("fields_to_reveal: name 1 to 100 fields".into());
                }
                a.verifier = counterparty("verifier", Some(&a.verifier), "anyone")?;
                Call::Prove(a)
            }
            _ => return Err(format!("no tool named {:?}", validate::echo(name))),
        })
    }

    /// Whether the operator's limits allow the call: what one `fetch` may pay and the hosts it
    /// may reach (empty: any). Checked before the call waits for the wallet.
    pub(crate) fn permitted(&self, fetch_cap: u64, fetch_hosts: &[String]) -> Result<(), String> {
        let Call::Fetch(a) = self else { return Ok(()) };
        if a.max_sats > fetch_cap {
            return Err(format!(
                "max_sats ({}) is above what this wallet lets one fetch pay ({fetch_cap} satoshis). Call again with \
                 max_sats at most {fetch_cap}; only the wallet's operator can raise the cap (mpc-wallet mcp \
                 --max-fetch-sats)",
                a.max_sats
            ));
        }
        let host = validate::host_of(&a.url);
        let allowed = fetch_hosts.is_empty()
            || fetch_hosts.iter().any(|p| match p.strip_prefix("*.") {
                Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => host == *p,
            });
        if !allowed {
            return Err(format!(
                "this wallet may fetch only from {}; {} is not among them. Only the wallet's operator can add a host \
                 (mpc-wallet mcp --fetch-hosts)",
                fetch_hosts.join(", "),
                validate::echo(&host)
            ));
        }
        Ok(())
    }

    /// What the call asks, for the operator's log: amounts, destinations, URLs (credentials
    /// redacted) and what is revealed to whom; never a body, a plaintext or a message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Call::Status => "wallet_status".into(),
            Call::Balance => "get_balance".into(),
            Call::Receive(day) => format!("receive_info {}", day.as_ref().map_or("today", |d| d.0.as_str())),
            Call::Internalize(a) => format!("internalize_payment {} output {}", a.txid, a.output_index),
            Call::Pay(a) => format!("pay {} satoshis to script {} ({:?})", a.satoshis, a.to.to_hex(), a.description),
            Call::History { limit, offset } => format!("list_history limit {limit} offset {offset}"),
            Call::Outputs(a) => format!("list_outputs basket {:?}", a.basket),
            Call::Fetch(a) => format!(
                "fetch {} {} paying at most {} satoshis",
                a.request.method,
                wallet_traits::redact_url(a.url.as_str()),
                a.max_sats
            ),
            Call::Sign(m) => format!("sign_message ({} bytes)", m.len()),
            Call::Verify(_) => "verify_message".into(),
            Call::Encrypt { counterparty, .. } => format!("encrypt for {counterparty}"),
            Call::Decrypt { counterparty, .. } => format!("decrypt from {counterparty}"),
            Call::Certificates(_) => "list_certificates".into(),
            Call::Prove(a) => {
                format!("prove_certificate {} revealing {:?} to {}", a.serial_number, a.fields_to_reveal, a.verifier)
            }
        }
    }

    /// Runs the call on the wallet. `Err` is the tool error's text, for the model.
    pub(crate) async fn run(self, server: &WalletMcp, w: &WalletParts, progress: &Progress) -> Result<Value, String> {
        match self {
            Call::Status => out(status(w).await?),
            Call::Balance => out(balance(w).await?),
            Call::Receive(day) => out(receive_info(w, day.unwrap_or_else(Day::today)).await?),
            Call::Internalize(a) => out(internalize(w, a, progress).await?),
            Call::Pay(a) => out(pay(server, w, a, progress).await?),
            Call::History { limit, offset } => out(history(w, limit, offset).await?),
            Call::Outputs(args) => out(outputs(w, args).await?),
            Call::Fetch(a) => out(fetch(w, a, progress).await?),
            Call::Sign(message) => out(sign(w, &message).await?),
            Call::Verify(a) => out(verify(w, a)?),
            Call::Encrypt { plaintext, counterparty } => out(encrypt(w, &plaintext, &counterparty).await?),
            Call::Decrypt { ciphertext, counterparty } => out(decrypt(w, ciphertext, &counterparty).await?),
            Call::Certificates(args) => out(certificates(w, args).await?),
            Call::Prove(a) => out(prove(w, a).await?),
        }
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

/// A UTC calendar day, `YYYY-MM-DD`. `receive_info`'s address is derived from the day, so the
/// day alone gives back the remittance of any address it handed out: nothing paid to one is lost
/// when a model forgets what it was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Day(String);

impl Day {
    fn today() -> Self {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
        Day(format!("{y:04}-{m:02}-{d:02}"))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let refuse = || format!("date ({}) must be a day as YYYY-MM-DD, such as 2026-12-07", validate::echo(text));
        let t = text.trim();
        let parts: Vec<&str> = t.split('-').collect();
        let [y, m, d] = parts[..] else { return Err(refuse()) };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 || !t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return Err(refuse());
        }
        let (y, m, d): (i64, i64, i64) =
            (y.parse().map_err(|_| refuse())?, m.parse().map_err(|_| refuse())?, d.parse().map_err(|_| refuse())?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || civil_from_days(days_from_civil(y, m, d)) != (y, m, d) {
            return Err(refuse());
        }
        Ok(Day(t.to_string()))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// The BRC-29 derivation of `receive_info`'s address on `day`: a fixed prefix and the day.
fn receive_derivation(day: &Day) -> (String, String) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    (b64(b"mcp receive"), b64(day.0.as_bytes()))
}

async fn receive_info(w: &WalletParts, day: Day) -> Result<ReceiveOut, String> {
    let (prefix, suffix) = receive_derivation(&day);
    let key_id = wallet_bsv::brc29::key_id(&prefix, &suffix);
    let identity_key = w.keys.identity_key().to_hex();
    // The wallet's BRC-29 key with itself as the sender: the key hangs on an ECDH secret only
    // the wallet can compute, so nobody else can tie the address to its identity, and the
    // remittance (this prefix, this suffix, the wallet's own identity key) is always its own.
    let args = serde_json::from_value(json!({
        "protocolID": [wallet_bsv::brc29::SECURITY_LEVEL, wallet_bsv::brc29::PROTOCOL_NAME],
        "keyID": key_id,
        "counterparty": identity_key,
        "forSelf": true,
    }))
    .map_err(|e| format!("internal error: {e}"))?;
    let key = w.keys.get_public_key(args).await.map_err(|e| explain(&e))?;
    let key = hex::decode(&key.public_key).map_err(|e| format!("internal error: {e}"))?;
    let address = wallet_bsv::address::p2pkh_address(&wallet_bsv::hash::hash160(&key), w.keys.network());
    Ok(ReceiveOut {
        instructions: format!(
            "A BSV wallet pays this wallet with BRC-29: it pays P2PKH to the key derived with protocol [2, \"{}\"], key \
             id \"<derivation prefix> <derivation suffix>\" and counterparty {identity_key}, then hands over the \
             transaction's Atomic BEEF with the prefix, suffix and its identity key, which go to internalize_payment. \
             Any other sender can pay the address {address} (this wallet's address for {day}, UTC); then call \
             internalize_payment with that transaction's Atomic BEEF and address_remittance. receive_info with \
             date {day} gives the same remittance again.",
            wallet_bsv::brc29::PROTOCOL_NAME,
            day = day.0,
        ),
        identity_key: identity_key.clone(),
        network: w.keys.network().to_string(),
        brc29_protocol: (2, wallet_bsv::brc29::PROTOCOL_NAME.into()),
        brc29_key_id: "<derivation prefix> <derivation suffix>".into(),
        address,
        address_date: day.0,
        address_remittance: Remittance {
            derivation_prefix: prefix,
            derivation_suffix: suffix,
            sender_identity_key: identity_key,
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

/// `internalize_payment`'s arguments, checked.
pub(crate) struct Internalize {
    beef: Vec<u8>,
    txid: String,
    output_index: u32,
    remittance: WalletPayment,
    description: String,
}

impl Internalize {
    fn check(a: InternalizeIn) -> Result<Self, String> {
        let beef = hex::decode(a.beef.trim())
            .map_err(|_| "beef must be the Atomic BEEF in hex (an even number of 0-9a-f characters)".to_string())?;
        let txid = wallet_bsv::AtomicBeef::from_bytes(&beef)
            .map(|b| b.subject.to_string())
            .map_err(|e| format!("beef is not an Atomic BEEF (BRC-95): {}", e.message()))?;
        let sender = validate::public_key("sender_identity_key", &a.sender_identity_key)?;
        for (name, v) in [("derivation_prefix", &a.derivation_prefix), ("derivation_suffix", &a.derivation_suffix)] {
            validate::text(name, v, 100)?;
        }
        Ok(Internalize {
            beef,
            txid,
            output_index: a.output_index,
            remittance: WalletPayment {
                derivation_prefix: a.derivation_prefix,
                derivation_suffix: a.derivation_suffix,
                sender_identity_key: sender,
            },
            description: description(a.description.as_deref(), "payment received (mcp)")?,
        })
    }
}

async fn internalize(w: &WalletParts, a: Internalize, progress: &Progress) -> Result<InternalizeOut, String> {
    let actions = books(w)?;
    let args = InternalizeActionArgs {
        tx: a.beef,
        outputs: vec![InternalizeOutput {
            output_index: a.output_index,
            protocol: "wallet payment".into(),
            payment_remittance: Some(a.remittance),
            insertion_remittance: None,
        }],
        description: a.description,
        ..Default::default()
    };
    let accepted = with_heartbeat(
        progress,
        "checking the payment's proofs and scripts, broadcasting it if it is new",
        actions.internalize_action(args),
    )
    .await
    .map_err(|e| explain(&e))?;
    Ok(InternalizeOut { accepted, txid: a.txid })
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

/// The live action recorded under `label`, if any.
async fn paid_under(actions: &Actions, label: &str) -> Result<Option<wallet_traits::ActionRecord>, String> {
    let query = ActionQuery {
        labels: vec![label.to_string()],
        label_mode: QueryMode::Any,
        // A failed action paid nothing, so its key may pay.
        statuses: wallet_brc100::actions::LISTED.to_vec(),
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
/// `pay`'s arguments, checked; `network` is the network of an address (a script has none).
pub(crate) struct Pay {
    key: String,
    satoshis: u64,
    to: wallet_bsv::Script,
    network: Option<wallet_bsv::Network>,
    description: String,
}

impl Pay {
    fn check(a: PayIn) -> Result<Self, String> {
        let key = a.idempotency_key.trim();
        if key.is_empty() || key.chars().count() > 128 || key.chars().any(char::is_control) {
            return Err("idempotency_key must be 1 to 128 printable characters, unique to this intended payment".into());
        }
        let (network, to) = validate::destination(&a.to)?;
        Ok(Pay {
            key: key.to_string(),
            satoshis: validate::satoshis("satoshis", a.satoshis)?,
            to,
            network,
            description: description(Some(&a.description), "")?,
        })
    }
}

async fn pay(server: &WalletMcp, w: &WalletParts, a: Pay, progress: &Progress) -> Result<PayOut, String> {
    let actions = books(w)?;
    let ours = w.keys.network();
    if let Some(theirs) = a.network.filter(|n| *n != ours) {
        return Err(format!(
            "`to` is a {theirs} address and this wallet is on {ours}: paying it would send the satoshis where \
             nobody on {theirs} can see them. Ask for a {ours} address"
        ));
    }
    let Pay { key, satoshis, to: script, description, .. } = a;
    let (key_label, terms_label) = pay_labels(&key, &script, satoshis);
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

/// The newest first: a model asking what happened wants the latest, whatever the history's length.
async fn history(w: &WalletParts, limit: u32, offset: u32) -> Result<HistoryOut, String> {
    let actions = books(w)?;
    let list = |limit, offset| {
        actions.list_actions(ListActionsArgs { limit: Some(limit), offset: Some(offset), ..Default::default() })
    };
    let total = list(1, 0).await.map_err(|e| explain(&e))?.total_actions;
    // The store pages oldest first: the page `offset` back from the end, reversed.
    let end = total.saturating_sub(u64::from(offset));
    let start = end.saturating_sub(u64::from(limit));
    let mut transactions = Vec::new();
    if end > start {
        let (count, from) = (u32::try_from(end - start).unwrap_or(limit), u32::try_from(start).unwrap_or(u32::MAX));
        let r = list(count, from).await.map_err(|e| explain(&e))?;
        transactions = r
            .actions
            .into_iter()
            .rev()
            .map(|a| HistoryEntry {
                txid: a.txid,
                satoshis: a.satoshis,
                status: a.status.as_str().to_string(),
                outgoing: a.is_outgoing,
                description: a.description,
            })
            .collect();
    }
    Ok(HistoryOut { total, transactions })
}

fn outputs_args(a: OutputsIn) -> Result<ListOutputsArgs, String> {
    let (limit, offset) = page(a.limit, a.offset)?;
    if let Some(tags) = &a.tags {
        if tags.len() > 32 || tags.iter().any(|t| t.len() > 300) {
            return Err("tags: at most 32, each at most 300 characters".into());
        }
    }
    let basket = a.basket.unwrap_or_else(|| CHANGE_BASKET.into());
    validate::text("basket", &basket, 300)?;
    Ok(ListOutputsArgs {
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
    })
}

async fn outputs(w: &WalletParts, args: ListOutputsArgs) -> Result<OutputsOut, String> {
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

/// `fetch`'s arguments, checked.
pub(crate) struct Fetch {
    url: url::Url,
    request: AuthRequest,
    max_sats: u64,
}

impl Fetch {
    fn check(a: FetchIn) -> Result<Self, String> {
        let url = validate::url(&a.url)?;
        if a.max_sats > wallet_bsv::amount::MAX_SATOSHIS {
            return Err("max_sats is more than there are satoshis".into());
        }
        let method = a.method.as_deref().unwrap_or(if a.body.is_some() { "POST" } else { "GET" }).to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
            return Err(format!(
                "method must be GET, POST, PUT, PATCH, DELETE or HEAD; got {}",
                validate::echo(&method)
            ));
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
        Ok(Fetch { url, request: AuthRequest { method, headers, body }, max_sats: a.max_sats })
    }
}

async fn fetch(w: &WalletParts, a: Fetch, progress: &Progress) -> Result<FetchOut, String> {
    let actions = books(w)?;
    let Fetch { url, request, max_sats } = a;
    // A client per call: its price limit is this call's, and it shows no certificates (a server
    // that asks for some is refused), so a model cannot reveal the wallet's identity attributes.
    let client = AuthClient::new(w.keys.clone())
        .with_payer(Arc::new(ActionsPayer::new(actions.clone())))
        .max_payment_satoshis(max_sats)
        .max_response_bytes(FETCH_READ_BYTES);
    let response = with_heartbeat(
        progress,
        &format!("requesting {} as the wallet's identity", wallet_traits::redact_url(url.as_str())),
        client.fetch(url.as_str(), request),
    )
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

async fn sign(w: &WalletParts, message: &str) -> Result<SignOut, String> {
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

/// `verify_message`'s arguments, checked; no signer means this wallet.
pub(crate) struct Verify {
    message: String,
    signature: Vec<u8>,
    signer: Option<wallet_traits::PublicKey>,
}

impl Verify {
    fn check(a: VerifyIn) -> Result<Self, String> {
        let signature = hex::decode(a.signature.trim()).map_err(|_| "signature must be hex (DER)".to_string())?;
        if signature.len() > 80 {
            return Err("signature is too long for a DER signature".into());
        }
        let signer = match a.signer.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(
                wallet_bsv::brc42::parse_public_key(&validate::public_key("signer", v)?)
                    .map_err(|_| "signer is not a point on the curve: send the signer's identity key".to_string())?,
            ),
        };
        Ok(Verify { message: a.message, signature, signer })
    }
}

/// Checks a `sign_message` signature as anyone can: the signer made it for "anyone" (private key
/// 1), so the shared secret is the signer's identity key itself and nothing secret is needed.
fn verify(w: &WalletParts, a: Verify) -> Result<VerifyOut, String> {
    use wallet_bsv::brc42;
    let signer = a.signer.unwrap_or_else(|| w.keys.identity_key());
    let invoice = brc42::invoice_number(2, SIGN_PROTOCOL, KEY_ID).map_err(|e| explain(&e))?;
    let child = brc42::child_public_key(&signer, &brc42::tweak(&signer, &invoice)).map_err(|e| explain(&e))?;
    let digest = wallet_bsv::hash::sha256(a.message.as_bytes());
    Ok(VerifyOut { valid: wallet_bsv::signature::verify_der(&child, &digest, &a.signature) })
}

async fn encrypt(w: &WalletParts, plaintext: &str, to: &str) -> Result<EncryptOut, String> {
    let args = with(key_args(ENCRYPT_PROTOCOL, to), json!({ "plaintext": plaintext.as_bytes() }))?;
    let ciphertext = w.keys.encrypt(brc100(args)?).await.map_err(|e| explain(&e))?;
    Ok(EncryptOut { ciphertext: hex::encode(ciphertext) })
}

async fn decrypt(w: &WalletParts, ciphertext: Vec<u8>, from: &str) -> Result<DecryptOut, String> {
    let args = with(key_args(ENCRYPT_PROTOCOL, from), json!({ "ciphertext": ciphertext }))?;
    let plaintext = w.keys.decrypt(brc100(args)?).await.map_err(|e| explain(&e))?;
    Ok(DecryptOut { plaintext: String::from_utf8_lossy(&plaintext).into_owned() })
}

fn identity(w: &WalletParts) -> Result<&Arc<wallet_brc100::identity::Identity>, String> {
    w.identity.as_ref().ok_or_else(|| "this wallet was started without its identity methods".into())
}

fn certificates_args(a: CertificatesIn) -> Result<ListCertificatesArgs, String> {
    let (limit, offset) = page(a.limit, a.offset)?;
    if a.certifiers.len() > 100 || a.types.len() > 100 {
        return Err("certifiers and types: at most 100 each".into());
    }
    Ok(ListCertificatesArgs {
        certifiers: a.certifiers,
        types: a.types,
        limit: Some(limit),
        offset: Some(offset),
        privileged: None,
        privileged_reason: None,
    })
}

async fn certificates(w: &WalletParts, args: ListCertificatesArgs) -> Result<CertificatesOut, String> {
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
        "verifier": a.verifier,
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
            let text = format!("{} {}", Value::Object((*t.input_schema).clone()), json!(t.output_schema));
            assert!(!text.contains("\"format\":\"uint") && !text.contains("\"format\":\"int"), "{name}: {text}");
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

    #[test]
    fn days_are_dates_and_bad_dates_are_refused() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(20_429), (2025, 12, 7));
        for z in -1000..100_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(Day::parse(" 2024-02-29 ").unwrap(), Day("2024-02-29".into()));
        for bad in ["2023-02-29", "2026-13-01", "2026-00-10", "26-12-07", "2026-12-7", "2026-12-07x", "+026-12-07", ""]
        {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        assert!(Day::parse(&Day::today().0).is_ok());
        let (p, s) = receive_derivation(&Day("2026-12-07".into()));
        assert_ne!(p, s);
        assert_eq!(receive_derivation(&Day("2026-12-07".into())), (p, s));
    }

    #[test]
    fn fetch_is_held_to_the_operators_cap_and_hosts() {
        let call = |url: &str, max: u64| {
            let args = json!({ "url": url, "max_sats": max });
            Call::parse("fetch", args.as_object().unwrap().clone()).unwrap()
        };
        let hosts = vec!["api.example.com".to_string(), "*.good.example".to_string()];
        assert!(call("https://api.example.com/x", 10).permitted(1000, &hosts).is_ok());
        assert!(call("https://a.b.good.example/x", 10).permitted(1000, &hosts).is_ok());
        for bad in [
            "https://good.example/",
            "https://evilgood.example/",
            "http://127.0.0.1/",
            "http://inside.lan\\@api.example.com/",
        ] {
            assert!(call(bad, 10).permitted(1000, &hosts).unwrap_err().contains("may fetch only from"), "{bad}");
        }
        assert!(call("http://127.0.0.1/", 10).permitted(1000, &[]).is_ok());
        assert!(call("https://api.example.com/", 1001)
            .permitted(1000, &hosts)
            .unwrap_err()
            .contains("--max-fetch-sats"));
        assert!(call("https://api.example.com/", 1001).permitted(5000, &hosts).is_ok());
    }
}
