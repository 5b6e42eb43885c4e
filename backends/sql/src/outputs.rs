//! [`SqlOutputStore`]: the statements of the agent's accounting.

use std::fmt;

use async_trait::async_trait;
use sqlx::{Pool, Transaction};
use wallet_traits::{
    ActionQuery, ActionRecord, ActionStatus, Books, Derivation, Imported, Outpoint, OutputErrors, OutputQuery,
    OutputRecord, OutputStore, Page, QueryMode, Recorded, Result, SignedAction,
};

use crate::{
    db::{Row, Sql, Statement},
    Dialect,
};

// The statements, in the notation of `dialect::render`. Every row belongs to the store's scope
// (the wallet id), bound as `$1` (`scoped`) wherever a statement selects by more than a row number.

/// The columns an output is read from, its tags collected into one JSON array.
macro_rules! output_columns {
    () => {
        "o.txid, o.vout, o.created_by, o.satoshis, o.locking_script, o.basket, o.custom_instructions, \
         o.description, o.spendable, o.is_change, o.derivation_prefix, o.derivation_suffix, o.sender, o.spent_by, \
         CAST((SELECT {JSON_AGG}(t.tag ORDER BY t.tag) FROM mpc_output_tags t WHERE [t.namespace = o.namespace AND ]\
         t.scope = o.scope AND t.txid = o.txid AND t.vout = o.vout) AS TEXT) AS tags"
    };
}

/// The columns an action is read from, its labels collected into one JSON array.
macro_rules! action_columns {
    () => {
        "a.reference, a.txid, a.status, a.outgoing, a.satoshis, a.description, a.version, a.lock_time, a.raw_tx, \
         a.input_beef, a.merkle_path, a.created_at, CAST((SELECT {JSON_AGG}(l.label ORDER BY l.label) \
         FROM mpc_action_labels l WHERE [l.namespace = a.namespace AND ]l.scope = a.scope \
         AND l.reference = a.reference) AS TEXT) AS labels"
    };
}

const OUTPUT: &str = concat!(
    "SELECT ",
    output_columns!(),
    " FROM mpc_outputs o WHERE [o.namespace = $ns AND ]o.scope = $1 AND o.txid = $2 AND o.vout = $3"
);

// By the row number a reservation returned, within its transaction.
const OUTPUT_BY_SEQ: &str = concat!("SELECT ", output_columns!(), " FROM mpc_outputs o WHERE o.{SEQ} = $1");

const ACTION: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM mpc_actions a WHERE [a.namespace = $ns AND ]a.scope = $1 AND a.reference = $2"
);

const ACTION_BY_TXID: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM mpc_actions a WHERE [a.namespace = $ns AND ]a.scope = $1 AND a.txid = $2"
);

const REFERENCE_OF: &str = "SELECT reference FROM mpc_actions WHERE [namespace = $ns AND ]scope = $1 AND txid = $2";

// In a write transaction: the dialect's LOCK holds the action's row until it ends.
const STATUS: &str = "SELECT status FROM mpc_actions WHERE [namespace = $ns AND ]scope = $1 AND reference = $2 {LOCK}";

// A conflict on either unique index (reference, txid) does nothing, after waiting for a
// concurrent writer of the same row to commit.
const INSERT_ACTION: &str = "INSERT INTO mpc_actions ([namespace, ]scope, reference, txid, status, outgoing, \
     satoshis, description, version, lock_time, raw_tx, input_beef, merkle_path, created_at) \
     VALUES ([$ns, ]$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING";

const INSERT_LABEL: &str = "INSERT INTO mpc_action_labels ([namespace, ]scope, reference, label) \
     VALUES ([$ns, ]$1, $2, $3) ON CONFLICT DO NOTHING";

const INSERT_OUTPUT: &str = "INSERT INTO mpc_outputs ([namespace, ]scope, txid, vout, created_by, satoshis, \
     locking_script, basket, custom_instructions, description, spendable, is_change, derivation_prefix, \
     derivation_suffix, sender, spent_by) VALUES ([$ns, ]$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
     $14, $15) ON CONFLICT ([namespace, ]scope, txid, vout) DO NOTHING";

const INSERT_TAG: &str = "INSERT INTO mpc_output_tags ([namespace, ]scope, txid, vout, tag) \
     VALUES ([$ns, ]$1, $2, $3, $4) ON CONFLICT DO NOTHING";

// Exact match first, then the smallest that covers the target, then the largest; the dialect's
// SKIP_LOCKED passes over outputs a concurrent payment is taking.
const RESERVE_CHANGE: &str = "UPDATE mpc_outputs SET spendable = FALSE, spent_by = $2 WHERE {SEQ} = \
     (SELECT {SEQ} FROM mpc_outputs WHERE [namespace = $ns AND ]scope = $1 AND basket = $3 AND spendable = TRUE \
     AND is_change = TRUE ORDER BY (CAST($5 AS BIGINT) IS NOT NULL AND satoshis = $5) DESC, (satoshis >= $4) DESC, \
     CASE WHEN satoshis >= $4 THEN satoshis ELSE -satoshis END, {SEQ} LIMIT 1 {SKIP_LOCKED}) RETURNING {SEQ} AS seq";

const RESERVE_OUTPUT: &str = "UPDATE mpc_outputs SET spendable = FALSE, spent_by = $2 \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $3 AND vout = $4 AND spendable = TRUE RETURNING {SEQ} AS seq";

// What was kept for signing goes with the commit: a signed action is never signed again.
const COMMIT_ACTION: &str = "UPDATE mpc_actions SET txid = $3, raw_tx = $4, input_beef = $5, status = $6, \
     satoshis = $7, signable = NULL WHERE [namespace = $ns AND ]scope = $1 AND reference = $2";

const FAIL_ACTION: [&str; 3] = [
    // What it created never pays; mark it failed first so the release below sees it.
    "UPDATE mpc_outputs SET spendable = FALSE WHERE [namespace = $ns AND ]scope = $1 AND created_by = $2",
    "UPDATE mpc_actions SET status = 'failed', signable = NULL \
     WHERE [namespace = $ns AND ]scope = $1 AND reference = $2",
    // Inputs come back, except those in no basket or from a failed transaction.
    "UPDATE mpc_outputs SET spent_by = NULL, spendable = (basket IS NOT NULL AND NOT EXISTS \
     (SELECT 1 FROM mpc_actions a WHERE [a.namespace = mpc_outputs.namespace AND ]a.scope = mpc_outputs.scope \
     AND a.reference = mpc_outputs.created_by AND a.status = 'failed')) \
     WHERE [namespace = $ns AND ]scope = $1 AND spent_by = $2",
];

/// An output `$2` created that an action not failed reserved or spent (its row locked, where the
/// dialect locks rows, so no reservation slips in before the failure commits).
const SPENT_FURTHER: &str = "SELECT o.spent_by FROM mpc_outputs o JOIN mpc_actions a ON \
     [a.namespace = o.namespace AND ]a.scope = o.scope AND a.reference = o.spent_by \
     WHERE [o.namespace = $ns AND ]o.scope = $1 AND o.created_by = $2 AND o.spent_by <> $2 \
     AND a.status <> 'failed' LIMIT 1";

// In a write transaction, after `lock_open`.
const KEEP_SIGNABLE: &str =
    "UPDATE mpc_actions SET signable = $3 WHERE [namespace = $ns AND ]scope = $1 AND reference = $2";

// Only while the action is open; commit and fail drop it anyway.
const SIGNABLE: &str = "SELECT signable FROM mpc_actions \
     WHERE [namespace = $ns AND ]scope = $1 AND reference = $2 AND status = 'unsigned'";

const SET_STATUS: &str = "UPDATE mpc_actions SET status = $3 WHERE [namespace = $ns AND ]scope = $1 AND reference = $2";

const SET_MERKLE_PATH: &str = "UPDATE mpc_actions SET merkle_path = $3, status = 'completed' \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2";

const CLEAR_MERKLE_PATH: &str = "UPDATE mpc_actions SET merkle_path = NULL, status = 'unproven' \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND status = 'completed'";

const PURGE_FAILED: &str = "UPDATE mpc_actions SET raw_tx = NULL, input_beef = NULL, signable = NULL \
     WHERE [namespace = $ns AND ]scope = $1 AND reference IN (SELECT reference FROM mpc_actions \
     WHERE [namespace = $ns AND ]scope = $1 AND status = 'failed' AND created_at < $2 \
     AND (raw_tx IS NOT NULL OR input_beef IS NOT NULL OR signable IS NOT NULL) ORDER BY created_at LIMIT $3)";

const COUNT_PROOF_ATTEMPT: &str = "UPDATE mpc_actions SET proof_attempts = proof_attempts + 1 \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND status = 'unproven' RETURNING proof_attempts";

const RESET_PROOF_ATTEMPTS: &str =
    "UPDATE mpc_actions SET proof_attempts = 0 WHERE [namespace = $ns AND ]scope = $1 AND txid = $2";

// An imported action's state replaces the store's (`import_books`); what was kept for signing
// and the proof count belong to the old state.
const UPDATE_ACTION: &str = "UPDATE mpc_actions SET txid = $3, status = $4, outgoing = $5, satoshis = $6, \
     description = $7, version = $8, lock_time = $9, raw_tx = $10, input_beef = $11, merkle_path = $12, \
     created_at = $13, signable = NULL, proof_attempts = 0 WHERE [namespace = $ns AND ]scope = $1 AND reference = $2";

const UPDATE_OUTPUT: &str = "UPDATE mpc_outputs SET created_by = $4, satoshis = $5, locking_script = $6, \
     basket = $7, custom_instructions = $8, description = $9, spendable = $10, is_change = $11, \
     derivation_prefix = $12, derivation_suffix = $13, sender = $14, spent_by = $15 \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND vout = $3";

const ALL_ACTIONS: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM mpc_actions a WHERE [a.namespace = $ns AND ]a.scope = $1 ORDER BY a.{SEQ}"
);

const ALL_OUTPUTS: &str = concat!(
    "SELECT ",
    output_columns!(),
    " FROM mpc_outputs o WHERE [o.namespace = $ns AND ]o.scope = $1 ORDER BY o.{SEQ}"
);

const RELINQUISH: &str = "UPDATE mpc_outputs SET basket = NULL, spendable = FALSE \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND vout = $3 AND basket = $4";

const SPENT_ELSEWHERE: &str = "UPDATE mpc_outputs SET spendable = FALSE \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND vout = $3 AND spendable = TRUE AND spent_by IS NULL";

// In a write transaction, after `lock_status`.
const HOLDER: &str =
    "SELECT spent_by FROM mpc_outputs WHERE [namespace = $ns AND ]scope = $1 AND txid = $2 AND vout = $3 {LOCK}";

const UNFAIL_INPUT: &str = "UPDATE mpc_outputs SET spent_by = $2, spendable = FALSE \
     WHERE [namespace = $ns AND ]scope = $1 AND txid = $3 AND vout = $4";

const UNFAIL_ACTION: [&str; 2] = [
    "UPDATE mpc_outputs SET spendable = (basket IS NOT NULL AND spent_by IS NULL) \
     WHERE [namespace = $ns AND ]scope = $1 AND created_by = $2",
    "UPDATE mpc_actions SET status = 'unproven' WHERE [namespace = $ns AND ]scope = $1 AND reference = $2",
];

const BALANCE: &str = "SELECT CAST(COALESCE(SUM(satoshis), 0) AS BIGINT) AS n FROM mpc_outputs \
     WHERE [namespace = $ns AND ]scope = $1 AND basket = $2 AND spendable = TRUE";

/// The [`OutputStore`] of one wallet (its scope) in the tables `mpc_actions`, `mpc_action_labels`,
/// `mpc_outputs` and `mpc_output_tags` of a database spoken to in dialect `D`.
///
/// Methods that write several rows run in one transaction begun with the dialect's
/// `BEGIN_WRITE` that first reads the action's row with its `LOCK`, so concurrent writers, on any
/// connection or process, serialize per action (SQLite: per database), and a writer killed midway
/// leaves nothing. Funding picks outputs with the dialect's `SKIP_LOCKED`, so concurrent payments
/// never take each other's outputs.
pub struct SqlOutputStore<D: Dialect> {
    pub(crate) sql: Sql<D>,
    scope: String,
}

impl<D: Dialect> SqlOutputStore<D> {
    /// The store of the wallet `scope` in the database of `pool`, whose schema the backend
    /// brought up to date.
    pub fn new(pool: Pool<D::Database>, dialect: D, scope: impl Into<String>) -> Self {
        Self { sql: Sql { pool, dialect }, scope: scope.into() }
    }

    /// The dialect the store was opened with.
    pub fn dialect(&self) -> &D {
        &self.sql.dialect
    }

    /// The wallet whose rows the store reads and writes.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Waits for running operations, then closes every connection.
    pub async fn close(&self) {
        self.sql.pool.close().await;
    }

    fn errors(&self) -> OutputErrors {
        OutputErrors::new(D::BACKEND)
    }

    /// The statement of this store's rows, the scope bound as `$1`.
    pub(crate) fn scoped(&self, template: &str) -> Statement<'_, D> {
        self.sql.statement(template).bind(&self.scope)
    }

    async fn begin(&self, action: &str) -> Result<Transaction<'static, D::Database>> {
        self.sql.begin(D::BEGIN_WRITE, action).await
    }

    /// The status of `reference`, its row locked (where the dialect locks rows) until the
    /// transaction ends.
    async fn lock_status(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        reference: &str,
    ) -> Result<Option<ActionStatus>> {
        let row = self
            .scoped(STATUS)
            .bind(reference)
            .fetch_optional(tx)
            .await
            .map_err(|e| self.sql.fail(e, "read an action's status"))?;
        row.map(|row| {
            let r = self.sql.reader(&row, "action", &reference);
            ActionStatus::parse(&r.text("status")?).ok_or_else(|| r.corrupted("status"))
        })
        .transpose()
    }

    /// Locks `reference`, which must be open (unsigned).
    async fn lock_open(&self, tx: &mut Transaction<'static, D::Database>, reference: &str) -> Result<()> {
        match self.lock_status(tx, reference).await? {
            None => Err(self.errors().unknown_action(reference)),
            Some(status) if !status.is_open() => Err(self.errors().not_open(reference, status)),
            Some(_) => Ok(()),
        }
    }

    async fn reference_of(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        txid: &[u8; 32],
    ) -> Result<Option<String>> {
        let row = self
            .scoped(REFERENCE_OF)
            .bind(txid.as_slice())
            .fetch_optional(tx)
            .await
            .map_err(|e| self.sql.fail(e, "look up a transaction"))?;
        row.map(|row| self.sql.reader(&row, "action", &"").text("reference")).transpose()
    }

    /// The output a reservation returned the row number of, in the reserving transaction.
    async fn output_by_seq(&self, tx: &mut Transaction<'static, D::Database>, seq: i64) -> Result<OutputRecord> {
        let row = self
            .sql
            .statement(OUTPUT_BY_SEQ)
            .bind(seq)
            .fetch_one(tx)
            .await
            .map_err(|e| self.sql.fail(e, "read an output"))?;
        self.output_from_row(&row)
    }

    /// `template` with the scope and `action`'s columns bound as `$1` to `$13` (reference, txid,
    /// status, outgoing, satoshis, description, version, lock time, raw tx, input BEEF, merkle
    /// path, creation time): inserting it, or replacing the row of its reference.
    fn action_statement<'a>(&'a self, template: &str, action: &'a ActionRecord) -> Statement<'a, D> {
        self.scoped(template)
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
    }

    /// Inserts `action` (not its labels) unless its reference or txid is recorded; whether it was new.
    async fn insert_action(&self, tx: &mut Transaction<'static, D::Database>, action: &ActionRecord) -> Result<bool> {
        let inserted = self
            .action_statement(INSERT_ACTION, action)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.sql.fail(e, "record an action"))?;
        Ok(inserted == 1)
    }

    /// `template` with the scope and `o`'s columns bound as `$1` to `$15` (txid, vout, created
    /// by, satoshis, script, basket, instructions, description, spendable, change, derivation
    /// prefix, suffix and sender, spent by): inserting it, or replacing the row of its outpoint.
    fn output_statement<'a>(
        &'a self,
        template: &str,
        created_by: &'a str,
        o: &'a OutputRecord,
    ) -> Result<Statement<'a, D>> {
        let (prefix, suffix, sender) = match &o.derivation {
            Some(d) => (Some(d.prefix.as_str()), Some(d.suffix.as_str()), Some(d.sender.as_str())),
            None => (None, None, None),
        };
        Ok(self
            .scoped(template)
            .bind(o.outpoint.txid.as_slice())
            .bind(i64::from(o.outpoint.vout))
            .bind(created_by)
            .bind(i64::try_from(o.satoshis).map_err(|_| self.errors().amount_out_of_range(&o.outpoint))?)
            .bind(o.locking_script.as_slice())
            .bind(o.basket.as_deref())
            .bind(o.custom_instructions.as_deref())
            .bind(o.description.as_str())
            .bind(o.spendable)
            .bind(o.change)
            .bind(prefix)
            .bind(suffix)
            .bind(sender)
            .bind(o.spent_by.as_deref()))
    }

    /// Adds `o`'s tags to those its outpoint has.
    async fn insert_tags(&self, tx: &mut Transaction<'static, D::Database>, o: &OutputRecord) -> Result<()> {
        for tag in &o.tags {
            self.scoped(INSERT_TAG)
                .bind(o.outpoint.txid.as_slice())
                .bind(i64::from(o.outpoint.vout))
                .bind(tag.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.sql.fail(e, "record an output's tag"))?;
        }
        Ok(())
    }

    /// Inserts `o` (under `created_by`) and its tags unless the outpoint is recorded; whether it
    /// was new.
    async fn insert_output(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        created_by: &str,
        o: &OutputRecord,
    ) -> Result<bool> {
        let inserted = self
            .output_statement(INSERT_OUTPUT, created_by, o)?
            .execute(&mut *tx)
            .await
            .map_err(|e| self.sql.fail(e, "record an output").with_context("outpoint", o.outpoint))?;
        if inserted == 0 {
            return Ok(false);
        }
        self.insert_tags(tx, o).await?;
        Ok(true)
    }

    async fn insert_labels(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        reference: &str,
        labels: &[String],
    ) -> Result<()> {
        for label in labels {
            self.scoped(INSERT_LABEL)
                .bind(reference)
                .bind(label.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.sql.fail(e, "record an action's label"))?;
        }
        Ok(())
    }

    fn output_from_row(&self, row: &Row<D>) -> Result<OutputRecord> {
        let outpoint = {
            let r = self.sql.reader(row, "output", &"");
            Outpoint::new(r.array("txid")?, r.int("vout")?)
        };
        let r = self.sql.reader(row, "output", &outpoint);
        let derivation = Derivation::from_columns(
            r.opt_text("derivation_prefix")?,
            r.opt_text("derivation_suffix")?,
            r.opt_text("sender")?,
        )
        .ok_or_else(|| r.corrupted("derivation_prefix"))?;
        Ok(OutputRecord {
            outpoint,
            created_by: r.text("created_by")?,
            satoshis: r.int("satoshis")?,
            locking_script: r.bytes("locking_script")?,
            basket: r.opt_text("basket")?,
            tags: r.strings("tags")?,
            custom_instructions: r.opt_text("custom_instructions")?,
            description: r.text("description")?,
            spendable: r.boolean("spendable")?,
            change: r.boolean("is_change")?,
            derivation,
            spent_by: r.opt_text("spent_by")?,
        })
    }

    fn action_from_row(&self, row: &Row<D>) -> Result<ActionRecord> {
        let reference = self.sql.reader(row, "action", &"").text("reference")?;
        let r = self.sql.reader(row, "action", &reference);
        let status = ActionStatus::parse(&r.text("status")?).ok_or_else(|| r.corrupted("status"))?;
        Ok(ActionRecord {
            txid: r.opt_array("txid")?,
            status,
            outgoing: r.boolean("outgoing")?,
            satoshis: r.int("satoshis")?,
            description: r.text("description")?,
            labels: r.strings("labels")?,
            version: r.int("version")?,
            lock_time: r.int("lock_time")?,
            raw_tx: r.opt_bytes("raw_tx")?,
            input_beef: r.opt_bytes("input_beef")?,
            merkle_path: r.opt_bytes("merkle_path")?,
            created_at: r.int("created_at")?,
            reference,
        })
    }

    /// A page of the records `filter` selects (`filter` starts at `FROM`), counted and read in
    /// one snapshot, oldest first.
    async fn page<T>(
        &self,
        (what, records): (&'static str, &'static str),
        columns: &str,
        mut filter: Statement<'_, D>,
        (limit, offset): (Option<u32>, u32),
        parse: impl Fn(&Row<D>) -> Result<T>,
    ) -> Result<Page<T>> {
        let mut read = self.sql.begin(D::BEGIN_READ, &format!("list {records}")).await?;
        let count = filter.prefixed("SELECT COUNT(*) AS n");
        let row = count.fetch_one(&mut read).await.map_err(|e| self.sql.fail(e, &format!("count {records}")))?;
        let total = self.sql.reader(&row, what, &"").int("n")?;
        filter.push(" ORDER BY {SEQ} LIMIT ");
        match limit {
            Some(limit) => filter.push_bind(i64::from(limit)),
            None => filter.push("{NO_LIMIT}"),
        };
        filter.push(" OFFSET ").push_bind(i64::from(offset));
        let rows = filter
            .prefixed(columns)
            .fetch_all(&mut read)
            .await
            .map_err(|e| self.sql.fail(e, &format!("list {records}")))?;
        let items = rows.iter().map(parse).collect::<Result<_>>()?;
        Ok(Page { total, items })
    }
}

impl<D: Dialect> fmt::Debug for SqlOutputStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlOutputStore")
            .field("backend", &D::BACKEND)
            .field("namespace", &self.sql.dialect.namespace())
            .field("scope", &self.scope)
            .finish()
    }
}

/// A target or a time as a column value; a target beyond every amount asks for the largest.
fn sats(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `AND <tag or label filter>` for `values` under `mode`; nothing when `values` is empty.
fn push_membership<'a, D: Dialect>(
    q: &mut Statement<'a, D>,
    (table, join, column): (&str, &str, &str),
    values: &'a [String],
    mode: QueryMode,
) {
    let mut values: Vec<&String> = values.iter().collect();
    values.sort();
    values.dedup();
    if values.is_empty() {
        return;
    }
    q.push(&format!(" AND (SELECT COUNT(*) FROM {table} m WHERE {join} AND m.{column} IN ("));
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push_bind(v.as_str());
    }
    match mode {
        QueryMode::Any => q.push(")) > 0"),
        QueryMode::All => q.push(&format!(")) = {}", values.len())),
    };
}

#[async_trait]
impl<D: Dialect> OutputStore for SqlOutputStore<D> {
    async fn record_action(&self, action: &ActionRecord, outputs: &[OutputRecord]) -> Result<Recorded> {
        let mut tx = self.begin("record an action").await?;
        let known = match &action.txid {
            Some(txid) => self.reference_of(&mut tx, txid).await?,
            None => None,
        };
        let (reference, new_action) = match known {
            Some(reference) => (reference, false),
            None => {
                let inserted = self.insert_action(&mut tx, action).await?;
                if inserted {
                    (action.reference.clone(), true)
                } else {
                    // A concurrent writer recorded the same transaction, or the reference is taken.
                    let concurrent = match &action.txid {
                        Some(txid) => self.reference_of(&mut tx, txid).await?,
                        None => None,
                    };
                    match concurrent {
                        Some(reference) => (reference, false),
                        None => return Err(self.errors().reference_taken(&action.reference)),
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
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit a recorded action"))?;
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
        let row = self
            .scoped(RESERVE_CHANGE)
            .bind(reference)
            .bind(basket)
            .bind(sats(target))
            .bind(exact.map(sats))
            .fetch_optional(&mut tx)
            .await
            .map_err(|e| self.sql.fail(e, "reserve an output"))?;
        let Some(row) = row else { return Ok(None) };
        let seq = self.sql.reader(&row, "output", &reference).int("seq")?;
        let output = self.output_by_seq(&mut tx, seq).await?;
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit a reservation"))?;
        Ok(Some(output))
    }

    async fn reserve_outputs(&self, reference: &str, outpoints: &[Outpoint]) -> Result<Vec<OutputRecord>> {
        let mut tx = self.begin("reserve outputs").await?;
        self.lock_open(&mut tx, reference).await?;
        let mut reserved = Vec::with_capacity(outpoints.len());
        for outpoint in outpoints {
            let row = self
                .scoped(RESERVE_OUTPUT)
                .bind(reference)
                .bind(outpoint.txid.as_slice())
                .bind(i64::from(outpoint.vout))
                .fetch_optional(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "reserve an output"))?;
            let Some(row) = row else {
                // Dropping the transaction rolls back what this call reserved so far.
                return Err(match self.output(outpoint).await? {
                    Some(_) => self.errors().not_spendable(outpoint),
                    None => self.errors().unknown_output(outpoint),
                });
            };
            let seq = self.sql.reader(&row, "output", outpoint).int("seq")?;
            reserved.push(self.output_by_seq(&mut tx, seq).await?);
        }
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit a reservation"))?;
        Ok(reserved)
    }

    async fn commit_action(&self, reference: &str, signed: &SignedAction) -> Result<()> {
        let mut tx = self.begin("commit a signed action").await?;
        self.lock_open(&mut tx, reference).await?;
        let updated = self
            .scoped(COMMIT_ACTION)
            .bind(reference)
            .bind(signed.txid.as_slice())
            .bind(signed.raw_tx.as_slice())
            .bind(signed.input_beef.as_deref())
            .bind(signed.status.as_str())
            .bind(signed.satoshis)
            .execute(&mut tx)
            .await;
        match updated {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(self.errors().txid_taken(&signed.txid))
            }
            Err(e) => return Err(self.sql.fail(e, "commit a signed action")),
        }
        for output in &signed.outputs {
            self.insert_output(&mut tx, reference, output).await?;
        }
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit a signed action"))
    }

    async fn fail_action(&self, reference: &str) -> Result<bool> {
        let mut tx = self.begin("fail an action").await?;
        match self.lock_status(&mut tx, reference).await? {
            None => return Err(self.errors().unknown_action(reference)),
            Some(ActionStatus::Failed) => return Ok(false),
            Some(ActionStatus::Completed) => return Err(self.errors().proven(reference)),
            Some(_) => {}
        }
        let spender = self
            .scoped(SPENT_FURTHER)
            .bind(reference)
            .fetch_optional(&mut tx)
            .await
            .map_err(|e| self.sql.fail(e, "fail an action"))?;
        if let Some(row) = spender {
            let spent_by = self.sql.reader(&row, "output", &reference).text("spent_by")?;
            return Err(self.errors().spent_further(reference, &spent_by));
        }
        for statement in FAIL_ACTION {
            self.scoped(statement)
                .bind(reference)
                .execute(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "fail an action"))?;
        }
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit a failed action"))?;
        Ok(true)
    }

    async fn keep_signable(&self, reference: &str, signable: &[u8]) -> Result<()> {
        let mut tx = self.begin("keep an action's signable transaction").await?;
        self.lock_open(&mut tx, reference).await?;
        self.scoped(KEEP_SIGNABLE)
            .bind(reference)
            .bind(signable)
            .execute(&mut tx)
            .await
            .map_err(|e| self.sql.fail(e, "keep an action's signable transaction"))?;
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit an action's signable transaction"))
    }

    async fn signable(&self, reference: &str) -> Result<Option<Vec<u8>>> {
        let row = self
            .scoped(SIGNABLE)
            .bind(reference)
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read an action's signable transaction"))?;
        match row {
            Some(row) => self.sql.reader(&row, "action", &reference).opt_bytes("signable"),
            None => Ok(None),
        }
    }

    async fn set_status(&self, reference: &str, status: ActionStatus) -> Result<()> {
        if status == ActionStatus::Failed {
            return Err(self.errors().fail_through_set_status());
        }
        let updated = self
            .scoped(SET_STATUS)
            .bind(reference)
            .bind(status.as_str())
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "set an action's status"))?;
        if updated == 0 {
            return Err(self.errors().unknown_action(reference));
        }
        Ok(())
    }

    async fn set_merkle_path(&self, txid: &[u8; 32], merkle_path: &[u8]) -> Result<bool> {
        let updated = self
            .scoped(SET_MERKLE_PATH)
            .bind(txid.as_slice())
            .bind(merkle_path)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "record a merkle path"))?;
        Ok(updated > 0)
    }

    async fn purge_failed(&self, before_ms: u64, limit: u32) -> Result<u64> {
        let updated = self
            .scoped(PURGE_FAILED)
            .bind(i64::try_from(before_ms).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "purge failed actions"))?;
        Ok(updated)
    }

    async fn count_proof_attempt(&self, txid: &[u8; 32]) -> Result<u32> {
        let row = self
            .scoped(COUNT_PROOF_ATTEMPT)
            .bind(txid.as_slice())
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "count a proof attempt"))?;
        row.map_or(Ok(0), |row| self.sql.reader(&row, "action", &"an unproven one").int("proof_attempts"))
    }

    async fn reset_proof_attempts(&self, txid: &[u8; 32]) -> Result<()> {
        self.scoped(RESET_PROOF_ATTEMPTS)
            .bind(txid.as_slice())
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "reset proof attempts"))?;
        Ok(())
    }

    async fn export_books(&self) -> Result<Books> {
        // One read transaction: one snapshot of both tables.
        let mut read = self.sql.begin(D::BEGIN_READ, "export the books").await?;
        let actions =
            self.scoped(ALL_ACTIONS).fetch_all(&mut read).await.map_err(|e| self.sql.fail(e, "export the actions"))?;
        let outputs =
            self.scoped(ALL_OUTPUTS).fetch_all(&mut read).await.map_err(|e| self.sql.fail(e, "export the outputs"))?;
        Ok(Books {
            actions: actions.iter().map(|row| self.action_from_row(row)).collect::<Result<_>>()?,
            outputs: outputs.iter().map(|row| self.output_from_row(row)).collect::<Result<_>>()?,
        })
    }

    async fn import_books(&self, books: &Books) -> Result<Imported> {
        let mut tx = self.begin("import the books").await?;
        let mut imported = Imported::default();
        for action in &books.actions {
            let holder = match &action.txid {
                Some(txid) => self.reference_of(&mut tx, txid).await?,
                None => None,
            };
            if holder.is_some_and(|r| r != action.reference) {
                imported.skipped += 1;
                continue;
            }
            if self.lock_status(&mut tx, &action.reference).await?.is_some() {
                self.action_statement(UPDATE_ACTION, action)
                    .execute(&mut tx)
                    .await
                    .map_err(|e| self.sql.fail(e, "replace an action"))?;
                imported.replaced += 1;
            } else if self.insert_action(&mut tx, action).await? {
                imported.actions += 1;
            }
            self.insert_labels(&mut tx, &action.reference, &action.labels).await?;
        }
        for o in &books.outputs {
            if self.insert_output(&mut tx, &o.created_by, o).await? {
                imported.outputs += 1;
                continue;
            }
            self.output_statement(UPDATE_OUTPUT, &o.created_by, o)?
                .execute(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "replace an output").with_context("outpoint", o.outpoint))?;
            self.insert_tags(&mut tx, o).await?;
            imported.replaced += 1;
        }
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit the imported books"))?;
        Ok(imported)
    }

    async fn clear_merkle_path(&self, txid: &[u8; 32]) -> Result<bool> {
        let updated = self
            .scoped(CLEAR_MERKLE_PATH)
            .bind(txid.as_slice())
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "drop a merkle path"))?;
        Ok(updated > 0)
    }

    async fn action(&self, reference: &str) -> Result<Option<ActionRecord>> {
        let row = self
            .scoped(ACTION)
            .bind(reference)
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read an action"))?;
        row.map(|row| self.action_from_row(&row)).transpose()
    }

    async fn action_by_txid(&self, txid: &[u8; 32]) -> Result<Option<ActionRecord>> {
        let row = self
            .scoped(ACTION_BY_TXID)
            .bind(txid.as_slice())
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read an action"))?;
        row.map(|row| self.action_from_row(&row)).transpose()
    }

    async fn output(&self, outpoint: &Outpoint) -> Result<Option<OutputRecord>> {
        let row = self
            .scoped(OUTPUT)
            .bind(outpoint.txid.as_slice())
            .bind(i64::from(outpoint.vout))
            .fetch_optional(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "read an output"))?;
        row.map(|row| self.output_from_row(&row)).transpose()
    }

    async fn list_outputs(&self, query: &OutputQuery) -> Result<Page<OutputRecord>> {
        let mut q = self.scoped(" FROM mpc_outputs o WHERE [o.namespace = $ns AND ]o.scope = $1");
        if let Some(basket) = &query.basket {
            q.push(" AND o.basket = ").push_bind(basket);
        }
        if query.spendable_only {
            q.push(" AND o.spendable = TRUE");
        }
        if let Some(r) = &query.created_by {
            q.push(" AND o.created_by = ").push_bind(r);
        }
        if let Some(r) = &query.spent_by {
            q.push(" AND o.spent_by = ").push_bind(r);
        }
        let tags = (
            "mpc_output_tags",
            "[m.namespace = o.namespace AND ]m.scope = o.scope AND m.txid = o.txid AND m.vout = o.vout",
            "tag",
        );
        push_membership(&mut q, tags, &query.tags, query.tag_mode);
        let columns = concat!("SELECT ", output_columns!());
        let page = (query.limit, query.offset);
        self.page(("output", "outputs"), columns, q, page, |r| self.output_from_row(r)).await
    }

    async fn list_actions(&self, query: &ActionQuery) -> Result<Page<ActionRecord>> {
        let mut q = self.scoped(" FROM mpc_actions a WHERE [a.namespace = $ns AND ]a.scope = $1");
        if !query.statuses.is_empty() {
            q.push(" AND a.status IN (");
            for (i, s) in query.statuses.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.push_bind(s.as_str());
            }
            q.push(")");
        }
        let labels = (
            "mpc_action_labels",
            "[m.namespace = a.namespace AND ]m.scope = a.scope AND m.reference = a.reference",
            "label",
        );
        push_membership(&mut q, labels, &query.labels, query.label_mode);
        let columns = concat!("SELECT ", action_columns!());
        let page = (query.limit, query.offset);
        self.page(("action", "actions"), columns, q, page, |r| self.action_from_row(r)).await
    }

    async fn relinquish_output(&self, basket: &str, outpoint: &Outpoint) -> Result<bool> {
        let updated = self
            .scoped(RELINQUISH)
            .bind(outpoint.txid.as_slice())
            .bind(i64::from(outpoint.vout))
            .bind(basket)
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "relinquish an output"))?;
        Ok(updated > 0)
    }

    async fn mark_spent_elsewhere(&self, outpoint: &Outpoint) -> Result<bool> {
        let updated = self
            .scoped(SPENT_ELSEWHERE)
            .bind(outpoint.txid.as_slice())
            .bind(i64::from(outpoint.vout))
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "mark an output spent elsewhere"))?;
        Ok(updated > 0)
    }

    async fn unfail_action(&self, reference: &str, inputs: &[Outpoint]) -> Result<bool> {
        let mut tx = self.begin("un-fail an action").await?;
        match self.lock_status(&mut tx, reference).await? {
            None => return Err(self.errors().unknown_action(reference)),
            Some(ActionStatus::Failed) => {}
            Some(_) => return Ok(false),
        }
        for input in inputs {
            let row = self
                .scoped(HOLDER)
                .bind(input.txid.as_slice())
                .bind(i64::from(input.vout))
                .fetch_optional(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "un-fail an action"))?;
            let Some(row) = row else { continue };
            let holder = self.sql.reader(&row, "output", &input).opt_text("spent_by")?;
            if let Some(holder) = holder.filter(|h| h != reference) {
                return Err(self.errors().input_held(reference, input, &holder));
            }
            self.scoped(UNFAIL_INPUT)
                .bind(reference)
                .bind(input.txid.as_slice())
                .bind(i64::from(input.vout))
                .execute(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "un-fail an action"))?;
        }
        for statement in UNFAIL_ACTION {
            self.scoped(statement)
                .bind(reference)
                .execute(&mut tx)
                .await
                .map_err(|e| self.sql.fail(e, "un-fail an action"))?;
        }
        tx.commit().await.map_err(|e| self.sql.fail(e, "commit an un-failed action"))?;
        Ok(true)
    }

    async fn balance(&self, basket: &str) -> Result<u64> {
        let row = self
            .scoped(BALANCE)
            .bind(basket)
            .fetch_one(&self.sql.pool)
            .await
            .map_err(|e| self.sql.fail(e, "sum a basket"))?;
        self.sql.reader(&row, "output", &basket).int("n")
    }
}
