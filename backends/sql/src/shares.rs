//! [`SqlShareStore`]: the statements of the share store, the derivation cache and the prime pool.

use std::fmt;

use async_trait::async_trait;
use sqlx::Pool;
use wallet_traits::{
    ContractErrors, DerivationCacheStore, Error, ExecutionId, KeyId, PrimePoolStore, Result, ShareMeta, ShareState,
    ShareStore, StoredShare,
};

use crate::{
    db::{with_namespace, RowReader, Sql, Statement},
    Dialect,
};

// The statements, in the notation of `dialect::render`: `[...]` only where rows carry a
// namespace, `{NAME}` the dialect's fragment.

const LOAD_SHARE: &str = "SELECT party_index, public_key, threshold, parties, state, execution_id, format_version, \
     version, sealed FROM mpc_shares WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2";

const SHARE_VERSION: &str =
    "SELECT version FROM mpc_shares WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2";

// ON CONFLICT DO NOTHING rather than catching the unique violation: a concurrent creator waits for
// the winner's commit and then inserts nothing, with no error to classify.
const CREATE_SHARE: &str = "INSERT INTO mpc_shares ([namespace, ]wallet_id, key_index, party_index, public_key, \
     threshold, parties, state, execution_id, format_version, sealed, version, created_at, updated_at) \
     VALUES ([$ns, ]$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, {NOW}, {NOW}) \
     ON CONFLICT ([namespace, ]wallet_id, key_index) DO NOTHING";

const UPDATE_SHARE: &str = "UPDATE mpc_shares SET party_index = $3, public_key = $4, threshold = $5, parties = $6, \
     state = $7, execution_id = $8, format_version = $9, sealed = $10, version = version + 1, updated_at = {NOW} \
     WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2 AND version = $11 RETURNING version";

const DELETE_SHARE: &str =
    "DELETE FROM mpc_shares WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2 AND version = $3";

// A hit marks the entry used: one UPDATE by primary key, its new recency the key's next.
const GET_DERIVATION: &str = "UPDATE mpc_derivations SET used_seq = {NEXT_USE} \
     WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2 AND lookup = $3 RETURNING sealed";

const PUT_DERIVATION: &str = "INSERT INTO mpc_derivations ([namespace, ]wallet_id, key_index, lookup, sealed, \
     created_at, used_seq) VALUES ([$ns, ]$1, $2, $3, $4, {NOW}, {NEXT_USE}) \
     ON CONFLICT ([namespace, ]wallet_id, key_index, lookup) DO UPDATE SET sealed = excluded.sealed, \
     created_at = excluded.created_at, used_seq = excluded.used_seq";

// The subquery walks the recency index from the newest entry, skipping `keep`; one statement, so
// atomic. Two processes evicting at once may pick the same rows; deleting a row twice is harmless.
const EVICT_DERIVATIONS: &str = "DELETE FROM mpc_derivations \
     WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2 AND lookup IN \
     (SELECT lookup FROM mpc_derivations WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2 \
     ORDER BY used_seq DESC LIMIT {NO_LIMIT} OFFSET $3)";

const COUNT_DERIVATIONS: &str =
    "SELECT COUNT(*) AS n FROM mpc_derivations WHERE [namespace = $ns AND ]wallet_id = $1 AND key_index = $2";

const ADD_PRIMES: &str = "INSERT INTO mpc_primes ([namespace, ]pool, sealed, created_at) VALUES ([$ns, ]$1, $2, {NOW})";

// One statement, its own transaction: the subquery picks the oldest pair no other taker holds, and
// the row is gone before any other taker can have it.
const TAKE_PRIMES: &str = "DELETE FROM mpc_primes WHERE id = \
     (SELECT id FROM mpc_primes WHERE [namespace = $ns AND ]pool = $1 ORDER BY id LIMIT 1 {SKIP_LOCKED}) \
     RETURNING sealed";

const COUNT_PRIMES: &str = "SELECT COUNT(*) AS n FROM mpc_primes WHERE [namespace = $ns AND ]pool = $1";

/// A [`ShareStore`], [`DerivationCacheStore`] and [`PrimePoolStore`] in the tables `mpc_shares`,
/// `mpc_derivations` and `mpc_primes` of a database spoken to in dialect `D`.
///
/// Every operation is a single SQL statement, hence atomic, also across the connections of the
/// pool and across processes sharing the database: creates are `INSERT ... ON CONFLICT DO
/// NOTHING`, updates and deletes compare the record version in their `WHERE`, and a prime taker
/// deletes the row it picks in the same statement (picking with the dialect's `SKIP_LOCKED`).
pub struct SqlShareStore<D: Dialect> {
    pub(crate) sql: Sql<D>,
}

impl<D: Dialect> SqlShareStore<D> {
    /// The store in the database of `pool`, whose schema the backend brought up to date.
    pub fn new(pool: Pool<D::Database>, dialect: D) -> Self {
        Self { sql: Sql { pool, dialect } }
    }

    /// The dialect the store was opened with.
    pub fn dialect(&self) -> &D {
        &self.sql.dialect
    }

    /// Waits for running operations, then closes every connection; later operations fail.
    pub async fn close(&self) {
        self.sql.pool.close().await;
    }

    fn errors(&self) -> ContractErrors {
        ContractErrors::new(D::BACKEND)
    }

    /// The statement of a share's key, its wallet id and index bound as `$1` and `$2`.
    fn keyed<'a>(&'a self, template: &str, key: &'a KeyId) -> Statement<'a, D> {
        self.sql.statement(template).bind(key.wallet.as_str()).bind(i64::from(key.index))
    }

    /// Tells a missing record from one at another version, after a compare-and-swap matched no row.
    async fn mismatch(&self, key: &KeyId, expected_version: u64) -> Error {
        match self.keyed(SHARE_VERSION, key).fetch_optional(&self.sql.pool).await {
            Err(e) => self.sql.fail(e, "read a share's version").with_context("key", key),
            Ok(row) => {
                let stored = row.map(|row| {
                    self.sql
                        .reader(&row, "share", key)
                        .int::<i64>("version")
                        .map_or_else(|_| "?".into(), |v| v.to_string())
                });
                let e = self.errors().version_mismatch(key, expected_version, stored);
                with_namespace(e, self.sql.dialect.namespace())
            }
        }
    }
}

impl<D: Dialect> fmt::Debug for SqlShareStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlShareStore")
            .field("backend", &D::BACKEND)
            .field("namespace", &self.sql.dialect.namespace())
            .finish_non_exhaustive()
    }
}

/// Binds `$3`..`$10` of the share statements, in column order.
fn bind_share<'a, D: Dialect>(statement: Statement<'a, D>, record: &'a StoredShare) -> Statement<'a, D> {
    let meta = &record.meta;
    statement
        .bind(i32::from(meta.party_index))
        .bind(meta.public_key.as_slice())
        .bind(i32::from(meta.threshold))
        .bind(i32::from(meta.parties))
        .bind(meta.state.as_str())
        .bind(meta.execution_id.as_bytes().as_slice())
        .bind(i32::from(record.format_version))
        .bind(record.sealed.as_slice())
}

fn share_from_row<D: Dialect>(key: &KeyId, r: &RowReader<'_, D>) -> Result<StoredShare> {
    let state = ShareState::parse(&r.text("state")?)
        .map_err(|e| with_namespace(e.with_context("backend", D::BACKEND), r.namespace).with_context("key", key))?;
    Ok(StoredShare {
        key: key.clone(),
        meta: ShareMeta {
            public_key: r.bytes("public_key")?,
            threshold: r.int("threshold")?,
            parties: r.int("parties")?,
            party_index: r.int("party_index")?,
            state,
            execution_id: ExecutionId::from_bytes(r.array("execution_id")?),
        },
        version: r.int("version")?,
        format_version: r.int("format_version")?,
        sealed: r.bytes("sealed")?,
    })
}

#[async_trait]
impl<D: Dialect> ShareStore for SqlShareStore<D> {
    fn derivation_cache(&self) -> Option<&dyn DerivationCacheStore> {
        Some(self)
    }

    fn prime_pool(&self) -> Option<&dyn PrimePoolStore> {
        Some(self)
    }

    fn policy_state(&self) -> Option<&dyn wallet_traits::PolicyStore> {
        Some(self)
    }

    async fn load_share(&self, key: &KeyId) -> Result<Option<StoredShare>> {
        let row = self
            .keyed(LOAD_SHARE, key)
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read a share").with_context("key", key))?;
        row.map(|row| share_from_row(key, &self.sql.reader(&row, "share", key))).transpose()
    }

    async fn create_share(&self, record: &StoredShare) -> Result<()> {
        let created = bind_share(self.keyed(CREATE_SHARE, &record.key), record)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "write a new share").with_context("key", &record.key))?;
        if created == 0 {
            let e = self.errors().already_exists(&record.key);
            return Err(with_namespace(e, self.sql.dialect.namespace()));
        }
        Ok(())
    }

    async fn update_share(&self, record: &StoredShare, expected_version: u64) -> Result<u64> {
        // No stored version exceeds i64::MAX, so such an expectation can only mismatch.
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(&record.key, expected_version).await);
        };
        let row = bind_share(self.keyed(UPDATE_SHARE, &record.key), record)
            .bind(expected)
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "update a share").with_context("key", &record.key))?;
        match row {
            Some(row) => self.sql.reader(&row, "share", &record.key).int("version"),
            None => Err(self.mismatch(&record.key, expected_version).await),
        }
    }

    async fn delete_share(&self, key: &KeyId, expected_version: u64) -> Result<()> {
        let Ok(expected) = i64::try_from(expected_version) else {
            return Err(self.mismatch(key, expected_version).await);
        };
        let deleted = self
            .keyed(DELETE_SHARE, key)
            .bind(expected)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "delete a share").with_context("key", key))?;
        if deleted == 0 {
            return Err(self.mismatch(key, expected_version).await);
        }
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> DerivationCacheStore for SqlShareStore<D> {
    async fn get_derivation(&self, key: &KeyId, lookup: &[u8]) -> Result<Option<Vec<u8>>> {
        let row = self
            .keyed(GET_DERIVATION, key)
            .bind(lookup)
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read a derivation-cache entry").with_context("key", key))?;
        row.map(|row| self.sql.reader(&row, "derivation-cache", key).bytes("sealed")).transpose()
    }

    async fn put_derivation(&self, key: &KeyId, lookup: &[u8], sealed: &[u8]) -> Result<()> {
        self.keyed(PUT_DERIVATION, key)
            .bind(lookup)
            .bind(sealed)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "write a derivation-cache entry").with_context("key", key))?;
        Ok(())
    }

    async fn evict_derivations(&self, key: &KeyId, keep: usize) -> Result<u64> {
        self.keyed(EVICT_DERIVATIONS, key)
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "evict derivation-cache entries").with_context("key", key))
    }

    async fn count_derivations(&self, key: &KeyId) -> Result<u64> {
        let row = self
            .keyed(COUNT_DERIVATIONS, key)
            .fetch_one(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "count derivation-cache entries").with_context("key", key))?;
        self.sql.reader(&row, "derivation-cache", key).int("n")
    }
}

#[async_trait]
impl<D: Dialect> PrimePoolStore for SqlShareStore<D> {
    async fn add_primes(&self, pool: &str, sealed: &[u8]) -> Result<()> {
        self.sql
            .statement(ADD_PRIMES)
            .bind(pool)
            .bind(sealed)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "add to the prime pool").with_context("pool", pool.escape_default()))?;
        Ok(())
    }

    async fn take_primes(&self, pool: &str) -> Result<Option<Vec<u8>>> {
        let row =
            self.sql.statement(TAKE_PRIMES).bind(pool).fetch_optional(&self.sql.pool).await.map_err(|e| {
                self.sql.fail(e, "take from the prime pool").with_context("pool", pool.escape_default())
            })?;
        let pool = pool.escape_default();
        row.map(|row| self.sql.reader(&row, "prime-pool", &pool).bytes("sealed")).transpose()
    }

    async fn count_primes(&self, pool: &str) -> Result<u64> {
        let row = self
            .sql
            .statement(COUNT_PRIMES)
            .bind(pool)
            .fetch_one(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "count the prime pool").with_context("pool", pool.escape_default()))?;
        let pool = pool.escape_default();
        self.sql.reader(&row, "prime-pool", &pool).int("n")
    }
}
