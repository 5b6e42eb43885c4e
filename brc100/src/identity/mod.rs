//! The BRC-100 identity methods: `acquireCertificate` (direct and issuance),
//! `listCertificates`, `proveCertificate`, `relinquishCertificate`, `discoverByIdentityKey` and
//! `discoverByAttributes`, behaving as @bsv/wallet-toolbox does for @bsv/sdk's clients.
//!
//! Every use of the wallet's key (opening a master keyring, encrypting a keyring for a verifier,
//! nonces and HMACs of an issuance) goes through [`KeyMethods`], so through the MPC wallet: the
//! key is never whole. The certificates are kept by the store that keeps the books
//! ([`CertificateStore`]); the BRC-103 channel to a certifier and the overlay lookup are given to
//! [`Identity`] by the program that builds it.

mod args;
pub mod discover;

use std::{collections::BTreeMap, sync::Arc};

pub use args::*;
use async_trait::async_trait;
use wallet_bsv::{
    brc42,
    certificate::{self, check_field_name, field_key_id, field_protocol, Certificate},
    encoding::{base64_decode, base64_encode},
};
use wallet_traits::{CertificateQuery, CertificateStore, Error, ErrorKind, Result};

use crate::{DecryptArgs, EncryptArgs, KeyArgs, KeyMethods, VerifyHmacArgs};

pub use discover::{Discovery, TrustSettings, TrustedCertifier};

/// A certifier's answer over BRC-103 mutual authentication.
#[derive(Debug, Clone)]
pub struct AuthenticatedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, already bounded in size by the channel.
    pub body: Vec<u8>,
    /// The server's identity key as the BRC-103 session authenticated it, compressed hex.
    pub identity_key: String,
}

/// The BRC-103 channel `acquireCertificate`'s issuance uses to reach a certifier, as the wallet's
/// identity (the toolbox's `AuthFetch`).
#[async_trait]
pub trait CertifierChannel: Send + Sync {
    /// POSTs the JSON `body` to `url` with mutual authentication; the server's signed answer.
    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<AuthenticatedResponse>;
}

/// The identity methods of one wallet.
pub struct Identity {
    keys: Arc<KeyMethods>,
    store: Option<Arc<dyn CertificateStore>>,
    channel: Option<Arc<dyn CertifierChannel>>,
    discovery: Option<Arc<Discovery>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("store", &self.store)
            .field("issuance", &self.channel.is_some())
            .field("discovery", &self.discovery)
            .finish_non_exhaustive()
    }
}

/// The default and largest page of `listCertificates`, as the ts-sdk validates them.
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 10_000;

/// BRC-100's invalid-parameter error naming `parameter`.
pub(crate) fn invalid(parameter: &'static str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.into()).with_context("parameter", parameter)
}

fn refuse_privileged(privileged: Option<bool>) -> Result<()> {
    if privileged == Some(true) {
        return Err(invalid(
            "privileged",
            "this wallet has no privileged keyring: its one identity key is held jointly with its cosigners; call again without privileged",
        ));
    }
    Ok(())
}

fn required<'a>(value: &'a Option<String>, parameter: &'static str, protocol: &str) -> Result<&'a str> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        invalid(parameter, format!("{parameter} is required when acquisitionProtocol is \"{protocol}\""))
    })
}

fn check_public_key(value: &str, parameter: &'static str) -> Result<()> {
    if value.len() != 66 || brc42::parse_public_key(value).is_err() {
        return Err(invalid(parameter, format!("{parameter} must be a compressed public key in hex (66 characters)")));
    }
    Ok(())
}

impl Identity {
    /// The identity methods over `keys`, keeping certificates in `store` (without one, the
    /// certificate methods answer "not supported"; discovery still works).
    pub fn new(keys: Arc<KeyMethods>, store: Option<Arc<dyn CertificateStore>>) -> Self {
        Self { keys, store, channel: None, discovery: None }
    }

    /// Lets `acquireCertificate` run the issuance protocol over `channel`.
    pub fn with_certifier_channel(mut self, channel: Arc<dyn CertifierChannel>) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Lets the discovery methods ask an overlay.
    pub fn with_discovery(mut self, discovery: Arc<Discovery>) -> Self {
        self.discovery = Some(discovery);
        self
    }

    pub(crate) fn discovery(&self) -> Result<&Discovery> {
        self.discovery.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "discovery needs an overlay to ask: set MPC_LOOKUP_URL to an overlay's lookup service",
            )
        })
    }

    fn store(&self) -> Result<&dyn CertificateStore> {
        self.store.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this wallet's store keeps no certificates: use a SQLite or Postgres store for the books",
            )
        })
    }

    /// `acquireCertificate`: `direct` stores a certificate handed to the wallet once its
    /// signature and every key of its keyring check out; `issuance` asks the certifier at
    /// `certifierUrl` to issue one. Nothing is stored unless every check passes.
    pub async fn acquire_certificate(&self, args: AcquireCertificateArgs) -> Result<Certificate> {
        refuse_privileged(args.privileged)?;
        match args.acquisition_protocol.as_str() {
            "direct" => self.acquire_direct(args).await,
            "issuance" => self.acquire_issued(args).await,
            other => Err(invalid(
                "acquisitionProtocol",
                format!("acquisitionProtocol must be \"direct\" or \"issuance\", not {other:?}"),
            )),
        }
    }

    async fn acquire_direct(&self, args: AcquireCertificateArgs) -> Result<Certificate> {
        let store = self.store()?;
        let serial_number = required(&args.serial_number, "serialNumber", "direct")?;
        let signature = required(&args.signature, "signature", "direct")?;
        let revocation_outpoint = required(&args.revocation_outpoint, "revocationOutpoint", "direct")?;
        let revealer = required(&args.keyring_revealer, "keyringRevealer", "direct")?;
        let keyring = args.keyring_for_subject.as_ref().ok_or_else(|| {
            invalid("keyringForSubject", "keyringForSubject is required when acquisitionProtocol is \"direct\"")
        })?;
        check_public_key(&args.certifier, "certifier")?;
        let revealer = if revealer == "certifier" { args.certifier.clone() } else { revealer.to_string() };
        check_public_key(&revealer, "keyringRevealer")?;
        let cert = Certificate {
            cert_type: args.cert_type.clone(),
            serial_number: serial_number.to_string(),
            subject: self.keys.identity_key().to_hex(),
            certifier: args.certifier.clone(),
            revocation_outpoint: revocation_outpoint.to_string(),
            fields: args.fields.clone(),
            signature: signature.to_string(),
        };
        cert.check()?;
        // The signature first: it is local, and refuses an altered certificate before any
        // round trip to the cosigners.
        cert.verify()?;
        self.check_keyring(&cert, keyring, &revealer).await?;
        store.put_certificate(&cert.clone().into_record(keyring.clone(), Some(revealer))).await?;
        Ok(cert)
    }

    /// Every field has a keyring entry, every entry names a field, and each opens its field for
    /// this wallet (the keyring was made for this subject by `revealer`).
    async fn check_keyring(
        &self,
        cert: &Certificate,
        keyring: &BTreeMap<String, String>,
        revealer: &str,
    ) -> Result<()> {
        for name in keyring.keys() {
            check_field_name(name, "keyringForSubject")?;
            if !cert.fields.contains_key(name) {
                return Err(invalid(
                    "keyringForSubject",
                    format!("keyringForSubject has a key for {name:?}, which is not a field of the certificate"),
                ));
            }
        }
        for (name, value) in &cert.fields {
            let encrypted = keyring.get(name).ok_or_else(|| {
                invalid(
                    "keyringForSubject",
                    format!("keyringForSubject must hold a key for every field; {name:?} has none"),
                )
            })?;
            self.open_field(name, value, encrypted, revealer).await.map_err(|_| {
                invalid(
                    "keyringForSubject",
                    format!("the keyring's key for {name:?} does not open that field for this wallet: it was made for another subject, or the field was altered"),
                )
            })?;
        }
        Ok(())
    }

    /// A field's revelation key from a master keyring entry (decrypted with the wallet's key,
    /// counterparty `revealer`) and the field it opens.
    async fn open_field(&self, name: &str, value: &str, encrypted: &str, revealer: &str) -> Result<(Vec<u8>, String)> {
        let ciphertext =
            base64_decode(encrypted).ok_or_else(|| invalid("keyringForSubject", "a keyring entry is not base64"))?;
        let key = self
            .keys
            .decrypt(DecryptArgs {
                key: KeyArgs {
                    protocol_id: field_protocol(),
                    key_id: field_key_id(name, None),
                    counterparty: Some(revealer.to_string()),
                },
                ciphertext,
            })
            .await?;
        let opened = certificate::open_field(&key, value)?;
        Ok((key.to_vec(), opened))
    }

    async fn acquire_issued(&self, args: AcquireCertificateArgs) -> Result<Certificate> {
        for (value, parameter) in [
            (args.serial_number.is_some(), "serialNumber"),
            (args.signature.is_some(), "signature"),
            (args.revocation_outpoint.is_some(), "revocationOutpoint"),
            (args.keyring_revealer.is_some(), "keyringRevealer"),
            (args.keyring_for_subject.is_some(), "keyringForSubject"),
        ] {
            if value {
                return Err(invalid(
                    parameter,
                    format!(
                        "{parameter} is given by the certifier when acquisitionProtocol is \"issuance\"; leave it out"
                    ),
                ));
            }
        }
        let url = required(&args.certifier_url, "certifierUrl", "issuance")?;
        check_public_key(&args.certifier, "certifier")?;
        if base64_decode(&args.cert_type).map(|b| b.len()) != Some(32) {
            return Err(invalid("type", "type must be base64 of 32 bytes"));
        }
        let store = self.store()?;
        let channel = self.channel.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "issuance needs a BRC-103 channel to the certifier, which this wallet was built without",
            )
        })?;
        let certifier = args.certifier.clone();
        let client_nonce = self.keys.create_nonce(&certifier).await?;
        let mut fields = BTreeMap::new();
        let mut master_keyring = BTreeMap::new();
        for (name, value) in &args.fields {
            check_field_name(name, "fields")?;
            let (key, sealed) = certificate::seal_field(value)?;
            let encrypted = self
                .keys
                .encrypt(EncryptArgs {
                    key: KeyArgs {
                        protocol_id: field_protocol(),
                        key_id: field_key_id(name, None),
                        counterparty: Some(certifier.clone()),
                    },
                    plaintext: key.to_vec(),
                })
                .await?;
            fields.insert(name.clone(), sealed);
            master_keyring.insert(name.clone(), base64_encode(&encrypted));
        }
        let body = serde_json::json!({
            "clientNonce": client_nonce, "type": args.cert_type, "fields": fields, "masterKeyring": master_keyring,
        });
        let url = format!("{}/signCertificate", url.trim_end_matches('/'));
        let answer = channel.post_json(&url, serde_json::to_vec(&body).unwrap_or_default()).await?;
        // The caller's URL may carry a credential; what errors say of it is redacted.
        let url = wallet_traits::redact_url(&url);
        let refused = |msg: String| Error::new(ErrorKind::Rejected, msg).with_context("certifier_url", &url);
        if answer.identity_key != certifier {
            return Err(refused(format!(
                "the server at {url} authenticated as {}, not the certifier {certifier}",
                answer.identity_key
            )));
        }
        if answer.status != 200 {
            let said = String::from_utf8_lossy(&answer.body[..answer.body.len().min(512)]).into_owned();
            return Err(refused(format!("the certifier refused to issue (HTTP {}): {said}", answer.status)));
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Issued {
            certificate: Option<Certificate>,
            server_nonce: Option<String>,
        }
        let issued: Issued = serde_json::from_slice(&answer.body)
            .map_err(|e| refused(format!("the certifier's answer is not a certificate: {e}")))?;
        let cert = issued.certificate.ok_or_else(|| refused("the certifier sent no certificate".into()))?;
        let server_nonce = issued.server_nonce.ok_or_else(|| refused("the certifier sent no serverNonce".into()))?;
        if !self.keys.verify_nonce(&server_nonce, &certifier).await? {
            return Err(refused("the certifier's serverNonce is not one it made for this wallet".into()));
        }
        // The serial number is the certifier's HMAC over both nonces: proof the certificate
        // answers this request.
        let serial =
            base64_decode(&cert.serial_number).ok_or_else(|| refused("the serial number is not base64".into()))?;
        let nonces = base64_decode(&format!("{client_nonce}{server_nonce}"))
            .ok_or_else(|| refused("the nonces are not base64".into()))?;
        let hmac = VerifyHmacArgs {
            key: KeyArgs {
                protocol_id: (2, "certificate issuance".into()),
                key_id: format!("{server_nonce}{client_nonce}"),
                counterparty: Some(certifier.clone()),
            },
            data: nonces,
            hmac: serial,
        };
        if self.keys.verify_hmac(hmac).await.is_err() {
            return Err(refused("the serial number is not the certifier's HMAC of this request's nonces".into()));
        }
        let subject = self.keys.identity_key().to_hex();
        for (what, expected, got) in [
            ("type", &args.cert_type, &cert.cert_type),
            ("subject", &subject, &cert.subject),
            ("certifier", &certifier, &cert.certifier),
        ] {
            if expected != got {
                return Err(refused(format!("the issued certificate's {what} is {got}, not {expected}")));
            }
        }
        if cert.fields != fields {
            return Err(refused("the issued certificate's fields are not the ones this wallet sent".into()));
        }
        cert.check().map_err(|e| refused(format!("the issued certificate is malformed: {}", e.message())))?;
        cert.verify().map_err(|_| refused("the issued certificate's signature does not verify".into()))?;
        self.check_keyring(&cert, &master_keyring, &certifier).await?;
        store.put_certificate(&cert.clone().into_record(master_keyring, Some(certifier))).await?;
        Ok(cert)
    }

    /// `listCertificates`: the wallet's certificates of the given certifiers and types (an
    /// empty list is any), with their master keyrings.
    pub async fn list_certificates(&self, args: ListCertificatesArgs) -> Result<ListCertificatesResult> {
        refuse_privileged(args.privileged)?;
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", format!("limit must be 1 to {MAX_LIMIT}")));
        }
        let certifiers = args.certifiers.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>();
        for c in &certifiers {
            check_public_key(c, "certifiers")?;
        }
        let types = args.types.iter().map(|t| t.trim().to_string()).collect::<Vec<_>>();
        if types.iter().any(|t| base64_decode(t).is_none()) {
            return Err(invalid("types", "each of types must be base64"));
        }
        let query =
            CertificateQuery { certifiers, types, limit, offset: args.offset.unwrap_or(0), ..Default::default() };
        let page = self.store()?.list_certificates(&query).await?;
        Ok(ListCertificatesResult {
            total_certificates: page.total,
            certificates: page
                .items
                .iter()
                .map(|c| CertificateResult {
                    certificate: Certificate::from(c),
                    keyring: c.keyring.clone(),
                    verifier: c.verifier.clone(),
                })
                .collect(),
        })
    }

    /// `proveCertificate`: a keyring that lets `verifier` ("anyone" included) open exactly the
    /// fields named, for the one certificate the arguments name.
    pub async fn prove_certificate(&self, args: ProveCertificateArgs) -> Result<ProveCertificateResult> {
        refuse_privileged(args.privileged)?;
        let verifier = args.verifier.trim();
        if verifier != "anyone" {
            check_public_key(verifier, "verifier")?;
        }
        let p = &args.certificate;
        let query = CertificateQuery {
            cert_type: p.cert_type.clone(),
            serial_number: p.serial_number.clone(),
            certifier: p.certifier.clone(),
            subject: p.subject.clone(),
            revocation_outpoint: p.revocation_outpoint.clone(),
            signature: p.signature.clone(),
            limit: 2,
            ..Default::default()
        };
        let page = self.store()?.list_certificates(&query).await?;
        let cert = match page.items.as_slice() {
            [one] if page.total == 1 => one,
            [] => return Err(invalid("certificate", "the wallet holds no certificate matching these arguments")),
            _ => {
                return Err(invalid(
                    "certificate",
                    format!("{} certificates match; name one by its type, certifier and serialNumber", page.total),
                ))
            }
        };
        let revealer = cert.verifier.clone().unwrap_or_else(|| cert.certifier.clone());
        let mut keyring_for_verifier = BTreeMap::new();
        for name in &args.fields_to_reveal {
            check_field_name(name, "fieldsToReveal")?;
            let (Some(value), Some(encrypted)) = (cert.fields.get(name), cert.keyring.get(name)) else {
                return Err(invalid("fieldsToReveal", format!("{name:?} is not a field of this certificate")));
            };
            let (key, _) = self.open_field(name, value, encrypted, &revealer).await.map_err(|e| {
                Error::new(
                    ErrorKind::Corrupted,
                    format!("the stored keyring does not open field {name:?}: {}", e.message()),
                )
            })?;
            let for_verifier = self
                .keys
                .encrypt(EncryptArgs {
                    key: KeyArgs {
                        protocol_id: field_protocol(),
                        key_id: field_key_id(name, Some(&cert.serial_number)),
                        counterparty: Some(verifier.to_string()),
                    },
                    plaintext: key,
                })
                .await?;
            keyring_for_verifier.insert(name.clone(), base64_encode(&for_verifier));
        }
        Ok(ProveCertificateResult { keyring_for_verifier })
    }

    /// The certificates a BRC-103 peer asks for (`certificatesToRequest`: `certifiers`, and per
    /// type the fields to reveal), each with a keyring for `verifier`, as @bsv/sdk's
    /// `getVerifiableCertificates` makes them: the first page of matches, each proven.
    pub async fn verifiable_certificates(
        &self,
        certifiers: &[String],
        types: &BTreeMap<String, Vec<String>>,
        verifier: &str,
    ) -> Result<Vec<VerifiableCertificate>> {
        let list = ListCertificatesArgs {
            certifiers: certifiers.to_vec(),
            types: types.keys().cloned().collect(),
            ..Default::default()
        };
        let mut out = Vec::new();
        for c in self.list_certificates(list).await?.certificates {
            let certificate = c.certificate;
            let prove = ProveCertificateArgs {
                certificate: PartialCertificate {
                    cert_type: Some(certificate.cert_type.clone()),
                    serial_number: Some(certificate.serial_number.clone()),
                    certifier: Some(certificate.certifier.clone()),
                    ..Default::default()
                },
                fields_to_reveal: types.get(&certificate.cert_type).cloned().unwrap_or_default(),
                verifier: verifier.to_string(),
                ..Default::default()
            };
            let keyring = self.prove_certificate(prove).await?.keyring_for_verifier;
            out.push(VerifiableCertificate { certificate, keyring });
        }
        Ok(out)
    }

    /// `relinquishCertificate`: the certificate is gone for list and prove.
    pub async fn relinquish_certificate(&self, args: RelinquishCertificateArgs) -> Result<bool> {
        for (value, parameter) in
            [(&args.cert_type, "type"), (&args.serial_number, "serialNumber"), (&args.certifier, "certifier")]
        {
            if value.is_empty() {
                return Err(invalid(parameter, format!("{parameter} is required")));
            }
        }
        if self.store()?.relinquish_certificate(&args.cert_type, &args.serial_number, &args.certifier).await? {
            Ok(true)
        } else {
            Err(Error::new(
                ErrorKind::NotFound,
                "the wallet holds no certificate of that type, serialNumber and certifier",
            )
            .with_context("parameter", "serialNumber"))
        }
    }
}
