#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod at_rest;
pub mod config;
mod coordinator;
mod cosigner;
mod failover;
mod keys;
mod mpc;
mod provision;
mod staging;
mod transaction;
mod wallet;

pub use at_rest::primes::{generate_primes, GeneratePrimes, PrimeSource, StorePrimePool};
#[cfg(feature = "insecure-test-primes")]
pub use at_rest::primes::{InsecureTestPrimes, InsecureTestPrimesOfParty};
pub use at_rest::seal::{
    backup_header, share_labels, Cipher, KdfParams, NextShare, OpenedShare, RecordSalt, SealOptions, Sealer,
    ShareContents, ShareLabels, ShareSecret, SEAL_FORMAT,
};
pub use config::{ChainConfig, CosignerConfig, Network, StoreLocation, WalletConfig};
pub use cosigner::{
    AllOf, AllowAll, CosignerBuilder, CosignerService, DenyOutputScripts, SigningPolicy, SpendingPolicy,
    TransactionsOnly, TxReview, MAX_PARTIES,
};
pub use failover::{probe, CosignerReport, Unfit, PROBE_TIMEOUT};
pub use keys::{Keyring, PartyKey, PartyPublicKey};
pub use mpc::{tweaked_public_key, verify_signature, Primes, Protocol};
pub use provision::builder::{MigrationStep, Phase, Progress, Provisioned, WalletBuilder};
pub use provision::plan::{plan, CosignerView, Plan};
pub use wallet::Wallet;

/// INSECURE helpers for tests only (feature `insecure-test-primes`): they reassemble secrets.
#[cfg(feature = "insecure-test-primes")]
pub mod insecure_testing {
    use cggmp24::generic_ec::{NonZero, Scalar, SecretScalar};
    use wallet_traits::{Error, ErrorKind, ExecutionId, KeyId, Result, ShareMeta, ShareState, StoredShare};

    use crate::{
        at_rest::{primes::InsecureTestPrimes, seal::Sealer},
        mpc::{self, Protocol, Share},
    };

    /// Splits a KNOWN secret key into `sealers.len()` Active share records (threshold `t`) of
    /// `protocol` with a trusted dealer and the fixture primes, so test vectors with a fixed root
    /// key can run through the MPC wallet (and cggmp21 wallets can be made to migrate). Record
    /// `i` is party `i`'s, sealed with `sealers[i]`.
    pub fn import_key(
        secret: [u8; 32],
        t: u16,
        key: &KeyId,
        sealers: &[&Sealer],
        protocol: Protocol,
    ) -> Result<Vec<StoredShare>> {
        let n = u16::try_from(sealers.len()).map_err(|_| Error::new(ErrorKind::InvalidInput, "too many parties"))?;
        let mut x = Scalar::<mpc::E>::from_be_bytes_mod_order(secret);
        let sk = NonZero::from_secret_scalar(SecretScalar::new(&mut x))
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the key is zero"))?;
        let dealer = |e: &dyn std::fmt::Display| Error::new(ErrorKind::Internal, format!("trusted dealer: {e}"));
        let shares: Vec<Share> = match protocol {
            Protocol::Cggmp21 => {
                let primes: Vec<cggmp21::PregeneratedPrimes<mpc::L21>> =
                    serde_json::from_str(InsecureTestPrimes::JSON).expect("fixture primes parse");
                cggmp21::trusted_dealer::builder::<mpc::E, mpc::L21>(n)
                    .set_threshold(Some(t))
                    .set_shared_secret_key(sk)
                    .set_pregenerated_primes(primes.into_iter().take(usize::from(n)).map(|p| p.split()).collect())
                    .generate_shares(&mut rand::rngs::OsRng)
                    .map_err(|e| dealer(&e))?
                    .into_iter()
                    .map(|s| Share::Cggmp21(Box::new(s)))
                    .collect()
            }
            _ => {
                let pairs = InsecureTestPrimes::all();
                let primes = (0..usize::from(n))
                    .map(|i| crate::at_rest::primes::PrimePair::join(pairs[2 * i].clone(), pairs[2 * i + 1].clone()))
                    .collect::<Result<Vec<_>>>()?;
                cggmp24::trusted_dealer::builder::<mpc::E, mpc::L>(n)
                    .set_threshold(Some(t))
                    .set_shared_secret_key(sk)
                    .set_pregenerated_primes(primes)
                    .generate_shares(&mut rand::rngs::OsRng)
                    .map_err(|e| dealer(&e))?
                    .into_iter()
                    .map(|s| Share::Cggmp24(Box::new(s)))
                    .collect()
            }
        };
        let eid = ExecutionId::random();
        shares
            .iter()
            .zip(sealers)
            .enumerate()
            .map(|(i, (share, sealer))| {
                let party = u16::try_from(i).expect("fits");
                let pk = mpc::public_key_of(share);
                Ok(StoredShare {
                    key: key.clone(),
                    meta: ShareMeta {
                        public_key: pk.as_bytes().to_vec(),
                        threshold: t,
                        parties: n,
                        party_index: party,
                        state: ShareState::Active,
                        execution_id: eid,
                    },
                    version: 1,
                    format_version: wallet_traits::SHARE_FORMAT_VERSION,
                    sealed: mpc::seal_record_with_cache_keys(sealer, key, share, None, None)?.0,
                })
            })
            .collect()
    }

    /// Reconstructs the secret key from at least t opened records (test only: no production
    /// path ever holds the whole key). Returns it big-endian.
    pub fn reconstruct_secret_key(records: &[(&StoredShare, &Sealer)]) -> Result<[u8; 32]> {
        let cores = records
            .iter()
            .map(|(r, s)| {
                let opened = s.open_share(&r.key, r.meta.party_index, &r.meta.public_key, &r.sealed)?;
                if opened.labels.aux_from.is_some() {
                    // A further key's record: the key part is all it holds, and all this needs.
                    return mpc::decode_key_part(&opened.share);
                }
                let shares = mpc::decode_record(&opened, r.meta.party_index, &r.meta.public_key, None)?;
                cggmp24::key_share::IncompleteKeyShare::<mpc::E>::validate(shares.share.core().clone())
                    .map_err(|e| Error::new(ErrorKind::Corrupted, format!("share: {}", e.into_error())))
            })
            .collect::<Result<Vec<_>>>()?;
        let sk = cggmp24::key_share::reconstruct_secret_key(&cores)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot reconstruct: {e}")))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&sk.as_ref().to_be_bytes());
        Ok(out)
    }
}
