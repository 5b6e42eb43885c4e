//! Identifiers: wallets, keys, parties, protocol executions.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// Index of a party at key generation: the agent is 0, cosigners are 1..n-1.
pub type PartyIndex = u16;

/// The agent's party index.
pub const AGENT_INDEX: PartyIndex = 0;

/// Names one wallet. 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WalletId(String);

impl WalletId {
    /// Validates and wraps a wallet id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let ok_len = (1..=64).contains(&id.len());
        let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        // "." and ".." collapse in URLs and paths.
        let not_dots = !id.chars().all(|c| c == '.');
        if ok_len && ok_chars && not_dots {
            Ok(Self(id))
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                "a wallet id must be 1 to 64 characters of letters, digits, '.', '_' or '-', not only dots",
            )
            .with_context("wallet_id", id.escape_default()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WalletId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<WalletId> for String {
    fn from(w: WalletId) -> String {
        w.0
    }
}

impl FromStr for WalletId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalletId({})", self.0)
    }
}

/// One threshold key of a wallet: the wallet and a key index (0 is the root key).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId {
    /// The wallet it belongs to; every share, cache entry and token is scoped by it.
    pub wallet: WalletId,
    /// The key index within the wallet.
    pub index: u32,
}

impl KeyId {
    /// Key `index` of `wallet`.
    pub fn new(wallet: WalletId, index: u32) -> Self {
        Self { wallet, index }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.wallet, self.index)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Identifies one protocol run. Unique per run, identical for all its parties, never accepted
/// twice by a cosigner.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExecutionId(#[serde(with = "hex_32")] [u8; 32]);

impl ExecutionId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Self(b)
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionId({})", &hex::encode(self.0)[..16])
    }
}

impl FromStr for ExecutionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let v = hex::decode(s).ok().and_then(|v| <[u8; 32]>::try_from(v).ok());
        v.map(Self).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "an execution id is 64 hex characters"))
    }
}

/// Serde helper: 32 bytes as hex in human-readable formats, as bytes otherwise.
pub mod hex_32 {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    /// For `#[serde(with = "hex_32")]`.
    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(b))
        } else {
            s.serialize_bytes(b)
        }
    }

    /// For `#[serde(with = "hex_32")]`; refuses anything but 32 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let v: Vec<u8> = if d.is_human_readable() {
            hex::decode(String::deserialize(d)?).map_err(D::Error::custom)?
        } else {
            serde_bytes_vec(d)?
        };
        v.try_into().map_err(|_| D::Error::custom("expected 32 bytes"))
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_id_rules() {
        assert!(WalletId::new("agent-1.prod_x").is_ok());
        assert_eq!(WalletId::new("").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(WalletId::new("a b").is_err());
        assert!(WalletId::new("x".repeat(65)).is_err());
        assert!(WalletId::new("..").is_err());
    }

    #[test]
    fn execution_id_hex_round_trip() {
        let e = ExecutionId::random();
        assert_eq!(e.to_string().parse::<ExecutionId>().unwrap(), e);
    }
}
