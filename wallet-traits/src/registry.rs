//! Plugin registration: factories keyed by URL scheme, collected with `inventory`.

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
};

use crate::{
    Broadcaster, BroadcasterFactory, ChainTracker, ChainTrackerFactory, CosignerTransport, Error, ErrorKind,
    OutputStore, OutputStoreFactory, Result, ServiceConfig, ShareStore,
};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Key-value options handed to a factory alongside the URL.
pub type Options = BTreeMap<String, String>;

/// [`Options`] from `(key, value)` pairs, e.g. `options(&[("busy_timeout_ms", "5000")])`.
pub fn options(pairs: &[(&str, &str)]) -> Options {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

/// Builds a [`ShareStore`] from a URL such as `sqlite:///var/lib/mpc/agent.db`.
pub type StoreBuildFn = fn(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn ShareStore>>>;

/// Builds a [`CosignerTransport`] from an endpoint URL such as `local://1`.
pub type TransportBuildFn = fn(url: String, options: Options) -> BoxFuture<'static, Result<Arc<dyn CosignerTransport>>>;

/// Checks a store URL and its options without opening anything (`mpc-wallet config check`).
pub type StoreCheckFn = fn(url: &str, options: &Options) -> Result<()>;

/// A store factory: submit one with `inventory::submit!` to add a backend without touching the
/// engine.
pub struct ShareStoreFactory {
    /// URL scheme, without `://`.
    pub scheme: &'static str,
    /// The constructor.
    pub build: StoreBuildFn,
    /// Validates configuration without side effects, when the plugin offers it.
    pub check: Option<StoreCheckFn>,
}

impl ShareStoreFactory {
    /// A factory for `scheme`.
    pub const fn new(scheme: &'static str, build: StoreBuildFn) -> Self {
        Self { scheme, build, check: None }
    }

    /// Adds a configuration check, so `config check` can report a bad option before start.
    pub const fn with_check(mut self, check: StoreCheckFn) -> Self {
        self.check = Some(check);
        self
    }
}

impl fmt::Debug for ShareStoreFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareStoreFactory({})", self.scheme)
    }
}

/// A transport factory: submit one with `inventory::submit!`.
pub struct TransportFactory {
    /// URL scheme, without `://`.
    pub scheme: &'static str,
    /// The constructor.
    pub build: TransportBuildFn,
}

impl TransportFactory {
    /// A factory for `scheme`.
    pub const fn new(scheme: &'static str, build: TransportBuildFn) -> Self {
        Self { scheme, build }
    }
}

impl fmt::Debug for TransportFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransportFactory({})", self.scheme)
    }
}

inventory::collect!(ShareStoreFactory);
inventory::collect!(TransportFactory);

/// The scheme of `url` (the part before `://`), lower-cased. A scheme is a letter followed by
/// letters, digits, `+`, `-` or `.` (RFC 3986), so text that merely contains a URL (a tool's
/// message printed before it, say) is refused as what it is rather than as an unknown scheme.
pub fn scheme_of(url: &str) -> Result<String> {
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    };
    match url.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => Ok(scheme.to_ascii_lowercase()),
        _ => Err(Error::new(ErrorKind::Config, "expected a URL of the form scheme://...")
            .with_context("url", redact_url(url))),
    }
}

/// How one store reads its URL path and [`Options`], so every store words its errors alike:
/// `Config` errors with the store's scheme as `backend` in their context, an unknown key refused
/// with the known ones listed, a value that does not parse named with its option. That error
/// quotes the value, so read secret options (passwords, keys) as plain strings, never through
/// [`number`](Self::number) or [`bool`](Self::bool).
///
/// ```
/// use wallet_traits::{Options, StoreOptions};
///
/// const OPTIONS: StoreOptions = StoreOptions::new("jsonfile", "JSON-file store", &["create"]);
/// let mut options = Options::new();
/// options.insert("create".into(), " TRUE ".into());
/// for (key, value) in &options {
///     match key.as_str() {
///         "create" => assert!(OPTIONS.bool(key, value)?),
///         _ => return Err(OPTIONS.unknown(key)),
///     }
/// }
/// assert!(OPTIONS.unknown("creat").to_string().contains("known options: create"));
/// # Ok::<(), wallet_traits::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    scheme: &'static str,
    name: &'static str,
    keys: &'static [&'static str],
}

impl StoreOptions {
    /// The store of `scheme`, called `name` in messages ("SQLite store"), which takes the
    /// option `keys`.
    pub const fn new(scheme: &'static str, name: &'static str, keys: &'static [&'static str]) -> Self {
        Self { scheme, name, keys }
    }

    /// The option keys the store takes.
    pub const fn keys(&self) -> &'static [&'static str] {
        self.keys
    }

    /// A `Config` error about this store.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, message).with_context("backend", self.scheme)
    }

    /// The error for an option key the store does not take, listing the ones it does.
    pub fn unknown(&self, key: &str) -> Error {
        self.error(format!("unknown {} option; known options: {}", self.name, self.keys.join(", ")))
            .with_context("option", key.escape_default())
    }

    /// Option `key`'s `value` as a non-negative whole number (surrounding spaces ignored).
    pub fn number<T: std::str::FromStr>(&self, key: &str, value: &str) -> Result<T> {
        value.trim().parse().map_err(|_| self.invalid(key, value, "a non-negative whole number"))
    }

    /// Option `key`'s `value` as `true` or `false`, in any case (surrounding spaces ignored).
    pub fn bool(&self, key: &str, value: &str) -> Result<bool> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid(key, value, "true or false")),
        }
    }

    fn invalid(&self, key: &str, value: &str, takes: &str) -> Error {
        self.error(format!("a {} option must be {takes}", self.name))
            .with_context("option", key.escape_default())
            .with_context("value", value.escape_default())
    }

    /// The path of this file-based store's URL, `scheme:///abs/path` or `scheme://relative/path`.
    ///
    /// Refuses another scheme, an empty path and a query or fragment (options come as
    /// [`Options`], and the error names them), with errors that show `example`, a whole URL of
    /// this store.
    pub fn path_of_url<'a>(&self, url: &'a str, example: &str) -> Result<&'a str> {
        let scheme = self.scheme;
        let path =
            url.split_once("://").filter(|(s, _)| s.eq_ignore_ascii_case(scheme)).map(|(_, path)| path).ok_or_else(
                || {
                    self.error(format!("a {scheme} store URL starts with {scheme}://, as in {example}"))
                        .with_context("url", redact_url(url))
                },
            )?;
        if path.is_empty() || path.contains(['?', '#']) {
            return Err(self
                .error(format!(
                    "a {scheme} store URL is {scheme}:// followed by a path, with no query, as in {example}; \
                     pass {} as options",
                    self.keys.join(", ")
                ))
                .with_context("url", redact_url(url)));
        }
        Ok(path)
    }
}

/// Whether a URL query parameter or store option called `name` holds a credential
/// (`password`, `sslpassword`, `secret`, `token`, `api_key`, ...). Errs on the side of hiding.
pub fn is_credential_name(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key", "auth", "credential", "signature", "sig"]
        .iter()
        .any(|word| name.contains(word))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` safe to print: a `user:password@` part becomes `***@`, the value of every query
/// parameter named like a credential (see [`is_credential_name`]) becomes `***`, and a
/// fragment is hidden.
///
/// A password may hold `/`, `?` or `#` unencoded, so everything up to the last `@` counts as
/// credentials (an `@` inside the query hides more than needed, never less).
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((_, after)) => ("***@", after),
        None => ("", rest),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((before, _)) => (before, "#***"),
        None => (rest, ""),
    };
    let shown = match rest.split_once('?') {
        None => rest.to_string(),
        Some((base, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| {
                    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    if is_credential_name(name) {
                        format!("{name}=***")
                    } else {
                        pair.to_string()
                    }
                })
                .collect();
            format!("{base}?{}", pairs.join("&"))
        }
    };
    format!("{prefix}{userinfo}{shown}{fragment}")
}

/// Factories by scheme, refusing duplicates: filled from everything submitted with `inventory`
/// ([`Plugins::from_inventory`]) or installed one by one ([`Plugins::with_store`]).
#[derive(Debug)]
pub struct Registry<F: 'static> {
    kind: &'static str,
    by_scheme: std::result::Result<BTreeMap<&'static str, &'static F>, String>,
}

// By hand: a derive would require `F: Clone`, and only references are cloned.
impl<F> Clone for Registry<F> {
    fn clone(&self) -> Self {
        Self { kind: self.kind, by_scheme: self.by_scheme.clone() }
    }
}

impl<F> Registry<F> {
    fn insert(&mut self, scheme: &'static str, f: &'static F) {
        if let Ok(map) = &mut self.by_scheme {
            if map.insert(scheme, f).is_some() {
                self.by_scheme = Err(scheme.to_string());
            }
        }
    }

    fn build(kind: &'static str, items: impl Iterator<Item = (&'static str, &'static F)>) -> Self {
        let mut map = BTreeMap::new();
        let mut dup = None;
        for (scheme, f) in items {
            if map.insert(scheme, f).is_some() {
                dup = Some(scheme);
            }
        }
        let by_scheme = match dup {
            Some(s) => Err(s.to_string()),
            None => Ok(map),
        };
        Self { kind, by_scheme }
    }

    /// What a factory is known by: stores and transports by URL scheme, chain services by name.
    fn key(&self) -> &'static str {
        match self.kind {
            "store" | "transport" => "scheme",
            _ => "name",
        }
    }

    /// The known schemes, sorted.
    pub fn schemes(&self) -> Vec<&'static str> {
        self.by_scheme.as_ref().map(|m| m.keys().copied().collect()).unwrap_or_default()
    }

    /// The factory for `scheme`; the error lists the known schemes.
    pub fn get(&self, scheme: &str) -> Result<&'static F> {
        let map = self.by_scheme.as_ref().map_err(|dup| {
            Error::new(ErrorKind::Config, format!("two {} plugins registered the same scheme", self.kind))
                .with_context("scheme", dup)
        })?;
        map.get(scheme).copied().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "unknown {} {key} '{scheme}'; known {key}s: {}",
                    self.kind,
                    map.keys().copied().collect::<Vec<_>>().join(", "),
                    key = self.key(),
                ),
            )
        })
    }
}

/// The store and transport factories a program uses, as a value: handed to the engine's
/// builders so a program (or a test) decides exactly which plugins exist, as sqlx installs its
/// drivers explicitly beside its `Any` registry. [`Plugins::from_inventory`], the default,
/// holds every factory linked into the binary and submitted with `inventory`.
///
/// ```
/// use wallet_traits::{Plugins, ShareStoreFactory};
///
/// static NONE: ShareStoreFactory = ShareStoreFactory::new("none", |_, _| {
///     Box::pin(async { Err(wallet_traits::Error::new(wallet_traits::ErrorKind::Config, "no store")) })
/// });
/// let plugins = Plugins::new().with_store(&NONE);
/// assert_eq!(plugins.stores().schemes(), ["none"]);
/// assert!(plugins.check_store("sqlite:///x.db", &Default::default()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Plugins {
    stores: Registry<ShareStoreFactory>,
    transports: Registry<TransportFactory>,
    broadcasters: Registry<BroadcasterFactory>,
    chain_trackers: Registry<ChainTrackerFactory>,
    output_stores: Registry<OutputStoreFactory>,
}

impl Default for Plugins {
    fn default() -> Self {
        Self::from_inventory()
    }
}

impl Plugins {
    /// No factories at all; add them with [`with_store`](Self::with_store) and
    /// [`with_transport`](Self::with_transport).
    pub fn new() -> Self {
        Self {
            stores: Registry::build("store", std::iter::empty()),
            transports: Registry::build("transport", std::iter::empty()),
            broadcasters: Registry::build("broadcaster", std::iter::empty()),
            chain_trackers: Registry::build("chain tracker", std::iter::empty()),
            output_stores: Registry::build("output store", std::iter::empty()),
        }
    }

    /// Every factory submitted with `inventory` by the crates linked into this binary.
    pub fn from_inventory() -> Self {
        Self {
            stores: store_registry().clone(),
            transports: transport_registry().clone(),
            broadcasters: Registry::build(
                "broadcaster",
                inventory::iter::<BroadcasterFactory>.into_iter().map(|f| (f.name, f)),
            ),
            chain_trackers: Registry::build(
                "chain tracker",
                inventory::iter::<ChainTrackerFactory>.into_iter().map(|f| (f.name, f)),
            ),
            output_stores: Registry::build(
                "output store",
                inventory::iter::<OutputStoreFactory>.into_iter().map(|f| (f.scheme, f)),
            ),
        }
    }

    /// Adds a broadcaster factory.
    pub fn with_broadcaster(mut self, factory: &'static BroadcasterFactory) -> Self {
        self.broadcasters.insert(factory.name, factory);
        self
    }

    /// Adds a chain tracker factory.
    pub fn with_chain_tracker(mut self, factory: &'static ChainTrackerFactory) -> Self {
        self.chain_trackers.insert(factory.name, factory);
        self
    }

    /// The broadcaster factories, by name.
    pub fn broadcasters(&self) -> &Registry<BroadcasterFactory> {
        &self.broadcasters
    }

    /// The chain tracker factories, by name.
    pub fn chain_trackers(&self) -> &Registry<ChainTrackerFactory> {
        &self.chain_trackers
    }

    /// The broadcaster `name` built from `config`.
    pub fn broadcaster(&self, name: &str, config: ServiceConfig) -> Result<Arc<dyn Broadcaster>> {
        (self.broadcasters.get(name)?.build)(config)
    }

    /// The chain tracker `name` built from `config`.
    pub fn chain_tracker(&self, name: &str, config: ServiceConfig) -> Result<Arc<dyn ChainTracker>> {
        (self.chain_trackers.get(name)?.build)(config)
    }

    /// Adds an output store factory.
    pub fn with_output_store(mut self, factory: &'static OutputStoreFactory) -> Self {
        self.output_stores.insert(factory.scheme, factory);
        self
    }

    /// The output store factories, by scheme.
    pub fn output_stores(&self) -> &Registry<OutputStoreFactory> {
        &self.output_stores
    }

    /// Opens the output store named by `url` for the wallet `scope` through its factory.
    pub async fn open_output_store(&self, url: &str, options: Options, scope: &str) -> Result<Arc<dyn OutputStore>> {
        let factory = self.output_stores.get(&scheme_of(url)?)?;
        (factory.build)(url.to_string(), options, scope.to_string()).await
    }

    /// Adds a store factory (a second one for the same scheme makes every lookup fail).
    pub fn with_store(mut self, factory: &'static ShareStoreFactory) -> Self {
        self.stores.insert(factory.scheme, factory);
        self
    }

    /// Adds a transport factory.
    pub fn with_transport(mut self, factory: &'static TransportFactory) -> Self {
        self.transports.insert(factory.scheme, factory);
        self
    }

    /// The store factories.
    pub fn stores(&self) -> &Registry<ShareStoreFactory> {
        &self.stores
    }

    /// The transport factories.
    pub fn transports(&self) -> &Registry<TransportFactory> {
        &self.transports
    }

    /// Opens the store named by `url` through its factory.
    pub async fn open_store(&self, url: &str, options: Options) -> Result<Arc<dyn ShareStore>> {
        let factory = self.stores.get(&scheme_of(url)?)?;
        (factory.build)(url.to_string(), options).await
    }

    /// Checks the store URL and options as far as possible without opening it: the scheme is
    /// known, and the plugin's own check (if it has one) accepts them.
    pub fn check_store(&self, url: &str, options: &Options) -> Result<()> {
        let factory = self.stores.get(&scheme_of(url)?)?;
        match factory.check {
            Some(check) => check(url, options),
            None => Ok(()),
        }
    }

    /// Connects the transport named by `url` through its factory.
    pub async fn connect_transport(&self, url: &str, options: Options) -> Result<Arc<dyn CosignerTransport>> {
        let factory = self.transports.get(&scheme_of(url)?)?;
        (factory.build)(url.to_string(), options).await
    }
}

/// The store factories submitted with `inventory`.
pub fn store_registry() -> &'static Registry<ShareStoreFactory> {
    static R: OnceLock<Registry<ShareStoreFactory>> = OnceLock::new();
    R.get_or_init(|| Registry::build("store", inventory::iter::<ShareStoreFactory>.into_iter().map(|f| (f.scheme, f))))
}

/// The transport factories submitted with `inventory`.
pub fn transport_registry() -> &'static Registry<TransportFactory> {
    static R: OnceLock<Registry<TransportFactory>> = OnceLock::new();
    R.get_or_init(|| {
        Registry::build("transport", inventory::iter::<TransportFactory>.into_iter().map(|f| (f.scheme, f)))
    })
}

/// [`Plugins::open_store`] over the `inventory` factories.
pub async fn open_store(url: &str, options: Options) -> Result<Arc<dyn ShareStore>> {
    Plugins::from_inventory().open_store(url, options).await
}

/// [`Plugins::check_store`] over the `inventory` factories.
pub fn check_store(url: &str, options: &Options) -> Result<()> {
    Plugins::from_inventory().check_store(url, options)
}

/// [`Plugins::connect_transport`] over the `inventory` factories.
pub async fn connect_transport(url: &str, options: Options) -> Result<Arc<dyn CosignerTransport>> {
    Plugins::from_inventory().connect_transport(url, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: u8 = 1;
    static B: u8 = 2;

    #[test]
    fn unknown_scheme_lists_known() {
        let r = Registry::build("store", [("sqlite", &A), ("memory", &B)].into_iter());
        let e = r.get("nosuch").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("known schemes: memory, sqlite"), "{e}");
    }

    #[test]
    fn duplicate_scheme_is_refused() {
        let r = Registry::build("store", [("sqlite", &A), ("sqlite", &B)].into_iter());
        assert_eq!(r.get("sqlite").unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn store_paths_come_from_the_url_alone() {
        let options = StoreOptions::new("sqlite", "SQLite store", &["busy_timeout_ms"]);
        let path = |url| options.path_of_url(url, "sqlite:///x.db");
        assert_eq!(path("sqlite:///var/x.db").unwrap(), "/var/x.db");
        assert_eq!(path("SQLite://rel/x.db").unwrap(), "rel/x.db");
        for bad in ["sqlite://", "sqlite:///x.db?mode=ro", "rocksdb:///x", "x.db"] {
            let e = path(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert_eq!(e.context_value("backend"), Some("sqlite"), "{bad}");
            assert!(e.message().contains("sqlite:///x.db"), "{e}");
        }
        assert!(path("sqlite:///x?a").unwrap_err().message().contains("pass busy_timeout_ms as options"));
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("postgres://u:pw@host/db"), "postgres://***@host/db");
        assert_eq!(redact_url("postgres://u:p/w?x@host/db"), "postgres://***@host/db");
        assert_eq!(redact_url("http://127.0.0.1:8001"), "http://127.0.0.1:8001");
        assert_eq!(
            redact_url("postgres://db:5432/mpc?sslmode=require&password=hunter2&application_name=a"),
            "postgres://db:5432/mpc?sslmode=require&password=***&application_name=a"
        );
        for (url, secret) in [
            ("postgres://db/mpc?sslpassword=s3cr3t", "s3cr3t"),
            ("https://h/x?api_key=k-123&Token=t-456", "k-123"),
            ("https://h/x?api_key=k-123&Token=t-456", "t-456"),
            ("https://h/x?pass%77ord=enc0ded", "enc0ded"),
            ("sqlite:///x.db#frag-secret", "frag-secret"),
            ("https://h/x?auth=a1&client_secret=c2", "c2"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
        }
        assert_eq!(redact_url("https://h/x?secret"), "https://h/x?secret=***");
        assert!(is_credential_name("sslpassword") && is_credential_name("PASSWORD") && is_credential_name("key"));
        assert!(
            !is_credential_name("sslmode")
                && !is_credential_name("namespace")
                && !is_credential_name("busy_timeout_ms")
        );
    }

    #[test]
    fn reads_url_schemes() {
        assert_eq!(scheme_of("SQLITE:///x").unwrap(), "sqlite");
        assert!(scheme_of("nothing").is_err());
        // Not a scheme: a message printed before the URL, a leading digit, an empty scheme.
        for bad in ["Removed stale pid file.\npostgres://u@h/db", "1x://a", "://a", " sqlite://a"] {
            let err = scheme_of(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
            assert!(err.to_string().contains("expected a URL of the form scheme://"), "{bad:?}: {err}");
        }
        assert_eq!(scheme_of("grpc+tls.x-y://h").unwrap(), "grpc+tls.x-y");
    }
}
