//! Layered configuration: defaults < file (`--config` or `./mpc-wallet.toml`) < `MPC_*`
//! environment variables, resolved with the `config` crate.
//!
//! Every key has one name in a file (`share_secret`) and one variable (`MPC_SHARE_SECRET`).
//! Store options live in the file's `[storage]` table and in `MPC_STORAGE__<KEY>` variables.
//! Values stay text here, with their origin; [`WalletConfig`](crate::WalletConfig) and
//! [`CosignerConfig`](crate::CosignerConfig) parse each once, so an invalid value fails naming its
//! variable whichever layer it came from.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use config::{Config, Environment, File, FileFormat, Source, Value, ValueKind};
use wallet_traits::{redact_url, Error, ErrorKind, Options, Plugins, Result};

/// The file read when no `--config` is given, if it exists in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "mpc-wallet.toml";

/// How a key's value is shown by [`Settings::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As is.
    Plain,
    /// Never shown: `<redacted>`.
    Secret,
    /// A URL whose `user:password@` part is hidden.
    Url,
    /// A comma-separated list of URLs.
    Urls,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct SettingKey {
    /// The name in a file, lower case (`share_secret`); the variable is `MPC_` + upper case.
    pub name: &'static str,
    /// Value used when neither the file nor the environment sets one.
    pub default: Option<&'static str>,
    /// How it is printed.
    pub shown: Shown,
}

impl SettingKey {
    /// A plain key without a default.
    pub const fn plain(name: &'static str) -> Self {
        Self { name, default: None, shown: Shown::Plain }
    }

    /// A key that is never printed.
    pub const fn secret(name: &'static str) -> Self {
        Self { name, default: None, shown: Shown::Secret }
    }

    /// Sets how the value is printed.
    pub const fn shown(mut self, shown: Shown) -> Self {
        self.shown = shown;
        self
    }

    /// Sets the default.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// The environment variable: `MPC_SHARE_SECRET` for `share_secret`.
    pub fn env(&self) -> String {
        env_name(self.name)
    }
}

fn env_name(name: &str) -> String {
    format!("MPC_{}", name.to_ascii_uppercase())
}

/// The variable of store option `key`: `MPC_STORAGE__BUSY_TIMEOUT_MS`.
pub fn storage_env_name(key: &str) -> String {
    format!("MPC_STORAGE__{}", key.to_ascii_uppercase())
}

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// The environment variable.
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Environment => f.write_str("environment"),
        }
    }
}

/// One resolved value.
#[derive(Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The value as text (a file's list is joined with commas).
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl fmt::Debug for Resolved {
    // Values may be secrets; Debug shows only where they came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// The configuration of one command after layering.
#[derive(Debug, Clone)]
pub struct Settings {
    keys: &'static [SettingKey],
    file: Option<PathBuf>,
    values: BTreeMap<&'static str, Resolved>,
    storage: BTreeMap<String, Resolved>,
    ignored_env: Vec<String>,
}

/// Variables that configure tooling, not a command; never reported as ignored.
const NOT_SETTINGS: &[&str] = &["MPC_LOG", "MPC_FAULT_", "MPC_TEST"];

impl Settings {
    /// Resolves `keys` from the defaults, then `file` (or `./mpc-wallet.toml` when it exists),
    /// then the `MPC_*` variables of the process.
    pub fn load(keys: &'static [SettingKey], file: Option<&Path>) -> Result<Self> {
        Self::load_from(keys, file, std::env::vars())
    }

    /// Like [`Settings::load`] with any variables (tests pass a list).
    pub fn load_from(
        keys: &'static [SettingKey],
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let file = match file {
            Some(p) if !p.is_file() => {
                return Err(Error::new(ErrorKind::Config, "the configuration file does not exist or is not a file")
                    .with_context("file", p.display()))
            }
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        Self::layered(keys, file, vars)
    }

    /// The defaults of `keys` alone: no file, no variables. A configuration's `Default` is its
    /// parse of these, so each default is written once, in its key.
    pub fn defaults(keys: &'static [SettingKey]) -> Result<Self> {
        Self::layered(keys, None, std::iter::empty())
    }

    fn layered(
        keys: &'static [SettingKey],
        file: Option<PathBuf>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let (env, ignored_env) = split_env(keys, vars);

        let mut builder = Config::builder();
        for key in keys {
            if let Some(d) = key.default {
                builder = builder.set_default(key.name, d).map_err(|e| config_error(e, None))?;
            }
        }
        let mut in_file = Vec::new();
        if let Some(path) = &file {
            let source = File::from(path.as_path()).format(FileFormat::Toml).required(true);
            in_file = check_file_keys(keys, path, &source)?;
            builder = builder.add_source(source);
        }
        let env_source = Environment::with_prefix("MPC").prefix_separator("_").separator("__").source(Some(env));
        let env_values = env_source.collect().map_err(|e| config_error(e, file.as_deref()))?;
        let resolved = builder.add_source(env_source).build().map_err(|e| config_error(e, file.as_deref()))?;

        let origin_of = |name: &str| match &file {
            _ if env_values.contains_key(name) => Origin::Environment,
            Some(f) if in_file.iter().any(|k| k == name) => Origin::File(f.clone()),
            _ => Origin::Default,
        };
        let mut values = BTreeMap::new();
        for key in keys {
            let Ok(value) = resolved.get::<Value>(key.name) else { continue };
            let origin = origin_of(key.name);
            let text = text_of(value).map_err(|why| invalid(&key.env(), &origin, why))?;
            values.insert(key.name, Resolved { value: text, origin });
        }
        let mut storage = BTreeMap::new();
        if let Ok(table) = resolved.get_table("storage") {
            for (option, value) in table {
                let dotted = format!("storage.{option}");
                let origin = origin_of(&dotted);
                let text = text_of(value).map_err(|why| invalid(&storage_env_name(&option), &origin, why))?;
                storage.insert(option, Resolved { value: text, origin });
            }
        }
        Ok(Self { keys, file, values, storage, ignored_env })
    }

    /// The file that was read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The value of key `name` (`share_secret`), if set anywhere.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|r| r.value.as_str())
    }

    /// The value and origin of key `name`.
    pub fn resolved(&self, name: &str) -> Option<&Resolved> {
        self.values.get(name)
    }

    /// The value of the key whose variable is `var` (`MPC_SHARE_SECRET`).
    pub fn get_env(&self, var: &str) -> Option<&str> {
        var.strip_prefix("MPC_").and_then(|name| self.get(&name.to_ascii_lowercase()))
    }

    /// The store options (`[storage]` table and `MPC_STORAGE__<KEY>` variables).
    pub fn store_options(&self) -> Options {
        self.storage.iter().map(|(k, r)| (k.clone(), r.value.clone())).collect()
    }

    /// `MPC_*` variables that are not keys of this configuration (typos, or another command's).
    pub fn ignored_env(&self) -> &[String] {
        &self.ignored_env
    }

    /// One line per set key, `name = value  # MPC_NAME, from <origin>`, secrets redacted.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for key in self.keys {
            let Some(r) = self.values.get(key.name) else { continue };
            let shown = match key.shown {
                Shown::Plain => r.value.clone(),
                Shown::Secret => "<redacted>".to_string(),
                Shown::Url => redact_url(&r.value),
                Shown::Urls => r.value.split(',').map(|u| redact_url(u.trim())).collect::<Vec<_>>().join(","),
            };
            out.push_str(&format!("{:<44} # {}, from {}\n", format!("{} = {shown:?}", key.name), key.env(), r.origin));
        }
        for (option, r) in &self.storage {
            let shown = if wallet_traits::is_credential_name(option) {
                "<redacted>".to_string()
            } else {
                format!("{:?}", r.value)
            };
            let line = format!("storage.{option} = {shown}");
            out.push_str(&format!("{line:<44} # {}, from {}\n", storage_env_name(option), r.origin));
        }
        out
    }
}

/// [`Plugins::check_store`] with an error that names the variable to fix: the option's
/// `MPC_STORAGE__<KEY>` when the store blames one, else `url_var`.
pub(super) fn check_store(plugins: &Plugins, url: &str, url_var: &str, options: &Options) -> Result<()> {
    plugins.check_store(url, options).map_err(|e| {
        let var = e.context_value("option").map(storage_env_name).unwrap_or_else(|| url_var.to_string());
        Error::new(ErrorKind::Config, format!("{var} is invalid: {}", e.message()))
            .with_context("variable", var)
            .with_context("url", redact_url(url))
    })
}

/// Only our keys reach the layering, so other tools' MPC_* variables cannot break it; the rest
/// are returned, sorted, for `config check` to list.
fn split_env(
    keys: &[SettingKey],
    vars: impl IntoIterator<Item = (String, String)>,
) -> (config::Map<String, String>, Vec<String>) {
    let mut env = config::Map::new();
    let mut ignored = Vec::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix("MPC_") else { continue };
        let known = keys.iter().any(|k| k.name.eq_ignore_ascii_case(rest))
            || rest.strip_prefix("STORAGE__").is_some_and(|k| !k.is_empty());
        if known {
            if !value.trim().is_empty() {
                env.insert(var, value);
            }
        } else if !NOT_SETTINGS.iter().any(|p| var.starts_with(p)) {
            ignored.push(var);
        }
    }
    ignored.sort();
    (env, ignored)
}

/// A config-crate value as text; lists join with commas, tables are refused.
fn text_of(value: Value) -> std::result::Result<String, String> {
    match value.kind {
        ValueKind::Array(items) => {
            items.into_iter().map(text_of).collect::<std::result::Result<Vec<_>, _>>().map(|v| v.join(","))
        }
        ValueKind::Table(_) => Err("expected a value, found a table".into()),
        ValueKind::Nil => Err("expected a value, found nothing".into()),
        _ => value.into_string().map_err(|e| e.to_string()),
    }
}

fn invalid(var: &str, origin: &Origin, why: String) -> Error {
    Error::new(ErrorKind::Config, format!("{var} is invalid: {why}"))
        .with_context("variable", var)
        .with_context("from", origin.to_string())
}

fn config_error(e: config::ConfigError, file: Option<&Path>) -> Error {
    // A TOML parse error quotes the offending line, which may be a secret's: keep the position
    // and the reason, drop the quoted source (`2 | share_secret = "...`) and its markers.
    let quoted =
        |l: &str| l.trim_start().split_once('|').is_some_and(|(n, _)| n.trim().chars().all(|c| c.is_ascii_digit()));
    let text = e.to_string();
    let reason: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !quoted(l)).collect();
    let mut err = Error::new(ErrorKind::Config, format!("the configuration cannot be read: {}", reason.join("; ")));
    if let Some(f) = file {
        err = err.with_context("file", f.display());
    }
    err
}

/// Refuses unknown top-level keys and a `[storage]` that is not a table, naming the key, so a
/// typo in the file fails at start instead of silently falling back to a default. Returns the
/// keys the file sets (`storage.<option>` for store options).
fn check_file_keys(
    keys: &[SettingKey],
    path: &Path,
    source: &File<config::FileSourceFile, FileFormat>,
) -> Result<Vec<String>> {
    let table = source.collect().map_err(|e| config_error(e, Some(path)))?;
    let mut present = Vec::new();
    for (name, value) in table {
        if name == "storage" {
            let ValueKind::Table(options) = value.kind else {
                return Err(Error::new(ErrorKind::Config, "`storage` must be a table of store options ([storage])")
                    .with_context("file", path.display())
                    .with_context("key", "storage"));
            };
            present.extend(options.into_keys().map(|k| format!("storage.{k}")));
            continue;
        }
        if !keys.iter().any(|k| k.name == name) {
            let known: Vec<&str> = keys.iter().map(|k| k.name).chain(["storage"]).collect();
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "unknown key `{}` in the configuration file; known keys: {}",
                    name.escape_default(),
                    known.join(", ")
                ),
            )
            .with_context("file", path.display())
            .with_context("key", name.escape_default()));
        }
        present.push(name);
    }
    Ok(present)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[SettingKey] = &[
        SettingKey::plain("wallet_id"),
        SettingKey::secret("share_secret"),
        SettingKey::plain("threshold").default("2"),
        SettingKey::plain("storage_url").shown(Shown::Url),
        SettingKey::plain("cosigner_endpoints").shown(Shown::Urls),
    ];

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpc-wallet.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn environment_beats_file_beats_default() {
        let (_d, path) = file(
            "wallet_id = \"from-file\"\nthreshold = 3\nshare_secret = \"file-secret\"\n\
             cosigner_endpoints = [\"http://a:1\", \"http://b:2\"]\n[storage]\nbusy_timeout_ms = 250\n",
        );
        let s = Settings::load_from(
            KEYS,
            Some(&path),
            vars(&[("MPC_WALLET_ID", "from-env"), ("MPC_STORAGE__MAX_CONNECTIONS", "2"), ("PATH", "/bin")]),
        )
        .unwrap();
        assert_eq!(s.get("wallet_id"), Some("from-env"));
        assert_eq!(s.resolved("wallet_id").unwrap().origin, Origin::Environment);
        assert_eq!(s.get("threshold"), Some("3"));
        assert_eq!(s.resolved("threshold").unwrap().origin, Origin::File(path.clone()));
        assert_eq!(s.get_env("MPC_COSIGNER_ENDPOINTS"), Some("http://a:1,http://b:2"));
        let options = s.store_options();
        assert_eq!(options.get("busy_timeout_ms").map(String::as_str), Some("250"));
        assert_eq!(options.get("max_connections").map(String::as_str), Some("2"));

        let none = Settings::load_from(KEYS, None, vars(&[])).unwrap();
        assert_eq!(none.get("threshold"), Some("2"));
        assert_eq!(none.resolved("threshold").unwrap().origin, Origin::Default);
        assert_eq!(none.get("wallet_id"), None);
    }

    #[test]
    fn render_redacts_secrets_and_credentials() {
        let s = Settings::load_from(
            KEYS,
            None,
            vars(&[
                ("MPC_SHARE_SECRET", "hunter2-secret"),
                ("MPC_STORAGE_URL", "postgres://mpc:pg-password@db:5432/mpc?sslpassword=query-password"),
                ("MPC_STORAGE__PASSWORD", "other-password"),
                ("MPC_COSIGNER_ENDPOINTS", "https://u:endpoint-pass@c1:1,http://c2:2"),
            ]),
        )
        .unwrap();
        let shown = s.render();
        for secret in ["hunter2-secret", "pg-password", "query-password", "other-password", "endpoint-pass"] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(!format!("{s:?}").contains(secret));
        }
        assert!(
            shown.contains("share_secret = <redacted>") || shown.contains("share_secret = \"<redacted>\""),
            "{shown}"
        );
        assert!(shown.contains("MPC_STORAGE__PASSWORD"), "{shown}");
        assert!(shown.contains("postgres://***@db:5432/mpc?sslpassword=***"), "{shown}");
    }

    #[test]
    fn unknown_file_keys_are_named_and_unknown_variables_listed() {
        let (_d, path) = file("wallet_id = \"w\"\nthresold = 2\n");
        let e = Settings::load_from(KEYS, Some(&path), vars(&[])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.context_value("key"), Some("thresold"));
        assert!(e.message().contains("known keys: wallet_id"), "{e}");

        let (_d, path) = file("storage = 3\n");
        let e = Settings::load_from(KEYS, Some(&path), vars(&[])).unwrap_err();
        assert_eq!(e.context_value("key"), Some("storage"));

        let s = Settings::load_from(KEYS, None, vars(&[("MPC_SHARE_SECRT", "x"), ("MPC_LOG", "debug")])).unwrap();
        assert_eq!(s.ignored_env(), ["MPC_SHARE_SECRT".to_string()]);
    }

    #[test]
    fn bad_files_fail_clearly() {
        let e = Settings::load_from(KEYS, Some(Path::new("/nonexistent/mpc.toml")), vars(&[])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.context_value("file"), Some("/nonexistent/mpc.toml"));
        let (_d, path) = file("wallet_id = \n");
        let e = Settings::load_from(KEYS, Some(&path), vars(&[])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        // A syntax error names the place, never the line's text: it may hold a secret.
        let (_d, path) = file("wallet_id = \"w\"\nshare_secret = \"leaky-secret-value\n");
        let e = Settings::load_from(KEYS, Some(&path), vars(&[])).unwrap_err();
        assert!(e.message().contains("line 2"), "{e}");
        assert!(!e.to_string().contains("leaky-secret") && !format!("{e:?}").contains("leaky-secret"), "{e}");
        let (_d, path) = file("wallet_id = { nested = 1 }\n");
        let e = Settings::load_from(KEYS, Some(&path), vars(&[])).unwrap_err();
        assert_eq!(e.context_value("variable"), Some("MPC_WALLET_ID"), "{e}");
    }
}
