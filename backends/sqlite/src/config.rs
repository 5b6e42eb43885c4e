//! Configuration of the SQLite store.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wallet_traits::{Options, Result, StoreOptions};

use crate::SQLITE_SCHEME;

const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_MAX_CONNECTIONS: u32 = 4;

/// The option keys [`SqliteConfig::from_url`] accepts.
const OPTIONS: StoreOptions = StoreOptions::new(SQLITE_SCHEME, "SQLite store", &["busy_timeout_ms", "max_connections"]);

/// Configuration of a [`SqliteShareStore`](crate::SqliteShareStore).
///
#[doc = include_str!("docs.md")]
// Derived Debug: a path and tuning numbers, nothing secret (credentials would need a redacting
// type of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file; created with its parent directory when missing.
    pub path: PathBuf,
    /// How long a statement waits for another connection's write lock before failing.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// Size of the connection pool.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_busy_timeout_ms() -> u64 {
    DEFAULT_BUSY_TIMEOUT_MS
}

fn default_max_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

impl SqliteConfig {
    /// The defaults for the database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS, max_connections: DEFAULT_MAX_CONNECTIONS }
    }

    /// Sets [`busy_timeout_ms`](Self::busy_timeout_ms).
    #[must_use]
    pub fn with_busy_timeout_ms(mut self, ms: u64) -> Self {
        self.busy_timeout_ms = ms;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Parses `sqlite:///abs/path.db` or `sqlite://relative/path.db` (relative to the working
    /// directory) plus the option keys `busy_timeout_ms` and `max_connections`.
    pub fn from_url(url: &str, options: &Options) -> Result<Self> {
        let path = OPTIONS.path_of_url(url, "sqlite:///var/lib/mpc/agent.db")?;
        if path == ":memory:" || path.starts_with("file:") {
            // Each pooled connection would get its own empty database, and every share would
            // vanish on exit: never what a wallet wants.
            return Err(OPTIONS
                .error(
                    "the SQLite store needs a database file path; in-memory and file: URI databases are not supported",
                )
                .with_context("url", url));
        }

        let mut config = Self::new(path);
        for (key, value) in options {
            match key.as_str() {
                "busy_timeout_ms" => config.busy_timeout_ms = OPTIONS.number(key, value)?,
                "max_connections" => config.max_connections = OPTIONS.number(key, value)?,
                _ => return Err(OPTIONS.unknown(key)),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(OPTIONS.error("the SQLite store path is empty; set MPC_STORAGE_PATH"));
        }
        if self.max_connections == 0 {
            return Err(OPTIONS.error("max_connections must be at least 1").with_context("option", "max_connections"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use wallet_traits::{options, ErrorKind};

    use super::*;

    #[test]
    fn parses_absolute_and_relative_urls() {
        let c = SqliteConfig::from_url("sqlite:///var/lib/mpc/agent.db", &Options::new()).unwrap();
        assert_eq!(c, SqliteConfig::new("/var/lib/mpc/agent.db"));
        assert_eq!(c.busy_timeout_ms, 5_000);

        let c = SqliteConfig::from_url("SQLITE://data/agent.db", &Options::new()).unwrap();
        assert_eq!(c.path, PathBuf::from("data/agent.db"));
    }

    #[test]
    fn applies_options() {
        let o = options(&[("busy_timeout_ms", "250"), ("max_connections", "2")]);
        let c = SqliteConfig::from_url("sqlite:///x.db", &o).unwrap();
        assert_eq!(c, SqliteConfig::new("/x.db").with_busy_timeout_ms(250).with_max_connections(2));
    }

    #[test]
    fn rejects_bad_urls_and_options() {
        let none = Options::new();
        for url in ["sqlite://", "sqlite:///x.db?mode=ro", "sqlite://:memory:", "postgres:///x.db", "x.db"] {
            let e = SqliteConfig::from_url(url, &none).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
        }
        let e = SqliteConfig::from_url("sqlite:///x.db", &options(&[("busy_timeout", "1")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("busy_timeout_ms, max_connections"), "{e}");
        let e = SqliteConfig::from_url("sqlite:///x.db", &options(&[("max_connections", "many")])).unwrap_err();
        assert_eq!(e.context_value("option"), Some("max_connections"));
        let e = SqliteConfig::from_url("sqlite:///x.db", &options(&[("max_connections", "0")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn serde_denies_unknown_fields_and_fills_defaults() {
        let c: SqliteConfig = serde_json::from_str(r#"{"path":"/x.db"}"#).unwrap();
        assert_eq!(c, SqliteConfig::new("/x.db"));
        assert!(serde_json::from_str::<SqliteConfig>(r#"{"path":"/x.db","pth":"/y.db"}"#).is_err());
    }
}
