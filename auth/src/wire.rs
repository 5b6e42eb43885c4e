//! BRC-104's bytes: how @bsv/sdk's `AuthFetch` serializes an HTTP request into the payload of a
//! general message, which headers it signs and sends, and the payload its
//! `SimplifiedFetchTransport` rebuilds from a server's response to check the server's signature.
//! Every rule here is the SDK's (checked against bytes the SDK produced, `tests/fixtures/sdk.json`);
//! the few places where we normalize more than it does are said where they are.
//!
//! A request payload: the 32-byte request id, the method, the path, the search (`?...`), the
//! included headers, the body; a response payload: the request id, the status, the included
//! headers, the body. Lengths and counts are Bitcoin VarInts, and "absent" is -1 written as the
//! nine bytes `ff ff…ff` (the SDK's `writeVarIntNum(-1)`).

use wallet_bsv::encoding::locale_compare;
use wallet_traits::{Error, ErrorKind, Result};

/// The BRC-103 protocol version this client speaks (`x-bsv-auth-version`).
pub const AUTH_VERSION: &str = "0.1";

/// The request headers the server's answer and our request carry (BRC-104).
pub mod header {
    /// The protocol version.
    pub const VERSION: &str = "x-bsv-auth-version";
    /// The sender's identity key (compressed hex).
    pub const IDENTITY_KEY: &str = "x-bsv-auth-identity-key";
    /// The sender's nonce for this message.
    pub const NONCE: &str = "x-bsv-auth-nonce";
    /// The recipient's session nonce.
    pub const YOUR_NONCE: &str = "x-bsv-auth-your-nonce";
    /// The sender's signature over the payload, DER hex.
    pub const SIGNATURE: &str = "x-bsv-auth-signature";
    /// The request id (base64 of 32 bytes), which the response repeats.
    pub const REQUEST_ID: &str = "x-bsv-auth-request-id";
    /// `certificateRequest` when a response is a request for certificates.
    pub const MESSAGE_TYPE: &str = "x-bsv-auth-message-type";
    /// The certificates a server asks for (JSON).
    pub const REQUESTED_CERTIFICATES: &str = "x-bsv-auth-requested-certificates";
}

/// "Absent" in a payload: the SDK's `writeVarIntNum(-1)`.
const ABSENT: u64 = u64::MAX;

/// Methods for which `AuthFetch` supplies a body when the caller gave none.
const BODY_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.into())
}

/// Bitcoin's VarInt, as `Writer.writeVarIntNum` writes a non-negative number.
pub(crate) fn write_varint(out: &mut Vec<u8>, n: u64) {
    wallet_bsv::encoding::write_varint(out, n);
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Whether a lowercase response header name is signed: `x-bsv-*` except `x-bsv-auth*`, and
/// `authorization` (the SDK's rule on both sides).
pub fn is_signed_response_header(name: &str) -> bool {
    (name.starts_with("x-bsv-") || name == "authorization") && !name.starts_with("x-bsv-auth")
}

/// Whether a content type's body travels as UTF-8 text: the SDK's transport sends these through
/// `TextDecoder`, and Express's parsers decode them.
fn is_text(content_type: &str) -> bool {
    ["application/json", "application/x-www-form-urlencoded", "text/plain"].iter().any(|t| content_type.contains(t))
}

/// Headers for a `Debug` print: an `authorization` value is a credential, and is not shown.
pub(crate) fn redacted(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), if n.eq_ignore_ascii_case("authorization") { "<redacted>" } else { v.as_str() }))
        .collect()
}

/// An HTTP request as `AuthFetch` signs and sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestParts {
    method: String,
    path: String,
    search: String,
    /// The included headers: lowercase names, sorted with [`locale_compare`].
    headers: Vec<(String, String)>,
    /// `None` is "no body" (-1); never `Some` of nothing.
    body: Option<Vec<u8>>,
}

impl std::fmt::Debug for RequestParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestParts")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("search", &self.search)
            .field("headers", &redacted(&self.headers))
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

impl RequestParts {
    /// The request `method` to `url` with the caller's `headers` and `body`, under
    /// `AuthFetch.serializeRequest`'s rules:
    ///
    /// - only `content-type` (its parameters dropped: `application/json; charset=utf-8` is
    ///   `application/json`), `authorization` and `x-bsv-*` headers, names lowercased; `x-bsv-auth*`
    ///   is the protocol's own and refused, as is any other header;
    /// - POST, PUT, PATCH and DELETE without a body get `{}` when the content type is JSON,
    ///   otherwise no body; an empty body is no body;
    /// - a body needs a content type.
    ///
    /// Beyond the SDK, so that the server sees what we sign: the method is upper-cased (fetch
    /// upper-cases the common ones on the wire), header values are trimmed (HTTP drops the
    /// spaces around them), a JSON body becomes `JSON.stringify(JSON.parse(body))` (the auth
    /// middleware checks our signature against that re-serialization of what Express parsed), and
    /// a text body (JSON, form, plain text) is read as JavaScript's `TextDecoder` reads it. A
    /// GET or HEAD with a body is refused, as fetch refuses it.
    pub fn new(url: &reqwest::Url, method: &str, headers: &[(String, String)], body: Option<&[u8]>) -> Result<Self> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return Err(invalid(format!("{method:?} is not an HTTP method")));
        }
        let method = method.to_ascii_uppercase();
        let mut included: Vec<(String, String)> = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            if name.starts_with("x-bsv-") || name == "authorization" {
                if name.starts_with("x-bsv-auth") {
                    return Err(invalid(format!(
                        "the header {name} belongs to the authentication protocol; the client sets it"
                    )));
                }
                included.push((name, value.to_string()));
            } else if name.starts_with("content-type") {
                let value = value.split(';').next().unwrap_or_default().trim();
                included.push((name, value.to_string()));
            } else {
                return Err(invalid(format!(
                    "the header {name} cannot be sent authenticated: only content-type, authorization and x-bsv-* \
                     headers are (BRC-104, as @bsv/sdk's AuthFetch)"
                )));
            }
        }
        for (name, value) in &included {
            // The wire carries Latin-1; what does not fit could not be sent as signed.
            if value.chars().any(|c| c as u32 > 0xff || c.is_control()) {
                return Err(invalid(format!("the value of header {name} has characters an HTTP header cannot carry")));
            }
        }
        included.sort_by(|(a, _), (b, _)| locale_compare(a, b));
        let content_type = included.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.clone());
        let body = match body {
            None if BODY_METHODS.contains(&method.as_str()) => {
                content_type.as_deref().filter(|t| t.contains("application/json")).map(|_| b"{}".to_vec())
            }
            None => None,
            Some([]) => None,
            Some(b) => {
                let Some(content_type) = content_type.as_deref() else {
                    return Err(invalid("a request with a body needs a content-type header (add one with --header)"));
                };
                Some(if is_text(content_type) {
                    let text = wallet_bsv::encoding::js_utf8(b);
                    if content_type == "application/json" {
                        crate::json::restringify(&text).unwrap_or(text).into_bytes()
                    } else {
                        text.into_bytes()
                    }
                } else {
                    b.to_vec()
                })
            }
        };
        if body.is_some() && (method == "GET" || method == "HEAD") {
            return Err(invalid(format!("a {method} request cannot carry a body")));
        }
        // WHATWG's `search` is empty for both "no query" and "?", and fetch sends neither.
        let search = url.query().filter(|q| !q.is_empty()).map(|q| format!("?{q}")).unwrap_or_default();
        Ok(Self { method, path: url.path().to_string(), search, headers: included, body })
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path and search, what follows the origin in the request line.
    pub fn path_and_search(&self) -> String {
        format!("{}{}", self.path, self.search)
    }

    /// The included headers, in signing order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body sent, if any.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The same request with one more header (replacing one of that name), as the 402 retry
    /// adds `x-bsv-payment`.
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut next = self.clone();
        next.headers.retain(|(n, _)| n != name);
        next.headers.push((name.to_string(), value.to_string()));
        next.headers.sort_by(|(a, _), (b, _)| locale_compare(a, b));
        next
    }

    /// The general message's payload for request id `request_id`.
    pub fn payload(&self, request_id: &[u8; 32]) -> Vec<u8> {
        let mut out = request_id.to_vec();
        write_bytes(&mut out, self.method.as_bytes());
        // WHATWG's pathname of an http(s) URL is never empty (at least "/").
        write_bytes(&mut out, self.path.as_bytes());
        if self.search.is_empty() {
            write_varint(&mut out, ABSENT);
        } else {
            write_bytes(&mut out, self.search.as_bytes());
        }
        write_varint(&mut out, self.headers.len() as u64);
        for (name, value) in &self.headers {
            write_bytes(&mut out, name.as_bytes());
            write_bytes(&mut out, value.as_bytes());
        }
        match &self.body {
            Some(body) => write_bytes(&mut out, body),
            None => write_varint(&mut out, ABSENT),
        }
        out
    }
}

/// How a signed empty body is written: the SDK's client writes length 0, the Express auth
/// middleware (which signs) writes -1. Both describe the same response, so a client accepts
/// either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyBody {
    /// Length 0 (`SimplifiedFetchTransport`).
    Zero,
    /// -1 (`@bsv/auth-express-middleware`'s `buildResponsePayload`).
    Absent,
}

/// The signed headers of a response, from its raw headers (lowercase names, values as text,
/// a name possibly repeated): fetch joins a repeated header's values with ", ", and the SDK
/// keeps [`is_signed_response_header`] ones, sorted with [`locale_compare`].
pub fn signed_response_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut signed: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if !is_signed_response_header(&name) {
            continue;
        }
        match signed.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            None => signed.push((name, value.clone())),
        }
    }
    signed.sort_by(|(a, _), (b, _)| locale_compare(a, b));
    signed
}

/// The payload a server signs for its response to request `request_id`: status, the signed
/// headers (from [`signed_response_headers`]), the body.
pub fn response_payload(
    request_id: &[u8],
    status: u16,
    signed_headers: &[(String, String)],
    body: &[u8],
    empty: EmptyBody,
) -> Vec<u8> {
    let mut out = request_id.to_vec();
    write_varint(&mut out, u64::from(status));
    write_varint(&mut out, signed_headers.len() as u64);
    for (name, value) in signed_headers {
        write_bytes(&mut out, name.as_bytes());
        write_bytes(&mut out, value.as_bytes());
    }
    match (body.is_empty(), empty) {
        (true, EmptyBody::Absent) => write_varint(&mut out, ABSENT),
        _ => write_bytes(&mut out, body),
    }
    out
}

/// A header value's bytes as fetch's `Headers` reads them (Latin-1: one character per byte),
/// which the SDK then signs as UTF-8.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A header value for the wire: the Latin-1 bytes of text [`RequestParts::new`] checked.
pub(crate) fn to_latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallet_bsv::encoding::base64_decode;

    fn fixtures() -> serde_json::Value {
        serde_json::from_str(crate::tests::FIXTURES).unwrap()
    }

    fn pairs(v: &serde_json::Value) -> Vec<(String, String)> {
        let to_pair = |p: &serde_json::Value| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string());
        match v {
            serde_json::Value::Array(items) => items.iter().map(to_pair).collect(),
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
            }
            _ => panic!("headers"),
        }
    }

    fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
        v.as_str().map(|s| base64_decode(s).unwrap())
    }

    #[test]
    fn requests_serialize_as_authfetch_and_send_as_the_transport() {
        let f = fixtures();
        let cases = f["requests"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let url = reqwest::Url::parse(case["url"].as_str().unwrap()).unwrap();
            let method = case["method"].as_str().unwrap();
            let body = b64(&case["body"]);
            let parts = RequestParts::new(&url, method, &pairs(&case["headers"]), body.as_deref()).unwrap();
            let nonce: [u8; 32] = b64(&case["nonce"]).unwrap().try_into().unwrap();
            assert_eq!(hex::encode(parts.payload(&nonce)), case["payload"].as_str().unwrap(), "payload of {case}");
            // What goes over HTTP: the URL without fragment or empty query, the included headers
            // (the transport adds x-bsv-auth-*), the body.
            let http = &case["http"];
            let origin = url.origin().ascii_serialization();
            assert_eq!(format!("{origin}{}", parts.path_and_search()), http["url"].as_str().unwrap());
            assert_eq!(parts.method(), http["method"].as_str().unwrap());
            let sent: Vec<(String, String)> =
                pairs(&http["headers"]).into_iter().filter(|(n, _)| !n.starts_with("x-bsv-auth")).collect();
            let mut ours = parts.headers().to_vec();
            ours.sort();
            let mut theirs = sent;
            theirs.sort();
            assert_eq!(ours, theirs, "headers of {case}");
            assert_eq!(parts.body().map(<[u8]>::to_vec), b64(&http["body"]), "body of {case}");
        }
    }

    #[test]
    fn refuses_what_authfetch_refuses() {
        let f = fixtures();
        for case in f["refusals"].as_array().unwrap() {
            let url = reqwest::Url::parse(case["url"].as_str().unwrap()).unwrap();
            let body = case["body"].as_str().map(str::as_bytes);
            let e = RequestParts::new(&url, case["method"].as_str().unwrap(), &pairs(&case["headers"]), body)
                .expect_err(case["error"].as_str().unwrap());
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
        let url = reqwest::Url::parse("http://a.test/").unwrap();
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert!(RequestParts::new(&url, "GET", &h("content-type", "text/plain"), Some(b"x")).is_err(), "GET body");
        assert!(RequestParts::new(&url, "GE T", &[], None).is_err());
        assert!(RequestParts::new(&url, "POST", &h("x-bsv-x", "\u{100}"), None).is_err(), "not Latin-1");
        assert!(RequestParts::new(&url, "POST", &h("x-bsv-x", "a\u{7}b"), None).is_err(), "control");
    }

    #[test]
    fn json_bodies_are_sent_as_express_re_serializes_them() {
        let url = reqwest::Url::parse("http://a.test/x").unwrap();
        let ct = vec![("Content-Type".to_string(), "application/json".to_string())];
        let parts = RequestParts::new(&url, "post", &ct, Some(b"{ \"b\": 1.0, \"a\": [1e2] }")).unwrap();
        assert_eq!(parts.method(), "POST");
        assert_eq!(parts.body(), Some(&b"{\"b\":1,\"a\":[100]}"[..]));
        // Not JSON: sent as it is (the server will refuse it, not us).
        let parts = RequestParts::new(&url, "POST", &ct, Some(b"{oops")).unwrap();
        assert_eq!(parts.body(), Some(&b"{oops"[..]));
        // Binary bodies are left alone.
        let bin = vec![("content-type".to_string(), "application/octet-stream".to_string())];
        let parts = RequestParts::new(&url, "PUT", &bin, Some(&[0xff, 0xfe])).unwrap();
        assert_eq!(parts.body(), Some(&[0xff, 0xfe][..]));
    }

    #[test]
    fn responses_rebuild_as_the_transport_does() {
        let f = fixtures();
        for case in f["responses"].as_array().unwrap() {
            let headers = pairs(&case["headers"]);
            let lower: Vec<(String, String)> =
                headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
            let request_id = base64_decode(
                &lower.iter().find(|(n, _)| n == header::REQUEST_ID).map(|(_, v)| v.clone()).unwrap_or_default(),
            )
            .unwrap();
            let body = b64(&case["body"]).unwrap_or_default();
            let status = case["status"].as_u64().unwrap() as u16;
            let payload =
                response_payload(&request_id, status, &signed_response_headers(&lower), &body, EmptyBody::Zero);
            assert_eq!(hex::encode(payload), case["payload"].as_str().unwrap(), "payload of {case}");
        }
        // The middleware's spelling of an empty body.
        let p = response_payload(&[9; 32], 204, &[], &[], EmptyBody::Absent);
        assert_eq!(hex::encode(&p[32..]), "cc00ffffffffffffffffff");
    }

    #[test]
    fn header_names_sort_as_locale_compare() {
        let f = fixtures();
        let expected: Vec<String> = serde_json::from_value(f["headerOrder"].clone()).unwrap();
        let mut names = expected.clone();
        names.reverse();
        names.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(names, expected);
    }
}
