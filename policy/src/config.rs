//! The policy file: TOML in, [`Rules`] per wallet out, and a fingerprint to compare cosigners.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use toml::Value;
use wallet_bsv::{address, Script};
use wallet_traits::{Error, ErrorKind, PublicKey, Result};

/// The window of the two window limits when `window_secs` is not set: a day.
pub const DEFAULT_WINDOW_SECS: u64 = 86_400;

/// Every key a policy table may hold (the top level also holds `[wallets."<id>"]`).
const KEYS: [&str; 7] = [
    "max_sats_per_tx",
    "window_secs",
    "max_sats_per_window",
    "max_tx_per_window",
    "allowed_destinations",
    "raw_digests",
    "approver_keys",
];

fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// Whether a cosigner signs a raw 32-byte digest, which it cannot read and so cannot check
/// against any rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RawDigests {
    /// Refused (the default): a transaction's sighash passed off as a digest would escape every
    /// rule.
    #[default]
    Deny,
    /// Signed, without any check.
    Allow,
}

impl RawDigests {
    /// `deny` or `allow`, as the policy file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RawDigests::Deny => "deny",
            RawDigests::Allow => "allow",
        }
    }
}

/// One table of the file: the keys it sets. `None` is "not set here", so a wallet's table
/// replaces only what it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings {
    max_sats_per_tx: Option<u64>,
    window_secs: Option<u64>,
    max_sats_per_window: Option<u64>,
    max_tx_per_window: Option<u64>,
    allowed_destinations: Option<BTreeSet<Vec<u8>>>,
    raw_digests: Option<RawDigests>,
    approver_keys: Option<BTreeSet<PublicKey>>,
}

impl Settings {
    /// `table`'s keys; `path` is the table's name in messages (`None` for the top level).
    fn parse(table: &toml::Table, path: Option<&str>) -> Result<Self> {
        let mut s = Settings::default();
        for (key, value) in table {
            let name = match path {
                Some(p) => format!("{p}.{key}"),
                None => key.clone(),
            };
            match key.as_str() {
                "max_sats_per_tx" => s.max_sats_per_tx = Some(whole(&name, value, "a number of satoshis")?),
                "max_sats_per_window" => s.max_sats_per_window = Some(whole(&name, value, "a number of satoshis")?),
                "max_tx_per_window" => s.max_tx_per_window = Some(whole(&name, value, "a number of transactions")?),
                "window_secs" => {
                    let secs = whole(&name, value, "a number of seconds")?;
                    if secs == 0 {
                        return Err(config(format!("`{name}` is 0; the window is at least 1 second (default 86400)")));
                    }
                    s.window_secs = Some(secs);
                }
                "allowed_destinations" => {
                    let mut set = BTreeSet::new();
                    for (i, text) in
                        strings(&name, value, "P2PKH addresses or locking-script hex")?.into_iter().enumerate()
                    {
                        let script = parse_destination(text)
                            .map_err(|why| config(format!("`{name}[{i}]` (\"{text}\") is {why}")))?;
                        set.insert(script);
                    }
                    s.allowed_destinations = Some(set);
                }
                "raw_digests" => {
                    s.raw_digests = Some(match value.as_str() {
                        Some("deny") => RawDigests::Deny,
                        Some("allow") => RawDigests::Allow,
                        _ => return Err(config(format!("`{name}` must be \"deny\" (the default) or \"allow\""))),
                    })
                }
                "approver_keys" => {
                    let mut set = BTreeSet::new();
                    for (i, text) in strings(&name, value, "compressed public keys in hex")?.into_iter().enumerate() {
                        let key = parse_approver_key(text).map_err(|why| {
                            config(format!(
                                "`{name}[{i}]` is not {why}; an approver key is what `mpc-wallet keys` prints \
                                 (66 hex characters, 02 or 03 first)"
                            ))
                        })?;
                        set.insert(key);
                    }
                    s.approver_keys = Some(set);
                }
                _ => {
                    let place = match path {
                        Some(p) => format!("in [{p}]"),
                        None => "at the top level".to_string(),
                    };
                    let extra = if path.is_none() { " and [wallets.\"<wallet id>\"]" } else { "" };
                    return Err(config(format!(
                        "unknown key `{key}` {place} of the policy; the known keys are {}{extra}. A misspelled key \
                         would silently drop a limit, so the whole policy is refused: fix or remove it",
                        KEYS.join(", ")
                    ))
                    .with_context("key", name));
                }
            }
        }
        Ok(s)
    }

    /// `over`'s keys where it sets them, `self`'s elsewhere.
    fn overridden_by(&self, over: &Settings) -> Settings {
        Settings {
            max_sats_per_tx: over.max_sats_per_tx.or(self.max_sats_per_tx),
            window_secs: over.window_secs.or(self.window_secs),
            max_sats_per_window: over.max_sats_per_window.or(self.max_sats_per_window),
            max_tx_per_window: over.max_tx_per_window.or(self.max_tx_per_window),
            allowed_destinations: over.allowed_destinations.clone().or_else(|| self.allowed_destinations.clone()),
            raw_digests: over.raw_digests.or(self.raw_digests),
            approver_keys: over.approver_keys.clone().or_else(|| self.approver_keys.clone()),
        }
    }

    fn rules(&self) -> Rules {
        Rules {
            max_sats_per_tx: self.max_sats_per_tx,
            window_secs: self.window_secs.unwrap_or(DEFAULT_WINDOW_SECS),
            max_sats_per_window: self.max_sats_per_window,
            max_tx_per_window: self.max_tx_per_window,
            allowed_destinations: self.allowed_destinations.clone(),
            raw_digests: self.raw_digests.unwrap_or_default(),
            approver_keys: self.approver_keys.iter().flatten().copied().collect(),
        }
    }
}

fn whole(name: &str, value: &Value, what: &str) -> Result<u64> {
    match value {
        Value::Integer(i) => u64::try_from(*i)
            .map_err(|_| config(format!("`{name}` is {i}; it must be {what}, 0 or more (an integer such as 50000)"))),
        other => Err(config(format!(
            "`{name}` must be {what}, an integer such as 50000 without quotes, not a {}",
            other.type_str()
        ))),
    }
}

fn strings<'a>(name: &str, value: &'a Value, what: &str) -> Result<Vec<&'a str>> {
    let bad = || config(format!("`{name}` must be a list of strings ({what}), for example [\"...\", \"...\"]"));
    value.as_array().ok_or_else(bad)?.iter().map(|v| v.as_str().ok_or_else(bad)).collect()
}

/// The locking script a destination stands for: a P2PKH address (mainnet or testnet; its
/// checksum is checked) or the script itself in hex. `Err` says what the text is not.
pub(crate) fn parse_destination(text: &str) -> std::result::Result<Vec<u8>, String> {
    let text = text.trim();
    match address::parse_p2pkh_address(text) {
        Ok((_, hash)) => Ok(Script::p2pkh_lock(&hash).into_bytes()),
        Err(_) if !text.is_empty() && text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(hex::decode(text).expect("checked: even-length hex"))
        }
        Err(e) => Err(format!(
            "neither a P2PKH address ({}) nor locking-script hex (an even number of hex digits)",
            e.message()
        )),
    }
}

fn parse_approver_key(text: &str) -> std::result::Result<PublicKey, &'static str> {
    let bytes = hex::decode(text.trim()).map_err(|_| "hex")?;
    if bytes.len() != 33 || !matches!(bytes[0], 2 | 3) {
        return Err("a compressed key of 33 bytes");
    }
    k256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| "a point on secp256k1")?;
    PublicKey::from_slice(&bytes).map_err(|_| "a compressed key")
}

/// A cosigner's spending policy, read from TOML (see the crate docs for the keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    top: Settings,
    wallets: BTreeMap<String, Settings>,
}

impl Policy {
    /// Parses a policy file. Refused (`Config`): TOML that does not parse, an unknown key
    /// anywhere (named), a value of the wrong kind or out of range (named, with what is expected).
    pub fn from_toml(text: &str) -> Result<Policy> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| config(format!("the policy file is not valid TOML: {e}")))?;
        let mut top_keys = toml::Table::new();
        let mut wallets = BTreeMap::new();
        for (key, value) in table {
            if key != "wallets" {
                top_keys.insert(key, value);
                continue;
            }
            let Value::Table(ids) = value else {
                return Err(config("`wallets` must hold one table per wallet: [wallets.\"<wallet id>\"]"));
            };
            for (id, value) in ids {
                let path = format!("wallets.{id:?}");
                if id.is_empty() {
                    return Err(config("[wallets.\"\"] names no wallet; use the wallet's id"));
                }
                let Value::Table(t) = value else {
                    return Err(config(format!("`{path}` must be a table: [{path}] followed by its keys")));
                };
                let settings = Settings::parse(&t, Some(&path))?;
                wallets.insert(id, settings);
            }
        }
        let top = Settings::parse(&top_keys, None)?;
        Ok(Policy { top, wallets })
    }

    /// The rules of `wallet`: its own table's keys over the top level's.
    pub fn rules_for(&self, wallet: &str) -> Rules {
        match self.wallets.get(wallet) {
            Some(own) => self.top.overridden_by(own).rules(),
            None => self.top.rules(),
        }
    }

    /// The wallets that have a table of their own.
    pub fn wallets(&self) -> impl Iterator<Item = &str> {
        self.wallets.keys().map(String::as_str)
    }

    /// 16 hex characters identifying what this policy enforces: the first 8 bytes of SHA-256
    /// over a canonical JSON of the default rules and of every wallet whose rules differ from
    /// them (defaults filled in, destinations as script hex, lists sorted). Two policies that
    /// enforce the same rules share it, however their files are written; any difference in a
    /// rule changes it.
    pub fn fingerprint(&self) -> String {
        #[derive(Serialize)]
        struct Canonical {
            v: u32,
            default: CanonicalRules,
            wallets: BTreeMap<String, CanonicalRules>,
        }
        let default = self.top.rules();
        let wallets = self
            .wallets
            .keys()
            .map(|id| (id, self.rules_for(id)))
            .filter(|(_, r)| *r != default)
            .map(|(id, r)| (id.clone(), CanonicalRules::of(&r)))
            .collect();
        let canonical = Canonical { v: 1, default: CanonicalRules::of(&default), wallets };
        let json = serde_json::to_vec(&canonical).expect("plain data serializes");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

/// Fields in a fixed order, so the JSON is canonical.
#[derive(Serialize)]
struct CanonicalRules {
    allowed_destinations: Option<Vec<String>>,
    approver_keys: Vec<String>,
    max_sats_per_tx: Option<u64>,
    max_sats_per_window: Option<u64>,
    max_tx_per_window: Option<u64>,
    raw_digests: RawDigests,
    window_secs: u64,
}

impl CanonicalRules {
    fn of(r: &Rules) -> Self {
        CanonicalRules {
            allowed_destinations: r.allowed_destinations.as_ref().map(|s| s.iter().map(hex::encode).collect()),
            approver_keys: r.approver_keys.iter().map(PublicKey::to_hex).collect(),
            max_sats_per_tx: r.max_sats_per_tx,
            max_sats_per_window: r.max_sats_per_window,
            max_tx_per_window: r.max_tx_per_window,
            raw_digests: r.raw_digests,
            window_secs: r.window_secs,
        }
    }
}

/// The rules one wallet is held to: each limit only when it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Rules {
    max_sats_per_tx: Option<u64>,
    window_secs: u64,
    max_sats_per_window: Option<u64>,
    max_tx_per_window: Option<u64>,
    allowed_destinations: Option<BTreeSet<Vec<u8>>>,
    raw_digests: RawDigests,
    approver_keys: Vec<PublicKey>,
}

impl Default for Rules {
    /// No limit, the default window, raw digests refused, no approvers: an empty policy file.
    fn default() -> Self {
        Settings::default().rules()
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("max_sats_per_tx", &self.max_sats_per_tx)
            .field("window_secs", &self.window_secs)
            .field("max_sats_per_window", &self.max_sats_per_window)
            .field("max_tx_per_window", &self.max_tx_per_window)
            .field(
                "allowed_destinations",
                &self.allowed_destinations.as_ref().map(|s| s.iter().map(hex::encode).collect::<Vec<_>>()),
            )
            .field("raw_digests", &self.raw_digests)
            .field("approver_keys", &self.approver_keys)
            .finish()
    }
}

impl Rules {
    /// The most net outflow one transaction may have, fee included.
    pub fn max_sats_per_tx(&self) -> Option<u64> {
        self.max_sats_per_tx
    }

    /// The length of the rolling window, in seconds (at least 1).
    pub fn window_secs(&self) -> u64 {
        self.window_secs
    }

    /// The most satoshis charged within one window.
    pub fn max_sats_per_window(&self) -> Option<u64> {
        self.max_sats_per_window
    }

    /// The most transactions charged within one window.
    pub fn max_tx_per_window(&self) -> Option<u64> {
        self.max_tx_per_window
    }

    /// The locking scripts a transaction may pay to; `None` when any destination is allowed.
    pub fn allowed_destinations(&self) -> Option<&BTreeSet<Vec<u8>>> {
        self.allowed_destinations.as_ref()
    }

    /// Whether raw digests are signed.
    pub fn raw_digests(&self) -> RawDigests {
        self.raw_digests
    }

    /// The keys whose signed approvals lift the limits for one payment.
    pub fn approver_keys(&self) -> &[PublicKey] {
        &self.approver_keys
    }

    /// The start of the window that ends at `now_ms` (what a store's `since_ms` is).
    pub fn window_start(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.window_secs.saturating_mul(1000))
    }

    /// What a cosigner's status reports about these rules.
    pub fn status(&self) -> RulesStatus {
        RulesStatus {
            max_sats_per_tx: self.max_sats_per_tx,
            window_secs: self.window_secs,
            max_sats_per_window: self.max_sats_per_window,
            max_tx_per_window: self.max_tx_per_window,
            allowed_destinations: self.allowed_destinations.as_ref().map(BTreeSet::len),
            approvers: self.approver_keys.len(),
            raw_digests: self.raw_digests,
        }
    }
}

/// A summary of [`Rules`] for a status report: the limits, and how many destinations and
/// approvers there are rather than which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RulesStatus {
    /// [`Rules::max_sats_per_tx`].
    pub max_sats_per_tx: Option<u64>,
    /// [`Rules::window_secs`].
    pub window_secs: u64,
    /// [`Rules::max_sats_per_window`].
    pub max_sats_per_window: Option<u64>,
    /// [`Rules::max_tx_per_window`].
    pub max_tx_per_window: Option<u64>,
    /// How many destinations are allowed; `None` when any is.
    pub allowed_destinations: Option<usize>,
    /// How many approver keys there are (0: no approval can lift a limit).
    pub approvers: usize,
    /// [`Rules::raw_digests`].
    pub raw_digests: RawDigests,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    const KEY_B: &str = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
    const BOAT: &str = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT";

    fn boat_script() -> Vec<u8> {
        wallet_bsv::address::locking_script_of(BOAT).unwrap().into_bytes()
    }

    #[test]
    fn every_key_and_a_wallet_override() {
        let text = format!(
            r#"
            max_sats_per_tx = 50000
            window_secs = 3600
            max_sats_per_window = 200000
            max_tx_per_window = 500
            allowed_destinations = ["{BOAT}", "76a914000000000000000000000000000000000000000088ac"]
            raw_digests = "allow"
            approver_keys = ["{KEY_A}"]

            [wallets."agent-1"]
            max_sats_per_tx = 1000
            allowed_destinations = []
            approver_keys = ["{KEY_B}", "{KEY_A}"]
            "#
        );
        let p = Policy::from_toml(&text).unwrap();
        let top = p.rules_for("someone-else");
        assert_eq!(top.max_sats_per_tx(), Some(50_000));
        assert_eq!(top.window_secs(), 3600);
        assert_eq!(top.max_sats_per_window(), Some(200_000));
        assert_eq!(top.max_tx_per_window(), Some(500));
        assert_eq!(top.raw_digests(), RawDigests::Allow);
        let allowed = top.allowed_destinations().unwrap();
        assert_eq!(allowed.len(), 2);
        assert!(allowed.contains(&boat_script()));
        assert_eq!(top.approver_keys().len(), 1);

        let own = p.rules_for("agent-1");
        assert_eq!(own.max_sats_per_tx(), Some(1000));
        assert_eq!(own.window_secs(), 3600, "kept from the top level");
        assert_eq!(own.max_sats_per_window(), Some(200_000));
        assert_eq!(own.allowed_destinations().map(BTreeSet::len), Some(0), "an empty list allows no destination");
        assert_eq!(own.approver_keys().len(), 2);
        let status = own.status();
        assert_eq!(
            (status.allowed_destinations, status.approvers, status.raw_digests),
            (Some(0), 2, RawDigests::Allow)
        );
        assert_eq!(p.wallets().collect::<Vec<_>>(), ["agent-1"]);
    }

    #[test]
    fn an_empty_file_sets_nothing_but_the_defaults() {
        let r = Policy::from_toml("").unwrap().rules_for("w");
        assert_eq!(r, Rules::default());
        assert_eq!(r.window_secs(), DEFAULT_WINDOW_SECS);
        assert_eq!(r.raw_digests(), RawDigests::Deny);
        assert_eq!(r.allowed_destinations(), None);
        assert_eq!(r.max_sats_per_tx(), None);
        assert_eq!(r.window_start(100_000_000), 100_000_000 - 86_400_000);
        assert_eq!(r.window_start(5), 0);
    }

    fn config_error(text: &str) -> Error {
        let e = Policy::from_toml(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        e
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = config_error("max_sat_per_tx = 5");
        assert!(e.message().contains("unknown key `max_sat_per_tx` at the top level"), "{e}");
        assert_eq!(e.context_value("key"), Some("max_sat_per_tx"));
        let e = config_error("[wallets.w1]\nmax_sats_per_tx = 5\nwindow = 60");
        assert!(e.message().contains("unknown key `window` in [wallets.\"w1\"]"), "{e}");
        assert_eq!(e.context_value("key"), Some("wallets.\"w1\".window"));
        // A nested table is an unknown key too, not silently ignored.
        let e = config_error("[wallets.w1.wallets.w2]\nmax_sats_per_tx = 5");
        assert!(e.message().contains("unknown key `wallets` in [wallets.\"w1\"]"), "{e}");
        let e = config_error("[limits]\nmax_sats_per_tx = 5");
        assert!(e.message().contains("unknown key `limits`"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let cases = [
            ("allowed_destinations = [\"1BoatSLRHtKNngkdXEeobR76b53LETtpyU\"]", "`allowed_destinations[0]`"),
            ("allowed_destinations = [\"76a9\", \"xyz\"]", "`allowed_destinations[1]`"),
            ("allowed_destinations = \"1BoatSLRHtKNngkdXEeobR76b53LETtpyT\"", "must be a list of strings"),
            ("max_sats_per_tx = -1", "`max_sats_per_tx` is -1"),
            ("max_sats_per_tx = \"50000\"", "`max_sats_per_tx` must be a number of satoshis"),
            ("max_sats_per_window = 1.5", "`max_sats_per_window` must be"),
            ("window_secs = 0", "`window_secs` is 0"),
            ("raw_digests = \"yes\"", "`raw_digests` must be \"deny\""),
            ("approver_keys = [\"02abcd\"]", "`approver_keys[0]` is not a compressed key"),
            ("approver_keys = [\"04ab\"]", "`approver_keys[0]`"),
            ("wallets = 5", "`wallets` must hold one table per wallet"),
            ("[wallets.w]\nmax_tx_per_window = true", "`wallets.\"w\".max_tx_per_window` must be"),
            ("max_sats_per_tx = ", "not valid TOML"),
        ];
        for (text, wanted) in cases {
            let e = config_error(text);
            assert!(e.message().contains(wanted), "{text}: {e}");
        }
        // 02 followed by an x that is not on the curve.
        let off_curve = format!("approver_keys = [\"02{}\"]", "00".repeat(32));
        assert!(config_error(&off_curve).message().contains("a point on secp256k1"));
    }

    #[test]
    fn fingerprint_is_stable_and_tells_policies_apart() {
        let a = Policy::from_toml(&format!(
            "max_sats_per_tx = 50000\nallowed_destinations = [\"{BOAT}\", \"51\"]\n\
             approver_keys = [\"{KEY_A}\", \"{KEY_B}\"]"
        ))
        .unwrap();
        // The same rules written otherwise: script hex for the address, other order, the default
        // window spelled out, a wallet table that changes nothing.
        let b = Policy::from_toml(&format!(
            "approver_keys = [\"{KEY_B}\", \"{KEY_A}\"]\nwindow_secs = 86400\nallowed_destinations = [\"51\", \"{}\"]\n\
             max_sats_per_tx = 50000\n[wallets.w]\nmax_sats_per_tx = 50000",
            hex::encode(boat_script())
        ))
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());

        let mut seen = std::collections::HashSet::new();
        for text in [
            "",
            "max_sats_per_tx = 50001",
            "max_sats_per_tx = 50000",
            "window_secs = 86401",
            "raw_digests = \"allow\"",
            "allowed_destinations = []",
            "[wallets.w]\nmax_sats_per_tx = 1",
            "[wallets.v]\nmax_sats_per_tx = 1",
            &format!("approver_keys = [\"{KEY_A}\"]"),
        ] {
            assert!(seen.insert(Policy::from_toml(text).unwrap().fingerprint()), "{text}");
        }
    }
}
