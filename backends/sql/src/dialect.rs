//! What differs between databases, each named once: the [`Dialect`] a backend implements, and the
//! rendering of the core's statement templates in it.

use std::fmt::Write;

use wallet_traits::Error;

use crate::db::Db;

/// How one database spells what the store's statements need, and how its failures read.
///
/// The constants are SQL (most of them fragments the statement templates name as `{NAME}`:
/// `{NOW}`, `{LOCK}`, ...); the methods describe one opened database. Everything else (the
/// statements, row mapping, transactions, contract errors) is the core's, the same for every
/// database.
pub trait Dialect: Send + Sync + 'static {
    /// The sqlx database (driver) the backend opens its pool with.
    type Database: Db;

    /// The backend's URL scheme, the `backend` context of every error.
    const BACKEND: &'static str;

    /// Starts a transaction that writes several rows; whatever the database needs so that
    /// concurrent writers queue rather than fail midway.
    const BEGIN_WRITE: &'static str;

    /// Starts a transaction in which a list's count and its page see one snapshot.
    const BEGIN_READ: &'static str;

    /// `{LOCK}`: ends a `SELECT` in a write transaction, locking the row it reads until the
    /// transaction ends; empty where the write transaction already holds the whole database.
    const LOCK: &'static str;

    /// `{SKIP_LOCKED}`: ends the `SELECT` that picks a row to take (a prime pair, an output), so
    /// concurrent takers each get another row without waiting; empty where one write statement
    /// holds the whole database.
    const SKIP_LOCKED: &'static str;

    /// `{NOW}`: the current time, as the schema's `created_at`/`updated_at` columns hold it.
    const NOW: &'static str;

    /// `{NEXT_USE}`: the next derivation-cache recency number (`used_seq`) of the key whose
    /// wallet id and index are the statement's `$1` and `$2`.
    const NEXT_USE: &'static str;

    /// `{JSON_AGG}`: the aggregate function that collects text values into a JSON array (with an
    /// `ORDER BY` inside its parentheses).
    const JSON_AGG: &'static str;

    /// `{SEQ}`: the column numbering `mpc_actions` and `mpc_outputs` rows in insert order.
    const SEQ: &'static str;

    /// `{NO_LIMIT}`: a `LIMIT` that limits nothing, for an `OFFSET` without one.
    const NO_LIMIT: &'static str;

    /// `{SUM_CHARGED}`: the sum of the `charged` column as a BIGINT, 0 over no rows, saturating
    /// at `i64::MAX` rather than failing (a window a hijacked agent filled with made-up amounts
    /// must refuse further payments, not break every decision).
    const SUM_CHARGED: &'static str;

    /// What a row that does not parse asks of the operator; follows "a stored share row does not
    /// parse; ".
    const CORRUPTED_HINT: &'static str;

    /// The namespace every row carries, in a `namespace` column of every table, so several
    /// parties can share one database; `None` where the database is one party's alone and its
    /// tables have no such column.
    fn namespace(&self) -> Option<&str>;

    /// A failed statement as the framework's error, by what the operator can do about it.
    /// `action` completes "could not ...": "read a share".
    fn error(&self, e: sqlx::Error, action: &str) -> Error;

    /// How many rows a statement changed (sqlx has no driver-independent accessor).
    fn rows_affected(result: &<Self::Database as sqlx::Database>::QueryResult) -> u64;
}

/// The constant a `{NAME}` in a template stands for.
fn fragment<D: Dialect>(name: &str) -> Option<&'static str> {
    Some(match name {
        "LOCK" => D::LOCK,
        "SKIP_LOCKED" => D::SKIP_LOCKED,
        "NOW" => D::NOW,
        "NEXT_USE" => D::NEXT_USE,
        "JSON_AGG" => D::JSON_AGG,
        "SEQ" => D::SEQ,
        "NO_LIMIT" => D::NO_LIMIT,
        "SUM_CHARGED" => D::SUM_CHARGED,
        _ => return None,
    })
}

/// A statement template rendered for one database.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) sql: String,
    /// Whether the statement uses `$ns`, which is then bound first, as `$1`.
    pub(crate) binds_namespace: bool,
}

/// Renders a statement template in dialect `D`, for rows that carry a namespace or not:
///
/// - `{NAME}` becomes the dialect's constant `NAME` (which may itself use the notation below);
/// - text in `[...]` concerns the namespace: kept where the rows carry one, dropped elsewhere;
/// - `$ns` is the namespace parameter and `$1`, `$2`, ... the statement's own, numbered after it
///   when the statement binds the namespace.
pub(crate) fn render<D: Dialect>(template: &str, namespaced: bool) -> Rendered {
    let expanded = expand(template, fragment::<D>);
    let binds_namespace = namespaced && expanded.contains("$ns");
    Rendered { sql: place(&expanded, namespaced, usize::from(binds_namespace)), binds_namespace }
}

/// Replaces every `{NAME}` by `fragment(NAME)`.
fn expand(template: &str, fragment: impl Fn(&str) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else { break };
        let name = &rest[open + 1..open + close];
        match fragment(name) {
            Some(text) => out.push_str(text),
            None => {
                // A typo in a template; the database refuses the statement in release builds.
                if cfg!(debug_assertions) {
                    panic!("no dialect fragment {{{name}}}");
                }
                out.push_str(&rest[open..=open + close]);
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Keeps or drops the `[...]` groups and numbers the parameters, `$ns` first when bound.
fn place(sql: &str, namespaced: bool, shift: usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut dropping = false;
    while let Some(at) = rest.find(['[', ']', '$']) {
        if !dropping {
            out.push_str(&rest[..at]);
        }
        let marker = rest.as_bytes()[at];
        rest = &rest[at + 1..];
        match marker {
            b'[' => dropping = !namespaced,
            b']' => dropping = false,
            _ => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if let Some(after) = rest.strip_prefix("ns") {
                    if !dropping {
                        out.push_str("$1");
                    }
                    rest = after;
                } else if digits > 0 {
                    if !dropping {
                        let n: usize = rest[..digits].parse().unwrap_or(0);
                        let _ = write!(out, "${}", n + shift);
                    }
                    rest = &rest[digits..];
                } else if !dropping {
                    out.push('$');
                }
            }
        }
    }
    if !dropping {
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragments(name: &str) -> Option<&'static str> {
        match name {
            "NOW" => Some("now()"),
            "NEXT" => Some("(SELECT MAX(n) FROM t WHERE [namespace = $ns AND ]k = $1)"),
            _ => None,
        }
    }

    fn both(template: &str) -> (String, String) {
        let expanded = expand(template, fragments);
        (place(&expanded, false, 0), place(&expanded, true, 1))
    }

    #[test]
    fn namespace_groups_and_parameters() {
        let (plain, namespaced) = both("SELECT v FROM t WHERE [namespace = $ns AND ]k = $1 AND v = $2");
        assert_eq!(plain, "SELECT v FROM t WHERE k = $1 AND v = $2");
        assert_eq!(namespaced, "SELECT v FROM t WHERE namespace = $1 AND k = $2 AND v = $3");

        let (plain, namespaced) = both(
            "INSERT INTO t ([namespace, ]k, at) VALUES ([$ns, ]$1, {NOW}) ON CONFLICT ([namespace, ]k) DO NOTHING",
        );
        assert_eq!(plain, "INSERT INTO t (k, at) VALUES ($1, now()) ON CONFLICT (k) DO NOTHING");
        assert_eq!(
            namespaced,
            "INSERT INTO t (namespace, k, at) VALUES ($1, $2, now()) ON CONFLICT (namespace, k) DO NOTHING"
        );
    }

    #[test]
    fn fragments_may_use_the_notation() {
        let (plain, namespaced) = both("UPDATE t SET n = {NEXT} WHERE [namespace = $ns AND ]k = $1");
        assert_eq!(plain, "UPDATE t SET n = (SELECT MAX(n) FROM t WHERE k = $1) WHERE k = $1");
        assert_eq!(
            namespaced,
            "UPDATE t SET n = (SELECT MAX(n) FROM t WHERE namespace = $1 AND k = $2) WHERE namespace = $1 AND k = $2"
        );
    }

    #[test]
    fn joins_on_the_namespace_bind_nothing() {
        // Kept where namespaced, but no `$ns`: the statement's own parameters keep their numbers.
        let expanded = expand(
            "SELECT (SELECT 1 FROM m WHERE [m.namespace = o.namespace AND ]m.k = o.k) FROM o WHERE o.id = $1",
            fragments,
        );
        assert!(!expanded.contains("$ns"));
        assert_eq!(
            place(&expanded, true, 0),
            "SELECT (SELECT 1 FROM m WHERE m.namespace = o.namespace AND m.k = o.k) FROM o WHERE o.id = $1"
        );
        assert_eq!(place(&expanded, false, 0), "SELECT (SELECT 1 FROM m WHERE m.k = o.k) FROM o WHERE o.id = $1");
    }
}
