//! The identity certificates a wallet holds (BRC-52), kept by the store that keeps its books.

use std::{collections::BTreeMap, fmt};

use async_trait::async_trait;

use crate::{Page, Result};

/// A certificate the wallet acquired, with what it needs to reveal its fields: the master keyring
/// (each field's revelation key, encrypted for the wallet by the party that revealed it).
///
/// Strings are kept as the certifier wrote them (base64 type and serial number, hex keys and
/// signature, `"<txid>.<vout>"`), so the signed bytes and key ids stay the certifier's.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateRecord {
    /// The certificate type, base64.
    pub cert_type: String,
    /// The serial number, base64.
    pub serial_number: String,
    /// The subject's identity key (the wallet's), hex.
    pub subject: String,
    /// The certifier's identity key, hex.
    pub certifier: String,
    /// The outpoint whose spending revokes the certificate.
    pub revocation_outpoint: String,
    /// The certifier's signature, DER hex.
    pub signature: String,
    /// Field name → encrypted value, base64.
    pub fields: BTreeMap<String, String>,
    /// Field name → the field's revelation key encrypted for the wallet, base64.
    pub keyring: BTreeMap<String, String>,
    /// Who revealed the keyring (the certifier, or another party's key), hex.
    pub verifier: Option<String>,
}

impl fmt::Debug for CertificateRecord {
    // Field values and keys are encrypted, but a log has no use for them: names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("type", &self.cert_type)
            .field("serial_number", &self.serial_number)
            .field("certifier", &self.certifier)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Which certificates [`CertificateStore::list_certificates`] returns: every condition given must
/// hold (an empty list or `None` is no condition), oldest first, then paged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateQuery {
    /// Issued by one of these certifiers (hex).
    pub certifiers: Vec<String>,
    /// Of one of these types (base64).
    pub types: Vec<String>,
    /// This type exactly.
    pub cert_type: Option<String>,
    /// This serial number exactly.
    pub serial_number: Option<String>,
    /// This certifier exactly.
    pub certifier: Option<String>,
    /// This subject exactly.
    pub subject: Option<String>,
    /// This revocation outpoint exactly.
    pub revocation_outpoint: Option<String>,
    /// This signature exactly.
    pub signature: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// After skipping this many.
    pub offset: u32,
}

impl CertificateQuery {
    /// Whether `c` meets every condition (paging aside).
    pub fn matches(&self, c: &CertificateRecord) -> bool {
        let exact = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        (self.certifiers.is_empty() || self.certifiers.contains(&c.certifier))
            && (self.types.is_empty() || self.types.contains(&c.cert_type))
            && exact(&self.cert_type, &c.cert_type)
            && exact(&self.serial_number, &c.serial_number)
            && exact(&self.certifier, &c.certifier)
            && exact(&self.subject, &c.subject)
            && exact(&self.revocation_outpoint, &c.revocation_outpoint)
            && exact(&self.signature, &c.signature)
    }
}

/// The certificates of one wallet (the store's scope). A certificate is identified by its type,
/// certifier and serial number.
#[async_trait]
pub trait CertificateStore: fmt::Debug + Send + Sync + 'static {
    /// Stores `certificate`, replacing the one with the same type, certifier and serial number
    /// (acquiring a certificate again updates it and keeps its place in the order).
    async fn put_certificate(&self, certificate: &CertificateRecord) -> Result<()>;

    /// The certificates matching `query`, oldest first, and how many match in all.
    async fn list_certificates(&self, query: &CertificateQuery) -> Result<Page<CertificateRecord>>;

    /// Removes the certificate; `false` when the store holds no such certificate.
    async fn relinquish_certificate(&self, cert_type: &str, serial_number: &str, certifier: &str) -> Result<bool>;
}
