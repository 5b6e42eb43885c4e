//! Checks on what a model hands the tools: each failure is a sentence that says what is wrong
//! and what to send instead, returned as the tool's error.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use wallet_bsv::{amount::MAX_SATOSHIS, Network, Script};

/// The longest echo of a refused value in an error.
const ECHO_CHARS: usize = 60;

/// A value shortened for an error message, control characters dropped.
pub(crate) fn echo(value: &str) -> String {
    let mut s: String = value.chars().take(ECHO_CHARS).filter(|c| !c.is_control()).collect();
    if value.chars().count() > ECHO_CHARS {
        s.push('…');
    }
    s
}

/// The arguments as `T`, refusing more than `max_bytes` of JSON before reading them.
pub(crate) fn args<T: DeserializeOwned>(arguments: Map<String, Value>, max_bytes: usize) -> Result<T, String> {
    let size = serde_json::to_vec(&arguments).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max_bytes {
        return Err(format!(
            "the arguments are {size} bytes, more than this tool accepts ({max_bytes} bytes); send less data per call"
        ));
    }
    serde_json::from_value(Value::Object(arguments))
        .map_err(|e| format!("the arguments do not match the tool's input schema: {e}; fix them and call again"))
}

/// A string argument of at most `max` bytes.
pub(crate) fn text<'a>(name: &str, value: &'a str, max: usize) -> Result<&'a str, String> {
    if value.len() > max {
        return Err(format!("{name} is {} bytes, longer than the {max} bytes allowed", value.len()));
    }
    Ok(value)
}

/// An amount to pay: at least 1 satoshi, at most the 21 million coins there are.
pub(crate) fn satoshis(name: &str, value: u64) -> Result<u64, String> {
    if value == 0 || value > MAX_SATOSHIS {
        return Err(format!(
            "{name} must be a whole number of satoshis from 1 to {MAX_SATOSHIS} (1 BSV is 100000000 satoshis); got {value}"
        ));
    }
    Ok(value)
}

/// Where to pay: [`wallet_bsv::address::payee`], its refusal in words for a model.
pub(crate) fn destination(to: &str) -> Result<(Option<Network>, Script), String> {
    wallet_bsv::address::payee(to).map_err(|e| {
        format!(
            "`to` ({}) is not a BSV address or a locking script in hex: {}. Send a P2PKH address such as \
             1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH, or the output script as hex",
            echo(to.trim()),
            e.message()
        )
    })
}

/// A URL the wallet may fetch: http or https with a host, nothing else (no file://, data:, ...).
/// Parsed as reqwest parses it (WHATWG), so its host is the host the request goes to.
pub(crate) fn url(value: &str) -> Result<url::Url, String> {
    let value = text("url", value.trim(), 2048)?;
    let refuse = || {
        format!(
            "url ({}) must be an http:// or https:// URL with a host, such as https://api.example/data; other schemes \
             (file://, data:, ...) are refused",
            echo(value)
        )
    };
    let parsed = url::Url::parse(value).map_err(|_| refuse())?;
    // `https:///x` would be read as `https://x/`: a URL whose host is not where it seems is refused.
    let authority = value.split_once("://").map_or("", |(_, rest)| rest);
    let web = matches!(parsed.scheme(), "http" | "https") && !authority.starts_with(['/', '\\']);
    if !web || parsed.host_str().is_none_or(str::is_empty) || value.chars().any(char::is_whitespace) {
        return Err(refuse());
    }
    Ok(parsed)
}

/// The host of a URL, lower-case, IPv6 without brackets.
pub(crate) fn host_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_ascii_lowercase()
}

/// A public key in compressed hex (66 characters), or `None` for the given default.
pub(crate) fn public_key(name: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    let ok = v.len() == 66 && (v.starts_with("02") || v.starts_with("03")) && hex::decode(v).is_ok();
    if !ok {
        return Err(format!(
            "{name} ({}) must be a compressed public key: 66 hex characters starting with 02 or 03",
            echo(v)
        ));
    }
    Ok(v.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_scripts_and_urls_are_checked() {
        assert!(satoshis("satoshis", 0).is_err());
        assert!(satoshis("satoshis", MAX_SATOSHIS + 1).is_err());
        assert_eq!(satoshis("satoshis", 1000), Ok(1000));
        assert_eq!(destination("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH").unwrap().0, Some(Network::Mainnet));
        assert_eq!(destination("mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r").unwrap().0, Some(Network::Testnet));
        assert!(destination("76a914751e76e8199196d454941c45d1b3a323f1433bd688ac").is_ok());
        for bad in [
            "",
            "zz",
            "4c",
            "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMX",
            &"00".repeat(wallet_bsv::address::MAX_PAYEE_SCRIPT + 1),
        ] {
            assert!(destination(bad).is_err(), "{bad:.20}");
        }
        assert!(url("https://api.example/x").is_ok());
        assert!(url("http://127.0.0.1:8080/paid").is_ok());
        for bad in
            ["file:///etc/passwd", "FILE:///x", "data:text/plain,hi", "http://", "ftp://x", "https:///x", "http://a b"]
        {
            assert!(url(bad).is_err(), "{bad}");
        }
        let host = |u: &str| host_of(&url(u).unwrap());
        assert_eq!(host("https://user:pw@API.Example.com:8443/x?y#z"), "api.example.com");
        assert_eq!(host("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host("http://[::1]:80/"), "::1");
        assert_eq!(host("http://a.example?x=@evil"), "a.example");
        // WHATWG reads a backslash as a slash: the host is the one before it, as reqwest goes.
        assert_eq!(host("http://inside.lan\\@api.good.example/"), "inside.lan");
        assert!(public_key("k", &format!("02{}", "ab".repeat(32))).is_ok());
        assert!(public_key("k", "04ab").is_err());
    }

    #[test]
    fn oversized_arguments_are_refused_before_parsing() {
        let mut m = Map::new();
        m.insert("x".into(), Value::String("a".repeat(100)));
        assert!(args::<Value>(m, 50).unwrap_err().contains("more than this tool accepts"));
    }
}
