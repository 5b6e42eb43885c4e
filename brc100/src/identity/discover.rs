//! `discoverByIdentityKey` and `discoverByAttributes`: identity certificates published on an
//! overlay (`ls_identity`), checked and filtered by the certifiers the wallet trusts, as
//! @bsv/wallet-toolbox 2.1.26 does (`Wallet.discoverBy*`, `identityUtils.ts`).
//!
//! The path: validate the arguments as @bsv/sdk's `validateDiscoverBy*`; ask the overlay through
//! [`Lookup`] with the toolbox's query (`{identityKey | attributes, certifiers}`, the trusted
//! certifiers' keys sorted); read each output as the toolbox's `parseResults` does (the BEEF's
//! transaction, its PushDrop output, field 0 as a certificate's JSON with a keyring revealed to
//! "anyone"), keeping only certificates whose signature verifies and whose keyring opens; then
//! group by subject, keep the subjects whose certifiers' trust reaches the trust level and order
//! by trust (`transformVerifiableCertificatesWithTrust`). Lookups are cached two minutes, as the
//! toolbox caches them.
//!
//! Everything from the overlay is hostile: a token that does not parse, verify or open is dropped
//! (not an error), at most [`MAX_OUTPUTS`] outputs are read and a certificate's JSON is at most
//! [`MAX_CERTIFICATE_JSON`] bytes.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wallet_bsv::{
    beef::ATOMIC_BEEF,
    brc42,
    certificate::{check_field_name, Certificate},
    encoding::locale_compare,
    pushdrop::{self, LockPosition},
    AtomicBeef, Beef, BeefTx, Transaction,
};
use wallet_traits::{Error, ErrorKind, Result};

use super::{invalid, VerifiableCertificate};

/// The overlay lookup service of identity tokens.
pub const LOOKUP_SERVICE: &str = "ls_identity";
/// The most outputs of one lookup answer read; the rest are ignored.
pub const MAX_OUTPUTS: usize = 1000;
/// The largest certificate JSON an identity token may carry.
pub const MAX_CERTIFICATE_JSON: usize = 128 * 1024;
/// How long a lookup's answer is reused, as the toolbox's cache.
pub const CACHE_TTL: Duration = Duration::from_secs(120);
/// The most lookups cached at once.
pub const CACHE_ENTRIES: usize = 256;
/// The most certificate JSON the cache holds, all entries together; an answer larger than this
/// is not cached.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// The trust a subject's certificates must add up to when `MPC_TRUST_LEVEL` is unset (the
/// toolbox's default settings).
pub const DEFAULT_TRUST_LEVEL: u32 = 2;
/// The trust a certifier may be given (`PositiveIntegerMax10`).
pub const MAX_TRUST: u32 = 10;

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 10_000;
const MAX_NAME_BYTES: usize = 100;

/// One output of a lookup answer: the BEEF of its transaction and its index there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupOutput {
    /// The BEEF (V1, V2 or Atomic) holding the output's transaction.
    pub beef: Vec<u8>,
    /// The output's index in that transaction.
    pub output_index: u32,
}

/// An overlay's lookup service (the toolbox's `LookupResolver`), implemented over HTTP by
/// `wallet-service-overlay`.
#[async_trait]
pub trait Lookup: Send + Sync + Debug {
    /// Asks `service` with `query`; the outputs of an `output-list` answer (none for another
    /// kind of answer). An overlay that cannot be reached or answers garbage is an error of kind
    /// [`ErrorKind::ServiceUnavailable`].
    async fn lookup(&self, service: &str, query: Value) -> Result<Vec<LookupOutput>>;
}

/// A certifier the wallet trusts, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCertifier {
    /// Its identity key, compressed hex, lower case.
    pub identity_key: String,
    /// Its name, shown in `certifierInfo`.
    pub name: String,
    /// The trust its certificates earn, 1 to 10.
    pub trust: u32,
    /// Its icon, shown in `certifierInfo` (empty when unknown, as the toolbox shows it).
    pub icon_url: Option<String>,
    /// What it certifies, shown in `certifierInfo` when known.
    pub description: Option<String>,
}

/// Which certifiers count, and how much trust a subject's certificates must add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSettings {
    /// The certifiers the wallet trusts.
    pub trusted_certifiers: Vec<TrustedCertifier>,
    /// The trust a discovered identity needs.
    pub trust_level: u32,
}

impl Default for TrustSettings {
    /// The toolbox's `DEFAULT_SETTINGS.trustSettings`: Metanet Trust Services (4) and SocialCert
    /// (3), trust level 2.
    fn default() -> Self {
        Self { trusted_certifiers: default_certifiers(), trust_level: DEFAULT_TRUST_LEVEL }
    }
}

fn default_certifiers() -> Vec<TrustedCertifier> {
    vec![
        TrustedCertifier {
            identity_key: "03daf815fe38f83da0ad83b5bedc520aa488aef5cbc93a93c67a7fe60406cbffe8".into(),
            name: "Metanet Trust Services".into(),
            trust: 4,
            icon_url: Some("https://bsvblockchain.org/favicon.ico".into()),
            description: Some("Registry for protocols, baskets, and certificates types".into()),
        },
        TrustedCertifier {
            identity_key: "02cf6cdf466951d8dfc9e7c9367511d0007ed6fba35ed42d425cc412fd6cfd4a17".into(),
            name: "SocialCert".into(),
            trust: 3,
            icon_url: Some("https://socialcert.net/favicon.ico".into()),
            description: Some("Certifies social media handles, phone numbers and emails".into()),
        },
    ]
}

fn config_error(variable: &'static str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, format!("{variable} is invalid: {why}")).with_context("variable", variable)
}

impl TrustSettings {
    /// Trust settings from `MPC_TRUSTED_CERTIFIERS` (comma-separated `pubkeyhex:trust:name`,
    /// trust 1 to 10, the name 1 to 100 bytes; unset: the toolbox's two default certifiers) and
    /// `MPC_TRUST_LEVEL` (unset: 2). A certifier of the defaults listed by key keeps its icon and
    /// description. Errors name the variable.
    pub fn parse(certifiers: Option<&str>, level: Option<u32>) -> Result<Self> {
        const VAR: &str = "MPC_TRUSTED_CERTIFIERS";
        let trusted_certifiers = match certifiers {
            None => default_certifiers(),
            Some(list) => {
                let defaults = default_certifiers();
                let mut out: Vec<TrustedCertifier> = Vec::new();
                for (i, entry) in list.split(',').map(str::trim).enumerate() {
                    let n = i + 1;
                    let mut parts = entry.splitn(3, ':');
                    let (Some(key), Some(trust), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                        return Err(config_error(VAR, format!("entry {n} ({entry:?}) is not pubkeyhex:trust:name")));
                    };
                    let key = key.trim().to_ascii_lowercase();
                    if key.len() != 66 || brc42::parse_public_key(&key).is_err() {
                        return Err(config_error(
                            VAR,
                            format!("entry {n}: {key:?} is not a compressed public key in hex (66 characters)"),
                        ));
                    }
                    let trust = match trust.trim().parse::<u32>() {
                        Ok(t) if (1..=MAX_TRUST).contains(&t) => t,
                        _ => {
                            return Err(config_error(
                                VAR,
                                format!("entry {n}: the trust {trust:?} must be a whole number from 1 to {MAX_TRUST}"),
                            ))
                        }
                    };
                    let name = name.trim();
                    if name.is_empty() || name.len() > MAX_NAME_BYTES {
                        return Err(config_error(
                            VAR,
                            format!("entry {n}: the name must be 1 to {MAX_NAME_BYTES} bytes"),
                        ));
                    }
                    if out.iter().any(|c| c.identity_key == key) {
                        return Err(config_error(VAR, format!("entry {n}: {key} is listed twice")));
                    }
                    let known = defaults.iter().find(|d| d.identity_key == key);
                    out.push(TrustedCertifier {
                        identity_key: key,
                        name: name.to_string(),
                        trust,
                        icon_url: known.and_then(|d| d.icon_url.clone()),
                        description: known.and_then(|d| d.description.clone()),
                    });
                }
                out
            }
        };
        let trust_level = level.unwrap_or(DEFAULT_TRUST_LEVEL);
        let most: u32 = trusted_certifiers.iter().map(|c| c.trust).sum();
        if trust_level > most {
            return Err(config_error(
                "MPC_TRUST_LEVEL",
                format!(
                    "{trust_level} is more than the trusted certifiers' trust adds up to ({most}), so no identity could be found; lower it or trust more certifiers in {VAR}"
                ),
            ));
        }
        Ok(Self { trusted_certifiers, trust_level })
    }

    /// The trusted certifiers' keys in JavaScript's `localeCompare` order, as the toolbox puts
    /// them in its query.
    pub fn certifier_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.trusted_certifiers.iter().map(|c| c.identity_key.clone()).collect();
        keys.sort_by(|a, b| locale_compare(a, b));
        keys
    }
}

/// `discoverByIdentityKey` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverByIdentityKeyArgs {
    /// The identity key to find certificates about, 66 hex digits.
    #[serde(default)]
    pub identity_key: String,
    /// 1 to 10000, default 10 (validated as @bsv/sdk does; the toolbox returns every match).
    pub limit: Option<i64>,
    /// At least 0 (validated as @bsv/sdk does; the toolbox returns every match).
    pub offset: Option<i64>,
    /// Accepted; this wallet asks no one.
    pub seek_permission: Option<bool>,
}

/// `discoverByAttributes` arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverByAttributesArgs {
    /// Field name (1 to 50 bytes) → value the certificates must reveal.
    pub attributes: Option<BTreeMap<String, String>>,
    /// 1 to 10000, default 10 (validated as @bsv/sdk does; the toolbox returns every match).
    pub limit: Option<i64>,
    /// At least 0 (validated as @bsv/sdk does; the toolbox returns every match).
    pub offset: Option<i64>,
    /// Accepted; this wallet asks no one.
    pub seek_permission: Option<bool>,
}

/// A certifier as `certifierInfo` shows it (`IdentityCertifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityCertifier {
    /// Its name.
    pub name: String,
    /// Its icon, empty when unknown.
    pub icon_url: String,
    /// What it certifies; absent when unknown, as the toolbox leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The trust its certificates earn.
    pub trust: u32,
}

/// A discovered certificate (`IdentityCertificate`), with the fields the toolbox's object spread
/// carries: the certificate, its `keyring` (the same as `publiclyRevealedKeyring`), the fields it
/// reveals, and its certifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityCertificate {
    /// The certificate as signed.
    #[serde(flatten)]
    pub certificate: Certificate,
    /// The keyring revealed to "anyone".
    pub keyring: BTreeMap<String, String>,
    /// The revealed fields, decrypted.
    pub decrypted_fields: BTreeMap<String, String>,
    /// The keyring revealed to "anyone".
    pub publicly_revealed_keyring: BTreeMap<String, String>,
    /// Who certified it, from the trust settings.
    pub certifier_info: IdentityCertifier,
}

/// `discoverByIdentityKey` and `discoverByAttributes` result (`DiscoverCertificatesResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverCertificatesResult {
    /// How many certificates follow.
    pub total_certificates: u64,
    /// The certificates, most trusted certifier first.
    pub certificates: Vec<IdentityCertificate>,
}

/// A certificate of an identity token whose signature verified and whose keyring opened.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verified {
    /// The size of the token's certificate JSON, what the cache counts.
    size: usize,
    certificate: Certificate,
    keyring: BTreeMap<String, String>,
    decrypted_fields: BTreeMap<String, String>,
}

struct Cached {
    at: Instant,
    bytes: usize,
    certificates: Arc<Vec<Verified>>,
}

/// What the discovery methods ask an overlay with: the lookup, the trust settings and the
/// cache of recent answers.
pub struct Discovery {
    lookup: Arc<dyn Lookup>,
    trust: TrustSettings,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("lookup", &self.lookup).field("trust", &self.trust).finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery over `lookup`, filtered by `trust`.
    pub fn new(lookup: Arc<dyn Lookup>, trust: TrustSettings) -> Arc<Self> {
        Arc::new(Self { lookup, trust, cache: Mutex::new(HashMap::new()) })
    }

    /// The trust settings.
    pub fn trust(&self) -> &TrustSettings {
        &self.trust
    }

    /// The verified certificates of the overlay's answer to `query`, from the cache when it was
    /// asked within [`CACHE_TTL`]. A failed lookup is not cached.
    async fn certificates(&self, method: &str, query: Value) -> Result<Arc<Vec<Verified>>> {
        // serde_json's maps are ordered, so equal queries give equal keys.
        let key = json!({ "fn": method, "query": query }).to_string();
        if let Some(hit) = self.cached(&key) {
            return Ok(hit);
        }
        let outputs = self.lookup.lookup(LOOKUP_SERVICE, query).await?;
        if outputs.len() > MAX_OUTPUTS {
            tracing::warn!(
                outputs = outputs.len(),
                "the overlay answered more outputs than are read; the rest are ignored"
            );
        }
        let certificates = Arc::new(outputs.iter().take(MAX_OUTPUTS).filter_map(read_token).collect::<Vec<_>>());
        self.remember(key, certificates.clone());
        Ok(certificates)
    }

    fn cached(&self, key: &str) -> Option<Arc<Vec<Verified>>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|c| c.at.elapsed() < CACHE_TTL).map(|c| c.certificates.clone())
    }

    /// Keeps an answer, evicting expired entries and then the oldest while the cache is past
    /// [`CACHE_ENTRIES`] or [`CACHE_BYTES`].
    fn remember(&self, key: String, certificates: Arc<Vec<Verified>>) {
        let bytes: usize = certificates.iter().map(|v| v.size).sum();
        if bytes > CACHE_BYTES {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(&key);
        cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
        while cache.len() >= CACHE_ENTRIES || cache.values().map(|c| c.bytes).sum::<usize>() + bytes > CACHE_BYTES {
            let Some(oldest) = cache.iter().min_by_key(|(_, c)| c.at).map(|(k, _)| k.clone()) else { break };
            cache.remove(&oldest);
        }
        cache.insert(key, Cached { at: Instant::now(), bytes, certificates });
    }
}

/// limit 1..=10000 (default 10) and offset >= 0, as `validateInteger` checks them.
fn check_paging(limit: Option<i64>, offset: Option<i64>) -> Result<()> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    if offset.unwrap_or(0) < 0 {
        return Err(invalid("offset", "offset must be 0 or more"));
    }
    Ok(())
}

/// `validateHexString(identityKey, 'identityKey', 66, 66)`: trimmed, lower case.
fn check_identity_key(key: &str) -> Result<String> {
    let key = key.trim().to_ascii_lowercase();
    if key.len() != 66 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("identityKey", "identityKey must be a public key of 66 hex digits"));
    }
    Ok(key)
}

/// The transaction a lookup output's BEEF is about, as `Transaction.fromBEEF` picks it: an
/// Atomic BEEF's subject, else the last transaction.
fn subject_tx(beef: &[u8]) -> Result<Transaction> {
    if beef.get(..4) == Some(&ATOMIC_BEEF.to_le_bytes()[..]) {
        return Ok(AtomicBeef::from_bytes(beef)?.subject_tx().clone());
    }
    match Beef::from_bytes(beef)?.txs.pop() {
        Some(BeefTx::Full { tx, .. }) => Ok(tx),
        _ => Err(Error::new(ErrorKind::InvalidInput, "the BEEF does not end with a whole transaction")),
    }
}

/// One identity token as `parseResults` reads it, or `None` (logged) when it does not parse,
/// its keyring does not open or its signature does not verify.
fn read_token(output: &LookupOutput) -> Option<Verified> {
    match verified_token(output) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(output_index = output.output_index, error = %e, "identity token dropped");
            None
        }
    }
}

fn verified_token(output: &LookupOutput) -> Result<Verified> {
    let bad = |msg: &str| Error::new(ErrorKind::InvalidInput, msg.to_string());
    let tx = subject_tx(&output.beef)?;
    let out = usize::try_from(output.output_index)
        .ok()
        .and_then(|i| tx.outputs.get(i))
        .ok_or_else(|| bad("the output index is past the transaction's outputs"))?;
    let token = pushdrop::decode(&out.locking_script, LockPosition::Before)?;
    let json = token.fields.first().ok_or_else(|| bad("the token has no field"))?;
    if json.len() > MAX_CERTIFICATE_JSON {
        return Err(bad("the certificate's JSON is too large"));
    }
    // `{...certificate, keyring}`: a certificate with its keyring revealed to "anyone".
    let t: VerifiableCertificate =
        serde_json::from_slice(json).map_err(|e| bad(&format!("field 0 is not a certificate's JSON: {e}")))?;
    let certificate = t.certificate;
    certificate.check()?;
    if t.keyring.is_empty() {
        // VerifiableCertificate.decryptFields refuses an empty keyring.
        return Err(bad("the token reveals no field"));
    }
    let decrypted_fields = certificate.decrypt_for_anyone(&t.keyring)?;
    certificate.verify()?;
    Ok(Verified { size: json.len(), certificate, keyring: t.keyring, decrypted_fields })
}

/// `transformVerifiableCertificatesWithTrust`: certificates of trusted certifiers only, grouped by
/// subject in the order subjects first appear; the groups whose certificates' trust adds up to
/// the trust level, most trusted certifier first (a stable sort, so ties keep their order).
fn with_trust<'a>(
    trust: &TrustSettings,
    certificates: impl IntoIterator<Item = &'a Verified>,
) -> DiscoverCertificatesResult {
    let mut groups: Vec<(u64, Vec<IdentityCertificate>)> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for v in certificates {
        let c = &v.certificate;
        let Some(certifier) = trust.trusted_certifiers.iter().find(|t| t.identity_key == c.certifier) else {
            continue;
        };
        let info = IdentityCertifier {
            name: certifier.name.clone(),
            icon_url: certifier.icon_url.clone().unwrap_or_default(),
            description: certifier.description.clone(),
            trust: certifier.trust,
        };
        let i = *group_of.entry(c.subject.as_str()).or_insert_with(|| {
            groups.push((0, Vec::new()));
            groups.len() - 1
        });
        groups[i].0 += u64::from(certifier.trust);
        groups[i].1.push(IdentityCertificate {
            certificate: c.clone(),
            keyring: v.keyring.clone(),
            decrypted_fields: v.decrypted_fields.clone(),
            publicly_revealed_keyring: v.keyring.clone(),
            certifier_info: info,
        });
    }
    let mut out: Vec<IdentityCertificate> = groups
        .into_iter()
        .filter(|(total, _)| *total >= u64::from(trust.trust_level))
        .flat_map(|(_, members)| members)
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.certifier_info.trust));
    DiscoverCertificatesResult { total_certificates: out.len() as u64, certificates: out }
}

impl super::Identity {
    /// `discoverByIdentityKey`: the certificates about `identityKey` that the overlay publishes
    /// and the trusted certifiers vouch for enough.
    pub async fn discover_by_identity_key(
        &self,
        args: DiscoverByIdentityKeyArgs,
    ) -> Result<DiscoverCertificatesResult> {
        let key = check_identity_key(&args.identity_key)?;
        check_paging(args.limit, args.offset)?;
        let discovery = self.discovery()?;
        let query = json!({ "identityKey": key, "certifiers": discovery.trust.certifier_keys() });
        let found = discovery.certificates("discoverByIdentityKey", query).await?;
        // The toolbox returns whatever the overlay answers; a certificate about another key
        // (genuine, but not about this one) is dropped so it cannot be passed off as this key's.
        let about = found.iter().filter(|v| v.certificate.subject.eq_ignore_ascii_case(&key));
        Ok(with_trust(&discovery.trust, about))
    }

    /// `discoverByAttributes`: the certificates revealing these attributes that the overlay
    /// publishes and the trusted certifiers vouch for enough.
    pub async fn discover_by_attributes(&self, args: DiscoverByAttributesArgs) -> Result<DiscoverCertificatesResult> {
        let attributes = args.attributes.ok_or_else(|| invalid("attributes", "attributes is required"))?;
        for name in attributes.keys() {
            check_field_name(name, "attributes")?;
        }
        check_paging(args.limit, args.offset)?;
        let discovery = self.discovery()?;
        let query = json!({ "attributes": attributes, "certifiers": discovery.trust.certifier_keys() });
        let found = discovery.certificates("discoverByAttributes", query).await?;
        Ok(with_trust(&discovery.trust, found.iter()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k256::ecdsa::{signature::hazmat::PrehashSigner, SigningKey};
    use sha2::{Digest, Sha256};
    use wallet_bsv::{
        beef::BeefVersion,
        certificate::{field_key_id, seal_field, FIELD_PROTOCOL, SIGNATURE_PROTOCOL},
        encoding::base64_encode,
        Script, TxInput, TxOutput,
    };
    use wallet_traits::PublicKey;

    use super::*;
    use crate::{identity::Identity, KeyMethods, SingleKey};

    /// A private key and its compressed public key.
    struct Party {
        key: Arc<SingleKey>,
        public: PublicKey,
    }

    fn party(seed: u8) -> Party {
        let key = Arc::new(SingleKey::from_bytes([seed; 32]).unwrap());
        Party { public: key.public_key(), key }
    }

    /// A certificate `certifier` signs for `subject` with `fields`, and the keyring revealing
    /// `reveal` to "anyone" (what the subject's proveCertificate to "anyone" makes).
    fn issue(
        certifier: &Party,
        subject: &Party,
        fields: &[(&str, &str)],
        reveal: &[&str],
    ) -> (Certificate, BTreeMap<String, String>) {
        let serial = base64_encode(&rand::random::<[u8; 32]>());
        let mut sealed = BTreeMap::new();
        let mut keyring = BTreeMap::new();
        for (name, value) in fields {
            let (key, value) = seal_field(value).unwrap();
            sealed.insert(name.to_string(), value);
            if reveal.contains(name) {
                // "anyone" and the subject share the subject's key as their ECDH secret.
                let invoice = brc42::invoice_number(2, FIELD_PROTOCOL, &field_key_id(name, Some(&serial))).unwrap();
                let h = brc42::tweak(&subject.public, &invoice);
                let symmetric =
                    brc42::symmetric_key(&subject.public, &h, &subject.public, &brc42::generator()).unwrap();
                keyring.insert(name.to_string(), base64_encode(&brc42::encrypt(&symmetric, key.as_ref()).unwrap()));
            }
        }
        let mut cert = Certificate {
            cert_type: base64_encode(&[9; 32]),
            serial_number: serial,
            subject: subject.public.to_hex(),
            certifier: certifier.public.to_hex(),
            revocation_outpoint: format!("{}.0", "ab".repeat(32)),
            fields: sealed,
            signature: String::new(),
        };
        // The certifier signs with its child key for counterparty "anyone".
        let invoice = brc42::invoice_number(2, SIGNATURE_PROTOCOL, &cert.signature_key_id()).unwrap();
        let child =
            SigningKey::from_bytes(&certifier.key.derive_child(&brc42::generator(), &invoice).unwrap().into()).unwrap();
        let digest: [u8; 32] = Sha256::digest(cert.to_binary(false).unwrap()).into();
        let sig: k256::ecdsa::Signature = child.sign_prehash(&digest).unwrap();
        cert.signature = hex::encode(sig.to_der().as_bytes());
        cert.verify().unwrap();
        (cert, keyring)
    }

    fn token_json(cert: &Certificate, keyring: &BTreeMap<String, String>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": cert.cert_type, "serialNumber": cert.serial_number, "subject": cert.subject,
            "certifier": cert.certifier, "revocationOutpoint": cert.revocation_outpoint,
            "signature": cert.signature, "fields": cert.fields, "keyring": keyring,
        }))
        .unwrap()
    }

    /// A lookup output: a transaction whose output 1 is a PushDrop token carrying `field0`.
    fn output_with(field0: Vec<u8>, version: BeefVersion) -> LookupOutput {
        let script = pushdrop::lock(&party(77).public, &[field0, vec![0x30; 70]], LockPosition::Before);
        let tx = Transaction {
            version: 1,
            inputs: vec![TxInput { sequence: u32::MAX, ..Default::default() }],
            outputs: vec![
                TxOutput { satoshis: 5, locking_script: Script::p2pkh_lock(&[1; 20]) },
                TxOutput { satoshis: 1, locking_script: script },
            ],
            lock_time: 0,
        };
        let beef = Beef { version, bumps: vec![], txs: vec![BeefTx::Full { tx, bump: None }] };
        LookupOutput { beef: beef.to_bytes().unwrap(), output_index: 1 }
    }

    fn output(cert: &Certificate, keyring: &BTreeMap<String, String>) -> LookupOutput {
        output_with(token_json(cert, keyring), BeefVersion::V2)
    }

    #[derive(Debug, Default)]
    struct Fixed {
        outputs: Vec<LookupOutput>,
        calls: AtomicUsize,
        queries: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl Lookup for Fixed {
        async fn lookup(&self, service: &str, query: Value) -> Result<Vec<LookupOutput>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.queries.lock().unwrap().push((service.to_string(), query));
            Ok(self.outputs.clone())
        }
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl Lookup for Down {
        async fn lookup(&self, _: &str, _: Value) -> Result<Vec<LookupOutput>> {
            Err(Error::new(ErrorKind::ServiceUnavailable, "the overlay at http://x could not be reached"))
        }
    }

    fn certifier(p: &Party, name: &str, trust: u32) -> TrustedCertifier {
        TrustedCertifier {
            identity_key: p.public.to_hex(),
            name: name.into(),
            trust,
            icon_url: None,
            description: None,
        }
    }

    fn identity(lookup: Arc<dyn Lookup>, trust: TrustSettings) -> Identity {
        let key = party(5).key;
        let keys = Arc::new(KeyMethods::new(key.clone(), key, wallet_bsv::Network::Mainnet));
        Identity::new(keys, None).with_discovery(Discovery::new(lookup, trust))
    }

    fn by_key(key: &str) -> DiscoverByIdentityKeyArgs {
        DiscoverByIdentityKeyArgs { identity_key: key.into(), ..Default::default() }
    }

    #[test]
    fn a_good_token_reads_and_opens_only_what_it_reveals() {
        let (a, alice) = (party(1), party(2));
        let (cert, keyring) = issue(&a, &alice, &[("name", "Alice"), ("email", "a@x")], &["name"]);
        for version in [BeefVersion::V1, BeefVersion::V2] {
            let v = read_token(&output_with(token_json(&cert, &keyring), version)).unwrap();
            assert_eq!(v.decrypted_fields, BTreeMap::from([("name".to_string(), "Alice".to_string())]));
            assert_eq!(v.certificate, cert);
        }
        // An Atomic BEEF's subject.
        let plain = output(&cert, &keyring);
        let tx = subject_tx(&plain.beef).unwrap();
        let atomic = AtomicBeef { subject: tx.txid(), beef: Beef::from_bytes(&plain.beef).unwrap() };
        assert!(read_token(&LookupOutput { beef: atomic.to_bytes().unwrap(), output_index: 1 }).is_some());
    }

    #[test]
    fn hostile_tokens_are_dropped() {
        let (a, alice) = (party(1), party(2));
        let (cert, keyring) = issue(&a, &alice, &[("name", "Alice")], &["name"]);
        let mut altered = cert.clone();
        altered.fields.insert("name".into(), seal_field("Mallory").unwrap().1);
        let mut garbled_keyring = keyring.clone();
        garbled_keyring.insert("name".into(), base64_encode(&[1; 80]));
        let good = output(&cert, &keyring);
        let cases: Vec<(&str, LookupOutput)> = vec![
            ("bad signature", output(&altered, &keyring)),
            ("keyring does not open", output(&cert, &garbled_keyring)),
            ("empty keyring", output(&cert, &BTreeMap::new())),
            ("keyring names no field", output(&cert, &BTreeMap::from([("age".to_string(), keyring["name"].clone())]))),
            ("not JSON", output_with(b"{not json".to_vec(), BeefVersion::V2)),
            ("JSON too large", output_with(vec![b' '; MAX_CERTIFICATE_JSON + 1], BeefVersion::V2)),
            ("index past the outputs", LookupOutput { output_index: 2, ..good.clone() }),
            ("not a PushDrop", LookupOutput { output_index: 0, ..good.clone() }),
            ("index overflows", LookupOutput { output_index: u32::MAX, ..good.clone() }),
            ("truncated BEEF", LookupOutput { beef: good.beef[..good.beef.len() - 3].to_vec(), output_index: 1 }),
            ("not a BEEF", LookupOutput { beef: vec![1, 1, 1, 1, 0], output_index: 1 }),
            ("empty", LookupOutput { beef: vec![], output_index: 0 }),
        ];
        for (why, o) in cases {
            assert!(read_token(&o).is_none(), "{why}");
        }
        assert!(read_token(&good).is_some());
    }

    #[tokio::test]
    async fn trust_filters_groups_and_orders_as_the_toolbox() {
        let (a, b, untrusted) = (party(1), party(3), party(4));
        let (alice, bob, carol) = (party(10), party(11), party(12));
        let trust =
            TrustSettings { trusted_certifiers: vec![certifier(&a, "A", 1), certifier(&b, "B", 3)], trust_level: 2 };
        let (bob_a, k1) = issue(&a, &bob, &[("name", "Bob")], &["name"]);
        let (alice_a, k2) = issue(&a, &alice, &[("name", "Alice")], &["name"]);
        let (alice_b, k3) = issue(&b, &alice, &[("email", "alice@x")], &["email"]);
        let (carol_u, k4) = issue(&untrusted, &carol, &[("name", "Carol")], &["name"]);
        let (carol_a, k5) = issue(&a, &carol, &[("name", "Carol")], &["name"]);
        let lookup = Arc::new(Fixed {
            outputs: vec![
                output(&bob_a, &k1),
                output(&alice_a, &k2),
                output(&carol_u, &k4),
                output(&alice_b, &k3),
                output(&carol_a, &k5),
            ],
            ..Default::default()
        });
        let id = identity(lookup.clone(), trust);
        let got = id
            .discover_by_attributes(DiscoverByAttributesArgs {
                attributes: Some(BTreeMap::from([("name".into(), "x".into())])),
                ..Default::default()
            })
            .await
            .unwrap();
        // Bob (1) and Carol (1 trusted + untrusted) fall short of 2; Alice has 1 + 3.
        assert_eq!(got.total_certificates, 2);
        let order: Vec<_> =
            got.certificates.iter().map(|c| (c.certificate.subject.clone(), c.certifier_info.trust)).collect();
        assert_eq!(order, vec![(alice.public.to_hex(), 3), (alice.public.to_hex(), 1)]);
        let top = &got.certificates[0];
        assert_eq!(top.decrypted_fields["email"], "alice@x");
        assert_eq!(top.publicly_revealed_keyring, k3);
        assert_eq!(top.keyring, k3);
        assert_eq!(
            top.certifier_info,
            IdentityCertifier { name: "B".into(), icon_url: String::new(), description: None, trust: 3 }
        );
        let v = serde_json::to_value(top).unwrap();
        for field in [
            "type",
            "serialNumber",
            "subject",
            "certifier",
            "revocationOutpoint",
            "signature",
            "fields",
            "keyring",
            "decryptedFields",
            "publiclyRevealedKeyring",
            "certifierInfo",
        ] {
            assert!(v.get(field).is_some(), "{field} in {v}");
        }
        assert_eq!(v["certifierInfo"], json!({ "name": "B", "iconUrl": "", "trust": 3 }));
        // The toolbox's query, certifiers sorted.
        let mut keys = vec![a.public.to_hex(), b.public.to_hex()];
        keys.sort();
        let queries = lookup.queries.lock().unwrap().clone();
        assert_eq!(
            queries,
            vec![(LOOKUP_SERVICE.to_string(), json!({ "attributes": { "name": "x" }, "certifiers": keys }))]
        );
    }

    #[tokio::test]
    async fn lookups_are_cached_and_bounded() {
        let (a, alice) = (party(1), party(2));
        let (cert, keyring) = issue(&a, &alice, &[("name", "Alice")], &["name"]);
        let good = output(&cert, &keyring);
        let lookup = Arc::new(Fixed { outputs: vec![good; MAX_OUTPUTS + 5], ..Default::default() });
        let trust = TrustSettings { trusted_certifiers: vec![certifier(&a, "A", 2)], trust_level: 2 };
        let id = identity(lookup.clone(), trust);
        let key = alice.public.to_hex().to_uppercase();
        let first = id.discover_by_identity_key(by_key(&key)).await.unwrap();
        assert_eq!(first.total_certificates, MAX_OUTPUTS as u64);
        let again = id.discover_by_identity_key(by_key(&alice.public.to_hex())).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 1, "the second call is answered from the cache");
        assert_eq!(
            lookup.queries.lock().unwrap()[0].1["identityKey"],
            json!(alice.public.to_hex()),
            "the key is sent as validated: trimmed, lower case"
        );
        let d = id.discovery().unwrap();
        for i in 0..CACHE_ENTRIES + 10 {
            d.remember(format!("k{i}"), Arc::new(Vec::new()));
        }
        assert_eq!(d.cache.lock().unwrap().len(), CACHE_ENTRIES);
        // Bounded in bytes too: a large answer evicts the oldest; one past the bound is not kept.
        let sized = |size| {
            let v = Verified {
                size,
                certificate: cert.clone(),
                keyring: keyring.clone(),
                decrypted_fields: BTreeMap::new(),
            };
            Arc::new(vec![v])
        };
        d.remember("big-1".into(), sized(CACHE_BYTES / 2));
        d.remember("big-2".into(), sized(CACHE_BYTES / 2));
        d.remember("big-3".into(), sized(CACHE_BYTES / 2));
        d.remember("too-big".into(), sized(CACHE_BYTES + 1));
        let cache = d.cache.lock().unwrap();
        assert!(!cache.contains_key("big-1") && cache.contains_key("big-2") && cache.contains_key("big-3"));
        assert!(!cache.contains_key("too-big"));
        assert!(cache.values().map(|c| c.bytes).sum::<usize>() <= CACHE_BYTES);
    }

    #[tokio::test]
    async fn by_key_keeps_only_certificates_about_that_key() {
        let (a, alice, bob) = (party(1), party(2), party(3));
        let (cert, keyring) = issue(&a, &alice, &[("name", "Alice")], &["name"]);
        let lookup = Arc::new(Fixed { outputs: vec![output(&cert, &keyring)], ..Default::default() });
        let trust = TrustSettings { trusted_certifiers: vec![certifier(&a, "A", 2)], trust_level: 2 };
        let id = identity(lookup, trust);
        assert_eq!(id.discover_by_identity_key(by_key(&bob.public.to_hex())).await.unwrap().total_certificates, 0);
        assert_eq!(id.discover_by_identity_key(by_key(&alice.public.to_hex())).await.unwrap().total_certificates, 1);
    }

    #[tokio::test]
    async fn arguments_are_validated_as_the_sdk_does() {
        let id = identity(Arc::new(Fixed::default()), TrustSettings::default());
        let good = party(2).public.to_hex();
        let cases = [
            (by_key("02abc"), "identityKey"),
            (by_key(&format!("{}zz", &good[..64])), "identityKey"),
            (by_key(""), "identityKey"),
            (DiscoverByIdentityKeyArgs { limit: Some(0), ..by_key(&good) }, "limit"),
            (DiscoverByIdentityKeyArgs { limit: Some(10_001), ..by_key(&good) }, "limit"),
            (DiscoverByIdentityKeyArgs { offset: Some(-1), ..by_key(&good) }, "offset"),
        ];
        for (args, parameter) in cases {
            let e = id.discover_by_identity_key(args).await.unwrap_err();
            assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some(parameter)), "{e}");
        }
        let ok = DiscoverByIdentityKeyArgs { limit: Some(10_000), offset: Some(5), ..by_key(&format!(" {good} ")) };
        assert_eq!(id.discover_by_identity_key(ok).await.unwrap().total_certificates, 0);
        for attributes in [
            None,
            Some(BTreeMap::from([(String::new(), "x".to_string())])),
            Some(BTreeMap::from([("n".repeat(51), "x".to_string())])),
        ] {
            let e = id
                .discover_by_attributes(DiscoverByAttributesArgs { attributes, ..Default::default() })
                .await
                .unwrap_err();
            assert_eq!(e.context_value("parameter"), Some("attributes"), "{e}");
        }
        let args: DiscoverByAttributesArgs =
            serde_json::from_value(json!({ "attributes": { "name": "x" }, "limit": 5, "seekPermission": false }))
                .unwrap();
        assert!(id.discover_by_attributes(args).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_lookup_is_an_error_and_not_cached() {
        let id = identity(Arc::new(Down), TrustSettings::default());
        let e = id.discover_by_identity_key(by_key(&party(2).public.to_hex())).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ServiceUnavailable);
        assert!(id.discovery().unwrap().cache.lock().unwrap().is_empty());
        let without = Identity::new(id.keys.clone(), None);
        let e = without.discover_by_identity_key(by_key(&party(2).public.to_hex())).await.unwrap_err();
        assert!(e.message().contains("MPC_LOOKUP_URL"), "{e}");
    }

    #[test]
    fn trust_settings_parse_and_name_their_variable() {
        assert_eq!(TrustSettings::parse(None, None).unwrap(), TrustSettings::default());
        let d = TrustSettings::default();
        assert_eq!((d.trust_level, d.trusted_certifiers.len()), (2, 2));
        let a = party(1).public.to_hex();
        let metanet = &d.trusted_certifiers[0];
        let s = TrustSettings::parse(
            Some(&format!(" {}:5:My CA: east , {}:4:Metanet", a.to_uppercase(), metanet.identity_key)),
            Some(9),
        )
        .unwrap();
        assert_eq!(s.trust_level, 9);
        assert_eq!(
            s.trusted_certifiers[0],
            TrustedCertifier {
                identity_key: a.clone(),
                name: "My CA: east".into(),
                trust: 5,
                icon_url: None,
                description: None
            }
        );
        assert_eq!(s.trusted_certifiers[1].icon_url, metanet.icon_url, "a default certifier keeps its icon");
        assert_eq!(s.trusted_certifiers[1].name, "Metanet");
        let mut sorted = vec![a.clone(), metanet.identity_key.clone()];
        sorted.sort();
        assert_eq!(s.certifier_keys(), sorted);
        for (list, level, var) in [
            (Some(""), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some("abc:1:x"), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:0:x")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:11:x")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:two:x")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:3")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:3: ")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:3:{}", "n".repeat(101))), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:3:x,{a}:3:y")), None, "MPC_TRUSTED_CERTIFIERS"),
            (Some(&*format!("{a}:3:x")), Some(4), "MPC_TRUST_LEVEL"),
            (None, Some(8), "MPC_TRUST_LEVEL"),
        ] {
            let e = TrustSettings::parse(list, level).unwrap_err();
            assert_eq!((e.kind(), e.context_value("variable")), (ErrorKind::Config, Some(var)), "{list:?}: {e}");
            assert!(e.message().contains(var), "{e}");
        }
    }
}
