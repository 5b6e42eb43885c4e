#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod certificates;
mod db;
mod dialect;
mod outputs;
mod policy;
mod shares;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use db::{Db, Value};
pub use dialect::Dialect;
pub use outputs::SqlOutputStore;
pub use shares::SqlShareStore;

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use wallet_traits;
}

/// Implements [`ShareStore`](wallet_traits::ShareStore),
/// [`DerivationCacheStore`](wallet_traits::DerivationCacheStore) and
/// [`PrimePoolStore`](wallet_traits::PrimePoolStore) for a backend's store type by handing every
/// call to its [`SqlShareStore`] field: `share_store!(SqliteShareStore => store)`.
#[macro_export]
macro_rules! share_store {
    ($store:ty => $field:ident) => {
        const _: () = {
            use $crate::__private::wallet_traits::{
                Approval, AuditRecord, DerivationCacheStore, KeyId, Ledger, PolicyStore, PrimePoolStore, Result,
                Ruling, ShareStore, StoredShare,
            };

            $crate::__delegate!($store => $field, ShareStore {
                fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
                    Some(self)
                }

                fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
                    Some(self)
                }

                fn policy_state(&self) -> Option<&dyn PolicyStore> {
                    Some(self)
                }
            }
                fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>>;
                fn create_share(&self, record: &StoredShare) -> Result<()>;
                fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64>;
                fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()>;
            );
            $crate::__delegate!($store => $field, DerivationCacheStore {}
                fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>>;
                fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()>;
                fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64>;
                fn count_derivations(&self, key: &KeyId) -> Result<u64>;
            );
            $crate::__delegate!($store => $field, PrimePoolStore {}
                fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()>;
                fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>>;
                fn count_primes(&self, pool: &str) -> Result<u64>;
            );
            $crate::__delegate!($store => $field, PolicyStore {}
                fn settle(&self, wallet: &str, tx: &[u8; 32], since_ms: u64, now_ms: u64,
                    decide: &(dyn for<'l> Fn(&'l Ledger) -> Ruling + Send + Sync)) -> Result<Ruling>;
                fn window(&self, wallet: &str, since_ms: u64) -> Result<(u64, u64)>;
                fn add_approval(&self, approval: &Approval) -> Result<bool>;
                fn audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>>;
                fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool>;
            );
        };
    };
}

/// Implements [`OutputStore`](wallet_traits::OutputStore) for a backend's store type by handing
/// every call to its [`SqlOutputStore`] field: `output_store!(SqliteOutputStore => store)`.
#[macro_export]
macro_rules! output_store {
    ($store:ty => $field:ident) => {
        const _: () = {
            use $crate::__private::wallet_traits::{
                ActionQuery, ActionRecord, ActionStatus, Books, CertificateQuery, CertificateRecord, CertificateStore,
                Imported, Outpoint, OutputQuery, OutputRecord, OutputStore, Page, Recorded, Result, SignedAction,
            };

            $crate::__delegate!($store => $field, OutputStore {
                fn certificates(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn CertificateStore>> {
                    Some(self)
                }
            }
                fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded>;
                fn reserve_change(&self, reference: &str, basket: &str, target: u64, exact: Option<u64>)
                    -> Result<Option<OutputRecord>>;
                fn reserve_outputs(&self, reference: &str, outpoints: &[Outpoint]) -> Result<Vec<OutputRecord>>;
                fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()>;
                fn fail_action(&self, reference: &str) -> Result<bool>;
                fn keep_signable(&self, reference: &str, signable: &[u8]) -> Result<()>;
                fn signable(&self, reference: &str) -> Result<Option<Vec<u8>>>;
                fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()>;
                fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool>;
                fn action(&self, reference: &str) -> Result<Option<ActionRecord>>;
                fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>>;
                fn output(&self, outpoint: &Outpoint) -> Result<Option<OutputRecord>>;
                fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>>;
                fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>>;
                fn relinquish_output(&self, basket: &str, outpoint: &Outpoint) -> Result<bool>;
                fn mark_spent_elsewhere(&self, outpoint: &Outpoint) -> Result<bool>;
                fn unfail_action(&self, reference: &str, inputs: &[Outpoint]) -> Result<bool>;
                fn clear_merkle_path(&self, txid: &[u8; 32]) -> Result<bool>;
                fn purge_failed(&self, before_ms: u64, limit: u32) -> Result<u64>;
                fn count_proof_attempt(&self, txid: &[u8; 32]) -> Result<u32>;
                fn reset_proof_attempts(&self, txid: &[u8; 32]) -> Result<()>;
                fn export_books(&self) -> Result<Books>;
                fn import_books(&self, books: &Books) -> Result<Imported>;
                fn balance(&self, basket: &str) -> Result<u64>;
            );
            $crate::__delegate!($store => $field, CertificateStore {}
                fn put_certificate(&self, certificate: &CertificateRecord) -> Result<()>;
                fn list_certificates(&self, query: &CertificateQuery) -> Result<Page<CertificateRecord>>;
                fn relinquish_certificate(&self, cert_type: &str, serial_number: &str, certifier: &str) -> Result<bool>;
            );
        };
    };
}

/// An async trait's impl whose listed methods hand the call to `$field` (and whose `{ ... }`
/// methods are written out); for [`share_store!`] and [`output_store!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __delegate {
    ($store:ty => $field:ident, $contract:ident { $($own:item)* }
     $(fn $method:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[$crate::__private::async_trait]
        impl $contract for $store {
            $($own)*
            $(async fn $method(&self $(, $arg: $ty)*) -> $ret {
                self.$field.$method($($arg),*).await
            })*
        }
    };
}
