//! Configuration of the PostgreSQL store.

use std::{fmt, str::FromStr};

use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;
use wallet_traits::{redact_url, Options, Result, StoreOptions};

use crate::{POSTGRESQL_SCHEME, POSTGRES_SCHEME};

const DEFAULT_NAMESPACE: &str = "default";
const DEFAULT_MAX_CONNECTIONS: u32 = 8;
const DEFAULT_ACQUIRE_TIMEOUT_MS: u64 = 10_000;
const MAX_NAMESPACE_LEN: usize = 64;

/// The option keys [`PostgresConfig::from_url`] accepts.
const OPTIONS: StoreOptions = StoreOptions::new(
    POSTGRES_SCHEME,
    "PostgreSQL store",
    &["namespace", "password", "max_connections", "acquire_timeout_ms"],
);

/// Configuration of a [`PostgresShareStore`](crate::PostgresShareStore).
///
/// Deserializes (unknown fields refused) but does not serialize: the URL and the password are
/// secrets, and a serialized configuration tends to end up in logs.
///
#[doc = include_str!("docs.md")]
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// The connection URL, `postgres://user:password@host:port/database` (or `postgresql://`),
    /// with sqlx's query parameters such as `sslmode` allowed.
    pub url: String,
    /// Scopes every row, so several parties can share one database; processes of one party
    /// share one namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Replaces the URL's password, so the secret need not be written in the URL.
    #[serde(default)]
    pub password: Option<String>,
    /// Size of the connection pool.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long connecting, or waiting for a free pooled connection, may take before failing.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_string()
}

fn default_max_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

fn default_acquire_timeout_ms() -> u64 {
    DEFAULT_ACQUIRE_TIMEOUT_MS
}

impl PostgresConfig {
    /// The defaults for the server and database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: default_namespace(),
            password: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout_ms: DEFAULT_ACQUIRE_TIMEOUT_MS,
        }
    }

    /// Sets [`namespace`](Self::namespace).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets [`password`](Self::password).
    #[must_use]
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`acquire_timeout_ms`](Self::acquire_timeout_ms).
    #[must_use]
    pub fn with_acquire_timeout_ms(mut self, ms: u64) -> Self {
        self.acquire_timeout_ms = ms;
        self
    }

    /// Takes `postgres://user:password@host:port/database` (or `postgresql://`) plus the option
    /// keys `namespace`, `password`, `max_connections` and `acquire_timeout_ms`.
    pub fn from_url(url: &str, options: &Options) -> Result<Self> {
        let mut config = Self::new(url);
        for (key, value) in options {
            match key.as_str() {
                "namespace" => config.namespace = value.clone(),
                "password" => config.password = Some(value.clone()),
                "max_connections" => config.max_connections = OPTIONS.number(key, value)?,
                "acquire_timeout_ms" => config.acquire_timeout_ms = OPTIONS.number(key, value)?,
                _ => return Err(OPTIONS.unknown(key)),
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        let scheme_ok = self.url.split_once("://").is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case(POSTGRES_SCHEME) || scheme.eq_ignore_ascii_case(POSTGRESQL_SCHEME)
        });
        if !scheme_ok {
            return Err(OPTIONS
                .error(
                    "a PostgreSQL store URL starts with postgres:// or postgresql://, as in \
                 postgres://mpc@db.example:5432/mpc_wallet; set MPC_STORAGE_URL",
                )
                .with_context("url", redact_url(&self.url)));
        }
        validate_namespace(&self.namespace)?;
        if self.password.as_deref() == Some("") {
            return Err(OPTIONS
                .error("the password option is empty; unset MPC_STORAGE__PASSWORD or give the password")
                .with_context("option", "password"));
        }
        if self.max_connections == 0 {
            return Err(OPTIONS.error("max_connections must be at least 1").with_context("option", "max_connections"));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(OPTIONS
                .error("acquire_timeout_ms must be at least 1")
                .with_context("option", "acquire_timeout_ms"));
        }
        Ok(())
    }

    /// The driver's connection settings: the parsed URL with the password override applied.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions> {
        self.validate()?;
        // The parse error names what is wrong (port, encoding) but never echoes the input.
        let mut options = PgConnectOptions::from_str(&self.url).map_err(|e| {
            OPTIONS
                .error("the PostgreSQL store URL does not parse; check MPC_STORAGE_URL")
                .with_context("url", redact_url(&self.url))
                .with_source(e)
        })?;
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        if options.get_application_name().is_none() {
            // Lets a database administrator tell which party's processes hold connections.
            options = options.application_name(&format!("mpc-wallet:{}", self.namespace));
        }
        Ok(options)
    }
}

impl fmt::Debug for PostgresConfig {
    // Hand-written: the URL and the password are secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

/// 1 to 64 characters of `A-Z a-z 0-9 . _ -`, like a wallet id: safe in logs and in
/// `application_name`, and hard to confuse with another namespace.
fn validate_namespace(namespace: &str) -> Result<()> {
    let ok_len = (1..=MAX_NAMESPACE_LEN).contains(&namespace.len());
    let ok_chars = namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        return Ok(());
    }
    Err(OPTIONS
        .error(
            "the namespace must be 1 to 64 characters of letters, digits, '.', '_' or '-'; set MPC_STORAGE__NAMESPACE",
        )
        .with_context("option", "namespace")
        .with_context("value", namespace.escape_default()))
}

#[cfg(test)]
mod tests {
    use wallet_traits::{options, ErrorKind};

    use super::*;

    const URL: &str = "postgres://mpc:s3cret-pw@db.example:5432/mpc_wallet";

    #[test]
    fn parses_both_schemes_with_defaults() {
        let c = PostgresConfig::from_url(URL, &Options::new()).unwrap();
        assert_eq!(c, PostgresConfig::new(URL));
        assert_eq!((c.namespace.as_str(), c.password.as_deref()), ("default", None));
        assert_eq!((c.max_connections, c.acquire_timeout_ms), (8, 10_000));

        for url in ["postgresql://mpc@db.example/mpc_wallet", "POSTGRES://db.example/x?sslmode=require"] {
            let c = PostgresConfig::from_url(url, &Options::new()).unwrap();
            assert_eq!(c.url, url);
        }
    }

    #[test]
    fn applies_options() {
        let o = options(&[
            ("namespace", "cosigner-1"),
            ("password", "from-env"),
            ("max_connections", "2"),
            ("acquire_timeout_ms", " 250 "),
        ]);
        let c = PostgresConfig::from_url(URL, &o).unwrap();
        let expected = PostgresConfig::new(URL)
            .with_namespace("cosigner-1")
            .with_password("from-env")
            .with_max_connections(2)
            .with_acquire_timeout_ms(250);
        assert_eq!(c, expected);
    }

    #[test]
    fn connect_options_apply_url_and_password_override() {
        let c = PostgresConfig::new(URL).with_namespace("cosigner-2");
        let o = c.connect_options().unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_database()), ("db.example", 5432, Some("mpc_wallet")));
        assert_eq!(o.get_username(), "mpc");
        assert_eq!(o.get_application_name(), Some("mpc-wallet:cosigner-2"));

        // The override wins over the URL's password; sqlx only exposes it through its URL form
        // (percent-encoding everything but letters and digits).
        let o = c.with_password("overridepw").connect_options().unwrap();
        let rebuilt = sqlx::ConnectOptions::to_url_lossy(&o).to_string();
        assert!(rebuilt.contains(":overridepw@") && !rebuilt.contains("s3cret"), "the override must win");

        let o = PostgresConfig::new("postgres://h/d?application_name=ops").connect_options().unwrap();
        assert_eq!(o.get_application_name(), Some("ops"), "an application_name in the URL is kept");
    }

    #[test]
    fn rejects_bad_urls_and_options() {
        let none = Options::new();
        for url in ["mysql://h/db", "h/db", "sqlite:///x.db", "postgres://h:notaport/db"] {
            let e = PostgresConfig::from_url(url, &none).and_then(|c| c.connect_options()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}: {e}");
            assert_eq!(e.context_value("backend"), Some("postgres"));
        }

        let e = PostgresConfig::from_url(URL, &options(&[("max_conections", "1")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("namespace, password, max_connections, acquire_timeout_ms"), "{e}");
        assert_eq!(e.context_value("option"), Some("max_conections"));

        for (key, value) in [("max_connections", "many"), ("max_connections", "0"), ("acquire_timeout_ms", "0")] {
            let e = PostgresConfig::from_url(URL, &options(&[(key, value)])).unwrap_err();
            assert_eq!((e.kind(), e.context_value("option")), (ErrorKind::Config, Some(key)), "{key}={value}");
        }
        let e = PostgresConfig::from_url(URL, &options(&[("password", "")])).unwrap_err();
        assert_eq!(e.context_value("option"), Some("password"));
    }

    #[test]
    fn validates_namespaces() {
        for good in ["default", "cosigner-1", "party_2.eu", &"n".repeat(64)] {
            PostgresConfig::new(URL).with_namespace(good).validate().unwrap();
        }
        for bad in ["", "with space", "tab\t", "ünïcode", "semi;colon", &"n".repeat(65)] {
            let e = PostgresConfig::from_url(URL, &options(&[("namespace", bad)])).unwrap_err();
            assert_eq!((e.kind(), e.context_value("option")), (ErrorKind::Config, Some("namespace")), "{bad:?}");
            assert!(e.message().contains("MPC_STORAGE__NAMESPACE"), "{e}");
        }
    }

    #[test]
    fn debug_and_errors_hide_passwords() {
        let c = PostgresConfig::new(URL).with_password("opt-secret");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-pw") && !shown.contains("opt-secret"), "{shown}");
        assert!(shown.contains("db.example:5432/mpc_wallet") && shown.contains("***"), "{shown}");

        let in_query = "postgres://db.example/x?sslmode=require&password=q-secret&PassWord=q2";
        let shown = format!("{:?}", PostgresConfig::new(in_query));
        assert!(!shown.contains("q-secret") && !shown.contains("q2"), "{shown}");
        assert!(shown.contains("sslmode=require"), "harmless parameters stay visible: {shown}");

        let e = PostgresConfig::from_url("mysql://u:s3cret-pw@h/db", &Options::new()).unwrap_err();
        let e2 = PostgresConfig::from_url("postgres://u:s3cret-pw@h:bad/db", &Options::new())
            .and_then(|c| c.connect_options())
            .unwrap_err();
        for shown in [e.to_string(), format!("{e:?}"), e2.to_string(), format!("{e2:?}")] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
        }
    }

    #[test]
    fn serde_denies_unknown_fields_and_fills_defaults() {
        let c: PostgresConfig = serde_json::from_str(r#"{"url":"postgres://h/db"}"#).unwrap();
        assert_eq!(c, PostgresConfig::new("postgres://h/db"));
        let c: PostgresConfig =
            serde_json::from_str(r#"{"url":"postgres://h/db","namespace":"c1","password":"pw"}"#).unwrap();
        assert_eq!(c, PostgresConfig::new("postgres://h/db").with_namespace("c1").with_password("pw"));
        assert!(serde_json::from_str::<PostgresConfig>(r#"{"url":"postgres://h/db","namspace":"x"}"#).is_err());
    }
}
