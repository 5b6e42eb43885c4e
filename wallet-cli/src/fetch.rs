//! `mpc-wallet fetch`: an HTTP request authenticated with the wallet's identity (BRC-103 over
//! BRC-104, as @bsv/sdk's `AuthFetch`), paying a server that asks for it (BRC-41, 402) from the
//! wallet's change, up to `--max-pay` satoshis.

use std::{io::Write, path::Path, sync::Arc};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use wallet_auth::{ActionsPayer, AuthClient, AuthRequest, CertificateSource};
use wallet_brc100::{actions::Actions, identity::Identity};

/// What `fetch` was asked.
#[derive(Debug)]
pub(crate) struct Fetch {
    pub(crate) url: String,
    pub(crate) method: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) headers: Vec<String>,
    pub(crate) max_pay: u64,
    pub(crate) no_certificates: bool,
}

/// The wallet's certificates, shown to a server that asks for them (its `certificatesToRequest`):
/// each proven for that server with exactly the fields it names, and said on standard error, so
/// the operator sees what was revealed to whom.
struct Revealing(Identity);

#[async_trait::async_trait]
impl CertificateSource for Revealing {
    async fn certificates_for(&self, requested: &Value, verifier: &str) -> wallet_traits::Result<Vec<Value>> {
        let shown = self.0.certificates_for(requested, verifier).await?;
        for c in &shown {
            let fields: Vec<&str> =
                c["keyring"].as_object().map(|k| k.keys().map(String::as_str).collect()).unwrap_or_default();
            eprintln!(
                "revealed fields [{}] of certificate {} from certifier {} to {verifier}",
                fields.join(", "),
                c["type"].as_str().unwrap_or_default(),
                c["certifier"].as_str().unwrap_or_default(),
            );
        }
        Ok(shown)
    }
}

/// Where the certificates servers ask for come from: the wallet's own, unless `--no-certificates`
/// (then a server that asks is refused before any request goes to it) or the store keeps none.
fn certificate_source(actions: &Arc<Actions>, show: bool) -> Option<Arc<dyn CertificateSource>> {
    let store = actions.output_store().clone().certificates().filter(|_| show)?;
    Some(Arc::new(Revealing(Identity::new(actions.keys().clone(), Some(store)))))
}

/// `K: V` into a header.
fn header(text: &str) -> Result<(String, String)> {
    let (name, value) = text.split_once(':').with_context(|| format!("--header {text:?} is not 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() {
        bail!("--header {text:?} has no name");
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// The body: `@FILE` reads a file, anything else is the body itself.
fn body(text: &str) -> Result<Vec<u8>> {
    match text.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the body from {path}")),
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// The request as given: the method defaults to GET, or POST with a body; a body without a
/// content-type header is JSON when it parses as JSON, else plain text.
fn request(f: &Fetch) -> Result<AuthRequest> {
    let mut headers = f.headers.iter().map(|h| header(h)).collect::<Result<Vec<_>>>()?;
    let body = f.body.as_deref().map(body).transpose()?;
    if let Some(b) = &body {
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            let json = serde_json::from_slice::<serde_json::Value>(b).is_ok();
            headers.push(("content-type".into(), if json { "application/json" } else { "text/plain" }.into()));
        }
    }
    let method = f.method.clone().unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    Ok(AuthRequest { method, headers, body })
}

/// `mpc-wallet fetch`: prints the status line and the body on standard output, the server's
/// identity and what was paid on standard error. `Ok(false)` (exit 1) for a status of 400 or
/// more; an answer that fails authentication is an error.
pub(crate) async fn run(file: Option<&Path>, f: Fetch) -> Result<bool> {
    // Refuse a malformed request before the wallet starts.
    let request = request(&f)?;
    let actions = crate::books::start(file).await?;
    let mut client = AuthClient::new(actions.keys().clone())
        .with_payer(Arc::new(ActionsPayer::new(actions.clone())))
        .max_payment_satoshis(f.max_pay);
    if let Some(source) = certificate_source(&actions, !f.no_certificates) {
        client = client.with_certificates(source);
    }
    let response = client.fetch(&f.url, request).await?;
    eprintln!("server identity: {}", response.server_identity_key);
    if let Some(paid) = &response.payment {
        eprintln!("paid {} satoshis to {} in {}", paid.satoshis, paid.payee, paid.txid);
    }
    let reason =
        axum::http::StatusCode::from_u16(response.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {reason}", response.status)?;
    out.write_all(&response.body)?;
    out.flush()?;
    Ok(response.status < 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(method: Option<&str>, body: Option<&str>, headers: &[&str]) -> Fetch {
        Fetch {
            url: "http://x.test/".into(),
            method: method.map(str::to_string),
            body: body.map(str::to_string),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            max_pay: 0,
            no_certificates: false,
        }
    }

    #[test]
    fn requests_from_the_command_line() {
        let r = request(&fetch(None, None, &["X-BSV-Topic:  news "])).unwrap();
        assert_eq!((r.method.as_str(), r.body), ("GET", None));
        assert_eq!(r.headers, [("X-BSV-Topic".to_string(), "news".to_string())]);
        let r = request(&fetch(None, Some(r#"{"a":1}"#), &[])).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers, [("content-type".to_string(), "application/json".to_string())]);
        let r = request(&fetch(Some("PUT"), Some("hello"), &["Content-Type: text/markdown"])).unwrap();
        assert_eq!(r.method, "PUT");
        assert_eq!(r.headers, [("Content-Type".to_string(), "text/markdown".to_string())]);
        let r = request(&fetch(None, Some("hello"), &[])).unwrap();
        assert_eq!(r.headers, [("content-type".to_string(), "text/plain".to_string())]);
        assert!(request(&fetch(None, None, &["no colon"])).is_err());
        assert!(request(&fetch(None, None, &[": empty"])).is_err());
        assert!(request(&fetch(None, Some("@/nonexistent/file"), &[])).is_err());
    }
}
