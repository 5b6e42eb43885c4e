//! Approvals: a person's signed consent to one payment, which lifts the limits for it once.

use std::fmt;

use k256::ecdsa::{
    signature::hazmat::{PrehashSigner, PrehashVerifier},
    Signature, SigningKey, VerifyingKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{Approval, Error, ErrorKind, PublicKey, Result};
use zeroize::Zeroizing;

/// What an approver's signature covers: these bytes, then the body's canonical JSON. The prefix
/// keeps an approval signature from ever being valid for anything else the key might sign.
pub const APPROVAL_DOMAIN: &[u8] = b"mpc-wallet approval v1\0";

/// The most bytes an encoded approval may take; a real one is a few hundred.
const MAX_APPROVAL_BYTES: usize = 16 * 1024;

fn malformed(why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("not an approval as `mpc-wallet approve` writes it: {why}; sign a new one with `mpc-wallet approve`"),
    )
}

/// What a person approves: one payment of at most `sats` from `wallet` to `destination`,
/// until `expires_at_ms`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalBody {
    /// The wallet that may pay.
    pub wallet: String,
    /// The locking script it may pay to: every paying output of the transaction must be
    /// locked by it.
    pub destination: Vec<u8>,
    /// The most the transaction may cost, fee included (its net outflow).
    pub sats: u64,
    /// When the approval stops counting (milliseconds since the Unix epoch).
    pub expires_at_ms: u64,
    /// Random bytes, so two approvals of the same payment are two approvals.
    pub nonce: [u8; 16],
}

impl fmt::Debug for ApprovalBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalBody")
            .field("wallet", &self.wallet)
            .field("destination", &hex::encode(&self.destination))
            .field("sats", &self.sats)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("nonce", &hex::encode(self.nonce))
            .finish()
    }
}

/// The JSON form of [`ApprovalBody`]; the field order is the canonical order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyJson {
    wallet: String,
    destination: String,
    sats: u64,
    expires_at_ms: u64,
    nonce: String,
}

/// The JSON form of [`SignedApproval`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedJson {
    approval: BodyJson,
    key: String,
    signature: String,
}

impl ApprovalBody {
    /// 16 random bytes from the operating system, for [`ApprovalBody::nonce`].
    pub fn random_nonce() -> [u8; 16] {
        use rand::RngCore;
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        nonce
    }

    fn json(&self) -> BodyJson {
        BodyJson {
            wallet: self.wallet.clone(),
            destination: hex::encode(&self.destination),
            sats: self.sats,
            expires_at_ms: self.expires_at_ms,
            nonce: hex::encode(self.nonce),
        }
    }

    fn from_json(j: BodyJson) -> Result<Self> {
        let destination = hex::decode(&j.destination).map_err(|_| malformed("the destination is not hex"))?;
        let nonce = hex::decode(&j.nonce)
            .ok()
            .and_then(|n| <[u8; 16]>::try_from(n).ok())
            .ok_or_else(|| malformed("the nonce is not 32 hex characters"))?;
        if j.wallet.is_empty() || destination.is_empty() {
            return Err(malformed("it names no wallet or no destination"));
        }
        Ok(ApprovalBody { wallet: j.wallet, destination, sats: j.sats, expires_at_ms: j.expires_at_ms, nonce })
    }

    /// The canonical JSON of the body: fields in a fixed order, no spaces, bytes as lower-case
    /// hex.
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json()).expect("plain data serializes")
    }

    /// What the approver's key signs: SHA-256 of [`APPROVAL_DOMAIN`] followed by the
    /// canonical JSON.
    pub fn signing_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(APPROVAL_DOMAIN);
        h.update(self.canonical_json());
        h.finalize().into()
    }
}

/// An approval with its approver's key and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedApproval {
    /// What was approved.
    pub body: ApprovalBody,
    /// The approver's compressed public key.
    pub key: PublicKey,
    /// The ECDSA signature (r || s, s low) over [`ApprovalBody::signing_digest`].
    pub signature: [u8; 64],
}

impl SignedApproval {
    /// The approval's id: SHA-256 of the body's canonical JSON. It names what was approved, not
    /// how the signature is written, so one approval can never be stored (and spent) under two
    /// ids.
    pub fn id(&self) -> [u8; 32] {
        Sha256::digest(self.body.canonical_json()).into()
    }

    /// The canonical encoding: JSON `{"approval":{..},"key":"..","signature":".."}`. These are
    /// the bytes a store keeps ([`Approval::body`]) and [`parse_and_verify`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let j =
            SignedJson { approval: self.body.json(), key: self.key.to_hex(), signature: hex::encode(self.signature) };
        serde_json::to_vec(&j).expect("plain data serializes")
    }

    /// The approval as a store keeps it.
    pub fn to_store(&self) -> Approval {
        Approval {
            id: self.id(),
            wallet: self.body.wallet.clone(),
            expires_ms: self.body.expires_at_ms,
            body: self.to_bytes(),
        }
    }
}

/// Signs `body` with an approver's key.
pub fn sign_approval(body: ApprovalBody, key: &SigningKey) -> SignedApproval {
    // k256 signs with s normalized low, which is what verification demands.
    let signature: Signature = key.sign_prehash(&body.signing_digest()).expect("a 32-byte digest always signs");
    SignedApproval { body, key: public_key_of(key.verifying_key()), signature: signature.to_bytes().into() }
}

fn public_key_of(key: &VerifyingKey) -> PublicKey {
    PublicKey::from_slice(key.to_encoded_point(true).as_bytes()).expect("a compressed point is 33 bytes")
}

/// The wallet an approval names, read before it is verified: whose approver keys verify it.
pub fn approval_wallet(bytes: &[u8]) -> Result<String> {
    if bytes.len() > MAX_APPROVAL_BYTES {
        return Err(malformed(format!("it is {} bytes, more than {MAX_APPROVAL_BYTES}", bytes.len())));
    }
    let j: SignedJson = serde_json::from_slice(bytes).map_err(malformed)?;
    Ok(j.approval.wallet)
}

/// Reads an approval ([`SignedApproval::to_bytes`]) and checks it: canonical bytes
/// (`InvalidInput` otherwise), signed by one of `approver_keys` with a valid signature and not
/// expired at `now_ms` (`PolicyDenied` otherwise). Whether it fits a payment is the decision's
/// business.
pub fn parse_and_verify(bytes: &[u8], approver_keys: &[PublicKey], now_ms: u64) -> Result<SignedApproval> {
    if bytes.len() > MAX_APPROVAL_BYTES {
        return Err(malformed(format!("it is {} bytes, more than {MAX_APPROVAL_BYTES}", bytes.len())));
    }
    let j: SignedJson = serde_json::from_slice(bytes).map_err(malformed)?;
    let key = hex::decode(&j.key)
        .ok()
        .and_then(|k| PublicKey::from_slice(&k).ok())
        .ok_or_else(|| malformed("the key is not a compressed public key in hex"))?;
    let signature = hex::decode(&j.signature)
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| malformed("the signature is not 128 hex characters"))?;
    let approval = SignedApproval { body: ApprovalBody::from_json(j.approval)?, key, signature };
    // One approval, one encoding: bytes written any other way (spacing, order, upper-case hex)
    // are refused rather than normalized.
    if approval.to_bytes() != bytes {
        return Err(malformed("it is not in canonical form"));
    }
    if !approver_keys.contains(&approval.key) {
        return Err(Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "the approval is signed by {}, which is not among this cosigner's approver_keys; sign with a listed \
                 key, or add the key to the policy file",
                approval.key
            ),
        ));
    }
    let denied_signature = || {
        Error::new(
            ErrorKind::PolicyDenied,
            "the approval's signature does not verify: it was altered or signed by another key; sign a new one",
        )
    };
    let verifying = VerifyingKey::from_sec1_bytes(key.as_bytes()).map_err(|_| denied_signature())?;
    let sig = Signature::from_slice(&signature).map_err(|_| denied_signature())?;
    verifying.verify_prehash(&approval.body.signing_digest(), &sig).map_err(|_| denied_signature())?;
    if approval.body.expires_at_ms <= now_ms {
        return Err(Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "the approval expired at {} ms (now {now_ms} ms); sign a new one with `mpc-wallet approve`",
                approval.body.expires_at_ms
            ),
        ));
    }
    Ok(approval)
}

/// An approver's secret key, as `mpc-wallet keys` writes it (64 hex characters). Its `Debug`
/// shows only the public key.
#[derive(Clone)]
pub struct ApproverKey(SigningKey);

impl fmt::Debug for ApproverKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApproverKey").field("public", &self.public_hex()).finish_non_exhaustive()
    }
}

impl ApproverKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Self {
        ApproverKey(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The key from its hex secret (surrounding whitespace ignored). The error never repeats
    /// the text.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                "an approver key file holds one secp256k1 secret key as 64 hex characters, as `mpc-wallet keys` \
                 writes it",
            )
        };
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad())?);
        if bytes.len() != 32 {
            return Err(bad());
        }
        SigningKey::from_slice(&bytes).map(ApproverKey).map_err(|_| bad())
    }

    /// The secret as 64 hex characters, for the key file only.
    pub fn secret_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    /// The public key, which goes into a policy's `approver_keys`.
    pub fn public_key(&self) -> PublicKey {
        public_key_of(self.0.verifying_key())
    }

    /// [`Self::public_key`] in hex.
    pub fn public_hex(&self) -> String {
        self.public_key().to_hex()
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// Signs `body` ([`sign_approval`]).
    pub fn sign(&self, body: ApprovalBody) -> SignedApproval {
        sign_approval(body, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> ApprovalBody {
        ApprovalBody {
            wallet: "agent-1".into(),
            destination: wallet_bsv::Script::p2pkh_lock(&[7; 20]).into_bytes(),
            sats: 75_000,
            expires_at_ms: 2_000,
            nonce: [9; 16],
        }
    }

    #[test]
    fn signed_approvals_round_trip_and_verify() {
        let key = ApproverKey::from_hex(&"11".repeat(32)).unwrap();
        let signed = key.sign(body());
        let bytes = signed.to_bytes();
        let back = parse_and_verify(&bytes, &[key.public_key()], 1_999).unwrap();
        assert_eq!(back, signed);
        let stored = signed.to_store();
        assert_eq!(stored.id, signed.id());
        assert_eq!(stored.body, bytes);
        assert_eq!((stored.wallet.as_str(), stored.expires_ms), ("agent-1", 2_000));
        // The id names the body: another nonce, another approval.
        let other = key.sign(ApprovalBody { nonce: [8; 16], ..body() });
        assert_ne!(other.id(), signed.id());
        assert!(std::str::from_utf8(&bytes).unwrap().starts_with("{\"approval\":{\"wallet\":\"agent-1\""));
    }

    #[test]
    fn bad_approvals_are_refused() {
        let key = ApproverKey::from_hex(&"11".repeat(32)).unwrap();
        let pinned = [key.public_key()];
        let bytes = key.sign(body()).to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();

        let e = parse_and_verify(&bytes, &pinned, 2_000).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().contains("expired"), "{e}");

        let stranger = ApproverKey::from_hex(&"22".repeat(32)).unwrap();
        let e = parse_and_verify(&stranger.sign(body()).to_bytes(), &pinned, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().contains("not among this cosigner's approver_keys"), "{e}");

        // A raised amount under the old signature.
        let raised = text.replace("\"sats\":75000", "\"sats\":75001");
        let e = parse_and_verify(raised.as_bytes(), &pinned, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().contains("signature does not verify"), "{e}");

        // Someone else's key claimed, with this key's signature.
        let claimed = text.replace(&key.public_hex(), &stranger.public_hex());
        let e = parse_and_verify(claimed.as_bytes(), &[stranger.public_key()], 0).unwrap_err();
        assert!(e.message().contains("signature does not verify"), "{e}");

        for bad in [
            text.replace("{\"approval\"", "{ \"approval\""),
            text.replace("\"sats\":75000", "\"sats\":75000,\"extra\":1"),
            text.replace("\"nonce\":\"09", "\"nonce\":\""),
            "[]".to_string(),
            "x".repeat(MAX_APPROVAL_BYTES + 1),
        ] {
            let e = parse_and_verify(bad.as_bytes(), &pinned, 0).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }

    #[test]
    fn approver_keys_keep_their_secret() {
        let key = ApproverKey::generate();
        let again = ApproverKey::from_hex(&format!(" {}\n", key.secret_hex().as_str())).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.public_hex()));
        assert!(!shown.contains(key.secret_hex().as_str()));
        for bad in ["", "zz", &"00".repeat(32), &"ff".repeat(32), &"11".repeat(33)] {
            let e = ApproverKey::from_hex(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        assert_ne!(ApproverKey::generate().public_key(), key.public_key());
    }
}
