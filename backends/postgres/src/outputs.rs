//! The sqlx calls behind [`PostgresOutputStore`].

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use sqlx::{postgres::PgRow, PgConnection, PgPool, Postgres, QueryBuilder};
use wallet_traits::{
    ActionQuery, ActionRecord, ActionStatus, BoxFuture, Derivation, Error, Options, Outpoint, OutputErrors,
    OutputQuery, OutputRecord, OutputStore, Page, QueryMode, Recorded, Result, SignedAction,
};

use crate::{
    store::{db_error, open_pool, RowReader},
    PostgresConfig, POSTGRES_SCHEME,
};

const ERRORS: OutputErrors = OutputErrors::new(POSTGRES_SCHEME);

/// The [`OutputStore`] of one wallet (its scope) in a PostgreSQL database, within the configured
/// namespace. Methods that write several rows run in one transaction that first locks the
/// action's row, so concurrent writers on any connection or process serialize per action, and a
/// client killed mid-way leaves nothing: the server rolls back what was not committed. Funding
/// takes outputs with `FOR UPDATE SKIP LOCKED`, so concurrent payments never wait on, or take,
/// each other's outputs.
pub struct PostgresOutputStore {
    pool: PgPool,
    namespace: String,
    scope: String,
    server: String,
}

const OUTPUT_COLUMNS: &str = "o.txid, o.vout, o.created_by, o.satoshis, o.locking_script, o.basket, \
     o.custom_instructions, o.description, o.spendable, o.is_change, o.derivation_prefix, o.derivation_suffix, \
     o.sender, o.spent_by, ARRAY(SELECT t.tag FROM mpc_output_tags t WHERE t.namespace = o.namespace \
     AND t.scope = o.scope AND t.txid = o.txid AND t.vout = o.vout ORDER BY t.tag) AS tags";

const ACTION_COLUMNS: &str = "a.reference, a.txid, a.status, a.outgoing, a.satoshis, a.description, a.version, \
     a.lock_time, a.raw_tx, a.input_beef, a.merkle_path, a.created_at, ARRAY(SELECT l.label FROM \
     mpc_action_labels l WHERE l.namespace = a.namespace AND l.scope = a.scope AND l.reference = a.reference \
     ORDER BY l.label) AS labels";

/// A target or a time as a column value; a target beyond every amount asks for the largest.
fn sats(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresOutputStore {
    /// Connects to the database of `config` for the wallet `scope` and brings its schema up to date.
    pub async fn connect(config: &PostgresConfig, scope: &str) -> Result<Self> {
        let (pool, server) = open_pool(config).await?;
        Ok(Self { pool, namespace: config.namespace.clone(), scope: scope.to_string(), server })
    }

    /// The registry constructor: the URL and options of [`PostgresShareStore::from_url`](crate::PostgresShareStore::from_url).
    pub fn from_url(url: String, options: Options, scope: String) -> BoxFuture<'static, Result<Arc<dyn OutputStore>>> {
        Box::pin(async move {
            let config = PostgresConfig::from_url(&url, &options)?;
            let store: Arc<dyn OutputStore> = Arc::new(Self::connect(&config, &scope).await?);
            Ok(store)
        })
    }

    /// Waits for running operations, then closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn fail(&self, e: sqlx::Error, action: &str) -> Error {
        db_error(e, action, &self.server).with_context("namespace", &self.namespace)
    }

    fn reader<'a>(&'a self, row: &'a PgRow, what: &'static str, key: &'a dyn fmt::Display) -> RowReader<'a> {
        RowReader { row, what, key, namespace: &self.namespace }
    }

    async fn begin(&self, action: &str) -> Result<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(|e| self.fail(e, action))
    }

    /// The status of `reference`, its row locked until the transaction ends.
    async fn lock_status(&self, conn: &mut PgConnection, reference: &str) -> Result<Option<ActionStatus>> {
        let row = sqlx::query(
            "SELECT status FROM mpc_actions WHERE namespace = $1 AND scope = $2 AND reference = $3 FOR UPDATE",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| self.fail(e, "read an action's status"))?;
        row.map(|row| {
            let r = self.reader(&row, "action", &reference);
            ActionStatus::parse(&r.get::<String>("status")?).ok_or_else(|| r.corrupted("status"))
        })
        .transpose()
    }

    /// Locks `reference`, which must be open (unsigned).
    async fn lock_open(&self, conn: &mut PgConnection, reference: &str) -> Result<()> {
        match self.lock_status(conn, reference).await? {
            None => Err(ERRORS.unknown_action(reference)),
            Some(status) if !status.is_open() => Err(ERRORS.not_open(reference, status)),
            Some(_) => Ok(()),
        }
    }

    async fn output_by_id(&self, conn: &mut PgConnection, id: i64) -> Result<OutputRecord> {
        let row = sqlx::query(&format!("SELECT {OUTPUT_COLUMNS} FROM mpc_outputs o WHERE o.id = $1"))
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.fail(e, "read an output"))?;
        self.output_from_row(&row)
    }

    /// Inserts `o` (under `created_by`) and its tags unless the outpoint is recorded; whether it
    /// was new.
    async fn insert_output(&self, conn: &mut PgConnection, created_by: &str, o: &OutputRecord) -> Result<bool> {
        let (prefix, suffix, sender) = match &o.derivation {
            Some(d) => (Some(d.prefix.as_str()), Some(d.suffix.as_str()), Some(d.sender.as_str())),
            None => (None, None, None),
        };
        let done = sqlx::query(
            "INSERT INTO mpc_outputs (namespace, scope, txid, vout, created_by, satoshis, locking_script, basket, \
             custom_instructions, description, spendable, is_change, derivation_prefix, derivation_suffix, sender, \
             spent_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (namespace, scope, txid, vout) DO NOTHING",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(o.outpoint.txid.as_slice())
        .bind(i64::from(o.outpoint.vout))
        .bind(created_by)
        .bind(i64::try_from(o.satoshis).map_err(|_| ERRORS.amount_out_of_range(&o.outpoint))?)
        .bind(o.locking_script.as_slice())
        .bind(o.basket.as_deref())
        .bind(o.custom_instructions.as_deref())
        .bind(o.description.as_str())
        .bind(o.spendable)
        .bind(o.change)
        .bind(prefix)
        .bind(suffix)
        .bind(sender)
        .bind(o.spent_by.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(|e| self.fail(e, "record an output").with_context("outpoint", o.outpoint))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for tag in &o.tags {
            sqlx::query(
                "INSERT INTO mpc_output_tags (namespace, scope, txid, vout, tag) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.namespace)
            .bind(&self.scope)
            .bind(o.outpoint.txid.as_slice())
            .bind(i64::from(o.outpoint.vout))
            .bind(tag.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.fail(e, "record an output's tag"))?;
        }
        Ok(true)
    }

    async fn insert_labels(&self, conn: &mut PgConnection, reference: &str, labels: &[String]) -> Result<()> {
        for label in labels {
            sqlx::query(
                "INSERT INTO mpc_action_labels (namespace, scope, reference, label) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.namespace)
            .bind(&self.scope)
            .bind(reference)
            .bind(label.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.fail(e, "record an action's label"))?;
        }
        Ok(())
    }

    async fn reference_of(&self, conn: &mut PgConnection, txid: &[u8; 32]) -> Result<Option<String>> {
        let row = sqlx::query("SELECT reference FROM mpc_actions WHERE namespace = $1 AND scope = $2 AND txid = $3")
            .bind(&self.namespace)
            .bind(&self.scope)
            .bind(txid.as_slice())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| self.fail(e, "look up a transaction"))?;
        row.map(|row| self.reader(&row, "action", &"").get::<String>("reference")).transpose()
    }

    fn output_from_row(&self, row: &PgRow) -> Result<OutputRecord> {
        let r = self.reader(row, "output", &"");
        let txid: [u8; 32] = r.get::<Vec<u8>>("txid")?.try_into().map_err(|_| r.corrupted("txid"))?;
        let outpoint = Outpoint::new(txid, r.int::<i64, _>("vout")?);
        let r = self.reader(row, "output", &outpoint);
        let derivation =
            Derivation::from_columns(r.get("derivation_prefix")?, r.get("derivation_suffix")?, r.get("sender")?)
                .ok_or_else(|| r.corrupted("derivation_prefix"))?;
        Ok(OutputRecord {
            outpoint,
            created_by: r.get("created_by")?,
            satoshis: r.int::<i64, _>("satoshis")?,
            locking_script: r.get("locking_script")?,
            basket: r.get("basket")?,
            tags: r.get("tags")?,
            custom_instructions: r.get("custom_instructions")?,
            description: r.get("description")?,
            spendable: r.get("spendable")?,
            change: r.get("is_change")?,
            derivation,
            spent_by: r.get("spent_by")?,
        })
    }

    fn action_from_row(&self, row: &PgRow) -> Result<ActionRecord> {
        let reference: String = self.reader(row, "action", &"").get("reference")?;
        let r = self.reader(row, "action", &reference);
        let txid = r
            .get::<Option<Vec<u8>>>("txid")?
            .map(|t| <[u8; 32]>::try_from(t).map_err(|_| r.corrupted("txid")))
            .transpose()?;
        let status = ActionStatus::parse(&r.get::<String>("status")?).ok_or_else(|| r.corrupted("status"))?;
        Ok(ActionRecord {
            txid,
            status,
            outgoing: r.get("outgoing")?,
            satoshis: r.get("satoshis")?,
            description: r.get("description")?,
            labels: r.get("labels")?,
            version: r.int::<i64, _>("version")?,
            lock_time: r.int::<i64, _>("lock_time")?,
            raw_tx: r.get("raw_tx")?,
            input_beef: r.get("input_beef")?,
            merkle_path: r.get("merkle_path")?,
            created_at: r.int::<i64, _>("created_at")?,
            reference,
        })
    }

    fn push_scope(&self, q: &mut QueryBuilder<'_, Postgres>, alias: &str) {
        q.push(format!(" WHERE {alias}.namespace = "));
        q.push_bind(self.namespace.clone());
        q.push(format!(" AND {alias}.scope = "));
        q.push_bind(self.scope.clone());
    }

    async fn page<T>(
        &self,
        what: &'static str,
        columns: &str,
        filter: impl Fn(&mut QueryBuilder<'_, Postgres>),
        (limit, offset): (Option<u32>, u32),
        parse: impl Fn(&PgRow) -> Result<T>,
    ) -> Result<Page<T>> {
        // REPEATABLE READ: the count and the page see one snapshot.
        let mut read = self.begin("list records").await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *read)
            .await
            .map_err(|e| self.fail(e, "list records"))?;
        let mut count = QueryBuilder::new("SELECT COUNT(*) AS n");
        filter(&mut count);
        let row = count.build().fetch_one(&mut *read).await.map_err(|e| self.fail(e, "count records"))?;
        let total = self.reader(&row, what, &"").int::<i64, _>("n")?;
        let mut select = QueryBuilder::new(format!("SELECT {columns}"));
        filter(&mut select);
        select.push(" ORDER BY id LIMIT ");
        select.push_bind(limit.map(i64::from));
        select.push(" OFFSET ");
        select.push_bind(i64::from(offset));
        let rows = select.build().fetch_all(&mut *read).await.map_err(|e| self.fail(e, "list records"))?;
        let items = rows.iter().map(parse).collect::<Result<_>>()?;
        Ok(Page { total, items })
    }
}

impl fmt::Debug for PostgresOutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOutputStore")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("scope", &self.scope)
            .finish()
    }
}

/// `AND <tag or label filter>` for `values` under `mode`; nothing when `values` is empty.
fn push_membership(
    q: &mut QueryBuilder<'_, Postgres>,
    table: &str,
    join: &str,
    column: &str,
    values: &[String],
    mode: QueryMode,
) {
    let mut values: Vec<String> = values.to_vec();
    values.sort();
    values.dedup();
    if values.is_empty() {
        return;
    }
    let n = values.len();
    q.push(format!(" AND (SELECT COUNT(*) FROM {table} m WHERE {join} AND m.{column} = ANY("));
    q.push_bind(values);
    match mode {
        QueryMode::Any => q.push(")) > 0"),
        QueryMode::All => q.push(format!(")) = {n}")),
    };
}

#[async_trait]
impl OutputStore for PostgresOutputStore {
    async fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded> {
        let mut tx = self.begin("record an action").await?;
        let known = match &action.txid {
            Some(txid) => self.reference_of(&mut tx, txid).await?,
            None => None,
        };
        let (reference, new_action) = match known {
            Some(reference) => (reference, false),
            None => {
                // A conflict on either unique index (reference, txid) does nothing, after
                // waiting for a concurrent writer of the same row to commit.
                let inserted = sqlx::query(
                    "INSERT INTO mpc_actions (namespace, scope, reference, txid, status, outgoing, satoshis, \
                     description, version, lock_time, raw_tx, input_beef, merkle_path, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&self.namespace)
                .bind(&self.scope)
                .bind(&action.reference)
                .bind(action.txid.as_ref().map(|t| t.as_slice()))
                .bind(action.status.as_str())
                .bind(action.outgoing)
                .bind(action.satoshis)
                .bind(&action.description)
                .bind(i64::from(action.version))
                .bind(i64::from(action.lock_time))
                .bind(action.raw_tx.as_deref())
                .bind(action.input_beef.as_deref())
                .bind(action.merkle_path.as_deref())
                .bind(sats(action.created_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e, "record an action"))?;
                if inserted.rows_affected() == 1 {
                    (action.reference.clone(), true)
                } else {
                    match &action.txid {
                        Some(txid) => match self.reference_of(&mut tx, txid).await? {
                            Some(reference) => (reference, false),
                            None => return Err(ERRORS.reference_taken(&action.reference)),
                        },
                        None => return Err(ERRORS.reference_taken(&action.reference)),
                    }
                }
            }
        };
        self.insert_labels(&mut tx, &reference, &action.labels).await?;
        let mut outputs_added = 0;
        for output in outputs {
            if self.insert_output(&mut tx, &reference, output).await? {
                outputs_added += 1;
            }
        }
        tx.commit().await.map_err(|e| self.fail(e, "commit a recorded action"))?;
        Ok(Recorded { reference, new_action, outputs_added })
    }

    async fn reserve_change(
        &self,
        reference: &str,
        basket: &str,
        target: u64,
        exact: Option<u64>,
    ) -> Result<Option<OutputRecord>> {
        let mut tx = self.begin("reserve an output").await?;
        self.lock_open(&mut tx, reference).await?;
        // Exact match first, then the smallest that covers the target, then the largest.
        let row = sqlx::query(
            "UPDATE mpc_outputs SET spendable = FALSE, spent_by = $3 WHERE id = (SELECT id FROM mpc_outputs \
             WHERE namespace = $1 AND scope = $2 AND basket = $4 AND spendable AND is_change \
             ORDER BY ($6::BIGINT IS NOT NULL AND satoshis = $6) DESC, (satoshis >= $5) DESC, \
             CASE WHEN satoshis >= $5 THEN satoshis ELSE -satoshis END, id \
             LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(reference)
        .bind(basket)
        .bind(sats(target))
        .bind(exact.map(sats))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.fail(e, "reserve an output"))?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = self.reader(&row, "output", &reference).get("id")?;
        let output = self.output_by_id(&mut tx, id).await?;
        tx.commit().await.map_err(|e| self.fail(e, "commit a reservation"))?;
        Ok(Some(output))
    }

    async fn reserve_outputs(&self, reference: &str, outpoints: &[Outpoint]) -> Result<Vec<OutputRecord>> {
        let mut tx = self.begin("reserve outputs").await?;
        self.lock_open(&mut tx, reference).await?;
        let mut reserved = Vec::with_capacity(outpoints.len());
        for outpoint in outpoints {
            let row = sqlx::query(
                "UPDATE mpc_outputs SET spendable = FALSE, spent_by = $3 \
                 WHERE namespace = $1 AND scope = $2 AND txid = $4 AND vout = $5 AND spendable RETURNING id",
            )
            .bind(&self.namespace)
            .bind(&self.scope)
            .bind(reference)
            .bind(outpoint.txid.as_slice())
            .bind(i64::from(outpoint.vout))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.fail(e, "reserve an output"))?;
            let Some(row) = row else {
                // Dropping the transaction rolls back what this call reserved so far.
                return Err(match self.output(outpoint).await? {
                    Some(_) => ERRORS.not_spendable(outpoint),
                    None => ERRORS.unknown_output(outpoint),
                });
            };
            let id: i64 = self.reader(&row, "output", outpoint).get("id")?;
            reserved.push(self.output_by_id(&mut tx, id).await?);
        }
        tx.commit().await.map_err(|e| self.fail(e, "commit a reservation"))?;
        Ok(reserved)
    }

    async fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()> {
        let mut tx = self.begin("commit a signed action").await?;
        self.lock_open(&mut tx, reference).await?;
        let updated = sqlx::query(
            "UPDATE mpc_actions SET txid = $4, raw_tx = $5, input_beef = $6, status = $7, satoshis = $8 \
             WHERE namespace = $1 AND scope = $2 AND reference = $3",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(reference)
        .bind(signed.txid.as_slice())
        .bind(signed.raw_tx.as_slice())
        .bind(signed.input_beef.as_deref())
        .bind(signed.status.as_str())
        .bind(signed.satoshis)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(ERRORS.txid_taken(&signed.txid)),
            Err(e) => return Err(self.fail(e, "commit a signed action")),
        }
        for output in &signed.outputs {
            self.insert_output(&mut tx, reference, output).await?;
        }
        tx.commit().await.map_err(|e| self.fail(e, "commit a signed action"))
    }

    async fn fail_action(&self, reference: &str) -> Result<bool> {
        let mut tx = self.begin("fail an action").await?;
        match self.lock_status(&mut tx, reference).await? {
            None => return Err(ERRORS.unknown_action(reference)),
            Some(ActionStatus::Failed) => return Ok(false),
            Some(ActionStatus::Completed) => return Err(ERRORS.proven(reference)),
            Some(_) => {}
        }
        let statements = [
            // What it created never pays; mark it failed first so the release below sees it.
            "UPDATE mpc_outputs SET spendable = FALSE WHERE namespace = $1 AND scope = $2 AND created_by = $3",
            "UPDATE mpc_actions SET status = 'failed' WHERE namespace = $1 AND scope = $2 AND reference = $3",
            // Inputs come back, except those in no basket or from a failed transaction.
            "UPDATE mpc_outputs o SET spent_by = NULL, spendable = (o.basket IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM mpc_actions a WHERE a.namespace = o.namespace AND a.scope = o.scope \
             AND a.reference = o.created_by AND a.status = 'failed')) \
             WHERE o.namespace = $1 AND o.scope = $2 AND o.spent_by = $3",
        ];
        for statement in statements {
            sqlx::query(statement)
                .bind(&self.namespace)
                .bind(&self.scope)
                .bind(reference)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.fail(e, "fail an action"))?;
        }
        tx.commit().await.map_err(|e| self.fail(e, "commit a failed action"))?;
        Ok(true)
    }

    async fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()> {
        if status == ActionStatus::Failed {
            return Err(ERRORS.fail_through_set_status());
        }
        let done =
            sqlx::query("UPDATE mpc_actions SET status = $4 WHERE namespace = $1 AND scope = $2 AND reference = $3")
                .bind(&self.namespace)
                .bind(&self.scope)
                .bind(reference)
                .bind(status.as_str())
                .execute(&self.pool)
                .await
                .map_err(|e| self.fail(e, "set an action's status"))?;
        if done.rows_affected() == 0 {
            return Err(ERRORS.unknown_action(reference));
        }
        Ok(())
    }

    async fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mpc_actions SET merkle_path = $4, status = 'completed' \
             WHERE namespace = $1 AND scope = $2 AND txid = $3",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(txid.as_slice())
        .bind(merkle_path)
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail(e, "record a merkle path"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn action(&self, reference: &str) -> Result<Option<ActionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM mpc_actions a WHERE a.namespace = $1 AND a.scope = $2 AND a.reference = $3"
        ))
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "read an action"))?;
        row.as_ref().map(|r| self.action_from_row(r)).transpose()
    }

    async fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM mpc_actions a WHERE a.namespace = $1 AND a.scope = $2 AND a.txid = $3"
        ))
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(txid.as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "read an action"))?;
        row.as_ref().map(|r| self.action_from_row(r)).transpose()
    }

    async fn output(&self, outpoint: &Outpoint) -> Result<Option<OutputRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {OUTPUT_COLUMNS} FROM mpc_outputs o \
             WHERE o.namespace = $1 AND o.scope = $2 AND o.txid = $3 AND o.vout = $4"
        ))
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(outpoint.txid.as_slice())
        .bind(i64::from(outpoint.vout))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.fail(e, "read an output"))?;
        row.as_ref().map(|r| self.output_from_row(r)).transpose()
    }

    async fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>> {
        let filter = |q: &mut QueryBuilder<'_, Postgres>| {
            q.push(" FROM mpc_outputs o");
            self.push_scope(q, "o");
            if let Some(basket) = &query.basket {
                q.push(" AND o.basket = ").push_bind(basket.clone());
            }
            if query.spendable_only {
                q.push(" AND o.spendable");
            }
            if let Some(r) = &query.created_by {
                q.push(" AND o.created_by = ").push_bind(r.clone());
            }
            if let Some(r) = &query.spent_by {
                q.push(" AND o.spent_by = ").push_bind(r.clone());
            }
            let join = "m.namespace = o.namespace AND m.scope = o.scope AND m.txid = o.txid AND m.vout = o.vout";
            push_membership(q, "mpc_output_tags", join, "tag", &query.tags, query.tag_mode);
        };
        let page = (query.limit, query.offset);
        self.page("output", OUTPUT_COLUMNS, filter, page, |r| self.output_from_row(r)).await
    }

    async fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>> {
        let filter = |q: &mut QueryBuilder<'_, Postgres>| {
            q.push(" FROM mpc_actions a");
            self.push_scope(q, "a");
            if !query.statuses.is_empty() {
                q.push(" AND a.status = ANY(");
                q.push_bind(query.statuses.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>());
                q.push(")");
            }
            let join = "m.namespace = a.namespace AND m.scope = a.scope AND m.reference = a.reference";
            push_membership(q, "mpc_action_labels", join, "label", &query.labels, query.label_mode);
        };
        let page = (query.limit, query.offset);
        self.page("action", ACTION_COLUMNS, filter, page, |r| self.action_from_row(r)).await
    }

    async fn relinquish_output(&self, basket: &str, outpoint: &Outpoint) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mpc_outputs SET basket = NULL, spendable = FALSE \
             WHERE namespace = $1 AND scope = $2 AND txid = $3 AND vout = $4 AND basket = $5",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(outpoint.txid.as_slice())
        .bind(i64::from(outpoint.vout))
        .bind(basket)
        .execute(&self.pool)
        .await
        .map_err(|e| self.fail(e, "relinquish an output"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn balance(&self, basket: &str) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(satoshis), 0)::BIGINT AS n FROM mpc_outputs \
             WHERE namespace = $1 AND scope = $2 AND basket = $3 AND spendable",
        )
        .bind(&self.namespace)
        .bind(&self.scope)
        .bind(basket)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.fail(e, "sum a basket"))?;
        self.reader(&row, "output", &basket).int::<i64, _>("n")
    }
}
