//! Configuration, typed once: defaults < file < `MPC_*` variables are layered by
//! [`Settings`] (the `config` crate), then [`WalletConfig`] and [`CosignerConfig`] parse every
//! value into its type in one pass, naming the variable of any value that does not parse. The
//! builders take those typed values as they are. See docs/ARCHITECTURE.md, "Configuration".

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use wallet_traits::{Error, ErrorKind, Options, Plugins, Result};

mod chain;
mod cosigner;
mod layers;
mod wallet;

pub use chain::ChainConfig;
pub use cosigner::CosignerConfig;
pub use layers::{storage_env_name, Origin, Resolved, SettingKey, Settings, Shown, DEFAULT_CONFIG_FILE};
pub use wallet::WalletConfig;

pub use wallet_bsv::Network;

/// Where a party's store is: `MPC_STORAGE_URL` (any registered scheme) or, when that is unset,
/// the SQLite file `MPC_STORAGE_PATH`. The one place that rule is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A store URL (`MPC_STORAGE_URL`).
    Url(String),
    /// A SQLite file (`MPC_STORAGE_PATH`).
    Path(PathBuf),
}

impl StoreLocation {
    /// The URL wins over the path; `None` when neither is set.
    pub fn from_keys(url: Option<String>, path: Option<PathBuf>) -> Option<Self> {
        url.map(Self::Url).or_else(|| path.map(Self::Path))
    }

    /// The URL to open through the registry.
    pub fn url(&self) -> String {
        match self {
            Self::Url(u) => u.clone(),
            Self::Path(p) => format!("sqlite://{}", p.display()),
        }
    }

    /// The variable that set it, for error messages.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Url(_) => "MPC_STORAGE_URL",
            Self::Path(_) => "MPC_STORAGE_PATH",
        }
    }

    /// The SQLite file, when given as a path.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Path(p) => Some(p),
            Self::Url(_) => None,
        }
    }

    /// Checks the store's scheme (among `plugins`) and `options` without opening anything; the
    /// error names the variable to fix.
    pub fn check(&self, plugins: &Plugins, options: &Options) -> Result<()> {
        layers::check_store(plugins, &self.url(), self.variable(), options)
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&wallet_traits::redact_url(&self.url()))
    }
}

/// Reads typed values out of resolved [`Settings`]; every failure names the key's variable and
/// where its value came from.
struct Reader<'a>(&'a Settings);

impl Reader<'_> {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).map(str::to_string)
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.0.get(name).map(PathBuf::from)
    }

    /// The value of `name` through `parse`; its error's message becomes the reason.
    fn parsed<T>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<Option<T>> {
        self.0.get(name).map(|v| parse(v).map_err(|e| self.invalid(name, e.message()))).transpose()
    }

    /// `true` / `false` (also yes/no, on/off, 1/0).
    fn flag(&self, name: &str) -> Result<Option<bool>> {
        self.parsed(name, |v| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(Error::new(ErrorKind::Config, "it must be true or false")),
        })
    }

    /// A number; `what` completes "it must be ...".
    fn number<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>> {
        self.parsed(name, |v| {
            v.trim().parse::<T>().map_err(|_| Error::new(ErrorKind::Config, format!("it must be {what}")))
        })
    }

    /// `value` of a key that has a default in its [`SettingKey`], so it is always resolved.
    fn defaulted<T>(&self, name: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| Error::new(ErrorKind::Internal, format!("the setting {name} has no default")))
    }

    fn invalid(&self, name: &str, why: &str) -> Error {
        let var = format!("MPC_{}", name.to_ascii_uppercase());
        let mut e = Error::new(ErrorKind::Config, format!("{var} is invalid: {why}")).with_context("variable", var);
        if let Some(r) = self.0.resolved(name) {
            e = e.with_context("from", r.origin.to_string());
        }
        e
    }

    /// The party key from `party_key`, else read from the file `party_key_file`.
    fn party_key(&self) -> Result<Option<crate::PartyKey>> {
        if let Some(key) = self.parsed("party_key", crate::PartyKey::from_hex)? {
            return Ok(Some(key));
        }
        let Some(path) = self.path("party_key_file") else { return Ok(None) };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid("party_key_file", &format!("{} cannot be read: {e}", path.display()))
                .with_context("path", path.display())
        })?;
        crate::PartyKey::from_hex(text.trim()).map(Some).map_err(|e| self.invalid("party_key_file", e.message()))
    }

    /// The spending policy in the file `policy_file`, read and checked now, so a typo in it fails
    /// at start, naming MPC_POLICY_FILE and the key.
    fn policy(&self) -> Result<Option<wallet_policy::Policy>> {
        let Some(path) = self.path("policy_file") else { return Ok(None) };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid("policy_file", &format!("{} cannot be read: {e}", path.display()))
                .with_context("path", path.display())
        })?;
        wallet_policy::Policy::from_toml(&text).map(Some).map_err(|e| {
            self.invalid("policy_file", &format!("{}: {}", path.display(), e.message()))
                .with_context("path", path.display())
        })
    }

    fn store(&self) -> Option<StoreLocation> {
        StoreLocation::from_keys(self.text("storage_url"), self.path("storage_path"))
    }
}

/// `var is not set: set it to what`.
fn missing(var: &str, what: &str) -> Error {
    Error::new(ErrorKind::Config, format!("{var} is not set: set it to {what}")).with_context("variable", var)
}

/// `var is invalid: why`.
fn invalid(var: &str, why: &str) -> Error {
    Error::new(ErrorKind::Config, format!("{var} is invalid: {why}")).with_context("variable", var)
}

/// Refuses a file key that names a file that is not there.
fn require_files(files: &[(&str, &Option<PathBuf>)]) -> Result<()> {
    for (var, file) in files {
        if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
            return Err(invalid(var, &format!("{} does not exist or is not a file", f.display())));
        }
    }
    Ok(())
}
