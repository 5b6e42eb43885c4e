//! The BRC-100 wallet key methods with the argument and result shapes of @bsv/sdk 2.1.0's
//! `ProtoWallet`, over any [`KeyDeriver`] + [`Signer`]: the MPC [`crate::Wallet`] or the
//! single-key reference [`crate::brc42::SingleKey`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{Error, ErrorKind, KeyDeriver, PublicKey, Result, Signer};
use zeroize::Zeroizing;

use crate::{
    brc42::{self, Counterparty, WalletProtocol},
    config::Network,
};

/// The error `code` field of a BRC-100 error, kept as error context.
pub const CODE: &str = "code";

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.to_string())
}

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

/// The key methods over a deriver (ECDH with the root key) and a signer.
#[derive(Clone)]
pub struct KeyMethods {
    deriver: Arc<dyn KeyDeriver>,
    signer: Arc<dyn Signer>,
    network: Network,
}

impl std::fmt::Debug for KeyMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMethods").field("identity", &self.deriver.identity_key()).finish_non_exhaustive()
    }
}

/// A derivation: the invoice, the counterparty's key and the tweak `h`.
struct Derived {
    counterparty: PublicKey,
    shared: PublicKey,
    h: Zeroizing<[u8; 32]>,
}

impl KeyMethods {
    /// Key methods backed by `deriver` and `signer` (usually the same wallet).
    pub fn new(deriver: Arc<dyn KeyDeriver>, signer: Arc<dyn Signer>, network: Network) -> Self {
        Self { deriver, signer, network }
    }

    fn identity(&self) -> PublicKey {
        self.deriver.identity_key()
    }

    /// `root * C`; with C = G ("anyone") that is the identity key itself, no round trip.
    async fn shared_secret(&self, counterparty: &PublicKey) -> Result<PublicKey> {
        if *counterparty == brc42::generator() {
            return Ok(self.identity());
        }
        self.deriver.ecdh(counterparty).await
    }

    async fn derive(&self, protocol: &WalletProtocol, key_id: &str, counterparty: &str) -> Result<Derived> {
        let invoice = brc42::invoice_number(protocol.0, &protocol.1, key_id)?;
        let counterparty = Counterparty::parse(counterparty)?.public_key(&self.identity());
        let shared = self.shared_secret(&counterparty).await?;
        let h = Zeroizing::new(brc42::tweak(&shared, &invoice));
        Ok(Derived { counterparty, shared, h })
    }

    async fn symmetric(&self, key: &KeyArgs) -> Result<Zeroizing<Vec<u8>>> {
        let d = self.derive(&key.protocol_id, &key.key_id, key.counterparty.as_deref().unwrap_or("self")).await?;
        brc42::symmetric_key(&d.shared, &d.h, &self.identity(), &d.counterparty)
    }

    /// `getPublicKey`.
    pub async fn get_public_key(&self, args: GetPublicKeyArgs) -> Result<GetPublicKeyResult> {
        if args.identity_key {
            return Ok(GetPublicKeyResult { public_key: self.identity().to_hex() });
        }
        let (Some(protocol), Some(key_id)) =
            (args.protocol_id.as_ref(), args.key_id.as_deref().filter(|k| !k.is_empty()))
        else {
            return Err(invalid("protocolID and keyID are required if identityKey is false or undefined."));
        };
        let d = self.derive(protocol, key_id, args.counterparty.as_deref().unwrap_or("self")).await?;
        let base = if args.for_self.unwrap_or(false) { self.identity() } else { d.counterparty };
        Ok(GetPublicKeyResult { public_key: brc42::child_public_key(&base, &d.h)?.to_hex() })
    }

    /// `createSignature`: signs SHA-256(data), or `hashToDirectlySign` (exactly 32 bytes) as
    /// given, with the child key for the counterparty (default `anyone`). DER, low-S.
    pub async fn create_signature(&self, args: CreateSignatureArgs) -> Result<Vec<u8>> {
        let hash = digest_of(
            args.hash_to_directly_sign,
            "hashToDirectlySign",
            args.data,
            "args.data or args.hashToDirectlySign must be valid",
        )?;
        let k = &args.key;
        let d = self.derive(&k.protocol_id, &k.key_id, k.counterparty.as_deref().unwrap_or("anyone")).await?;
        Ok(self.signer.sign_digest(&hash, Some(&d.h)).await?.to_der())
    }

    /// `verifySignature` (counterparty default `self`); `hashToDirectlyVerify` must be 32 bytes.
    pub async fn verify_signature(&self, args: VerifySignatureArgs) -> Result<bool> {
        let hash = digest_of(
            args.hash_to_directly_verify,
            "hashToDirectlyVerify",
            args.data,
            "args.data or args.hashToDirectlyVerify must be valid",
        )?;
        let k = &args.key;
        let d = self.derive(&k.protocol_id, &k.key_id, k.counterparty.as_deref().unwrap_or("self")).await?;
        let base = if args.for_self.unwrap_or(false) { self.identity() } else { d.counterparty };
        let key = brc42::child_public_key(&base, &d.h)?;
        if verify_der(&key, &hash, &args.signature) {
            Ok(true)
        } else {
            Err(invalid("Signature is not valid").with_context(CODE, "ERR_INVALID_SIGNATURE"))
        }
    }

    /// `createHmac` (counterparty default `self`).
    pub async fn create_hmac(&self, args: CreateHmacArgs) -> Result<Vec<u8>> {
        Ok(brc42::hmac(&self.symmetric(&args.key).await?, &args.data).to_vec())
    }

    /// `verifyHmac`, constant time.
    pub async fn verify_hmac(&self, args: VerifyHmacArgs) -> Result<bool> {
        use hmac::Mac;
        let key = self.symmetric(&args.key).await?;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        mac.update(&args.data);
        mac.verify_slice(&args.hmac)
            .map(|_| true)
            .map_err(|_| invalid("HMAC is not valid").with_context(CODE, "ERR_INVALID_HMAC"))
    }

    /// `encrypt`: AES-256-GCM, 32-byte IV, `IV || ciphertext || tag` (counterparty default `self`).
    pub async fn encrypt(&self, args: EncryptArgs) -> Result<Vec<u8>> {
        brc42::encrypt(&self.symmetric(&args.key).await?, &args.plaintext)
    }

    /// `decrypt`.
    pub async fn decrypt(&self, args: DecryptArgs) -> Result<Zeroizing<Vec<u8>>> {
        brc42::decrypt(&self.symmetric(&args.key).await?, &args.ciphertext)
    }

    /// `revealSpecificKeyLinkage`: the tweak `h` of one derivation, encrypted for the verifier.
    pub async fn reveal_specific_key_linkage(&self, args: RevealSpecificArgs) -> Result<RevealSpecificResult> {
        let d = self.derive(&args.protocol_id, &args.key_id, &args.counterparty).await?;
        let protocol: WalletProtocol =
            (2, format!("specific linkage revelation {} {}", args.protocol_id.0, args.protocol_id.1));
        let for_verifier = |plaintext: Vec<u8>| EncryptArgs {
            key: KeyArgs {
                protocol_id: protocol.clone(),
                key_id: args.key_id.clone(),
                counterparty: Some(args.verifier.clone()),
            },
            plaintext,
        };
        let encrypted_linkage = self.encrypt(for_verifier(d.h.to_vec())).await?;
        let encrypted_linkage_proof = self.encrypt(for_verifier(vec![0])).await?;
        Ok(RevealSpecificResult {
            prover: self.identity().to_hex(),
            verifier: args.verifier,
            counterparty: args.counterparty,
            protocol_id: args.protocol_id,
            key_id: args.key_id,
            encrypted_linkage,
            encrypted_linkage_proof,
            proof_type: 0,
        })
    }

    /// `revealCounterpartyKeyLinkage`: the shared secret with a counterparty and a Schnorr proof
    /// of it (computed jointly by the MPC wallet), both encrypted for the verifier.
    pub async fn reveal_counterparty_key_linkage(
        &self,
        args: RevealCounterpartyArgs,
    ) -> Result<RevealCounterpartyResult> {
        let refuse = || invalid("Counterparty secrets cannot be revealed for counterparty=self.");
        if args.counterparty == "self" {
            return Err(refuse());
        }
        let counterparty = brc42::parse_public_key(&args.counterparty)?;
        if counterparty == self.identity() {
            return Err(refuse());
        }
        let proof = self.deriver.linkage_proof(&counterparty).await?;
        let mut proof_bin = Vec::with_capacity(98);
        proof_bin.extend_from_slice(proof.r.as_bytes());
        proof_bin.extend_from_slice(proof.s_prime.as_bytes());
        // The ts-sdk writes z as a minimal big-endian number.
        let start = proof.z.iter().position(|b| *b != 0).unwrap_or(31);
        proof_bin.extend_from_slice(&proof.z[start..]);
        let revelation_time = iso_8601_now();
        let for_verifier = |plaintext: Vec<u8>| EncryptArgs {
            key: KeyArgs {
                protocol_id: (2, "counterparty linkage revelation".into()),
                key_id: revelation_time.clone(),
                counterparty: Some(args.verifier.clone()),
            },
            plaintext,
        };
        let encrypted_linkage = self.encrypt(for_verifier(proof.shared.as_bytes().to_vec())).await?;
        let encrypted_linkage_proof = self.encrypt(for_verifier(proof_bin)).await?;
        Ok(RevealCounterpartyResult {
            prover: self.identity().to_hex(),
            verifier: args.verifier,
            counterparty: args.counterparty,
            revelation_time,
            encrypted_linkage,
            encrypted_linkage_proof,
        })
    }

    /// `getNetwork`.
    pub fn network(&self) -> Network {
        self.network
    }

    /// `getVersion`: BRC-100's `vendor-major.minor.patch`.
    pub fn version(&self) -> String {
        format!("mpc-wallet-{}", env!("CARGO_PKG_VERSION"))
    }

    /// `isAuthenticated` / `waitForAuthentication`: key methods exist only for a provisioned or
    /// restored wallet, so the answer is always yes.
    pub fn is_authenticated(&self) -> bool {
        true
    }
}

/// Now as JavaScript's `Date.toISOString()`: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso_8601_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (d.as_secs(), d.subsec_millis());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The digest to sign or verify: `hash` (`parameter` names its field) exactly as given, which
/// must be 32 bytes, or SHA-256 of `data`. A short hash is refused rather than padded: an empty
/// one would otherwise sign the all-zero digest.
fn digest_of(hash: Option<Vec<u8>>, parameter: &'static str, data: Option<Vec<u8>>, missing: &str) -> Result<[u8; 32]> {
    match (hash, data) {
        (Some(h), _) => <[u8; 32]>::try_from(h.as_slice()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{parameter} must be exactly 32 bytes (a SHA-256 digest), not {} bytes", h.len()),
            )
            .with_context("parameter", parameter)
        }),
        (None, Some(d)) => Ok(Sha256::digest(&d).into()),
        (None, None) => Err(invalid(missing)),
    }
}

/// DER ECDSA verification; high-S signatures are accepted, as the ts-sdk's verifier does.
pub(crate) fn verify_der(key: &PublicKey, hash: &[u8; 32], der: &[u8]) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(vk) = k256::ecdsa::VerifyingKey::from_sec1_bytes(key.as_bytes()) else { return false };
    let Ok(sig) = k256::ecdsa::Signature::from_der(der) else { return false };
    let sig = sig.normalize_s().unwrap_or(sig);
    vk.verify_prehash(hash, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use wallet_traits::{EcdsaSignature, LinkageProof};

    use super::*;
    use crate::brc42::SingleKey;

    /// A single key that counts signing runs, so a test can tell that none happened.
    #[derive(Debug)]
    struct Counting {
        key: SingleKey,
        signed: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeyDeriver for Counting {
        fn identity_key(&self) -> PublicKey {
            self.key.public_key()
        }
        async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
            self.key.ecdh(point)
        }
        async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
            KeyDeriver::linkage_proof(&self.key, counterparty).await
        }
    }

    #[async_trait::async_trait]
    impl Signer for Counting {
        fn public_key(&self) -> PublicKey {
            self.key.public_key()
        }
        async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
            self.signed.fetch_add(1, Ordering::SeqCst);
            Signer::sign_digest(&self.key, digest, tweak).await
        }
    }

    fn methods() -> (KeyMethods, Arc<Counting>) {
        let key = Arc::new(Counting { key: SingleKey::from_bytes([7; 32]).unwrap(), signed: AtomicUsize::new(0) });
        (KeyMethods::new(key.clone(), key.clone(), Network::Mainnet), key)
    }

    fn key_args() -> KeyArgs {
        KeyArgs { protocol_id: (0, "hash length test".into()), key_id: "1".into(), counterparty: None }
    }

    /// Our own key for counterparty `anyone`, the default of `createSignature`.
    fn anyone_args() -> KeyArgs {
        KeyArgs { counterparty: Some("anyone".into()), ..key_args() }
    }

    #[tokio::test]
    async fn a_hash_to_sign_must_be_exactly_32_bytes() {
        let (m, key) = methods();
        for len in [0usize, 1, 31, 33, 64] {
            let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: Some(vec![1; len]) };
            let e = m.create_signature(args).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{len}: {e}");
            assert_eq!(e.context_value("parameter"), Some("hashToDirectlySign"), "{len}");
            assert!(e.message().contains("exactly 32 bytes"), "{e}");
            assert!(e.message().contains(&format!("not {len} bytes")), "{e}");
        }
        // Data is not a way around it: the hash wins when both are given.
        let args =
            CreateSignatureArgs { key: key_args(), data: Some(b"x".to_vec()), hash_to_directly_sign: Some(vec![]) };
        assert_eq!(m.create_signature(args).await.unwrap_err().context_value("parameter"), Some("hashToDirectlySign"));
        assert_eq!(key.signed.load(Ordering::SeqCst), 0, "nothing was signed");

        let hash = vec![9; 32];
        let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: Some(hash.clone()) };
        let signature = m.create_signature(args).await.unwrap();
        assert_eq!(key.signed.load(Ordering::SeqCst), 1);
        let verify = |hash: Vec<u8>| VerifySignatureArgs {
            key: anyone_args(),
            data: None,
            hash_to_directly_verify: Some(hash),
            signature: signature.clone(),
            for_self: Some(true),
        };
        assert!(m.verify_signature(verify(hash)).await.unwrap());
        for len in [0usize, 31, 33] {
            let e = m.verify_signature(verify(vec![9; len])).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert_eq!(e.context_value("parameter"), Some("hashToDirectlyVerify"), "{len}");
        }
    }

    #[tokio::test]
    async fn data_is_hashed_and_one_of_the_two_is_required() {
        let (m, key) = methods();
        let args = CreateSignatureArgs { key: key_args(), data: None, hash_to_directly_sign: None };
        let e = m.create_signature(args).await.unwrap_err();
        assert!(e.message().contains("args.data or args.hashToDirectlySign must be valid"), "{e}");
        let data = b"signed data".to_vec();
        let args = CreateSignatureArgs { key: key_args(), data: Some(data.clone()), hash_to_directly_sign: None };
        let signature = m.create_signature(args).await.unwrap();
        let digest: [u8; 32] = Sha256::digest(&data).into();
        let args = VerifySignatureArgs {
            key: anyone_args(),
            data: None,
            hash_to_directly_verify: Some(digest.to_vec()),
            signature,
            for_self: Some(true),
        };
        assert!(m.verify_signature(args).await.unwrap());
        assert_eq!(key.signed.load(Ordering::SeqCst), 1);
    }
}
