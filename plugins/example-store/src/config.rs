//! Configuration of the JSON-file store.

use std::{fmt, path::PathBuf};

use serde::{Deserialize, Serialize};
use wallet_traits::{Options, Result, StoreOptions};

use crate::JSONFILE_SCHEME;

/// The option keys [`JsonFileConfig::from_url`] accepts.
pub(crate) const OPTIONS: StoreOptions = StoreOptions::new(JSONFILE_SCHEME, "JSON-file store", &["create"]);

/// Configuration of a [`JsonFileStore`](crate::JsonFileStore).
///
#[doc = include_str!("docs.md")]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JsonFileConfig {
    /// The store file; see [`create`](Self::create) for what happens when it is missing.
    pub path: PathBuf,
    /// Whether opening creates a missing file (and its parent directory) as an empty store.
    #[serde(default = "default_create")]
    pub create: bool,
}

fn default_create() -> bool {
    true
}

impl JsonFileConfig {
    /// The defaults for the store file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), create: default_create() }
    }

    /// Sets [`create`](Self::create).
    #[must_use]
    pub fn with_create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Parses `jsonfile:///abs/path/store.json` or `jsonfile://relative/store.json` (relative to
    /// the working directory) plus the option key `create` (`true` or `false`).
    pub fn from_url(url: &str, options: &Options) -> Result<Self> {
        let path = OPTIONS.path_of_url(url, "jsonfile:///var/lib/mpc/agent.json")?;

        let mut config = Self::new(path);
        for (key, value) in options {
            match key.as_str() {
                "create" => config.create = OPTIONS.bool(key, value)?,
                _ => return Err(OPTIONS.unknown(key)),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        let text = self.path.to_string_lossy();
        if text.is_empty() {
            return Err(
                OPTIONS.error("the JSON-file store path is empty; name the file, as in jsonfile:///x/store.json")
            );
        }
        // "dir/" would quietly become the file "dir"; ".." and "/" name no file at all.
        let names_a_file = !text.ends_with(['/', '\\']) && self.path.file_name().is_some();
        if !names_a_file {
            return Err(OPTIONS
                .error("the JSON-file store path must name a file, not a directory, as in jsonfile:///x/store.json")
                .with_context("path", self.path.display()));
        }
        Ok(())
    }
}

impl fmt::Debug for JsonFileConfig {
    // Hand-written so a field added later (say, an encryption key) is not printed by default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileConfig").field("path", &self.path).field("create", &self.create).finish()
    }
}

#[cfg(test)]
mod tests {
    use wallet_traits::{options, ErrorKind};

    use super::*;

    #[test]
    fn parses_absolute_and_relative_urls() {
        let c = JsonFileConfig::from_url("jsonfile:///var/lib/mpc/agent.json", &Options::new()).unwrap();
        assert_eq!(c, JsonFileConfig::new("/var/lib/mpc/agent.json"));
        assert!(c.create);

        let c = JsonFileConfig::from_url("JSONFILE://data/agent.json", &Options::new()).unwrap();
        assert_eq!(c.path, PathBuf::from("data/agent.json"));
    }

    #[test]
    fn applies_options() {
        let c = JsonFileConfig::from_url("jsonfile:///x.json", &options(&[("create", " False ")])).unwrap();
        assert_eq!(c, JsonFileConfig::new("/x.json").with_create(false));
    }

    #[test]
    fn rejects_bad_urls_and_options() {
        let none = Options::new();
        for url in [
            "jsonfile://",
            "jsonfile:///x.json?create=false",
            "jsonfile:///x.json#frag",
            "jsonfile:///var/lib/",
            "jsonfile://..",
            "jsonfile:///",
            "sqlite:///x.json",
            "x.json",
        ] {
            let e = JsonFileConfig::from_url(url, &none).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            assert_eq!(e.context_value("backend"), Some("jsonfile"), "{url}: {e}");
        }
        let e = JsonFileConfig::from_url("jsonfile:///x.json", &options(&[("crate", "true")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("known options: create"), "{e}");
        let e = JsonFileConfig::from_url("jsonfile:///x.json", &options(&[("create", "yes")])).unwrap_err();
        assert_eq!(e.context_value("option"), Some("create"));
        assert!(e.message().contains("true or false"), "{e}");
    }

    #[test]
    fn serde_denies_unknown_fields_and_fills_defaults() {
        let c: JsonFileConfig = serde_json::from_str(r#"{"path":"/x.json"}"#).unwrap();
        assert_eq!(c, JsonFileConfig::new("/x.json"));
        assert!(serde_json::from_str::<JsonFileConfig>(r#"{"path":"/x.json","craete":false}"#).is_err());
    }
}
