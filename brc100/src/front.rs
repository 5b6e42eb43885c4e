//! The BRC-100 JSON front: `POST /{method}` with a JSON body, JSON out, errors as HTTP 400
//! `{"isError": true, "code": ..., "message": ...}`, as @bsv/sdk's `HTTPWalletJSON` expects.
//! Local programs, and the web apps its operator allows (see [`FrontPolicy`]), can then use the
//! MPC wallet at 127.0.0.1:3321.

use std::sync::Arc;

use crate::{actions::Actions, identity::Identity, KeyMethods, CODE};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use wallet_traits::{Error, ErrorKind};

pub(crate) mod door;

use door::{refusal, Door, FrontPolicy};

#[derive(Clone)]
struct Front {
    methods: Arc<KeyMethods>,
    actions: Option<Arc<Actions>>,
    identity: Option<Arc<Identity>>,
}

/// The BRC-100 JSON routes over `methods` and, when given, the action methods `actions` and the
/// identity methods `identity` (without them, those answer "not supported"), behind the checks of `policy` (see
/// [`FrontPolicy`]): in-flight cap → `Host` → `Origin` and the CORS preflight → bearer token
/// → content type → bounded body read → the method.
///
/// `public` holds routes such as `/health` that sit behind the in-flight cap and the `Host`
/// check only: no token, no CORS grant. Give the policy the listening address
/// ([`FrontPolicy::listening_on`]) or only `localhost` and `MPC_ALLOWED_HOSTS` are accepted.
pub fn brc100_router(
    methods: Arc<KeyMethods>,
    actions: Option<Arc<Actions>>,
    identity: Option<Arc<Identity>>,
    policy: FrontPolicy,
    public: Router,
) -> Router {
    let keyed = Router::new()
        .route("/{method}", post(call))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The body is already bounded and buffered by `read_body`.
        .layer(axum::extract::DefaultBodyLimit::max(policy.limits().max_body_bytes))
        .with_state(Front { methods, actions, identity });
    guarded(keyed, policy, public)
}

/// `router` behind the front's checks, exactly as the BRC-100 routes are (in-flight cap → `Host`
/// → `Origin` and the CORS preflight → bearer token → content type of POST bodies → bounded body
/// read), with `public` behind the in-flight cap and the `Host` check only. The MCP endpoint of
/// `mpc-wallet mcp --listen` sits behind it, so it refuses what the front refuses, in the same
/// words.
pub fn guarded(router: Router, policy: FrontPolicy, public: Router) -> Router {
    let door = Door::new(policy);
    router
        // Layers run outermost last-added: origin → token → content type → body.
        .layer(from_fn_with_state(door.clone(), door::read_body))
        .layer(from_fn(door::content_type))
        .layer(from_fn_with_state(door.clone(), door::token))
        .layer(from_fn_with_state(door.clone(), door::origin))
        .merge(public)
        .layer(from_fn_with_state(door.clone(), door::host))
        .layer(from_fn_with_state(door, door::in_flight))
}

async fn not_found() -> Response {
    refusal(StatusCode::NOT_FOUND, "ERR_NOT_FOUND", "no such path: the BRC-100 methods are POST /{method}")
}

async fn method_not_allowed() -> Response {
    refusal(StatusCode::METHOD_NOT_ALLOWED, "ERR_METHOD_NOT_ALLOWED", "call the BRC-100 methods with POST")
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, serde_json::to_vec(v).unwrap_or_default()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A method's error in BRC-100's shape. The numeric codes are @bsv/sdk's: 6 is
/// `WERR_INVALID_PARAMETER` (with the `parameter`), 7 `WERR_INSUFFICIENT_FUNDS` (with the
/// satoshis needed), and 1 every other wallet error (`WalletError`'s default), whose `name` is
/// the toolbox's `WERR_*` for it and whose `kind` is ours, for a client to branch on. A code the
/// method set itself (@bsv/sdk's `ERR_INVALID_SIGNATURE`, `ERR_INVALID_HMAC`) stands, and a
/// cosigner's policy refusal is `ERR_POLICY_DENIED`, a code no retry or other input changes.
fn error_response(e: &Error) -> Response {
    let code: Value = match (e.kind(), e.context_value(CODE)) {
        (_, Some(code)) => json!(code),
        (ErrorKind::InvalidInput, None) => json!(6),
        (ErrorKind::InsufficientFunds, None) => json!(7),
        (ErrorKind::PolicyDenied, None) => json!("ERR_POLICY_DENIED"),
        _ => json!(1),
    };
    let mut body =
        json!({ "isError": true, "code": code, "name": werr_name(e.kind()), "kind": e.kind(), "message": e.message() });
    if code == json!(6) {
        body["parameter"] = json!(e.context_value("parameter").unwrap_or("args"));
    }
    if e.kind() == ErrorKind::PolicyDenied {
        // What a person needs to act on a refusal: the rule, and the approval that would lift it.
        for (field, key) in [("rule", "rule"), ("approvalRequest", "approval_request"), ("approve", "approve")] {
            if let Some(v) = e.context_value(key) {
                body[field] = json!(v);
            }
        }
    }
    if code == json!(7) {
        for field in ["totalSatoshisNeeded", "moreSatoshisNeeded"] {
            let n = e.context_value(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            body[field] = json!(n);
        }
    }
    json_response(StatusCode::BAD_REQUEST, &body)
}

/// The wallet toolbox's error name for `kind`.
fn werr_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "WERR_INVALID_PARAMETER",
        ErrorKind::InsufficientFunds => "WERR_INSUFFICIENT_FUNDS",
        ErrorKind::Unsupported => "WERR_NOT_IMPLEMENTED",
        ErrorKind::Unauthorized | ErrorKind::WrongSecret => "WERR_UNAUTHORIZED",
        ErrorKind::NotFound
        | ErrorKind::AlreadyExists
        | ErrorKind::Conflict
        | ErrorKind::PolicyDenied
        | ErrorKind::Rejected => "WERR_INVALID_OPERATION",
        ErrorKind::ServiceUnavailable => "WERR_BROADCAST_UNAVAILABLE",
        _ => "WERR_INTERNAL",
    }
}

fn args<T: DeserializeOwned>(body: &Bytes) -> Result<T, Error> {
    let raw: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    serde_json::from_slice(raw).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("the arguments are not valid: {e}"))
            .with_context("parameter", "args")
    })
}

async fn call(State(f): State<Front>, Path(method): Path<String>, body: Bytes) -> Response {
    let m = &f.methods;
    let result: Result<Value, Error> = async {
        Ok(match method.as_str() {
            "getPublicKey" => json!(m.get_public_key(args(&body)?).await?),
            "createSignature" => json!({ "signature": m.create_signature(args(&body)?).await? }),
            "verifySignature" => json!({ "valid": m.verify_signature(args(&body)?).await? }),
            "createHmac" => json!({ "hmac": m.create_hmac(args(&body)?).await? }),
            "verifyHmac" => json!({ "valid": m.verify_hmac(args(&body)?).await? }),
            "encrypt" => json!({ "ciphertext": m.encrypt(args(&body)?).await? }),
            "decrypt" => json!({ "plaintext": m.decrypt(args(&body)?).await?.to_vec() }),
            "revealSpecificKeyLinkage" => json!(m.reveal_specific_key_linkage(args(&body)?).await?),
            "revealCounterpartyKeyLinkage" => json!(m.reveal_counterparty_key_linkage(args(&body)?).await?),
            "getNetwork" => json!({ "network": m.network().to_string() }),
            "getVersion" => json!({ "version": m.version() }),
            "isAuthenticated" | "waitForAuthentication" => json!({ "authenticated": m.is_authenticated() }),
            "acquireCertificate"
            | "listCertificates"
            | "proveCertificate"
            | "relinquishCertificate"
            | "discoverByIdentityKey"
            | "discoverByAttributes" => return identity(f.identity.as_deref(), &method, &body).await,
            other => return action(f.actions.as_deref(), other, &body).await,
        })
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

/// The action methods, when the wallet has an output store.
async fn action(actions: Option<&Actions>, method: &str, body: &Bytes) -> Result<Value, Error> {
    let unsupported = || {
        Error::new(
            ErrorKind::Unsupported,
            format!("{method} is not supported by this wallet: it offers the BRC-100 key and action methods"),
        )
    };
    const ACTIONS: [&str; 9] = [
        "createAction",
        "signAction",
        "abortAction",
        "internalizeAction",
        "listOutputs",
        "listActions",
        "relinquishOutput",
        "getHeight",
        "getHeaderForHeight",
    ];
    let Some(a) = actions else {
        if ACTIONS.contains(&method) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{method} needs the wallet's output store, which this front was started without"),
            ));
        }
        return Err(unsupported());
    };
    Ok(match method {
        "createAction" => json!(a.create_action(args(body)?).await?),
        "signAction" => json!(a.sign_action(args(body)?).await?),
        "abortAction" => json!({ "aborted": a.abort_action(args(body)?).await? }),
        "internalizeAction" => json!({ "accepted": a.internalize_action(args(body)?).await? }),
        "listOutputs" => json!(a.list_outputs(args(body)?).await?),
        "listActions" => json!(a.list_actions(args(body)?).await?),
        "relinquishOutput" => json!({ "relinquished": a.relinquish_output(args(body)?).await? }),
        "getHeight" => json!({ "height": a.get_height().await? }),
        "getHeaderForHeight" => json!({ "header": a.get_header_for_height(args(body)?).await? }),
        _ => return Err(unsupported()),
    })
}

/// The identity methods, when the wallet was started with them.
async fn identity(identity: Option<&Identity>, method: &str, body: &Bytes) -> Result<Value, Error> {
    let Some(i) = identity else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("{method} needs the wallet's identity methods, which this front was started without"),
        ));
    };
    Ok(match method {
        "acquireCertificate" => json!(i.acquire_certificate(args(body)?).await?),
        "listCertificates" => json!(i.list_certificates(args(body)?).await?),
        "proveCertificate" => json!(i.prove_certificate(args(body)?).await?),
        "relinquishCertificate" => json!({ "relinquished": i.relinquish_certificate(args(body)?).await? }),
        "discoverByIdentityKey" => json!(i.discover_by_identity_key(args(body)?).await?),
        _ => json!(i.discover_by_attributes(args(body)?).await?),
    })
}
