//! The certificate methods over a real SQLite store, with single-key wallets for the subject, a
//! certifier and a verifier. The issuance channel here is the certifier's side of the protocol in
//! process (what `interop/certificates.test.mjs` runs against an express certifier behind
//! @bsv/auth-express-middleware), so this file can also make it lie.

use std::{collections::BTreeMap, sync::Arc};

use wallet_brc100::{
    identity::{
        AcquireCertificateArgs, AuthenticatedResponse, CertifierChannel, Identity, PartialCertificate,
        ProveCertificateArgs, RelinquishCertificateArgs,
    },
    CreateHmacArgs, CreateSignatureArgs, DecryptArgs, EncryptArgs, KeyArgs, KeyMethods, SingleKey,
};
use wallet_bsv::{
    certificate::{field_key_id, field_protocol, open_field, seal_field, signature_protocol, Certificate},
    encoding::{base64_decode, base64_encode},
    Network,
};
use wallet_traits::{ErrorKind, OutputStore, Result};

fn wallet() -> Arc<KeyMethods> {
    let key = Arc::new(SingleKey::from_bytes(rand::random()).unwrap());
    Arc::new(KeyMethods::new(key.clone(), key, Network::Mainnet))
}

fn hex_of(k: &KeyMethods) -> String {
    k.identity_key().to_hex()
}

async fn identity(dir: &tempfile::TempDir, keys: Arc<KeyMethods>) -> Identity {
    let store = wallet_backend_sqlite::SqliteOutputStore::open(dir.path().join("books.db"), "identity").await.unwrap();
    let store: Arc<dyn OutputStore> = Arc::new(store);
    Identity::new(keys, store.certificates())
}

fn key(protocol: wallet_bsv::brc42::WalletProtocol, key_id: String, counterparty: &str) -> KeyArgs {
    KeyArgs { protocol_id: protocol, key_id, counterparty: Some(counterparty.to_string()) }
}

/// The certifier signs `cert` as @bsv/sdk's `Certificate.sign` does.
async fn sign(certifier: &KeyMethods, cert: &mut Certificate) {
    let data = cert.to_binary(false).unwrap();
    let args = CreateSignatureArgs {
        key: KeyArgs { protocol_id: signature_protocol(), key_id: cert.signature_key_id(), counterparty: None },
        data: Some(data),
        hash_to_directly_sign: None,
    };
    cert.signature = hex::encode(certifier.create_signature(args).await.unwrap());
}

/// Sealed fields and a master keyring `creator` makes for `counterparty`, as
/// `MasterCertificate.createCertificateFields`.
async fn fields_for(
    creator: &KeyMethods,
    counterparty: &str,
    plain: &[(&str, &str)],
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let (mut fields, mut keyring) = (BTreeMap::new(), BTreeMap::new());
    for (name, value) in plain {
        let (k, sealed) = seal_field(value).unwrap();
        let args =
            EncryptArgs { key: key(field_protocol(), field_key_id(name, None), counterparty), plaintext: k.to_vec() };
        fields.insert(name.to_string(), sealed);
        keyring.insert(name.to_string(), base64_encode(&creator.encrypt(args).await.unwrap()));
    }
    (fields, keyring)
}

/// A certificate `certifier` issues to `subject`, as acquireCertificate's direct arguments.
async fn issued(certifier: &KeyMethods, subject: &str, plain: &[(&str, &str)]) -> AcquireCertificateArgs {
    let (fields, keyring) = fields_for(certifier, subject, plain).await;
    let mut cert = Certificate {
        cert_type: base64_encode(&[7; 32]),
        serial_number: base64_encode(&rand::random::<[u8; 32]>()),
        subject: subject.to_string(),
        certifier: hex_of(certifier),
        revocation_outpoint: format!("{}.0", "cd".repeat(32)),
        fields,
        signature: String::new(),
    };
    sign(certifier, &mut cert).await;
    AcquireCertificateArgs {
        cert_type: cert.cert_type,
        certifier: cert.certifier,
        acquisition_protocol: "direct".into(),
        fields: cert.fields,
        serial_number: Some(cert.serial_number),
        revocation_outpoint: Some(cert.revocation_outpoint),
        signature: Some(cert.signature),
        keyring_revealer: Some("certifier".into()),
        keyring_for_subject: Some(keyring),
        ..Default::default()
    }
}

#[tokio::test]
async fn acquire_prove_and_relinquish() {
    let dir = tempfile::tempdir().unwrap();
    let (subject, certifier, verifier) = (wallet(), wallet(), wallet());
    let id = identity(&dir, subject.clone()).await;
    let args = issued(&certifier, &hex_of(&subject), &[("name", "Alice"), ("Email", "a@example.com")]).await;
    let got = id.acquire_certificate(args.clone()).await.unwrap();
    assert_eq!(got.subject, hex_of(&subject));

    let prove = ProveCertificateArgs {
        certificate: PartialCertificate { serial_number: Some(got.serial_number.clone()), ..Default::default() },
        fields_to_reveal: vec!["Email".into()],
        verifier: hex_of(&verifier),
        ..Default::default()
    };
    let keyring = id.prove_certificate(prove.clone()).await.unwrap().keyring_for_verifier;
    assert_eq!(keyring.keys().collect::<Vec<_>>(), ["Email"]);
    // The verifier opens the field as VerifiableCertificate.decryptFields does.
    let revealed = verifier
        .decrypt(DecryptArgs {
            key: key(field_protocol(), field_key_id("Email", Some(&got.serial_number)), &hex_of(&subject)),
            ciphertext: base64_decode(&keyring["Email"]).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(open_field(&revealed, &got.fields["Email"]).unwrap(), "a@example.com");

    let relinquish = RelinquishCertificateArgs {
        cert_type: got.cert_type.clone(),
        serial_number: got.serial_number.clone(),
        certifier: got.certifier.clone(),
    };
    assert!(id.relinquish_certificate(relinquish.clone()).await.unwrap());
    assert_eq!(id.prove_certificate(prove).await.unwrap_err().context_value("parameter"), Some("certificate"));
    assert_eq!(id.relinquish_certificate(relinquish).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_keyring_for_another_subject_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (subject, certifier, other) = (wallet(), wallet(), wallet());
    let id = identity(&dir, subject.clone()).await;
    let mut args = issued(&certifier, &hex_of(&subject), &[("name", "Alice")]).await;
    let (fields, keyring) = fields_for(&certifier, &hex_of(&other), &[("name", "Alice")]).await;
    let mut cert = Certificate {
        cert_type: args.cert_type.clone(),
        serial_number: args.serial_number.clone().unwrap(),
        subject: hex_of(&subject),
        certifier: hex_of(&certifier),
        revocation_outpoint: args.revocation_outpoint.clone().unwrap(),
        fields,
        signature: String::new(),
    };
    sign(&certifier, &mut cert).await;
    (args.fields, args.signature, args.keyring_for_subject) = (cert.fields, Some(cert.signature), Some(keyring));
    let e = id.acquire_certificate(args).await.unwrap_err();
    assert_eq!((e.kind(), e.context_value("parameter")), (ErrorKind::InvalidInput, Some("keyringForSubject")), "{e}");
    let listed = id.list_certificates(Default::default()).await.unwrap();
    assert_eq!(listed.total_certificates, 0);
}

/// The certifier's side of `POST /signCertificate`, as a certifier behind BRC-103 runs it.
struct Certifier {
    keys: Arc<KeyMethods>,
    /// Who the BRC-103 session authenticated: the wallet asking.
    subject: String,
    /// Lies about the serial number (not the HMAC of the nonces).
    forge_serial: bool,
    /// Authenticates as this key instead of its own.
    identity: Option<String>,
}

#[async_trait::async_trait]
impl CertifierChannel for Certifier {
    async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<AuthenticatedResponse> {
        assert!(url.ends_with("/signCertificate"), "{url}");
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let subject = self.subject.clone();
        let client_nonce = req["clientNonce"].as_str().unwrap().to_string();
        assert!(self.keys.verify_nonce(&client_nonce, &subject).await.unwrap(), "the client's nonce is for us");
        let server_nonce = self.keys.create_nonce(&subject).await.unwrap();
        let data = base64_decode(&format!("{client_nonce}{server_nonce}")).unwrap();
        let hmac = self
            .keys
            .create_hmac(CreateHmacArgs {
                key: key((2, "certificate issuance".into()), format!("{server_nonce}{client_nonce}"), &subject),
                data,
            })
            .await
            .unwrap();
        let serial = if self.forge_serial { rand::random::<[u8; 32]>().to_vec() } else { hmac };
        let fields: BTreeMap<String, String> = serde_json::from_value(req["fields"].clone()).unwrap();
        let mut cert = Certificate {
            cert_type: req["type"].as_str().unwrap().to_string(),
            serial_number: base64_encode(&serial),
            subject: subject.clone(),
            certifier: hex_of(&self.keys),
            revocation_outpoint: format!("{}.0", "ef".repeat(32)),
            fields,
            signature: String::new(),
        };
        sign(&self.keys, &mut cert).await;
        let answer = serde_json::json!({
            "serverNonce": server_nonce,
            "certificate": {
                "type": cert.cert_type, "serialNumber": cert.serial_number, "subject": cert.subject,
                "certifier": cert.certifier, "revocationOutpoint": cert.revocation_outpoint,
                "fields": cert.fields, "signature": cert.signature,
            },
        });
        Ok(AuthenticatedResponse {
            status: 200,
            body: serde_json::to_vec(&answer).unwrap(),
            identity_key: self.identity.clone().unwrap_or_else(|| hex_of(&self.keys)),
        })
    }
}

/// Asks a certifier (that forges the serial number, or authenticates as `impostor`) to issue a
/// certificate; what acquireCertificate answered and how many certificates were stored.
async fn issue_through(forge_serial: bool, impostor: Option<String>) -> (Result<Certificate>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let subject = wallet();
    let certifier = Certifier { keys: wallet(), subject: hex_of(&subject), forge_serial, identity: impostor };
    let certifier_key = hex_of(&certifier.keys);
    let id = identity(&dir, subject).await.with_certifier_channel(Arc::new(certifier));
    let args = AcquireCertificateArgs {
        cert_type: base64_encode(&[9; 32]),
        certifier: certifier_key,
        acquisition_protocol: "issuance".into(),
        fields: BTreeMap::from([("name".into(), "Alice".into())]),
        certifier_url: Some("http://certifier.invalid".into()),
        ..Default::default()
    };
    let got = id.acquire_certificate(args).await;
    (got, id.list_certificates(Default::default()).await.unwrap().total_certificates)
}

#[tokio::test]
async fn issuance_checks_the_certifier_and_stores_only_what_checks_out() {
    let (got, stored) = issue_through(false, None).await;
    let got = got.unwrap();
    assert_eq!(stored, 1);
    assert_eq!(got.fields.len(), 1);

    let (got, stored) = issue_through(true, None).await;
    let e = got.unwrap_err();
    assert!(e.message().contains("serial number"), "{e}");
    assert_eq!((e.kind(), stored), (ErrorKind::Rejected, 0));

    let (got, stored) = issue_through(false, Some(hex_of(&wallet()))).await;
    let e = got.unwrap_err();
    assert!(e.message().contains("authenticated as"), "{e}");
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_peer_gets_the_certificates_it_asks_for_with_the_fields_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (subject, certifier, other, verifier) = (wallet(), wallet(), wallet(), wallet());
    let id = identity(&dir, subject.clone()).await;
    let wanted = issued(&certifier, &hex_of(&subject), &[("name", "Alice"), ("age", "42")]).await;
    let untrusted = issued(&other, &hex_of(&subject), &[("name", "Mallory")]).await;
    id.acquire_certificate(wanted.clone()).await.unwrap();
    id.acquire_certificate(untrusted).await.unwrap();
    let types = BTreeMap::from([(wanted.cert_type.clone(), vec!["age".to_string()])]);
    let got = id.verifiable_certificates(&[hex_of(&certifier)], &types, &hex_of(&verifier)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].certificate.certifier, hex_of(&certifier));
    assert_eq!(got[0].keyring.keys().collect::<Vec<_>>(), ["age"]);
}
