//! A BRC-103 request with a single in-memory key and fixed certificates: how to use
//! `wallet-auth` without the MPC wallet, and what `interop/auth.test.mjs` runs to check the
//! certificate exchange against the real Express middleware. Not for real funds: the whole key
//! sits in one process (`wallet_brc100::SingleKey`), and it pays nothing.
//!
//! ```sh
//! AUTH_KEY=<64 hex> AUTH_CERTIFICATES=certs.json cargo run -p wallet-auth --example auth_fetch -- URL [METHOD [JSON BODY]]
//! ```
//!
//! Prints one JSON line: `{"status", "serverIdentityKey", "body"}`; exits 1 with the error on
//! standard error when the answer is refused.

use std::{process::ExitCode, sync::Arc};

use wallet_auth::{AuthClient, AuthRequest, StaticCertificates};
use wallet_brc100::{KeyMethods, SingleKey};

async fn run() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: auth_fetch URL [METHOD [JSON BODY]]")?;
    let method = args.next().unwrap_or_else(|| "GET".into());
    let body = args.next();
    let key = std::env::var("AUTH_KEY").map_err(|_| "set AUTH_KEY to a private key (64 hex digits)")?;
    let key: [u8; 32] =
        hex::decode(key.trim()).ok().and_then(|k| k.try_into().ok()).ok_or("AUTH_KEY is not 64 hex digits")?;
    let key = Arc::new(SingleKey::from_bytes(key).map_err(|e| e.to_string())?);
    let keys = Arc::new(KeyMethods::new(key.clone(), key, wallet_bsv::Network::Mainnet));
    let mut client = AuthClient::new(keys);
    if let Ok(path) = std::env::var("AUTH_CERTIFICATES") {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        client = client.with_certificates(Arc::new(StaticCertificates::from_json(&text).map_err(|e| e.to_string())?));
    }
    let request = match body {
        Some(body) => AuthRequest::with_body(&method, "application/json", body),
        None => AuthRequest { method, ..AuthRequest::get() },
    };
    let response = client.fetch(&url, request).await.map_err(|e| format!("{} ({})", e, e.kind()))?;
    Ok(serde_json::json!({
        "status": response.status,
        "serverIdentityKey": response.server_identity_key,
        "body": String::from_utf8_lossy(&response.body),
    })
    .to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
