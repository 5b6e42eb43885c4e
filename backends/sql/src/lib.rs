#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod db;
mod dialect;
mod outputs;
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
            use $crate::__private::{
                async_trait,
                wallet_traits::{DerivationCacheStore, KeyId, PrimePoolStore, Result, ShareStore, StoredShare},
            };

            #[async_trait]
            impl ShareStore for $store {
                fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
                    Some(self)
                }

                fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
                    Some(self)
                }

                async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
                    self.$field.load_share(key).await
                }

                async fn create_share(&self, record: &StoredShare) -> Result<()> {
                    self.$field.create_share(record).await
                }

                async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
                    self.$field.update_share(record, expected_version).await
                }

                async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
                    self.$field.delete_share(key, expected_version).await
                }
            }

            #[async_trait]
            impl DerivationCacheStore for $store {
                async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
                    self.$field.get_derivation(key, lookup).await
                }

                async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
                    self.$field.put_derivation(key, lookup, sealed).await
                }

                async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
                    self.$field.evict_derivations(key, keep).await
                }

                async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
                    self.$field.count_derivations(key).await
                }
            }

            #[async_trait]
            impl PrimePoolStore for $store {
                async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
                    self.$field.add_primes(pool, sealed).await
                }

                async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
                    self.$field.take_primes(pool).await
                }

                async fn count_primes(&self, pool: &str) -> Result<u64> {
                    self.$field.count_primes(pool).await
                }
            }
        };
    };
}

/// Implements [`OutputStore`](wallet_traits::OutputStore) for a backend's store type by handing
/// every call to its [`SqlOutputStore`] field: `output_store!(SqliteOutputStore => store)`.
#[macro_export]
macro_rules! output_store {
    ($store:ty => $field:ident) => {
        const _: () = {
            use $crate::__private::{
                async_trait,
                wallet_traits::{
                    ActionQuery, ActionRecord, ActionStatus, Outpoint, OutputQuery, OutputRecord, OutputStore, Page,
                    Recorded, Result, SignedAction,
                },
            };

            #[async_trait]
            impl OutputStore for $store {
                async fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded> {
                    self.$field.record_action(action, outputs).await
                }

                async fn reserve_change(
                    &self,
                    reference: &str,
                    basket: &str,
                    target: u64,
                    exact: Option<u64>,
                ) -> Result<Option<OutputRecord>> {
                    self.$field.reserve_change(reference, basket, target, exact).await
                }

                async fn reserve_outputs(&self, reference: &str, outpoints: &[Outpoint]) -> Result<Vec<OutputRecord>> {
                    self.$field.reserve_outputs(reference, outpoints).await
                }

                async fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()> {
                    self.$field.commit_action(reference, signed).await
                }

                async fn fail_action(&self, reference: &str) -> Result<bool> {
                    self.$field.fail_action(reference).await
                }

                async fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()> {
                    self.$field.set_status(reference, status).await
                }

                async fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool> {
                    self.$field.set_merkle_path(txid, merkle_path).await
                }

                async fn action(&self, reference: &str) -> Result<Option<ActionRecord>> {
                    self.$field.action(reference).await
                }

                async fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>> {
                    self.$field.action_by_txid(txid).await
                }

                async fn output(&self, outpoint: &Outpoint) -> Result<Option<OutputRecord>> {
                    self.$field.output(outpoint).await
                }

                async fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>> {
                    self.$field.list_outputs(query).await
                }

                async fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>> {
                    self.$field.list_actions(query).await
                }

                async fn relinquish_output(&self, basket: &str, outpoint: &Outpoint) -> Result<bool> {
                    self.$field.relinquish_output(basket, outpoint).await
                }

                async fn balance(&self, basket: &str) -> Result<u64> {
                    self.$field.balance(basket).await
                }
            }
        };
    };
}
