//! Configuration of the RocksDB store.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use wallet_traits::{Options, Result, StoreOptions};

use crate::ROCKSDB_SCHEME;

const DEFAULT_SYNC_WRITES: bool = true;
const DEFAULT_MAX_OPEN_FILES: u32 = 256;
/// RocksDB silently raises a smaller limit to 20; refusing it keeps the setting honest.
const MIN_MAX_OPEN_FILES: u32 = 20;

/// The option keys [`RocksDbConfig::from_url`] accepts.
const OPTIONS: StoreOptions = StoreOptions::new(ROCKSDB_SCHEME, "RocksDB store", &["max_open_files", "sync_writes"]);

/// Configuration of a [`RocksDbShareStore`](crate::RocksDbShareStore).
///
#[doc = include_str!("docs.md")]
// Derived Debug: a path and tuning numbers, nothing secret (credentials would need a redacting
// type of their own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RocksDbConfig {
    /// The database directory; created with its parents when missing.
    pub path: PathBuf,
    /// Whether every write fsyncs RocksDB's write-ahead log before it is reported done.
    #[serde(default = "default_sync_writes")]
    pub sync_writes: bool,
    /// How many table files RocksDB keeps open; at least 20.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: u32,
}

fn default_sync_writes() -> bool {
    DEFAULT_SYNC_WRITES
}

fn default_max_open_files() -> u32 {
    DEFAULT_MAX_OPEN_FILES
}

impl RocksDbConfig {
    /// The defaults for the database directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), sync_writes: DEFAULT_SYNC_WRITES, max_open_files: DEFAULT_MAX_OPEN_FILES }
    }

    /// Sets [`sync_writes`](Self::sync_writes).
    #[must_use]
    pub fn with_sync_writes(mut self, sync: bool) -> Self {
        self.sync_writes = sync;
        self
    }

    /// Sets [`max_open_files`](Self::max_open_files).
    #[must_use]
    pub fn with_max_open_files(mut self, n: u32) -> Self {
        self.max_open_files = n;
        self
    }

    /// Parses `rocksdb:///abs/dir` or `rocksdb://relative/dir` (relative to the working
    /// directory) plus the option keys `sync_writes` and `max_open_files`.
    pub fn from_url(url: &str, options: &Options) -> Result<Self> {
        let path = OPTIONS.path_of_url(url, "rocksdb:///var/lib/mpc/agent")?;

        let mut config = Self::new(path);
        for (key, value) in options {
            match key.as_str() {
                "sync_writes" => config.sync_writes = OPTIONS.bool(key, value)?,
                "max_open_files" => config.max_open_files = OPTIONS.number(key, value)?,
                _ => return Err(OPTIONS.unknown(key)),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(OPTIONS.error(
                "the RocksDB store path is empty; name the database directory, as in rocksdb:///var/lib/mpc/agent",
            ));
        }
        // RocksDB fills the directory with its own files: "/", "." or ".." would scatter them
        // among unrelated ones.
        if self.path.file_name().is_none() {
            return Err(OPTIONS
                .error("the RocksDB store path must name a directory of its own, as in rocksdb:///var/lib/mpc/agent")
                .with_context("path", self.path.display()));
        }
        if self.max_open_files < MIN_MAX_OPEN_FILES || i32::try_from(self.max_open_files).is_err() {
            return Err(OPTIONS
                .error(format!("max_open_files must be between {MIN_MAX_OPEN_FILES} and {}", i32::MAX))
                .with_context("option", "max_open_files")
                .with_context("value", self.max_open_files));
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
        let c = RocksDbConfig::from_url("rocksdb:///var/lib/mpc/agent", &Options::new()).unwrap();
        assert_eq!(c, RocksDbConfig::new("/var/lib/mpc/agent"));
        assert!(c.sync_writes);
        assert_eq!(c.max_open_files, 256);

        let c = RocksDbConfig::from_url("ROCKSDB://data/agent-db/", &Options::new()).unwrap();
        assert_eq!(c.path, PathBuf::from("data/agent-db/"));
    }

    #[test]
    fn applies_options() {
        let o = options(&[("sync_writes", " False "), ("max_open_files", "64")]);
        let c = RocksDbConfig::from_url("rocksdb:///x", &o).unwrap();
        assert_eq!(c, RocksDbConfig::new("/x").with_sync_writes(false).with_max_open_files(64));
        let c = RocksDbConfig::from_url("rocksdb:///x", &options(&[("sync_writes", "TRUE")])).unwrap();
        assert!(c.sync_writes);
    }

    #[test]
    fn rejects_bad_urls() {
        let none = Options::new();
        for url in [
            "rocksdb://",
            "rocksdb:///x?sync_writes=false",
            "rocksdb:///x#frag",
            "rocksdb:///",
            "rocksdb://..",
            "rocksdb://.",
            "sqlite:///x",
            "/var/lib/mpc/agent",
        ] {
            let e = RocksDbConfig::from_url(url, &none).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            assert_eq!(e.context_value("backend"), Some("rocksdb"), "{url}: {e}");
        }
        let e = RocksDbConfig::from_url("rocksdb://", &none).unwrap_err();
        assert!(e.message().contains("with no query"), "{e}");
    }

    #[test]
    fn rejects_bad_options() {
        let e = RocksDbConfig::from_url("rocksdb:///x", &options(&[("sync", "true")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("known options: max_open_files, sync_writes"), "{e}");
        assert_eq!(e.context_value("option"), Some("sync"));

        let e = RocksDbConfig::from_url("rocksdb:///x", &options(&[("sync_writes", "yes")])).unwrap_err();
        assert_eq!(e.context_value("option"), Some("sync_writes"));
        assert!(e.message().contains("true or false"), "{e}");

        for bad in ["many", "-1", "19", "0", "4294967295"] {
            let e = RocksDbConfig::from_url("rocksdb:///x", &options(&[("max_open_files", bad)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
            assert_eq!(e.context_value("option"), Some("max_open_files"), "{bad}: {e}");
        }
        let c = RocksDbConfig::from_url("rocksdb:///x", &options(&[("max_open_files", "20")])).unwrap();
        assert_eq!(c.max_open_files, 20);
    }

    #[test]
    fn validate_refuses_an_empty_path() {
        let e = RocksDbConfig::new("").validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("path is empty"), "{e}");
        assert!(RocksDbConfig::new("/var/lib/mpc/agent").validate().is_ok());
    }

    #[test]
    fn serde_denies_unknown_fields_and_fills_defaults() {
        let c: RocksDbConfig = serde_json::from_str(r#"{"path":"/x"}"#).unwrap();
        assert_eq!(c, RocksDbConfig::new("/x"));
        let c: RocksDbConfig =
            serde_json::from_str(r#"{"path":"/x","sync_writes":false,"max_open_files":32}"#).unwrap();
        assert_eq!(c, RocksDbConfig::new("/x").with_sync_writes(false).with_max_open_files(32));
        assert!(serde_json::from_str::<RocksDbConfig>(r#"{"path":"/x","sync_write":false}"#).is_err());
    }

    #[test]
    fn debug_lists_the_settings() {
        let shown = format!("{:?}", RocksDbConfig::new("/x").with_sync_writes(false));
        assert_eq!(shown, r#"RocksDbConfig { path: "/x", sync_writes: false, max_open_files: 256 }"#);
    }
}
