//! What travels over HTTP: body formats, request and response bodies, the status of each error kind.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, ExecutionId, Result, SessionEvent};

/// Media type of CBOR bodies (the client's default).
pub const CBOR: &str = "application/cbor";
/// Media type of JSON bodies.
pub const JSON: &str = "application/json";

/// A body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Cbor,
    Json,
}

impl Format {
    pub(crate) fn media_type(self) -> &'static str {
        match self {
            Format::Cbor => CBOR,
            Format::Json => JSON,
        }
    }

    pub(crate) fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.media_type())
    }

    /// The format named by a media type, ignoring parameters such as `; charset=utf-8`.
    fn parse(value: &str) -> Option<Format> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(CBOR) {
            Some(Format::Cbor)
        } else if essence.eq_ignore_ascii_case(JSON) {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// The format of a request body. A missing Content-Type means JSON, so `curl -d` works.
    pub(crate) fn of_request(headers: &HeaderMap) -> Result<Format> {
        match headers.get(header::CONTENT_TYPE) {
            None => Ok(Format::Json),
            Some(v) => v.to_str().ok().and_then(Format::parse).ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!("unsupported Content-Type; send {CBOR} or {JSON}"))
            }),
        }
    }

    /// The format of a response: the first of Accept that we speak, else the request's
    /// Content-Type, else JSON.
    pub(crate) fn of_response(headers: &HeaderMap) -> Format {
        let accepted = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(Format::parse);
        accepted
            .or_else(|| headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(Format::parse))
            .unwrap_or(Format::Json)
    }

    /// The format of a response body the client received, by its Content-Type.
    pub(crate) fn of_content_type(value: Option<&HeaderValue>) -> Option<Format> {
        value.and_then(|v| v.to_str().ok()).and_then(Format::parse)
    }

    pub(crate) fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let r = match self {
            Format::Cbor => ciborium::into_writer(value, &mut out).map_err(|e| e.to_string()),
            Format::Json => serde_json::to_writer(&mut out, value).map_err(|e| e.to_string()),
        };
        r.map_err(|e| Error::new(ErrorKind::Internal, format!("cannot encode a {} body: {e}", self.media_type())))?;
        Ok(out)
    }

    /// Parses a body; the error says what was expected, never echoes the bytes.
    pub(crate) fn decode<T: DeserializeOwned>(self, bytes: &[u8], what: &str) -> Result<T> {
        let r = match self {
            Format::Cbor => ciborium::from_reader(bytes).map_err(|e| e.to_string()),
            Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        };
        r.map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("the body is not a valid {what} in {}: {e}", self.media_type()))
        })
    }
}

/// Answer to `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpenSessionResponse {
    /// The session's id: its execution id in hex.
    pub(crate) session: String,
}

/// Answer to `POST /v1/sessions/{eid}/exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExchangeResponse {
    /// What the cosigner produced since the previous exchange, in order.
    pub(crate) events: Vec<SessionEvent>,
    /// The session is over and forgotten by the server: after `Done`/`Failed`, or when the
    /// cosigner closed its side without either.
    pub(crate) ended: bool,
}

/// Body of the commit and rollback routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExecutionRef {
    /// The DKG run.
    pub(crate) execution_id: ExecutionId,
}

/// The HTTP status that carries an error of `kind`.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Corrupted => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::PolicyDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict | ErrorKind::ShareMismatch => StatusCode::CONFLICT,
        ErrorKind::CosignerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The kind to assume for an error status whose body is not a [`wallet_traits::WireError`]
/// (for example from a proxy in front of the cosigner).
pub(crate) fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ErrorKind::InvalidInput
        }
        StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
        StatusCode::FORBIDDEN => ErrorKind::PolicyDenied,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::CONFLICT => ErrorKind::Conflict,
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => ErrorKind::Timeout,
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => ErrorKind::CosignerUnavailable,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallet_traits::{Envelope, SessionOutcome, WireError};

    #[test]
    fn both_formats_round_trip_events() {
        let eid = ExecutionId::random();
        let events = ExchangeResponse {
            events: vec![
                SessionEvent::Message(Envelope {
                    execution_id: eid,
                    stage: 1,
                    from: 1,
                    to: 0,
                    broadcast: true,
                    seq: 7,
                    payload: vec![0, 1, 255],
                }),
                SessionEvent::Done(SessionOutcome { public_key: vec![2; 33] }),
                SessionEvent::Failed(WireError {
                    kind: ErrorKind::ProtocolAbort,
                    message: "m".into(),
                    context: vec![],
                    blamed: vec![2],
                }),
            ],
            ended: true,
        };
        for f in [Format::Cbor, Format::Json] {
            let b = f.encode(&events).unwrap();
            assert_eq!(f.decode::<ExchangeResponse>(&b, "exchange").unwrap(), events);
        }
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert_eq!(Format::of_request(&h).unwrap(), Format::Json);
        assert_eq!(Format::of_response(&h), Format::Json);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/cbor"));
        assert_eq!(Format::of_request(&h).unwrap(), Format::Cbor);
        assert_eq!(Format::of_response(&h), Format::Cbor);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html, application/json;q=0.9"));
        assert_eq!(Format::of_response(&h), Format::Json);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(Format::of_request(&h).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of(ErrorKind::ShareMismatch), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorKind::Storage), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(kind_of_status(StatusCode::TOO_MANY_REQUESTS), ErrorKind::CosignerUnavailable);
        assert_eq!(kind_of_status(StatusCode::BAD_GATEWAY), ErrorKind::CosignerUnavailable);
    }
}
