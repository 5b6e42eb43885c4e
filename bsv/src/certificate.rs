//! BRC-52 identity certificates, byte for byte as @bsv/sdk 2.1.0 (`auth/certificates`): the
//! binary form a certifier signs, checking that signature, the fields' symmetric encryption,
//! and opening fields revealed to "anyone" (what an overlay's identity tokens carry).
//!
//! What needs a wallet's own key (decrypting a master keyring, making a keyring for a verifier)
//! is not here: the MPC wallet does it through its key methods. This module is pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{CertificateRecord, Error, ErrorKind, Result};
use zeroize::Zeroizing;

use crate::{
    brc42::{self, WalletProtocol},
    encoding::{base64_decode, base64_encode, locale_compare, write_varint, Reader},
};

/// The protocol a certifier signs with (level 2), key id `"<type> <serialNumber>"`.
pub const SIGNATURE_PROTOCOL: &str = "certificate signature";

/// The protocol a field's revelation key is encrypted with (level 2), key id `"<field>"` in a
/// master keyring, `"<serialNumber> <field>"` in a keyring for a verifier.
pub const FIELD_PROTOCOL: &str = "certificate field encryption";

/// A field name's longest length in bytes (BRC-100's `CertificateFieldNameUnder50Bytes`).
pub const MAX_FIELD_NAME: usize = 50;

fn invalid(parameter: &'static str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.into()).with_context("parameter", parameter)
}

/// A BRC-52 certificate as BRC-100 carries it (`WalletCertificate`, with its JSON names):
/// strings exactly as given, so the key ids and the signed bytes are the certifier's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// The certificate type, base64 of 32 bytes.
    #[serde(rename = "type")]
    pub cert_type: String,
    /// The serial number, base64 of 32 bytes.
    pub serial_number: String,
    /// The subject's identity key, compressed hex.
    pub subject: String,
    /// The certifier's identity key, compressed hex.
    pub certifier: String,
    /// `"<txid>.<vout>"`: spending it revokes the certificate.
    pub revocation_outpoint: String,
    /// Field name → the field's value encrypted under its revelation key, base64.
    pub fields: BTreeMap<String, String>,
    /// The certifier's DER signature, hex (empty before signing).
    #[serde(default)]
    pub signature: String,
}

impl From<&CertificateRecord> for Certificate {
    fn from(c: &CertificateRecord) -> Self {
        Self {
            cert_type: c.cert_type.clone(),
            serial_number: c.serial_number.clone(),
            subject: c.subject.clone(),
            certifier: c.certifier.clone(),
            revocation_outpoint: c.revocation_outpoint.clone(),
            fields: c.fields.clone(),
            signature: c.signature.clone(),
        }
    }
}

impl Certificate {
    /// Checks every part's form, naming the parameter that is wrong: type and serial number
    /// base64 of 32 bytes, subject and certifier public keys, the outpoint, field names of 1 to
    /// 50 bytes with base64 values, the signature DER hex.
    pub fn check(&self) -> Result<()> {
        for (value, parameter) in [(&self.cert_type, "type"), (&self.serial_number, "serialNumber")] {
            if base64_decode(value).map(|b| b.len()) != Some(32) {
                return Err(invalid(parameter, format!("{parameter} must be base64 of 32 bytes")));
            }
        }
        for (value, parameter) in [(&self.subject, "subject"), (&self.certifier, "certifier")] {
            if value.len() != 66 || brc42::parse_public_key(value).is_err() {
                return Err(invalid(parameter, format!("{parameter} must be a compressed public key in hex")));
            }
        }
        split_outpoint(&self.revocation_outpoint)?;
        for (name, value) in &self.fields {
            check_field_name(name, "fields")?;
            if base64_decode(value).is_none() {
                return Err(invalid("fields", format!("the value of field {name:?} must be base64")));
            }
        }
        if !self.signature.is_empty() {
            let der = hex::decode(&self.signature).map_err(|_| invalid("signature", "signature must be hex"))?;
            k256::ecdsa::Signature::from_der(&der)
                .map_err(|_| invalid("signature", "signature must be a DER-encoded ECDSA signature"))?;
        }
        Ok(())
    }

    /// The bytes a certifier signs (`with_signature` false) or the whole certificate: type,
    /// serial number, subject, certifier, the outpoint's txid and index, the fields in
    /// JavaScript's `localeCompare` order, then the signature.
    pub fn to_binary(&self, with_signature: bool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        for (value, parameter) in [(&self.cert_type, "type"), (&self.serial_number, "serialNumber")] {
            out.extend(base64_decode(value).ok_or_else(|| invalid(parameter, format!("{parameter} must be base64")))?);
        }
        for (value, parameter) in [(&self.subject, "subject"), (&self.certifier, "certifier")] {
            out.extend(hex::decode(value).map_err(|_| invalid(parameter, format!("{parameter} must be hex")))?);
        }
        let (txid, vout) = split_outpoint(&self.revocation_outpoint)?;
        out.extend_from_slice(&txid);
        write_varint(&mut out, u64::from(vout));
        let mut names: Vec<&String> = self.fields.keys().collect();
        names.sort_by(|a, b| locale_compare(a, b));
        write_varint(&mut out, names.len() as u64);
        for name in names {
            write_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            let value = &self.fields[name];
            write_varint(&mut out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
        if with_signature && !self.signature.is_empty() {
            out.extend(hex::decode(&self.signature).map_err(|_| invalid("signature", "signature must be hex"))?);
        }
        Ok(out)
    }

    /// Reads what [`Self::to_binary`] wrote.
    pub fn from_binary(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "certificate");
        let cert_type = base64_encode(r.bytes(32)?);
        let serial_number = base64_encode(r.bytes(32)?);
        let subject = hex::encode(r.bytes(33)?);
        let certifier = hex::encode(r.bytes(33)?);
        let txid = hex::encode(r.bytes(32)?);
        let vout = r.varint()?;
        let count = r.count(2)?;
        let mut fields = BTreeMap::new();
        for _ in 0..count {
            let name = String::from_utf8(r.var_bytes()?.to_vec()).map_err(|_| r.error("a field name is not UTF-8"))?;
            let value =
                String::from_utf8(r.var_bytes()?.to_vec()).map_err(|_| r.error("a field value is not UTF-8"))?;
            fields.insert(name, value);
        }
        let signature = hex::encode(r.bytes(r.remaining())?);
        Ok(Self {
            cert_type,
            serial_number,
            subject,
            certifier,
            revocation_outpoint: format!("{txid}.{vout}"),
            fields,
            signature,
        })
    }

    /// The record a wallet keeps of this certificate: it, the master keyring that opens its
    /// fields for the wallet, and who revealed that keyring.
    pub fn into_record(self, keyring: BTreeMap<String, String>, verifier: Option<String>) -> CertificateRecord {
        CertificateRecord {
            cert_type: self.cert_type,
            serial_number: self.serial_number,
            subject: self.subject,
            certifier: self.certifier,
            revocation_outpoint: self.revocation_outpoint,
            signature: self.signature,
            fields: self.fields,
            keyring,
            verifier,
        }
    }

    /// The key id of the certifier's signature: `"<type> <serialNumber>"`.
    pub fn signature_key_id(&self) -> String {
        format!("{} {}", self.cert_type, self.serial_number)
    }

    /// Checks the certifier's signature as `Certificate.verify` does: verified by "anyone" with
    /// the certifier as counterparty, over [`Self::to_binary`] without the signature.
    pub fn verify(&self) -> Result<()> {
        let bad = || {
            invalid(
                "signature",
                "the certifier's signature does not verify: the certificate was altered or not signed by its certifier",
            )
        };
        let certifier = brc42::parse_public_key(&self.certifier)
            .map_err(|_| invalid("certifier", "certifier must be a public key"))?;
        let invoice = brc42::invoice_number(2, SIGNATURE_PROTOCOL, &self.signature_key_id())?;
        // "anyone" is private key 1, so the shared secret with the certifier is the certifier's key.
        let h = brc42::tweak(&certifier, &invoice);
        let key = brc42::child_public_key(&certifier, &h)?;
        let der = hex::decode(&self.signature).map_err(|_| bad())?;
        let digest: [u8; 32] = Sha256::digest(self.to_binary(false)?).into();
        if crate::signature::verify_der(&key, &digest, &der) {
            Ok(())
        } else {
            Err(bad())
        }
    }

    /// Decrypts the fields a keyring reveals to "anyone" (private key 1), as
    /// `VerifiableCertificate.decryptFields` does for `ProtoWallet('anyone')`: what an identity
    /// token on an overlay makes public. Each keyring entry must open its field.
    pub fn decrypt_for_anyone(&self, keyring: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
        let subject =
            brc42::parse_public_key(&self.subject).map_err(|_| invalid("subject", "subject must be a public key"))?;
        let anyone = brc42::generator();
        let mut out = BTreeMap::new();
        for (name, encrypted_key) in keyring {
            let invoice = brc42::invoice_number(2, FIELD_PROTOCOL, &field_key_id(name, Some(&self.serial_number)))?;
            let h = brc42::tweak(&subject, &invoice);
            let symmetric = brc42::symmetric_key(&subject, &h, &anyone, &subject)?;
            let opened = base64_decode(encrypted_key).and_then(|c| brc42::decrypt(&symmetric, &c).ok());
            let value = opened.and_then(|key| open_field(&key, self.fields.get(name)?).ok());
            let value = value.ok_or_else(|| invalid("keyring", format!("the keyring does not open field {name:?}")))?;
            out.insert(name.clone(), value);
        }
        Ok(out)
    }
}

/// The key id of a field's revelation key: the field name in a master keyring, `"<serial> <name>"`
/// in a keyring for a verifier.
pub fn field_key_id(name: &str, serial_number: Option<&str>) -> String {
    match serial_number {
        Some(serial) => format!("{serial} {name}"),
        None => name.to_string(),
    }
}

/// The protocol of [`FIELD_PROTOCOL`] as a wallet method takes it.
pub fn field_protocol() -> WalletProtocol {
    (2, FIELD_PROTOCOL.to_string())
}

/// The protocol of [`SIGNATURE_PROTOCOL`] as a wallet method takes it.
pub fn signature_protocol() -> WalletProtocol {
    (2, SIGNATURE_PROTOCOL.to_string())
}

/// A field name must be 1 to 50 bytes.
pub fn check_field_name(name: &str, parameter: &'static str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_FIELD_NAME {
        return Err(invalid(parameter, format!("field name {name:?} must be 1 to {MAX_FIELD_NAME} bytes")));
    }
    Ok(())
}

/// Encrypts a field's value under a fresh random revelation key: the key and the base64 value
/// (`IV ‖ ciphertext ‖ tag`, as the ts-sdk's `SymmetricKey.encrypt`).
pub fn seal_field(value: &str) -> Result<(Zeroizing<[u8; 32]>, String)> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
    let sealed = brc42::encrypt(key.as_ref(), value.as_bytes())?;
    Ok((key, base64_encode(&sealed)))
}

/// Opens a field's base64 value with its revelation key.
pub fn open_field(key: &[u8], value: &str) -> Result<String> {
    let sealed = base64_decode(value).ok_or_else(|| invalid("fields", "a field value is not base64"))?;
    let plain = brc42::decrypt(key, &sealed)?;
    String::from_utf8(plain.to_vec()).map_err(|_| invalid("fields", "a field's value is not UTF-8"))
}

/// `"<64 hex>.<index>"` as the txid's bytes as written and the index.
fn split_outpoint(s: &str) -> Result<([u8; 32], u32)> {
    let bad = || invalid("revocationOutpoint", "revocationOutpoint must be \"<txid hex>.<output index>\"");
    let (txid, vout) = s.split_once('.').ok_or_else(bad)?;
    let txid: [u8; 32] = hex::decode(txid).ok().and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    let vout = vout.parse::<u32>().map_err(|_| bad())?;
    Ok((txid, vout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip_and_outpoint_checks() {
        let cert = Certificate {
            cert_type: base64_encode(&[1; 32]),
            serial_number: base64_encode(&[2; 32]),
            subject: brc42::generator().to_hex(),
            certifier: brc42::generator().to_hex(),
            revocation_outpoint: format!("{}.3", "ab".repeat(32)),
            fields: BTreeMap::from([("name".into(), base64_encode(b"x")), ("Age".into(), base64_encode(b"y"))]),
            signature: String::new(),
        };
        cert.check().unwrap();
        let bin = cert.to_binary(true).unwrap();
        assert_eq!(Certificate::from_binary(&bin).unwrap(), cert);
        let mut bad = cert.clone();
        bad.revocation_outpoint = "ab.x".into();
        assert_eq!(bad.check().unwrap_err().context_value("parameter"), Some("revocationOutpoint"));
        let mut bad = cert;
        bad.cert_type = base64_encode(&[1; 31]);
        assert_eq!(bad.check().unwrap_err().context_value("parameter"), Some("type"));
    }

    #[test]
    fn sealed_fields_open_with_their_key_only() {
        let (key, sealed) = seal_field("Alice").unwrap();
        assert_eq!(open_field(key.as_ref(), &sealed).unwrap(), "Alice");
        assert!(open_field(&[7; 32], &sealed).is_err());
    }
}
