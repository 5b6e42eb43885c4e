//! The statements of a cosigner's policy state ([`PolicyStore`]), kept beside its shares in
//! `mpc_policy_ledger`, `mpc_policy_approvals`, `mpc_policy_audit`, `mpc_policy_head` and
//! `mpc_policy_seen`.

use async_trait::async_trait;
use sqlx::Transaction;
use wallet_traits::{
    Approval, AuditHead, AuditRecord, Error, ErrorKind, Ledger, LedgerEntry, PolicyStore, Result, Ruling,
};

use crate::{
    db::{RowReader, Statement},
    Dialect, SqlShareStore,
};

/// The head row's name: the audit log's. The row exists so a decision has something to lock.
const HEAD: &str = "audit";

const ENSURE_HEAD: &str = "INSERT INTO mpc_policy_head ([namespace, ]name, seq, hash) VALUES ([$ns, ]$1, 0, $2) \
     ON CONFLICT DO NOTHING";

const LOCK_HEAD: &str = "SELECT seq, hash FROM mpc_policy_head WHERE [namespace = $ns AND ]name = $1 {LOCK}";

const SET_HEAD: &str = "UPDATE mpc_policy_head SET seq = $2, hash = $3 WHERE [namespace = $ns AND ]name = $1";

const WINDOW: &str = "SELECT {SUM_CHARGED} AS sats, COUNT(*) AS n FROM mpc_policy_ledger \
     WHERE [namespace = $ns AND ]wallet = $1 AND at_ms >= $2";

const ENTRY: &str = "SELECT charged, at_ms, state FROM mpc_policy_ledger \
     WHERE [namespace = $ns AND ]wallet = $1 AND tx = $2";

// The entry as the ruling has it: its time is the policy's to keep or renew.
const PUT_ENTRY: &str = "INSERT INTO mpc_policy_ledger ([namespace, ]wallet, tx, charged, at_ms, state) \
     VALUES ([$ns, ]$1, $2, $3, $4, $5) ON CONFLICT ([namespace, ]wallet, tx) \
     DO UPDATE SET charged = excluded.charged, at_ms = excluded.at_ms, state = excluded.state";

const OPEN_APPROVALS: &str = "SELECT id, wallet, expires_ms, body FROM mpc_policy_approvals \
     WHERE [namespace = $ns AND ]wallet = $1 AND spent = FALSE AND expires_ms > $2 ORDER BY id";

const SPEND_APPROVAL: &str = "UPDATE mpc_policy_approvals SET spent = TRUE \
     WHERE [namespace = $ns AND ]id = $1 AND wallet = $2 AND spent = FALSE AND expires_ms > $3";

const ADD_APPROVAL: &str = "INSERT INTO mpc_policy_approvals ([namespace, ]id, wallet, expires_ms, body, spent) \
     VALUES ([$ns, ]$1, $2, $3, $4, FALSE) ON CONFLICT DO NOTHING";

const APPEND_AUDIT: &str = "INSERT INTO mpc_policy_audit ([namespace, ]seq, wallet, at_ms, body, hash) \
     VALUES ([$ns, ]$1, $2, $3, $4, $5)";

const AUDIT: &str = "SELECT seq, wallet, at_ms, body, hash FROM mpc_policy_audit \
     WHERE [namespace = $ns AND ]seq > $1 ORDER BY seq LIMIT $2";

const AUDIT_OF: &str = "SELECT seq, wallet, at_ms, body, hash FROM mpc_policy_audit \
     WHERE [namespace = $ns AND ]seq > $1 AND wallet = $3 ORDER BY seq LIMIT $2";

const FORGET_SEEN: &str = "DELETE FROM mpc_policy_seen WHERE [namespace = $ns AND ]expires_ms <= $1";

const MARK_SEEN: &str = "INSERT INTO mpc_policy_seen ([namespace, ]kind, id, expires_ms) VALUES ([$ns, ]$1, $2, $3) \
     ON CONFLICT DO NOTHING";

/// A time or amount as the schema's BIGINT: none the policy writes passes `i64::MAX`.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<D: Dialect> SqlShareStore<D> {
    fn policy_error(&self, e: sqlx::Error, action: &str) -> Error {
        self.sql.fail(e, action)
    }

    /// The ledger `decide` reads, in `tx` (which holds the head's lock).
    async fn ledger(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        wallet: &str,
        id: &[u8; 32],
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Ledger> {
        let read = "read the policy ledger";
        self.sql
            .statement(ENSURE_HEAD)
            .bind(HEAD)
            .bind([0u8; 32].as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, read))?;
        let row = self
            .sql
            .statement(LOCK_HEAD)
            .bind(HEAD)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, read))?;
        let head = {
            let r = self.sql.reader(&row, "policy head", &HEAD);
            AuditHead { seq: r.int("seq")?, hash: r.array("hash")? }
        };
        let row = self
            .sql
            .statement(WINDOW)
            .bind(wallet)
            .bind(int(since_ms))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, read))?;
        let (window_sats, window_txs) = {
            let r = self.sql.reader(&row, "policy window", &wallet);
            (r.int("sats")?, r.int("n")?)
        };
        let entry = if *id == [0; 32] {
            None
        } else {
            let row = self
                .sql
                .statement(ENTRY)
                .bind(wallet)
                .bind(id.as_slice())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.policy_error(e, read))?;
            match row {
                None => None,
                Some(row) => {
                    let r = self.sql.reader(&row, "policy ledger", &wallet);
                    Some(LedgerEntry {
                        tx: *id,
                        charged: r.int("charged")?,
                        at_ms: r.int("at_ms")?,
                        state: r.bytes("state")?,
                    })
                }
            }
        };
        let rows = self
            .sql
            .statement(OPEN_APPROVALS)
            .bind(wallet)
            .bind(int(now_ms))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, read))?;
        let approvals = rows
            .iter()
            .map(|row| approval_from_row(&self.sql.reader(row, "approval", &wallet)))
            .collect::<Result<_>>()?;
        Ok(Ledger { window_sats, window_txs, entry, approvals, head })
    }

    /// Writes `ruling` in `tx`: the charge, the spent approval, the audit record and the head.
    async fn write_ruling(
        &self,
        tx: &mut Transaction<'static, D::Database>,
        wallet: &str,
        id: &[u8; 32],
        now_ms: u64,
        head: AuditHead,
        ruling: &Ruling,
    ) -> Result<()> {
        let write = "record a policy decision";
        if let Some(entry) = &ruling.charge {
            if entry.tx != *id || *id == [0; 32] {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "a policy ruling charged another transaction than it was asked about",
                ));
            }
            self.sql
                .statement(PUT_ENTRY)
                .bind(wallet)
                .bind(id.as_slice())
                .bind(int(entry.charged))
                .bind(int(entry.at_ms))
                .bind(entry.state.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.policy_error(e, write))?;
        }
        if let Some(approval) = &ruling.spend_approval {
            let spent = self
                .sql
                .statement(SPEND_APPROVAL)
                .bind(approval.as_slice())
                .bind(wallet)
                .bind(int(now_ms))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.policy_error(e, write))?;
            if spent != 1 {
                return Err(Error::new(ErrorKind::Internal, "a policy ruling spent an approval that is not open"));
            }
        }
        let seq = head.seq + 1;
        self.sql
            .statement(APPEND_AUDIT)
            .bind(int(seq))
            .bind(wallet)
            .bind(int(now_ms))
            .bind(ruling.audit.as_slice())
            .bind(ruling.audit_hash.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, write))?;
        self.sql
            .statement(SET_HEAD)
            .bind(HEAD)
            .bind(int(seq))
            .bind(ruling.audit_hash.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.policy_error(e, write))?;
        Ok(())
    }

    fn audit_statement<'a>(&'a self, wallet: Option<&'a str>, after_seq: u64, limit: u32) -> Statement<'a, D> {
        let s = self.sql.statement(if wallet.is_some() { AUDIT_OF } else { AUDIT });
        let s = s.bind(int(after_seq)).bind(i64::from(limit));
        match wallet {
            Some(w) => s.bind(w),
            None => s,
        }
    }
}

fn approval_from_row<D: Dialect>(r: &RowReader<'_, D>) -> Result<Approval> {
    Ok(Approval {
        id: r.array("id")?,
        wallet: r.text("wallet")?,
        expires_ms: r.int("expires_ms")?,
        body: r.bytes("body")?,
    })
}

#[async_trait]
impl<D: Dialect> PolicyStore for SqlShareStore<D> {
    async fn settle(
        &self,
        wallet: &str,
        tx: &[u8; 32],
        since_ms: u64,
        now_ms: u64,
        decide: &(dyn for<'l> Fn(&'l Ledger) -> Ruling + Send + Sync),
    ) -> Result<Ruling> {
        let mut t = self.sql.begin(D::BEGIN_WRITE, "record a policy decision").await?;
        let ledger = self.ledger(&mut t, wallet, tx, since_ms, now_ms).await?;
        let ruling = decide(&ledger);
        self.write_ruling(&mut t, wallet, tx, now_ms, ledger.head, &ruling).await?;
        t.commit().await.map_err(|e| self.policy_error(e, "commit a policy decision"))?;
        Ok(ruling)
    }

    async fn window(&self, wallet: &str, since_ms: u64) -> Result<(u64, u64)> {
        let row = self
            .sql
            .statement(WINDOW)
            .bind(wallet)
            .bind(int(since_ms))
            .fetch_one(&self.sql.pool)
            .await
            .map_err(|e| self.policy_error(e, "read the policy window"))?;
        let r = self.sql.reader(&row, "policy window", &wallet);
        Ok((r.int("sats")?, r.int("n")?))
    }

    async fn add_approval(&self, approval: &Approval) -> Result<bool> {
        let added = self
            .sql
            .statement(ADD_APPROVAL)
            .bind(approval.id.as_slice())
            .bind(approval.wallet.as_str())
            .bind(int(approval.expires_ms))
            .bind(approval.body.as_slice())
            .execute(&self.sql.pool)
            .await
            .map_err(|e| self.policy_error(e, "record an approval"))?;
        Ok(added == 1)
    }

    async fn audit(&self, wallet: Option<&str>, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = self
            .audit_statement(wallet, after_seq, limit)
            .fetch_all(&self.sql.pool)
            .await
            .map_err(|e| self.policy_error(e, "read the audit log"))?;
        rows.iter()
            .map(|row| {
                let r = self.sql.reader(row, "audit", &"log");
                Ok(AuditRecord {
                    seq: r.int("seq")?,
                    wallet: r.text("wallet")?,
                    at_ms: r.int("at_ms")?,
                    body: r.bytes("body")?,
                    hash: r.array("hash")?,
                })
            })
            .collect()
    }

    async fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64, now_ms: u64) -> Result<bool> {
        let action = "record a seen id";
        let mut t = self.sql.begin(D::BEGIN_WRITE, action).await?;
        self.sql
            .statement(FORGET_SEEN)
            .bind(int(now_ms))
            .execute(&mut t)
            .await
            .map_err(|e| self.policy_error(e, action))?;
        let added = self
            .sql
            .statement(MARK_SEEN)
            .bind(kind)
            .bind(id)
            .bind(int(expires_ms))
            .execute(&mut t)
            .await
            .map_err(|e| self.policy_error(e, action))?;
        t.commit().await.map_err(|e| self.policy_error(e, action))?;
        Ok(added == 1)
    }
}
