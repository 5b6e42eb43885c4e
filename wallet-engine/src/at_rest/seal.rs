//! Shares at rest: Argon2id -> HKDF-SHA256 -> AEAD, with a password verifier checked before any
//! decryption and associated data that binds a record to its wallet, key, party and collective key.
//!
//! Sealed blob (format 2):
//! `magic "MPCS" | format u8 | cipher u8 | m_kib u32 | t u32 | p u32 | salt[16] | verifier[32] |
//! nonce[12] | labels_len u32 | labels | ciphertext+tag | checksum[16]`
//! The trailing checksum (truncated SHA-256, not a security measure) tells storage corruption
//! apart from a wrong secret: a flipped byte anywhere gives `Corrupted`, never `WrongSecret`.
//!
//! `labels` is public and, like the whole header, associated data. A share record's labels name
//! the protocol that made its share and, while a migration is staged, the run and protocol of
//! the Pending share sealed beside it, and for a further key of a group, which holds only its key
//! part, the group key whose record completes it ([`ShareLabels`]); a prime record's are empty.
//! Format 1 (no labels) is what releases before cggmp24 wrote: its shares are cggmp21's.
//!
//! Each record has a fresh salt, except a further key's, which takes its group record's
//! ([`RecordSalt`]); a [`Sealer`] keeps the Argon2id outputs of the share records it handled.

use std::{collections::VecDeque, fmt, str::FromStr, sync::Arc};

use aes_gcm::{aead::Aead, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_traits::{Error, ErrorKind, ExecutionId, KeyId, PartyIndex, Result, WalletId};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 4] = b"MPCS";
/// Format version of sealed blobs written by this release.
pub const SEAL_FORMAT: u8 = 2;
/// The format before labels; its shares are cggmp21's.
const SEAL_FORMAT_V1: u8 = 1;
/// The protocol of every share sealed in format 1.
const V1_PROTOCOL: &str = "cggmp21/0.6.3";
const SALT_LEN: usize = 16;
const VERIFIER_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const CHECKSUM_LEN: usize = 16;
const HEADER_LEN: usize = 4 + 1 + 1 + 12 + SALT_LEN + VERIFIER_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// The label tag of [`ShareLabels::aux_from`].
const TAG_AUX_FROM: u8 = 1;

/// The secret that seals shares (from MPC_SHARE_SECRET). Zeroized on drop; never printed.
#[derive(Clone)]
pub struct ShareSecret(Zeroizing<Vec<u8>>);

impl ShareSecret {
    /// Wraps a secret. Refuses an empty one.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self> {
        let s = Zeroizing::new(secret.into());
        if s.is_empty() {
            return Err(Error::new(ErrorKind::Config, "the share secret is empty; set MPC_SHARE_SECRET"));
        }
        Ok(Self(s))
    }
}

impl fmt::Debug for ShareSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareSecret(<redacted>)")
    }
}

/// The AEAD used for new records. Existing records name their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// AES-256-GCM (default).
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Cipher {
    fn id(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }

    fn from_id(id: u8) -> Result<Self> {
        match id {
            1 => Ok(Cipher::Aes256Gcm),
            2 => Ok(Cipher::ChaCha20Poly1305),
            _ => Err(corrupted("unknown cipher id")),
        }
    }
}

impl FromStr for Cipher {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "aes-256-gcm" | "aes256gcm" | "aes" => Ok(Cipher::Aes256Gcm),
            "chacha20-poly1305" | "chacha20poly1305" | "chacha" => Ok(Cipher::ChaCha20Poly1305),
            _ => Err(Error::new(ErrorKind::Config, "unknown cipher; use aes-256-gcm or chacha20-poly1305")),
        }
    }
}

/// Argon2id cost parameters. Stored in each record, so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self { m_kib: 19 * 1024, t: 2, p: 1 }
    }
}

// Bounds on parameters read from a record, so a tampered header cannot make us allocate
// gigabytes before the checksum is even looked at.
const MAX_M_KIB: u32 = 1 << 21;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

/// How new records are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SealOptions {
    /// The AEAD.
    pub cipher: Cipher,
    /// Argon2id parameters.
    pub kdf: KdfParams,
}

/// A record's salt and Argon2id parameters: a further key of a group is sealed with its group
/// record's (see [`ShareContents::keyed_like`]), so sealing and opening it derive no new key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordSalt {
    salt: [u8; SALT_LEN],
    kdf: KdfParams,
}

impl fmt::Debug for RecordSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSalt").field("kdf", &self.kdf).finish_non_exhaustive()
    }
}

impl RecordSalt {
    /// The salt and parameters of a sealed record (public header fields).
    pub fn of(sealed: &[u8]) -> Result<Self> {
        if sealed.len() < HEADER_LEN || &sealed[..4] != MAGIC {
            return Err(corrupted("not a sealed record"));
        }
        let word = |i: usize| u32::from_be_bytes(sealed[6 + 4 * i..10 + 4 * i].try_into().expect("4 bytes"));
        let kdf = KdfParams { m_kib: word(0), t: word(1), p: word(2) };
        if kdf.m_kib > MAX_M_KIB || kdf.t > MAX_T || kdf.p > MAX_P {
            return Err(corrupted("key derivation parameters out of range"));
        }
        Ok(Self { salt: sealed[18..18 + SALT_LEN].try_into().expect("salt length"), kdf })
    }

    fn fresh(kdf: KdfParams) -> Self {
        let mut salt = [0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self { salt, kdf }
    }
}

/// The Argon2id outputs of the share records a sealer opened or sealed lately, most recent last.
/// The process holds those records' shares in memory anyway; keeping their keys lets a further
/// key of a group, sealed with the group record's salt, be sealed and opened without another
/// Argon2id run (tens of milliseconds at each party).
#[derive(Default)]
struct Derived(std::sync::Mutex<VecDeque<(RecordSalt, Zeroizing<[u8; 32]>)>>);

/// How many share records' Argon2id outputs a sealer keeps.
const DERIVED_KEPT: usize = 16;

/// Keys derived from one record's salt. Zeroized on drop.
#[derive(Zeroize)]
#[zeroize(drop)]
pub(crate) struct RecordKeys {
    pub(crate) encryption: [u8; 32],
    pub(crate) verifier: [u8; 32],
    pub(crate) derivation_encryption: [u8; 32],
    pub(crate) derivation_lookup: [u8; 32],
}

/// Seals and opens records with one secret. Clones share the keys derived so far.
#[derive(Clone)]
pub struct Sealer {
    secret: ShareSecret,
    options: SealOptions,
    derived: Arc<Derived>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("secret", &self.secret).field("options", &self.options).finish_non_exhaustive()
    }
}

/// Whether a record's Argon2id output is kept ([`Derived`]): share records' are, prime records'
/// (each opened once, then deleted) are not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Yes,
    No,
}

fn corrupted(what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("sealed record is corrupt ({what}); restore it from backup or re-provision the wallet"),
    )
}

impl Sealer {
    /// A sealer for `secret` writing records with `options`.
    pub fn new(secret: ShareSecret, options: SealOptions) -> Self {
        Self { secret, options, derived: Arc::default() }
    }

    /// The Argon2id output for `salt`: kept from an earlier record with it, or computed.
    fn stretch(&self, salt: RecordSalt, keep: Keep) -> Result<Zeroizing<[u8; 32]>> {
        if keep == Keep::Yes {
            let mut kept = self.derived.0.lock().expect("derived keys lock");
            if let Some(at) = kept.iter().position(|(s, _)| *s == salt) {
                let entry = kept.remove(at).expect("position is in range");
                let ikm = entry.1.clone();
                kept.push_back(entry);
                return Ok(ikm);
            }
        }
        let kdf = salt.kdf;
        let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
            .map_err(|_| corrupted("invalid key derivation parameters"))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut ikm = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(&self.secret.0, &salt.salt, ikm.as_mut())
            .map_err(|_| Error::new(ErrorKind::Internal, "argon2id failed"))?;
        Ok(ikm)
    }

    /// Remembers a share record's Argon2id output once the record opened or was sealed (never
    /// one a wrong secret gave).
    fn keep(&self, salt: RecordSalt, ikm: Zeroizing<[u8; 32]>) {
        let mut kept = self.derived.0.lock().expect("derived keys lock");
        if kept.iter().all(|(s, _)| *s != salt) {
            kept.push_back((salt, ikm));
            if kept.len() > DERIVED_KEPT {
                kept.pop_front();
            }
        }
    }

    fn derive(&self, salt: RecordSalt, keep: Keep) -> Result<(RecordKeys, Zeroizing<[u8; 32]>)> {
        let ikm = self.stretch(salt, keep)?;
        let hk = Hkdf::<Sha256>::new(Some(b"mpc-wallet/v1"), ikm.as_ref());
        let mut keys = RecordKeys {
            encryption: [0; 32],
            verifier: [0; 32],
            derivation_encryption: [0; 32],
            derivation_lookup: [0; 32],
        };
        for (info, out) in [
            (&b"share-encryption"[..], &mut keys.encryption),
            (b"password-verifier", &mut keys.verifier),
            (b"derivation-encryption", &mut keys.derivation_encryption),
            (b"derivation-lookup", &mut keys.derivation_lookup),
        ] {
            hk.expand(info, out).map_err(|_| Error::new(ErrorKind::Internal, "hkdf expand failed"))?;
        }
        Ok((keys, ikm))
    }

    fn verifier(keys: &RecordKeys) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&keys.verifier).expect("hmac takes any key length");
        mac.update(b"mpc-wallet/v1/verifier");
        mac
    }

    /// Seals `plaintext` bound to `context` and the public `labels` (associated data), with a
    /// fresh salt, keeping nothing.
    fn seal(&self, context: &[u8], labels: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let salt = RecordSalt::fresh(self.options.kdf);
        self.seal_with_keys(context, labels, plaintext, salt, Keep::No).map(|(blob, _)| blob)
    }

    /// [`Sealer::seal`] with `salt`, also returning the keys derived from it.
    fn seal_with_keys(
        &self,
        context: &[u8],
        labels: &[u8],
        plaintext: &[u8],
        salt: RecordSalt,
        keep: Keep,
    ) -> Result<(Vec<u8>, RecordKeys)> {
        let (cipher, kdf) = (self.options.cipher, salt.kdf);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let (keys, ikm) = self.derive(salt, keep)?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.push(SEAL_FORMAT);
        out.push(cipher.id());
        for v in [kdf.m_kib, kdf.t, kdf.p] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&salt.salt);
        out.extend_from_slice(&Self::verifier(&keys).finalize().into_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(
            &u32::try_from(labels.len()).map_err(|_| Error::new(ErrorKind::Internal, "labels too long"))?.to_be_bytes(),
        );
        out.extend_from_slice(labels);
        let aad = aad(&out, context);
        let ct = aead_encrypt(cipher, &keys.encryption, &nonce, &aad, plaintext)?;
        out.extend_from_slice(&ct);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum[..CHECKSUM_LEN]);
        if keep == Keep::Yes {
            self.keep(salt, ikm);
        }
        Ok((out, keys))
    }

    /// Opens a blob sealed for `context`, keeping nothing.
    fn open(&self, context: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.open_with_keys(context, blob, Keep::No).map(|(plain, _)| plain)
    }

    /// Opens a blob and also returns the keys derived from its salt.
    fn open_with_keys(&self, context: &[u8], blob: &[u8], keep: Keep) -> Result<(Zeroizing<Vec<u8>>, RecordKeys)> {
        let (body, _) = checked_body(blob)?;
        let cipher = Cipher::from_id(body[5])?;
        let salt = RecordSalt::of(body)?;
        let mut at = 18 + SALT_LEN;
        let verifier = &body[at..at + VERIFIER_LEN];
        at += VERIFIER_LEN;
        let nonce = &body[at..at + NONCE_LEN];
        at += NONCE_LEN;
        if body[4] != SEAL_FORMAT_V1 {
            at = labels_span(body)?.1;
        }
        let (keys, ikm) = self.derive(salt, keep)?;
        // Constant-time comparison; a mismatch means the secret is wrong, since the checksum
        // already ruled out corruption.
        Self::verifier(&keys).verify_slice(verifier).map_err(|_| {
            Error::new(
                ErrorKind::WrongSecret,
                "the share secret does not match the stored share; set MPC_SHARE_SECRET to the \
                 secret the wallet was created with",
            )
        })?;
        let aad = aad(&body[..at], context);
        let plain = aead_decrypt(cipher, &keys.encryption, nonce, &aad, &body[at..]).ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupted,
                "the sealed record does not authenticate for this wallet, key and party: it was \
                 altered or copied from another key; restore the original record from backup",
            )
        })?;
        if keep == Keep::Yes {
            self.keep(salt, ikm);
        }
        Ok((plain, keys))
    }

    /// Seals a key share of `key` held by `party` under collective key `public_key`, made by
    /// `share.protocol`, with the Pending share a migration staged beside it, if any.
    pub fn seal_share(
        &self,
        key: &KeyId,
        party: PartyIndex,
        public_key: &[u8],
        share: ShareContents<'_>,
    ) -> Result<Vec<u8>> {
        self.seal_share_with_cache_keys(key, party, public_key, share).map(|(blob, _)| blob)
    }

    /// Like [`Sealer::seal_share`], also returning the keys of the share's derivation cache.
    pub(crate) fn seal_share_with_cache_keys(
        &self,
        key: &KeyId,
        party: PartyIndex,
        public_key: &[u8],
        share: ShareContents<'_>,
    ) -> Result<(Vec<u8>, RecordKeys)> {
        let labels = ShareLabels {
            protocol: share.protocol.to_string(),
            next: share.next.as_ref().map(|n| (n.execution_id, n.protocol.to_string())),
            aux_from: share.aux_from,
        };
        let mut plain = Zeroizing::new(Vec::new());
        match &share.next {
            None => plain.extend_from_slice(share.share),
            Some(next) => {
                let len =
                    u32::try_from(share.share.len()).map_err(|_| Error::new(ErrorKind::Internal, "share too long"))?;
                plain.extend_from_slice(&len.to_be_bytes());
                plain.extend_from_slice(share.share);
                plain.extend_from_slice(next.share);
            }
        }
        let salt = share.keyed_like.unwrap_or_else(|| RecordSalt::fresh(self.options.kdf));
        self.seal_with_keys(&share_context(key, party, public_key), &labels.encode()?, &plain, salt, Keep::Yes)
    }

    /// Opens what [`Sealer::seal_share`] sealed; every bound field must match.
    pub fn open_share(&self, key: &KeyId, party: PartyIndex, public_key: &[u8], sealed: &[u8]) -> Result<OpenedShare> {
        self.open_share_with_cache_keys(key, party, public_key, sealed).map(|(opened, _)| opened)
    }

    /// Like [`Sealer::open_share`], also returning the keys of the share's derivation cache.
    pub(crate) fn open_share_with_cache_keys(
        &self,
        key: &KeyId,
        party: PartyIndex,
        public_key: &[u8],
        sealed: &[u8],
    ) -> Result<(OpenedShare, RecordKeys)> {
        let (plain, keys) = self
            .open_with_keys(&share_context(key, party, public_key), sealed, Keep::Yes)
            .map_err(|e| e.with_context("key", key).with_context("party", party))?;
        let labels = share_labels(sealed)?;
        let opened = match &labels.next {
            None => OpenedShare { labels, share: plain, next: None },
            Some(_) => {
                let len = plain.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize);
                let Some(len) = len.filter(|l| 4 + l <= plain.len()) else {
                    return Err(corrupted("the staged share's length is out of range"));
                };
                let share = Zeroizing::new(plain[4..4 + len].to_vec());
                let next = Zeroizing::new(plain[4 + len..].to_vec());
                OpenedShare { labels, share, next: Some(next) }
            }
        };
        Ok((opened, keys))
    }

    /// Seals a backup of `wallet`: `header` stays readable without the secret
    /// ([`backup_header`]) and is authenticated with the rest; `payload` is encrypted.
    pub fn seal_backup(&self, wallet: &WalletId, header: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
        self.seal(&backup_context(wallet), header, payload)
    }

    /// Opens a backup sealed for `wallet`: [`ErrorKind::WrongSecret`] under another secret,
    /// [`ErrorKind::Corrupted`] when it was altered or sealed for another wallet.
    pub fn open_backup(&self, wallet: &WalletId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.open(&backup_context(wallet), sealed)
    }

    /// Seals a prime pair for pool `pool`.
    pub fn seal_primes(&self, pool: &str, primes: &[u8]) -> Result<Vec<u8>> {
        self.seal(&primes_context(pool), &[], primes)
    }

    /// Opens a sealed prime pair of `pool`.
    pub fn open_primes(&self, pool: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.open(&primes_context(pool), sealed).map_err(|e| e.with_context("prime_pool", pool))
    }
}

/// A share to seal: what made it, its bytes, and the Pending share a migration staged beside it.
#[derive(Clone, Copy)]
pub struct ShareContents<'a> {
    /// The protocol label of the share in force (`Protocol::label`).
    pub protocol: &'a str,
    /// The encoded share.
    pub share: &'a [u8],
    /// A staged successor, if any.
    pub next: Option<NextShare<'a>>,
    /// For a further key whose record holds only its key part: the index of the group's key
    /// whose aux info completes it.
    pub aux_from: Option<u32>,
    /// The salt (and Argon2id parameters) to seal with, when not a fresh one: a further key's
    /// record takes its group record's, so that sealing and opening it run no Argon2id of their own.
    pub keyed_like: Option<RecordSalt>,
}

impl fmt::Debug for ShareContents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareContents").field("protocol", &self.protocol).finish_non_exhaustive()
    }
}

/// The share a migration staged as Pending beside the one in force.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // holds a share's plaintext
pub struct NextShare<'a> {
    /// The migration run that made it; commit and rollback name it.
    pub execution_id: ExecutionId,
    /// Its protocol label.
    pub protocol: &'a str,
    /// The encoded share.
    pub share: &'a [u8],
}

/// An opened share record. Zeroized on drop; never printed.
pub struct OpenedShare {
    /// Its public labels.
    pub labels: ShareLabels,
    /// The share in force.
    pub share: Zeroizing<Vec<u8>>,
    /// The staged successor (labels.next says whose), if any.
    pub next: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for OpenedShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedShare").field("labels", &self.labels).finish_non_exhaustive()
    }
}

/// What a sealed share record says of itself in public (and binds as associated data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLabels {
    /// The protocol label of the share in force.
    pub protocol: String,
    /// The run and protocol label of a successor a migration staged, if any.
    pub next: Option<(ExecutionId, String)>,
    /// For a further key's record, which holds only the key part of its share: the index of the
    /// group's key whose record holds the aux info that completes it.
    pub aux_from: Option<u32>,
}

impl ShareLabels {
    fn encode(&self) -> Result<Vec<u8>> {
        fn label(out: &mut Vec<u8>, l: &str) -> Result<()> {
            out.push(u8::try_from(l.len()).map_err(|_| Error::new(ErrorKind::Internal, "protocol label too long"))?);
            out.extend_from_slice(l.as_bytes());
            Ok(())
        }
        let mut out = Vec::new();
        label(&mut out, &self.protocol)?;
        match &self.next {
            None => out.push(0),
            Some((eid, protocol)) => {
                out.push(1);
                out.extend_from_slice(eid.as_bytes());
                label(&mut out, protocol)?;
            }
        }
        // Optional trailing fields, each tagged, so records written before them still read.
        if let Some(index) = self.aux_from {
            out.push(TAG_AUX_FROM);
            out.extend_from_slice(&index.to_be_bytes());
        }
        Ok(out)
    }

    fn decode(mut b: &[u8]) -> Result<Self> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
            if b.len() < n {
                return Err(corrupted("truncated labels"));
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Ok(head)
        }
        fn label(b: &mut &[u8]) -> Result<String> {
            let len = take(b, 1)?[0];
            String::from_utf8(take(b, usize::from(len))?.to_vec()).map_err(|_| corrupted("a label is not UTF-8"))
        }
        let protocol = label(&mut b)?;
        let next = match take(&mut b, 1)?[0] {
            0 => None,
            1 => {
                let eid = ExecutionId::from_bytes(take(&mut b, 32)?.try_into().expect("32 bytes"));
                Some((eid, label(&mut b)?))
            }
            _ => return Err(corrupted("bad labels")),
        };
        let mut aux_from = None;
        while let Some((&tag, _)) = b.split_first() {
            take(&mut b, 1)?;
            match tag {
                TAG_AUX_FROM if aux_from.is_none() => {
                    aux_from = Some(u32::from_be_bytes(take(&mut b, 4)?.try_into().expect("4 bytes")));
                }
                _ => return Err(corrupted("unknown or repeated label")),
            }
        }
        Ok(Self { protocol, next, aux_from })
    }
}

/// The public labels of a sealed share record, read without the secret (they are authenticated
/// when the record is opened). Reads the header only: the checksum over the whole record (about
/// 2 MB with multiexponentiation tables) is left to opening it.
pub fn share_labels(sealed: &[u8]) -> Result<ShareLabels> {
    if sealed.len() < HEADER_LEN + TAG_LEN + CHECKSUM_LEN || &sealed[..4] != MAGIC {
        return Err(corrupted("not a sealed record"));
    }
    let (body, format) = (&sealed[..sealed.len() - CHECKSUM_LEN], sealed[4]);
    if format != SEAL_FORMAT && format != SEAL_FORMAT_V1 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("sealed format {format} is not supported by this release; upgrade mpc-wallet"),
        ));
    }
    if format == SEAL_FORMAT_V1 {
        return Ok(ShareLabels { protocol: V1_PROTOCOL.to_string(), next: None, aux_from: None });
    }
    let (start, end) = labels_span(body)?;
    ShareLabels::decode(&body[start..end])
}

/// The public header of a sealed backup ([`Sealer::seal_backup`]), read without the secret once
/// the checksum over the whole blob holds (it is authenticated when the backup is opened).
pub fn backup_header(sealed: &[u8]) -> Result<&[u8]> {
    let (body, format) = checked_body(sealed)?;
    if format != SEAL_FORMAT {
        return Err(corrupted("not a backup"));
    }
    let (start, end) = labels_span(body)?;
    Ok(&body[start..end])
}

/// The blob without its checksum, once checksum, magic and format are right; and the format.
fn checked_body(blob: &[u8]) -> Result<(&[u8], u8)> {
    if blob.len() < HEADER_LEN + TAG_LEN + CHECKSUM_LEN {
        return Err(corrupted("too short"));
    }
    let (body, sum) = blob.split_at(blob.len() - CHECKSUM_LEN);
    if Sha256::digest(body)[..CHECKSUM_LEN] != *sum {
        return Err(corrupted("checksum mismatch"));
    }
    if &body[..4] != MAGIC {
        return Err(corrupted("bad magic"));
    }
    if body[4] != SEAL_FORMAT && body[4] != SEAL_FORMAT_V1 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("sealed format {} is not supported by this release; upgrade mpc-wallet", body[4]),
        ));
    }
    Ok((body, body[4]))
}

/// Where a format-2 body's labels start and end (the ciphertext follows).
fn labels_span(body: &[u8]) -> Result<(usize, usize)> {
    let len_at = HEADER_LEN;
    let len = body.get(len_at..len_at + 4).ok_or_else(|| corrupted("too short"))?;
    let start = len_at + 4;
    let end = start + u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    if end + TAG_LEN > body.len() {
        return Err(corrupted("labels out of range"));
    }
    Ok((start, end))
}

fn share_context(key: &KeyId, party: PartyIndex, public_key: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(96);
    for part in [
        &b"mpc-wallet/share/v1"[..],
        key.wallet.as_str().as_bytes(),
        &key.index.to_be_bytes(),
        &party.to_be_bytes(),
        public_key,
    ] {
        push_lp(&mut c, part);
    }
    c
}

fn backup_context(wallet: &WalletId) -> Vec<u8> {
    let mut c = Vec::new();
    push_lp(&mut c, b"mpc-wallet/backup/v1");
    push_lp(&mut c, wallet.as_str().as_bytes());
    c
}

fn primes_context(pool: &str) -> Vec<u8> {
    let mut c = Vec::new();
    push_lp(&mut c, b"mpc-wallet/primes/v1");
    push_lp(&mut c, pool.as_bytes());
    c
}

fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

/// Associated data: the whole header (format, cipher, parameters, salt, verifier, nonce) and the
/// caller's context, so no field can be swapped without detection.
fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + context.len() + 8);
    push_lp(&mut a, header);
    push_lp(&mut a, context);
    a
}

fn aead_encrypt(cipher: Cipher, key: &[u8; 32], nonce: &[u8], aad: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    let payload = aes_gcm::aead::Payload { msg: pt, aad };
    let r = match cipher {
        Cipher::Aes256Gcm => Aes256Gcm::new(key.into()).encrypt(nonce.into(), payload),
        Cipher::ChaCha20Poly1305 => ChaCha20Poly1305::new(key.into()).encrypt(nonce.into(), payload),
    };
    r.map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))
}

fn aead_decrypt(cipher: Cipher, key: &[u8; 32], nonce: &[u8], aad: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let payload = aes_gcm::aead::Payload { msg: ct, aad };
    let r = match cipher {
        Cipher::Aes256Gcm => Aes256Gcm::new(key.into()).decrypt(nonce.into(), payload),
        Cipher::ChaCha20Poly1305 => ChaCha20Poly1305::new(key.into()).decrypt(nonce.into(), payload),
    };
    r.ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use wallet_traits::WalletId;

    use super::*;

    fn fast() -> SealOptions {
        SealOptions { cipher: Cipher::Aes256Gcm, kdf: KdfParams { m_kib: 64, t: 1, p: 1 } }
    }

    fn plain(share: &[u8]) -> ShareContents<'_> {
        ShareContents { protocol: "cggmp24/0.7.0-alpha.3", share, next: None, aux_from: None, keyed_like: None }
    }

    fn key(w: &str) -> KeyId {
        KeyId::new(WalletId::new(w).unwrap(), 0)
    }

    #[test]
    fn round_trip_both_ciphers() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let s = Sealer::new(ShareSecret::new("pw").unwrap(), SealOptions { cipher, ..fast() });
            let blob = s.seal_share(&key("w"), 1, &[2; 33], plain(b"share bytes")).unwrap();
            assert_eq!(blob[5], cipher.id());
            assert_eq!(&s.open_share(&key("w"), 1, &[2; 33], &blob).unwrap().share[..], b"share bytes");
        }
    }

    #[test]
    fn wrong_secret_is_wrong_secret() {
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let blob = s.seal_share(&key("w"), 0, &[2; 33], plain(b"x")).unwrap();
        let other = Sealer::new(ShareSecret::new("nope").unwrap(), fast());
        let e = other.open_share(&key("w"), 0, &[2; 33], &blob).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongSecret);
        assert!(e.to_string().contains("MPC_SHARE_SECRET"));
        assert!(!e.to_string().contains("nope"));
    }

    #[test]
    fn every_flipped_byte_is_corrupted() {
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let blob = s.seal_share(&key("w"), 0, &[2; 33], plain(b"some share")).unwrap();
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0x01;
            let e = s.open_share(&key("w"), 0, &[2; 33], &b).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupted, "byte {i}: {e}");
        }
    }

    #[test]
    fn bound_fields_must_match() {
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let blob = s.seal_share(&key("w"), 0, &[2; 33], plain(b"x")).unwrap();
        assert_eq!(s.open_share(&key("other"), 0, &[2; 33], &blob).unwrap_err().kind(), ErrorKind::Corrupted);
        assert_eq!(s.open_share(&key("w"), 1, &[2; 33], &blob).unwrap_err().kind(), ErrorKind::Corrupted);
        assert_eq!(s.open_share(&key("w"), 0, &[3; 33], &blob).unwrap_err().kind(), ErrorKind::Corrupted);
        let k1 = KeyId::new(WalletId::new("w").unwrap(), 1);
        assert_eq!(s.open_share(&k1, 0, &[2; 33], &blob).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn labels_are_public_and_bound() {
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let eid = ExecutionId::from_bytes([7; 32]);
        let next = NextShare { execution_id: eid, protocol: "cggmp24/0.7.0-alpha.3", share: b"new share" };
        let contents = ShareContents { next: Some(next), ..plain(b"old share") };
        let contents = ShareContents { protocol: "cggmp21/0.6.3", ..contents };
        let blob = s.seal_share(&key("w"), 0, &[2; 33], contents).unwrap();
        let labels = share_labels(&blob).unwrap();
        assert_eq!(labels.protocol, "cggmp21/0.6.3");
        assert_eq!(labels.next, Some((eid, "cggmp24/0.7.0-alpha.3".to_string())));
        let opened = s.open_share(&key("w"), 0, &[2; 33], &blob).unwrap();
        assert_eq!(
            (&opened.share[..], opened.next.as_deref().map(|n| &n[..])),
            (&b"old share"[..], Some(&b"new share"[..]))
        );
        assert_eq!(opened.labels, labels);
        // A label rewritten (and the checksum fixed, as an attacker would) no longer opens.
        let mut forged = blob.clone();
        let at = HEADER_LEN + 4 + 1 + "cggmp2".len();
        forged[at] = b'4';
        forged.truncate(forged.len() - CHECKSUM_LEN);
        let sum = Sha256::digest(&forged);
        forged.extend_from_slice(&sum[..CHECKSUM_LEN]);
        assert_eq!(share_labels(&forged).unwrap().protocol, "cggmp24/0.6.3");
        assert_eq!(s.open_share(&key("w"), 0, &[2; 33], &forged).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn a_record_keyed_like_another_shares_its_salt_and_opens_anywhere() {
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let group = s.seal_share(&key("w"), 1, &[2; 33], plain(b"group share")).unwrap();
        let salt = RecordSalt::of(&group).unwrap();
        let k1 = KeyId::new(WalletId::new("w").unwrap(), 1);
        let contents = ShareContents { aux_from: Some(0), keyed_like: Some(salt), ..plain(b"key part") };
        let further = s.seal_share(&k1, 1, &[3; 33], contents).unwrap();
        assert_eq!(RecordSalt::of(&further).unwrap(), salt);
        assert_eq!(share_labels(&further).unwrap().aux_from, Some(0));
        // A sealer that kept nothing (another process) opens it; a wrong secret still cannot.
        let fresh = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let opened = fresh.open_share(&k1, 1, &[3; 33], &further).unwrap();
        assert_eq!((&opened.share[..], opened.labels.aux_from), (&b"key part"[..], Some(0)));
        let other = Sealer::new(ShareSecret::new("nope").unwrap(), fast());
        assert_eq!(other.open_share(&k1, 1, &[3; 33], &further).unwrap_err().kind(), ErrorKind::WrongSecret);
        // The record is bound to its own key: the group's context does not open it.
        assert_eq!(s.open_share(&key("w"), 1, &[3; 33], &further).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn unknown_labels_are_corrupted() {
        let labels = ShareLabels { protocol: "p".into(), next: None, aux_from: Some(7) };
        let mut bytes = labels.encode().unwrap();
        assert_eq!(ShareLabels::decode(&bytes).unwrap(), labels);
        bytes.extend_from_slice(&[TAG_AUX_FROM, 0, 0, 0, 1]);
        assert_eq!(ShareLabels::decode(&bytes).unwrap_err().kind(), ErrorKind::Corrupted);
        bytes.truncate(bytes.len() - 5);
        bytes.push(9);
        assert_eq!(ShareLabels::decode(&bytes).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn format_1_records_open_as_cggmp21() {
        // A format-1 blob as releases before cggmp24 wrote it: no labels after the nonce.
        let s = Sealer::new(ShareSecret::new("pw").unwrap(), fast());
        let blob = s.seal_share(&key("w"), 0, &[2; 33], plain(b"share")).unwrap();
        let labels_len = u32::from_be_bytes(blob[HEADER_LEN..HEADER_LEN + 4].try_into().unwrap()) as usize;
        let (keys, _) = s.derive(RecordSalt::of(&blob).unwrap(), Keep::No).unwrap();
        let mut v1 = blob[..HEADER_LEN].to_vec();
        v1[4] = SEAL_FORMAT_V1;
        let aad = aad(&v1, &share_context(&key("w"), 0, &[2; 33]));
        let nonce = &blob[HEADER_LEN - NONCE_LEN..HEADER_LEN];
        v1.extend_from_slice(&aead_encrypt(Cipher::Aes256Gcm, &keys.encryption, nonce, &aad, b"share").unwrap());
        let sum = Sha256::digest(&v1);
        v1.extend_from_slice(&sum[..CHECKSUM_LEN]);
        assert!(labels_len > 0);
        assert_eq!(
            share_labels(&v1).unwrap(),
            ShareLabels { protocol: "cggmp21/0.6.3".into(), next: None, aux_from: None }
        );
        let opened = s.open_share(&key("w"), 0, &[2; 33], &v1).unwrap();
        assert_eq!(&opened.share[..], b"share");
    }

    #[test]
    fn secret_never_in_debug() {
        let s = Sealer::new(ShareSecret::new("hunter2").unwrap(), fast());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
