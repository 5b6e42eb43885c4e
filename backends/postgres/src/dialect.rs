//! How PostgreSQL differs, for the shared SQL core (`wallet-backend-sql`).

use sqlx::{postgres::PgQueryResult, Postgres};
use wallet_traits::{Error, ErrorKind};

use crate::POSTGRES_SCHEME;

/// PostgreSQL: a server shared by processes and parties, every row under a namespace.
#[derive(Debug, Clone)]
pub(crate) struct PgDialect {
    /// `host:port/database`, for messages; never credentials.
    pub(crate) server: String,
    pub(crate) namespace: String,
}

impl wallet_backend_sql::Dialect for PgDialect {
    type Database = Postgres;

    const BACKEND: &'static str = POSTGRES_SCHEME;
    // The statements lock the rows they need: writers serialize per action, not per database.
    const BEGIN_WRITE: &'static str = "BEGIN";
    const BEGIN_READ: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    const LOCK: &'static str = "FOR UPDATE";
    // Locks the row picked, passing over those other takers hold, so concurrent takers in any
    // process each get another row without waiting on one another.
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";
    // TIMESTAMPTZ.
    const NOW: &'static str = "now()";
    // A sequence orders uses across every connection and process.
    const NEXT_USE: &'static str = "nextval('mpc_derivation_uses')";
    const JSON_AGG: &'static str = "json_agg";
    const SEQ: &'static str = "id";
    const NO_LIMIT: &'static str = "ALL";
    // SUM of BIGINT is NUMERIC: exact, it cannot overflow; LEAST brings it back into BIGINT.
    const SUM_CHARGED: &'static str = "LEAST(COALESCE(SUM(charged), 0), 9223372036854775807)::BIGINT";
    const CORRUPTED_HINT: &'static str = "restore the PostgreSQL database from a backup, and check that nothing \
                                          else writes to the store's tables";

    fn namespace(&self) -> Option<&str> {
        Some(&self.namespace)
    }

    fn error(&self, e: sqlx::Error, action: &str) -> Error {
        db_error(e, action, &self.server)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

/// SQLSTATEs after which a retry may succeed: connection exceptions (class 08), the server
/// shutting down or starting up, too many connections.
fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// A failed statement or connection attempt, by what the operator should do about it. `server`
/// is `host:port/database`; neither the URL's credentials nor any record bytes reach the error.
pub(crate) fn db_error(e: sqlx::Error, action: &str, server: &str) -> Error {
    let code = e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()).unwrap_or_default();
    let (kind, message) = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => (
            // Temporary: a retry may succeed once the server is back or the pool has room.
            ErrorKind::Timeout,
            format!(
                "the PostgreSQL store could not {action}: no connection to the server at {server} within \
                 acquire_timeout_ms; check that the server runs and accepts connections (or raise \
                 max_connections if every pooled connection is busy)"
            ),
        ),
        _ if server_unavailable(&code) => (
            ErrorKind::Timeout,
            format!(
                "the PostgreSQL store could not {action}: the server at {server} is unavailable (starting, \
                 shutting down or out of connections); check that the server runs and accepts connections"
            ),
        ),
        // Not Unauthorized: that kind means a cosigner refused the agent's credentials, and a
        // transport would report it as such; a wrong database password is the operator's setting.
        _ if code.starts_with("28") => (
            ErrorKind::Config,
            format!(
                "the PostgreSQL server at {server} refused the credentials; check the user and password in \
                 MPC_STORAGE_URL, or set the password in MPC_STORAGE__PASSWORD"
            ),
        ),
        _ if code == "3D000" => (
            ErrorKind::Config,
            format!(
                "the database does not exist on the PostgreSQL server at {server}; create it or fix the \
                 database name in MPC_STORAGE_URL"
            ),
        ),
        sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => (
            ErrorKind::Config,
            format!(
                "the PostgreSQL store could not {action}: the connection settings do not work with the server at \
                 {server}; check sslmode and sslrootcert in MPC_STORAGE_URL"
            ),
        ),
        sqlx::Error::PoolClosed => {
            (ErrorKind::Storage, format!("the PostgreSQL store could not {action}: the store was closed"))
        }
        _ => (
            ErrorKind::Storage,
            format!("the PostgreSQL store could not {action}; check the server's log and the database role's rights"),
        ),
    };
    let error = Error::new(kind, message).with_context("backend", POSTGRES_SCHEME).with_context("server", server);
    let error = if code.is_empty() { error } else { error.with_context("sqlstate", code) };
    // The driver's text: an OS error, or the server's message, which names the user at most.
    error.with_source(e)
}
