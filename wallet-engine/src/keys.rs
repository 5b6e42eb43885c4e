//! Party identity keys and pairwise-sealed envelopes (docs/ARCHITECTURE.md, "Sessions and envelopes").
//!
//! Every party has a static X25519 key; every other party's public key is pinned in its
//! configuration, never learned through the agent. A payload from party A to party B is sealed
//! with XChaCha20-Poly1305 under `HKDF(salt = execution id, X25519(A, B), info = direction)`, with
//! the stage, sequence number and broadcast flag as associated data. So the agent, which relays
//! every message between cosigners, can neither read nor alter nor forge them, and a message's
//! sender is whoever could seal it, never a field a relay could edit.
//!
//! The nonce is 24 random bytes the sender draws for each message and puts in front of the
//! ciphertext. A nonce derived from (stage, seq) alone would repeat when an execution id is run
//! twice (a replay a restarted cosigner did not remember), sealing two different messages under
//! one key and nonce; a random one never does.

use std::{collections::BTreeMap, fmt, str::FromStr};

use chacha20poly1305::{aead::Aead, KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use wallet_traits::{Error, ErrorKind, ExecutionId, PartyIndex, Result};
use zeroize::Zeroizing;

/// A party's static X25519 secret. Never printed.
#[derive(Clone)]
pub struct PartyKey(x25519_dalek::StaticSecret);

impl PartyKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng))
    }

    /// The public half, to pin in the other parties' configuration.
    pub fn public(&self) -> PartyPublicKey {
        PartyPublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// The secret as hex (for writing a key file).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes =
            Zeroizing::new(hex::decode(s.trim()).map_err(|_| bad_key("a party secret key is 64 hex characters"))?);
        let arr: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| bad_key("a party secret key is 64 hex characters"))?;
        Ok(Self(x25519_dalek::StaticSecret::from(arr)))
    }
}

impl fmt::Debug for PartyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyKey(public: {})", self.public())
    }
}

fn bad_key(msg: &str) -> Error {
    Error::new(ErrorKind::Config, msg.to_string())
}

/// A party's X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyPublicKey([u8; 32]);

impl PartyPublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for PartyPublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let v = hex::decode(s.trim()).map_err(|_| bad_key("a party public key is 64 hex characters"))?;
        Ok(Self(v.try_into().map_err(|_| bad_key("a party public key is 64 hex characters"))?))
    }
}

impl TryFrom<String> for PartyPublicKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<PartyPublicKey> for String {
    fn from(k: PartyPublicKey) -> String {
        k.to_string()
    }
}

impl fmt::Display for PartyPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PartyPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyPublicKey({self})")
    }
}

/// One party's key and the pinned public keys of every other party.
#[derive(Clone, Debug)]
pub struct Keyring {
    me: PartyIndex,
    key: PartyKey,
    peers: BTreeMap<PartyIndex, PartyPublicKey>,
}

impl Keyring {
    /// Party `me` with `key`, trusting exactly `peers`.
    pub fn new(me: PartyIndex, key: PartyKey, peers: BTreeMap<PartyIndex, PartyPublicKey>) -> Self {
        Self { me, key, peers }
    }

    /// Keyrings for parties 0..n that all pin each other: for in-process setups and tests.
    pub fn generate_group(n: u16) -> Vec<Keyring> {
        let keys: Vec<PartyKey> = (0..n).map(|_| PartyKey::generate()).collect();
        let publics: BTreeMap<PartyIndex, PartyPublicKey> =
            keys.iter().enumerate().map(|(i, k)| (i as u16, k.public())).collect();
        keys.into_iter()
            .enumerate()
            .map(|(i, key)| {
                let me = i as u16;
                let peers = publics.iter().filter(|(j, _)| **j != me).map(|(j, p)| (*j, *p)).collect();
                Keyring { me, key, peers }
            })
            .collect()
    }

    /// Parses `MPC_PEER_KEYS`-style text: `1=hex,2=hex`.
    pub fn parse_peers(text: &str) -> Result<BTreeMap<PartyIndex, PartyPublicKey>> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let (i, k) = entry.split_once('=').ok_or_else(|| bad_key("peer keys look like 0=hex,2=hex"))?;
                let i: PartyIndex = i.trim().parse().map_err(|_| bad_key("a peer key's party index is a number"))?;
                Ok((i, k.parse()?))
            })
            .collect()
    }

    /// This party's index.
    pub fn party_index(&self) -> PartyIndex {
        self.me
    }

    /// This party's public key.
    pub fn public(&self) -> PartyPublicKey {
        self.key.public()
    }

    /// Checks that every party in `parties` other than this one is pinned.
    pub(crate) fn require(&self, parties: &[PartyIndex]) -> Result<()> {
        match parties.iter().find(|p| **p != self.me && !self.peers.contains_key(p)) {
            Some(p) => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "party {} has no pinned public key for party {p}; add it to the peer keys (MPC_PEER_KEYS)",
                    self.me
                ),
            )),
            None => Ok(()),
        }
    }

    fn channel_key(&self, eid: &ExecutionId, from: PartyIndex, to: PartyIndex) -> Option<Zeroizing<[u8; 32]>> {
        let peer = if from == self.me { to } else { from };
        let their = x25519_dalek::PublicKey::from(*self.peers.get(&peer)?.as_bytes());
        let shared = self.key.0.diffie_hellman(&their);
        // A low-order peer key gives an all-zero secret; refuse it rather than seal under it.
        if !shared.was_contributory() {
            return None;
        }
        let mut key = Zeroizing::new([0u8; 32]);
        let mut info = ENVELOPE_VERSION.to_vec();
        info.extend_from_slice(&from.to_be_bytes());
        info.extend_from_slice(&to.to_be_bytes());
        Hkdf::<Sha256>::new(Some(eid.as_bytes()), shared.as_bytes()).expand(&info, key.as_mut()).ok()?;
        Some(key)
    }

    /// Seals `payload` from this party to `to`: a fresh random nonce, then the ciphertext.
    pub(crate) fn seal(&self, h: &SealHeader, to: PartyIndex, payload: &[u8]) -> Result<Vec<u8>> {
        let key = self
            .channel_key(&h.execution_id, self.me, to)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("no usable pinned key for party {to}")))?;
        let aad = h.aad(self.me, to);
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = XChaCha20Poly1305::new(key.as_ref().into())
            .encrypt(&nonce.into(), chacha20poly1305::aead::Payload { msg: payload, aad: &aad })
            .map_err(|_| Error::new(ErrorKind::Internal, "envelope sealing failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens a payload that claims to come from `from` to this party; `None` if it does not
    /// authenticate (altered, forged, or sealed for someone else).
    pub(crate) fn open(&self, h: &SealHeader, from: PartyIndex, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let key = self.channel_key(&h.execution_id, from, self.me)?;
        let aad = h.aad(from, self.me);
        let (nonce, ciphertext) = sealed.split_first_chunk::<NONCE_LEN>()?;
        XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(nonce.into(), chacha20poly1305::aead::Payload { msg: ciphertext, aad: &aad })
            .ok()
            .map(Zeroizing::new)
    }
}

/// The envelope fields a seal binds besides the parties.
pub(crate) struct SealHeader {
    pub(crate) execution_id: ExecutionId,
    pub(crate) stage: u16,
    pub(crate) seq: u64,
    pub(crate) broadcast: bool,
}

/// The envelope format, in every key derivation and associated data: v2 draws a random nonce per
/// message (v1 derived it from stage and sequence), so a v1 party's envelopes fail to open.
const ENVELOPE_VERSION: &[u8] = b"mpc-wallet/envelope/v2";

/// XChaCha20-Poly1305's nonce: 192 bits, so random nonces never collide in practice.
const NONCE_LEN: usize = 24;

impl SealHeader {
    fn aad(&self, from: PartyIndex, to: PartyIndex) -> Vec<u8> {
        let mut a = ENVELOPE_VERSION.to_vec();
        a.extend_from_slice(self.execution_id.as_bytes());
        a.extend_from_slice(&self.stage.to_be_bytes());
        a.extend_from_slice(&from.to_be_bytes());
        a.extend_from_slice(&to.to_be_bytes());
        a.extend_from_slice(&self.seq.to_be_bytes());
        a.push(u8::from(self.broadcast));
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SealHeader {
        SealHeader { execution_id: ExecutionId::from_bytes([9; 32]), stage: 1, seq: 4, broadcast: false }
    }

    #[test]
    fn only_the_recipient_opens_and_only_from_the_sender() {
        let g = Keyring::generate_group(3);
        let sealed = g[1].seal(&header(), 2, b"aux round 2").unwrap();
        assert_eq!(&g[2].open(&header(), 1, &sealed).unwrap()[..], b"aux round 2");
        // The agent relays it but cannot open it, and cannot pass it off as its own.
        assert!(g[0].open(&header(), 1, &sealed).is_none());
        assert!(g[2].open(&header(), 0, &sealed).is_none());
        // Any bound field changed: rejected.
        let mut h = header();
        h.seq = 5;
        assert!(g[2].open(&h, 1, &sealed).is_none());
        let mut h = header();
        h.broadcast = true;
        assert!(g[2].open(&h, 1, &sealed).is_none());
        for at in [0, sealed.len() - 1] {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1;
            assert!(g[2].open(&header(), 1, &flipped).is_none(), "byte {at} flipped");
        }
        assert!(g[2].open(&header(), 1, &sealed[..NONCE_LEN - 1]).is_none(), "too short to hold a nonce");
    }

    #[test]
    fn the_same_message_sealed_twice_never_repeats_a_nonce() {
        // A replayed execution id runs the same (stage, seq) again: each seal draws its own nonce.
        let g = Keyring::generate_group(2);
        let (a, b) = (g[0].seal(&header(), 1, b"round 1").unwrap(), g[0].seal(&header(), 1, b"round 1").unwrap());
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
        assert_eq!(&g[1].open(&header(), 0, &b).unwrap()[..], b"round 1");
    }

    #[test]
    fn missing_pin_is_a_config_error_and_secret_is_not_printed() {
        let g = Keyring::generate_group(2);
        assert_eq!(g[0].require(&[0, 1, 2]).unwrap_err().kind(), ErrorKind::Config);
        let hex = g[0].key.to_hex();
        assert!(!format!("{:?}", g[0]).contains(hex.as_str()));
        assert_eq!(PartyKey::from_hex(&hex).unwrap().public(), g[0].public());
        let peers = Keyring::parse_peers(&format!("1={}", g[1].public())).unwrap();
        assert_eq!(peers[&1], g[1].public());
    }
}
