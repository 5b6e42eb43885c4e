//! The sqlx calls behind [`SqliteOutputStore`].

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use sqlx::{sqlite::SqliteRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use wallet_traits::{
    ActionQuery, ActionRecord, ActionStatus, BoxFuture, Derivation, Options, Outpoint, OutputErrors, OutputQuery,
    OutputRecord, OutputStore, Page, QueryMode, Recorded, Result, SignedAction,
};

use crate::{
    store::{open_pool, storage, RowReader},
    SqliteConfig, SQLITE_SCHEME,
};

const ERRORS: OutputErrors = OutputErrors::new(SQLITE_SCHEME);

/// The [`OutputStore`] of one wallet (its scope) in a SQLite file, usually the agent's share
/// store file. Methods that write several rows run in one `BEGIN IMMEDIATE` transaction: SQLite
/// takes its write lock first, so concurrent writers, in this process or another, queue instead
/// of failing mid-way, and a crash leaves each payment entirely recorded or not at all.
pub struct SqliteOutputStore {
    pool: SqlitePool,
    scope: String,
    path: PathBuf,
}

const OUTPUT_COLUMNS: &str = "o.txid, o.vout, o.created_by, o.satoshis, o.locking_script, o.basket, \
     o.custom_instructions, o.description, o.spendable, o.is_change, o.derivation_prefix, o.derivation_suffix, \
     o.sender, o.spent_by, (SELECT json_group_array(t.tag) FROM mpc_output_tags t \
     WHERE t.scope = o.scope AND t.txid = o.txid AND t.vout = o.vout) AS tags";

const ACTION_COLUMNS: &str = "a.reference, a.txid, a.status, a.outgoing, a.satoshis, a.description, a.version, \
     a.lock_time, a.raw_tx, a.input_beef, a.merkle_path, a.created_at, (SELECT json_group_array(l.label) \
     FROM mpc_action_labels l WHERE l.scope = a.scope AND l.reference = a.reference) AS labels";

impl SqliteOutputStore {
    /// Opens (creating when missing) the database file at `path` for the wallet `scope`.
    pub async fn open(path: impl AsRef<Path>, scope: &str) -> Result<Self> {
        Self::connect(&SqliteConfig::new(path.as_ref()), scope).await
    }

    /// Opens the database described by `config` for the wallet `scope`.
    pub async fn connect(config: &SqliteConfig, scope: &str) -> Result<Self> {
        let pool = open_pool(config).await?;
        Ok(Self { pool, scope: scope.to_string(), path: config.path.clone() })
    }

    /// The registry constructor: the URL and options of [`SqliteShareStore::from_url`](crate::SqliteShareStore::from_url).
    pub fn from_url(url: String, options: Options, scope: String) -> BoxFuture<'static, Result<Arc<dyn OutputStore>>> {
        Box::pin(async move {
            let config = SqliteConfig::from_url(&url, &options)?;
            let store: Arc<dyn OutputStore> = Arc::new(Self::connect(&config, &scope).await?);
            Ok(store)
        })
    }

    /// Waits for running operations, then closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self, action: &str) -> Result<sqlx::Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| storage(e, action))
    }

    /// The status of `reference`, which must be open (unsigned).
    async fn open_status(&self, conn: &mut SqliteConnection, reference: &str) -> Result<()> {
        match status_of(conn, &self.scope, reference).await? {
            None => Err(ERRORS.unknown_action(reference)),
            Some(status) if !status.is_open() => Err(ERRORS.not_open(reference, status)),
            Some(_) => Ok(()),
        }
    }

    async fn output_by_seq(&self, conn: &mut SqliteConnection, seq: i64) -> Result<OutputRecord> {
        let row = sqlx::query(&format!("SELECT {OUTPUT_COLUMNS} FROM mpc_outputs o WHERE o.seq = ?1"))
            .bind(seq)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| storage(e, "read an output"))?;
        output_from_row(&row)
    }
}

impl fmt::Debug for SqliteOutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOutputStore").field("path", &self.path).field("scope", &self.scope).finish()
    }
}

async fn status_of(conn: &mut SqliteConnection, scope: &str, reference: &str) -> Result<Option<ActionStatus>> {
    let row = sqlx::query("SELECT status FROM mpc_actions WHERE scope = ?1 AND reference = ?2")
        .bind(scope)
        .bind(reference)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| storage(e, "read an action's status"))?;
    row.map(|row| {
        let r = RowReader { row: &row, what: "action", key: &reference };
        ActionStatus::parse(&r.get::<String>("status")?).ok_or_else(|| r.corrupted("status"))
    })
    .transpose()
}

/// A target or a time as a column value; a target beyond every amount asks for the largest.
fn sats(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Inserts `output` (under `created_by`) and its tags unless the outpoint is recorded; whether it
/// was new.
async fn insert_output(conn: &mut SqliteConnection, scope: &str, created_by: &str, o: &OutputRecord) -> Result<bool> {
    let (prefix, suffix, sender) = match &o.derivation {
        Some(d) => (Some(d.prefix.as_str()), Some(d.suffix.as_str()), Some(d.sender.as_str())),
        None => (None, None, None),
    };
    let done = sqlx::query(
        "INSERT INTO mpc_outputs (scope, txid, vout, created_by, satoshis, locking_script, basket, \
         custom_instructions, description, spendable, is_change, derivation_prefix, derivation_suffix, sender, \
         spent_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (scope, txid, vout) DO NOTHING",
    )
    .bind(scope)
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
    .map_err(|e| storage(e, "record an output").with_context("outpoint", o.outpoint))?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    for tag in &o.tags {
        sqlx::query("INSERT OR IGNORE INTO mpc_output_tags (scope, txid, vout, tag) VALUES (?1, ?2, ?3, ?4)")
            .bind(scope)
            .bind(o.outpoint.txid.as_slice())
            .bind(i64::from(o.outpoint.vout))
            .bind(tag.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| storage(e, "record an output's tag"))?;
    }
    Ok(true)
}

async fn insert_labels(conn: &mut SqliteConnection, scope: &str, reference: &str, labels: &[String]) -> Result<()> {
    for label in labels {
        sqlx::query("INSERT OR IGNORE INTO mpc_action_labels (scope, reference, label) VALUES (?1, ?2, ?3)")
            .bind(scope)
            .bind(reference)
            .bind(label.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| storage(e, "record an action's label"))?;
    }
    Ok(())
}

fn json_strings(r: &RowReader<'_>, column: &'static str) -> Result<Vec<String>> {
    let raw: String = r.get(column)?;
    let mut v: Vec<String> = serde_json::from_str(&raw).map_err(|_| r.corrupted(column))?;
    v.sort();
    Ok(v)
}

fn txid_of(r: &RowReader<'_>, column: &'static str, value: Vec<u8>) -> Result<[u8; 32]> {
    value.try_into().map_err(|_| r.corrupted(column))
}

fn output_from_row(row: &SqliteRow) -> Result<OutputRecord> {
    let r = RowReader { row, what: "output", key: &"" };
    let txid = txid_of(&r, "txid", r.get("txid")?)?;
    let outpoint = Outpoint::new(txid, r.int("vout")?);
    let r = RowReader { row, what: "output", key: &outpoint };
    let derivation =
        Derivation::from_columns(r.get("derivation_prefix")?, r.get("derivation_suffix")?, r.get("sender")?)
            .ok_or_else(|| r.corrupted("derivation_prefix"))?;
    Ok(OutputRecord {
        outpoint,
        created_by: r.get("created_by")?,
        satoshis: r.int("satoshis")?,
        locking_script: r.get("locking_script")?,
        basket: r.get("basket")?,
        tags: json_strings(&r, "tags")?,
        custom_instructions: r.get("custom_instructions")?,
        description: r.get("description")?,
        spendable: r.get("spendable")?,
        change: r.get("is_change")?,
        derivation,
        spent_by: r.get("spent_by")?,
    })
}

fn action_from_row(row: &SqliteRow) -> Result<ActionRecord> {
    let reference: String = RowReader { row, what: "action", key: &"" }.get("reference")?;
    let r = RowReader { row, what: "action", key: &reference };
    let txid = r.get::<Option<Vec<u8>>>("txid")?.map(|t| txid_of(&r, "txid", t)).transpose()?;
    let status = ActionStatus::parse(&r.get::<String>("status")?).ok_or_else(|| r.corrupted("status"))?;
    Ok(ActionRecord {
        txid,
        status,
        outgoing: r.get("outgoing")?,
        satoshis: r.get("satoshis")?,
        description: r.get("description")?,
        labels: json_strings(&r, "labels")?,
        version: r.int("version")?,
        lock_time: r.int("lock_time")?,
        raw_tx: r.get("raw_tx")?,
        input_beef: r.get("input_beef")?,
        merkle_path: r.get("merkle_path")?,
        created_at: r.int("created_at")?,
        reference,
    })
}

/// `AND <tag or label filter>` for `values` under `mode`; nothing when `values` is empty.
fn push_membership(
    q: &mut QueryBuilder<'_, Sqlite>,
    table: &str,
    join: &str,
    column: &str,
    values: &[String],
    mode: QueryMode,
) {
    let mut values: Vec<&String> = values.iter().collect();
    values.sort();
    values.dedup();
    if values.is_empty() {
        return;
    }
    q.push(format!(" AND (SELECT COUNT(*) FROM {table} m WHERE {join} AND m.{column} IN ("));
    let mut list = q.separated(", ");
    for v in &values {
        list.push_bind(v.to_string());
    }
    match mode {
        QueryMode::Any => q.push(")) > 0"),
        QueryMode::All => q.push(format!(")) = {}", values.len())),
    };
}

fn push_page(q: &mut QueryBuilder<'_, Sqlite>, limit: Option<u32>, offset: u32) {
    q.push(" LIMIT ");
    q.push_bind(limit.map_or(-1, i64::from));
    q.push(" OFFSET ");
    q.push_bind(i64::from(offset));
}

#[async_trait]
impl OutputStore for SqliteOutputStore {
    async fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded> {
        let mut tx = self.begin("record an action").await?;
        let known = match &action.txid {
            Some(txid) => sqlx::query("SELECT reference FROM mpc_actions WHERE scope = ?1 AND txid = ?2")
                .bind(&self.scope)
                .bind(txid.as_slice())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| storage(e, "look up a transaction"))?
                .map(|row| RowReader { row: &row, what: "action", key: &"" }.get::<String>("reference"))
                .transpose()?,
            None => None,
        };
        let (reference, new_action) = match known {
            Some(reference) => (reference, false),
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO mpc_actions (scope, reference, txid, status, outgoing, satoshis, description, \
                     version, lock_time, raw_tx, input_beef, merkle_path, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
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
                .await;
                match inserted {
                    Ok(_) => (action.reference.clone(), true),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(ERRORS.reference_taken(&action.reference))
                    }
                    Err(e) => return Err(storage(e, "record an action")),
                }
            }
        };
        insert_labels(&mut tx, &self.scope, &reference, &action.labels).await?;
        let mut outputs_added = 0;
        for output in outputs {
            if insert_output(&mut tx, &self.scope, &reference, output).await? {
                outputs_added += 1;
            }
        }
        tx.commit().await.map_err(|e| storage(e, "commit a recorded action"))?;
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
        self.open_status(&mut tx, reference).await?;
        // Exact match first, then the smallest that covers the target, then the largest.
        let seq = sqlx::query(
            "UPDATE mpc_outputs SET spendable = 0, spent_by = ?2 WHERE seq = (SELECT seq FROM mpc_outputs \
             WHERE scope = ?1 AND basket = ?3 AND spendable = 1 AND is_change = 1 \
             ORDER BY (?5 IS NOT NULL AND satoshis = ?5) DESC, (satoshis >= ?4) DESC, \
             CASE WHEN satoshis >= ?4 THEN satoshis ELSE -satoshis END, seq LIMIT 1) RETURNING seq",
        )
        .bind(&self.scope)
        .bind(reference)
        .bind(basket)
        .bind(sats(target))
        .bind(exact.map(sats))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| storage(e, "reserve an output"))?;
        let Some(row) = seq else { return Ok(None) };
        let seq: i64 = RowReader { row: &row, what: "output", key: &reference }.get("seq")?;
        let output = self.output_by_seq(&mut tx, seq).await?;
        tx.commit().await.map_err(|e| storage(e, "commit a reservation"))?;
        Ok(Some(output))
    }

    async fn reserve_outputs(&self, reference: &str, outpoints: &[Outpoint]) -> Result<Vec<OutputRecord>> {
        let mut tx = self.begin("reserve outputs").await?;
        self.open_status(&mut tx, reference).await?;
        let mut reserved = Vec::with_capacity(outpoints.len());
        for outpoint in outpoints {
            let row = sqlx::query(
                "UPDATE mpc_outputs SET spendable = 0, spent_by = ?2 \
                 WHERE scope = ?1 AND txid = ?3 AND vout = ?4 AND spendable = 1 RETURNING seq",
            )
            .bind(&self.scope)
            .bind(reference)
            .bind(outpoint.txid.as_slice())
            .bind(i64::from(outpoint.vout))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| storage(e, "reserve an output"))?;
            let Some(row) = row else {
                // Dropping the transaction rolls back what this call reserved so far.
                return Err(match self.output(outpoint).await? {
                    Some(_) => ERRORS.not_spendable(outpoint),
                    None => ERRORS.unknown_output(outpoint),
                });
            };
            let seq: i64 = RowReader { row: &row, what: "output", key: outpoint }.get("seq")?;
            reserved.push(self.output_by_seq(&mut tx, seq).await?);
        }
        tx.commit().await.map_err(|e| storage(e, "commit a reservation"))?;
        Ok(reserved)
    }

    async fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()> {
        let mut tx = self.begin("commit a signed action").await?;
        self.open_status(&mut tx, reference).await?;
        let updated = sqlx::query(
            "UPDATE mpc_actions SET txid = ?3, raw_tx = ?4, input_beef = ?5, status = ?6, satoshis = ?7 \
             WHERE scope = ?1 AND reference = ?2",
        )
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
            Err(e) => return Err(storage(e, "commit a signed action")),
        }
        for output in &signed.outputs {
            insert_output(&mut tx, &self.scope, reference, output).await?;
        }
        tx.commit().await.map_err(|e| storage(e, "commit a signed action"))
    }

    async fn fail_action(&self, reference: &str) -> Result<bool> {
        let mut tx = self.begin("fail an action").await?;
        match status_of(&mut tx, &self.scope, reference).await? {
            None => return Err(ERRORS.unknown_action(reference)),
            Some(ActionStatus::Failed) => return Ok(false),
            Some(ActionStatus::Completed) => return Err(ERRORS.proven(reference)),
            Some(_) => {}
        }
        let statements = [
            // What it created never pays; mark it failed first so the release below sees it.
            "UPDATE mpc_outputs SET spendable = 0 WHERE scope = ?1 AND created_by = ?2",
            "UPDATE mpc_actions SET status = 'failed' WHERE scope = ?1 AND reference = ?2",
            // Inputs come back, except those in no basket or from a failed transaction.
            "UPDATE mpc_outputs SET spent_by = NULL, spendable = (basket IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM mpc_actions a WHERE a.scope = mpc_outputs.scope AND a.reference = mpc_outputs.created_by \
             AND a.status = 'failed')) WHERE scope = ?1 AND spent_by = ?2",
        ];
        for statement in statements {
            sqlx::query(statement)
                .bind(&self.scope)
                .bind(reference)
                .execute(&mut *tx)
                .await
                .map_err(|e| storage(e, "fail an action"))?;
        }
        tx.commit().await.map_err(|e| storage(e, "commit a failed action"))?;
        Ok(true)
    }

    async fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()> {
        if status == ActionStatus::Failed {
            return Err(ERRORS.fail_through_set_status());
        }
        let done = sqlx::query("UPDATE mpc_actions SET status = ?3 WHERE scope = ?1 AND reference = ?2")
            .bind(&self.scope)
            .bind(reference)
            .bind(status.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| storage(e, "set an action's status"))?;
        if done.rows_affected() == 0 {
            return Err(ERRORS.unknown_action(reference));
        }
        Ok(())
    }

    async fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool> {
        let done =
            sqlx::query("UPDATE mpc_actions SET merkle_path = ?3, status = 'completed' WHERE scope = ?1 AND txid = ?2")
                .bind(&self.scope)
                .bind(txid.as_slice())
                .bind(merkle_path)
                .execute(&self.pool)
                .await
                .map_err(|e| storage(e, "record a merkle path"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn action(&self, reference: &str) -> Result<Option<ActionRecord>> {
        let row =
            sqlx::query(&format!("SELECT {ACTION_COLUMNS} FROM mpc_actions a WHERE a.scope = ?1 AND a.reference = ?2"))
                .bind(&self.scope)
                .bind(reference)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| storage(e, "read an action"))?;
        row.as_ref().map(action_from_row).transpose()
    }

    async fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>> {
        let row =
            sqlx::query(&format!("SELECT {ACTION_COLUMNS} FROM mpc_actions a WHERE a.scope = ?1 AND a.txid = ?2"))
                .bind(&self.scope)
                .bind(txid.as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| storage(e, "read an action"))?;
        row.as_ref().map(action_from_row).transpose()
    }

    async fn output(&self, outpoint: &Outpoint) -> Result<Option<OutputRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {OUTPUT_COLUMNS} FROM mpc_outputs o WHERE o.scope = ?1 AND o.txid = ?2 AND o.vout = ?3"
        ))
        .bind(&self.scope)
        .bind(outpoint.txid.as_slice())
        .bind(i64::from(outpoint.vout))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| storage(e, "read an output"))?;
        row.as_ref().map(output_from_row).transpose()
    }

    async fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>> {
        let filter = |q: &mut QueryBuilder<'_, Sqlite>| {
            q.push(" FROM mpc_outputs o WHERE o.scope = ");
            q.push_bind(self.scope.clone());
            if let Some(basket) = &query.basket {
                q.push(" AND o.basket = ").push_bind(basket.clone());
            }
            if query.spendable_only {
                q.push(" AND o.spendable = 1");
            }
            if let Some(r) = &query.created_by {
                q.push(" AND o.created_by = ").push_bind(r.clone());
            }
            if let Some(r) = &query.spent_by {
                q.push(" AND o.spent_by = ").push_bind(r.clone());
            }
            let join = "m.scope = o.scope AND m.txid = o.txid AND m.vout = o.vout";
            push_membership(q, "mpc_output_tags", join, "tag", &query.tags, query.tag_mode);
        };
        let mut read = self.pool.begin().await.map_err(|e| storage(e, "list outputs"))?;
        let mut count = QueryBuilder::new("SELECT COUNT(*) AS n");
        filter(&mut count);
        let row = count.build().fetch_one(&mut *read).await.map_err(|e| storage(e, "count outputs"))?;
        let total = RowReader { row: &row, what: "output", key: &"" }.int("n")?;
        let mut select = QueryBuilder::new(format!("SELECT {OUTPUT_COLUMNS}"));
        filter(&mut select);
        select.push(" ORDER BY o.seq");
        push_page(&mut select, query.limit, query.offset);
        let rows = select.build().fetch_all(&mut *read).await.map_err(|e| storage(e, "list outputs"))?;
        let items = rows.iter().map(output_from_row).collect::<Result<_>>()?;
        Ok(Page { total, items })
    }

    async fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>> {
        let filter = |q: &mut QueryBuilder<'_, Sqlite>| {
            q.push(" FROM mpc_actions a WHERE a.scope = ");
            q.push_bind(self.scope.clone());
            if !query.statuses.is_empty() {
                q.push(" AND a.status IN (");
                let mut list = q.separated(", ");
                for s in &query.statuses {
                    list.push_bind(s.as_str());
                }
                q.push(")");
            }
            let join = "m.scope = a.scope AND m.reference = a.reference";
            push_membership(q, "mpc_action_labels", join, "label", &query.labels, query.label_mode);
        };
        let mut read = self.pool.begin().await.map_err(|e| storage(e, "list actions"))?;
        let mut count = QueryBuilder::new("SELECT COUNT(*) AS n");
        filter(&mut count);
        let row = count.build().fetch_one(&mut *read).await.map_err(|e| storage(e, "count actions"))?;
        let total = RowReader { row: &row, what: "action", key: &"" }.int("n")?;
        let mut select = QueryBuilder::new(format!("SELECT {ACTION_COLUMNS}"));
        filter(&mut select);
        select.push(" ORDER BY a.seq");
        push_page(&mut select, query.limit, query.offset);
        let rows = select.build().fetch_all(&mut *read).await.map_err(|e| storage(e, "list actions"))?;
        let items = rows.iter().map(action_from_row).collect::<Result<_>>()?;
        Ok(Page { total, items })
    }

    async fn relinquish_output(&self, basket: &str, outpoint: &Outpoint) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mpc_outputs SET basket = NULL, spendable = 0 \
             WHERE scope = ?1 AND txid = ?2 AND vout = ?3 AND basket = ?4",
        )
        .bind(&self.scope)
        .bind(outpoint.txid.as_slice())
        .bind(i64::from(outpoint.vout))
        .bind(basket)
        .execute(&self.pool)
        .await
        .map_err(|e| storage(e, "relinquish an output"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn balance(&self, basket: &str) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(satoshis), 0) AS n FROM mpc_outputs WHERE scope = ?1 AND basket = ?2 AND spendable = 1",
        )
        .bind(&self.scope)
        .bind(basket)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| storage(e, "sum a basket"))?;
        RowReader { row: &row, what: "output", key: &basket }.int("n")
    }
}
