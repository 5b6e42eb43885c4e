//! The one error type of the framework.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// What went wrong, for code to branch on. Messages are for people; kinds are for logic.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The requested record, key or session does not exist.
    NotFound,
    /// The record already exists: the guard that keeps DKG from overwriting a live share.
    AlreadyExists,
    /// A compare-and-swap update saw another version than expected.
    Conflict,
    /// The share secret does not open the record.
    WrongSecret,
    /// Stored or received bytes fail authentication or do not parse.
    Corrupted,
    /// Parties disagree about the collective key.
    ShareMismatch,
    /// A cosigner could not be reached or stopped answering.
    CosignerUnavailable,
    /// Authentication failed.
    Unauthorized,
    /// A party refused by policy (for example a frozen key or a reused execution id).
    PolicyDenied,
    /// The caller passed something invalid.
    InvalidInput,
    /// A multi-party protocol aborted; [`Error::blamed`] lists parties proven to misbehave.
    ProtocolAbort,
    /// Waited too long.
    Timeout,
    /// The operation is not supported by this implementation.
    Unsupported,
    /// Configuration is missing or invalid.
    Config,
    /// A storage backend failed.
    Storage,
    /// A bug or an unexpected state.
    Internal,
    /// The network refused a transaction (ARC: rejected, invalid, malformed, a double spend,
    /// an orphan); the message carries the service's own detail.
    Rejected,
    /// An outside service (ARC, a chain tracker) could not be reached, timed out or failed on
    /// its side, also after retries; trying later may succeed.
    ServiceUnavailable,
    /// The wallet's spendable outputs do not cover a payment and its fee (BRC-100's
    /// `WERR_INSUFFICIENT_FUNDS`, code 7); the context names `totalSatoshisNeeded` and
    /// `moreSatoshisNeeded`.
    InsufficientFunds,
}

impl ErrorKind {
    /// Stable snake_case name, used on the wire and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::WrongSecret => "wrong_secret",
            ErrorKind::Corrupted => "corrupted",
            ErrorKind::ShareMismatch => "share_mismatch",
            ErrorKind::CosignerUnavailable => "cosigner_unavailable",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::PolicyDenied => "policy_denied",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::ProtocolAbort => "protocol_abort",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Config => "config",
            ErrorKind::Storage => "storage",
            ErrorKind::Internal => "internal",
            ErrorKind::Rejected => "rejected",
            ErrorKind::ServiceUnavailable => "service_unavailable",
            ErrorKind::InsufficientFunds => "insufficient_funds",
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            ErrorKind::CosignerUnavailable | ErrorKind::Timeout | ErrorKind::Conflict | ErrorKind::ServiceUnavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The framework's error: a kind to branch on, a message that says what to do next, context
/// pairs and an optional source.
///
/// Nothing secret ever goes into an `Error`: no share, secret, password or token.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    blamed: Vec<u16>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message for the operator.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), context: Vec::new(), blamed: Vec::new(), source: None }
    }

    /// Adds a context pair such as `("cosigner", "local://1")`.
    #[must_use]
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// Sets `key` to `value`, replacing what a callee set: the caller that knows more (which of
    /// its method's parameters a parse error is about) has the last word.
    #[must_use]
    pub fn set_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.retain(|(k, _)| *k != key);
        self.with_context(key, value)
    }

    /// Attaches the underlying error. Only attach errors whose text carries no secret.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Records parties the protocol proved to misbehave.
    #[must_use]
    pub fn with_blamed(mut self, parties: impl IntoIterator<Item = u16>) -> Self {
        self.blamed.extend(parties);
        self
    }

    /// What went wrong, for branching: callers decide on the kind, never on the message.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Context pairs.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// Value of a context key, if set.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// Parties blamed by a protocol abort.
    pub fn blamed(&self) -> &[u16] {
        &self.blamed
    }

    /// Whether retrying may succeed.
    pub fn is_temporary(&self) -> bool {
        self.kind.is_temporary()
    }

    /// The serializable form used to carry an error across a transport.
    pub fn to_wire(&self) -> WireError {
        let mut message = self.message.clone();
        if let Some(src) = &self.source {
            message.push_str(": ");
            message.push_str(&src.to_string());
        }
        WireError {
            kind: self.kind,
            message,
            context: self.context.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect(),
            blamed: self.blamed.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}: {v}")?;
            }
            f.write_str(")")?;
        }
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("context", &self.context)
            .field("blamed", &self.blamed)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message && self.context == other.context
    }
}

/// An [`Error`] as it travels between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Serialized by its snake_case name (`not_found`), as [`ErrorKind::as_str`] spells it.
    pub kind: ErrorKind,
    /// The message (with the source's text appended).
    pub message: String,
    /// Context pairs.
    #[serde(default)]
    pub context: Vec<(String, String)>,
    /// Blamed parties.
    #[serde(default)]
    pub blamed: Vec<u16>,
}

/// Context keys that cross a transport under their own name.
const PASSED_CONTEXT: &[&str] =
    &["rule", "wallet", "outflow", "approval_request", "approve", "party", "input", "sighash_type", "output"];

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        let mut e = Error::new(w.kind, w.message).with_blamed(w.blamed);
        for (k, v) in w.context {
            // Context keys are static on this side: the ones a caller branches on or shows (a
            // policy refusal's rule and approval command) keep their name, the rest are folded.
            match PASSED_CONTEXT.iter().find(|known| **known == k) {
                Some(known) => e = e.with_context(known, v),
                None => e = e.with_context("remote", format!("{k}={v}")),
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_message_and_context() {
        let e = Error::new(ErrorKind::WrongSecret, "set MPC_SHARE_SECRET").with_context("party", 0);
        assert_eq!(e.to_string(), "set MPC_SHARE_SECRET (party: 0)");
        assert_eq!(e.kind(), ErrorKind::WrongSecret);
        assert_eq!(e.context_value("party"), Some("0"));
    }

    #[test]
    fn wire_round_trip_keeps_kind_and_blame() {
        let e = Error::new(ErrorKind::ProtocolAbort, "bad proof").with_blamed([2]);
        let back: Error = e.to_wire().into();
        assert_eq!(back.kind(), ErrorKind::ProtocolAbort);
        assert_eq!(back.blamed(), &[2]);
    }
}
