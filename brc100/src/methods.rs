//! The BRC-100 wallet key methods with the argument and result shapes of @bsv/sdk 2.1.0's
//! `ProtoWallet`, over any [`KeyDeriver`] + [`Signer`]: the MPC wallet of `wallet-engine` or the
//! single-key reference [`SingleKey`](crate::SingleKey).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wallet_bsv::{
    brc42::{self, Counterparty, WalletProtocol},
    Network,
};
use wallet_traits::{Error, ErrorKind, KeyDeriver, PublicKey, Result, Signer};
use zeroize::Zeroizing;

use crate::args::*;

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.to_string())
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

    pub(crate) fn identity(&self) -> PublicKey {
        self.deriver.identity_key()
    }

    /// The wallet's identity (root) public key.
    pub fn identity_key(&self) -> PublicKey {
        self.identity()
    }

    /// `root * C`; with C = G ("anyone") that is the identity key itself, no round trip.
    pub(crate) async fn shared_secret(&self, counterparty: &PublicKey) -> Result<PublicKey> {
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
    ///
    /// Data goes to the signer as data ([`Signer::sign_data`](wallet_traits::Signer::sign_data)):
    /// an MPC wallet's cosigners hash it themselves, so a spending policy can tell it from a
    /// transaction's sighash; `hashToDirectlySign` is a raw digest, which such a policy refuses.
    pub async fn create_signature(&self, args: CreateSignatureArgs) -> Result<Vec<u8>> {
        let k = &args.key;
        let signed = match (args.hash_to_directly_sign, args.data) {
            (None, Some(data)) => {
                let d = self.derive(&k.protocol_id, &k.key_id, k.counterparty.as_deref().unwrap_or("anyone")).await?;
                self.signer.sign_data(&data, Some(&d.h)).await?
            }
            (hash, data) => {
                let hash =
                    digest_of(hash, "hashToDirectlySign", data, "args.data or args.hashToDirectlySign must be valid")?;
                let d = self.derive(&k.protocol_id, &k.key_id, k.counterparty.as_deref().unwrap_or("anyone")).await?;
                self.signer.sign_digest(&hash, Some(&d.h)).await?
            }
        };
        Ok(signed.to_der())
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
        let key = self.symmetric(&args.key).await?;
        if brc42::verify_hmac(&key, &args.data, &args.hmac) {
            Ok(true)
        } else {
            Err(invalid("HMAC is not valid").with_context(CODE, "ERR_INVALID_HMAC"))
        }
    }

    /// `encrypt`: AES-256-GCM, 32-byte IV, `IV || ciphertext || tag` (counterparty default `self`).
    pub async fn encrypt(&self, args: EncryptArgs) -> Result<Vec<u8>> {
        brc42::encrypt(&self.symmetric(&args.key).await?, &args.plaintext)
    }

    /// Decrypts what [`Self::encrypt`] produced for the same key arguments (BRC-2).
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

    /// The ts-sdk's `createNonce(wallet, counterparty)`: 16 random bytes and their HMAC under
    /// protocol `[2, 'server hmac']` (key id: the bytes as `TextDecoder` reads them), base64.
    pub async fn create_nonce(&self, counterparty: &str) -> Result<String> {
        let mut first = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut first);
        self.nonce_from(first, counterparty).await
    }

    /// The nonce [`Self::create_nonce`] makes of these 16 bytes (for vectors).
    pub async fn nonce_from(&self, first_half: [u8; 16], counterparty: &str) -> Result<String> {
        let hmac = self.create_hmac(nonce_hmac_args(&first_half, counterparty)).await?;
        Ok(wallet_bsv::encoding::base64_encode(&[first_half.as_slice(), &hmac].concat()))
    }

    /// The ts-sdk's `verifyNonce`: whether `nonce` is one this wallet made for `counterparty`
    /// (or, with `counterparty` the wallet's peer, one the peer made for this wallet).
    pub async fn verify_nonce(&self, nonce: &str, counterparty: &str) -> Result<bool> {
        let Some(bytes) = wallet_bsv::encoding::base64_decode(nonce).filter(|b| b.len() > 16) else {
            return Ok(false);
        };
        let (data, hmac) = bytes.split_at(16);
        let key = self.symmetric(&nonce_hmac_args(data, counterparty).key).await?;
        Ok(brc42::verify_hmac(&key, data, hmac))
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

fn nonce_hmac_args(data: &[u8], counterparty: &str) -> CreateHmacArgs {
    CreateHmacArgs {
        key: KeyArgs {
            protocol_id: (2, "server hmac".into()),
            key_id: wallet_bsv::encoding::js_utf8(data),
            counterparty: Some(counterparty.to_string()),
        },
        data: data.to_vec(),
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

use wallet_bsv::signature::verify_der;
