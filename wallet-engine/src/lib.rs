#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod brc100;
pub mod brc42;
mod builder;
mod config;
mod coordinator;
mod cosigner;
mod keys;
mod plan;
mod primes;
mod protocol;
mod seal;
mod wallet;

pub use builder::{Phase, Progress, Provisioned, WalletBuilder};
pub use config::{Network, WalletConfig};
pub use cosigner::{CosignerService, MAX_PARTIES};
pub use keys::{Keyring, PartyKey, PartyPublicKey};
pub use plan::{plan, CosignerView, Plan};
#[cfg(feature = "insecure-test-primes")]
pub use primes::InsecureTestPrimes;
pub use primes::{generate_primes, GeneratePrimes, PrimeSource, StorePrimePool};
pub use protocol::{tweaked_public_key, verify_signature, Primes};
pub use seal::{Cipher, KdfParams, SealOptions, Sealer, ShareSecret, SEAL_FORMAT};
pub use wallet::Wallet;

/// INSECURE helpers for tests only (feature `insecure-test-primes`): they reassemble secrets.
#[cfg(feature = "insecure-test-primes")]
pub mod insecure_testing {
    use wallet_traits::{Error, ErrorKind, Result, StoredShare};

    use crate::{protocol, seal::Sealer};

    /// Reconstructs the secret key from at least t opened records (test only: no production
    /// path ever holds the whole key). Returns it big-endian.
    pub fn reconstruct_secret_key(records: &[(&StoredShare, &Sealer)]) -> Result<[u8; 32]> {
        let shares = records
            .iter()
            .map(|(r, s)| {
                let plain = s.open_share(&r.key, r.meta.party_index, &r.meta.public_key, &r.sealed)?;
                protocol::decode_share(&plain)
            })
            .collect::<Result<Vec<_>>>()?;
        let sk = cggmp21::key_share::reconstruct_secret_key(&shares)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot reconstruct: {e}")))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&sk.as_ref().to_be_bytes());
        Ok(out)
    }
}
