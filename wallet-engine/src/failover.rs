//! Which cosigners can serve the wallet's key, and the error that says why too few can.
//!
//! Signing, distributed ECDH and linkage take the first t-1 cosigners, in configured order, that
//! can serve; one that cannot is skipped with a reason, and the operation goes on with the next.

use std::{fmt, time::Duration};

use wallet_traits::{CosignerTransport, Error, ErrorKind, KeyId, PartyIndex, ShareState};

use crate::{mpc::Protocol, wallet::Cosigner};

/// Longest wait for a cosigner's answer about the key before it counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a cosigner cannot take part in an operation with the wallet's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unfit {
    /// It did not answer, or answered with an error of this kind.
    Unreachable(ErrorKind),
    /// It holds no share of the key.
    NoShare,
    /// It holds a share of another collective key under this key's id.
    AnotherKey,
    /// It reports another party index than its position in the configuration.
    WrongParty(PartyIndex),
    /// Its share is not Active (Pending: provisioning unfinished; Frozen: under review).
    NotActive(ShareState),
    /// Its share of the key is of another protocol than the agent's (a migration is unfinished;
    /// the agent's next start settles it).
    OtherProtocol,
    /// It refused to open the session or to answer (kind of its refusal).
    Refused(ErrorKind),
    /// It failed, misbehaved or went away during the run (kind of the failure).
    Failed(ErrorKind),
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::Unreachable(ErrorKind::Timeout) => f.write_str("unreachable (no answer in time)"),
            Unfit::Unreachable(ErrorKind::Unauthorized) => {
                f.write_str("refuses the agent's token (check MPC_JWT_SECRET)")
            }
            Unfit::Unreachable(kind) => write!(f, "unreachable ({kind})"),
            Unfit::NoShare => f.write_str("holds no share of this key"),
            Unfit::AnotherKey => f.write_str("holds a share of another key"),
            Unfit::WrongParty(i) => write!(f, "reports party index {i} (check the order of MPC_COSIGNER_ENDPOINTS)"),
            Unfit::NotActive(ShareState::Frozen) => f.write_str("its share is frozen"),
            Unfit::NotActive(state) => write!(f, "its share is {state}, not active"),
            Unfit::OtherProtocol => f.write_str(
                "holds the key under another protocol (an unfinished migration; restart the agent to settle it)",
            ),
            Unfit::Refused(kind) => write!(f, "refused the request ({kind})"),
            Unfit::Failed(kind) => write!(f, "failed during the run ({kind})"),
        }
    }
}

/// What the agent found about one cosigner.
#[derive(Debug, Clone)]
pub struct CosignerReport {
    /// Its party index.
    pub index: PartyIndex,
    /// Its endpoint (never holds credentials). For operators: not part of error messages a
    /// wallet's caller sees.
    pub endpoint: String,
    /// Why it cannot serve the key; `None` when it can.
    pub unfit: Option<Unfit>,
    /// The underlying error's text, for logs and operators (may name the endpoint).
    pub detail: Option<String>,
    /// The protocol proved it misbehaved (a partial result whose proof failed).
    pub blamed: bool,
    /// Its spending policy's refusal, as it worded it (rule, limit, what the window has left,
    /// how to get an approval): what the wallet's caller must see.
    pub refusal: Option<Error>,
    /// The spending policy it reported with the key (`None`: none, or it did not answer).
    pub policy: Option<wallet_traits::PolicyReport>,
}

impl CosignerReport {
    /// Whether it can take part in signing, ECDH and linkage with the wallet's key.
    pub fn can_serve(&self) -> bool {
        self.unfit.is_none()
    }

    pub(crate) fn unfit(c: &Cosigner, unfit: Unfit, detail: Option<&Error>) -> Self {
        Self {
            index: c.index,
            endpoint: c.transport.endpoint().to_string(),
            unfit: Some(unfit),
            detail: detail.map(ToString::to_string),
            blamed: false,
            refusal: detail.filter(|e| e.kind() == ErrorKind::PolicyDenied).cloned(),
            policy: None,
        }
    }

    /// Whether it answered about the key (whatever it said): then `policy` is what it enforces.
    pub fn answered(&self) -> bool {
        !matches!(self.unfit, Some(Unfit::Unreachable(_)))
    }

    /// Whether its spending policy refused the request (it is healthy; it said no).
    pub fn refused_by_policy(&self) -> bool {
        self.refusal.is_some()
    }
}

impl fmt::Display for CosignerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.unfit {
            None => write!(f, "cosigner {}: can serve", self.index),
            Some(why) => write!(f, "cosigner {}: {why}", self.index),
        }
    }
}

/// Asks cosigner `index` (over `transport`) about `key` and judges whether it can serve the key
/// whose compressed public key is `expected`, with a share of `protocol`.
pub async fn probe(
    index: PartyIndex,
    transport: &dyn CosignerTransport,
    key: &KeyId,
    expected: &[u8],
    protocol: Protocol,
    timeout: Duration,
) -> CosignerReport {
    let answer = tokio::time::timeout(timeout, transport.key_info(key)).await;
    let policy = match &answer {
        Ok(Ok(Some(info))) => info.policy.clone(),
        _ => None,
    };
    let (unfit, detail) = match answer {
        Err(_) => (Some(Unfit::Unreachable(ErrorKind::Timeout)), None),
        Ok(Err(e)) => (Some(Unfit::Unreachable(e.kind())), Some(e.to_string())),
        Ok(Ok(None)) => (Some(Unfit::NoShare), None),
        Ok(Ok(Some(info))) if info.public_key != expected => (Some(Unfit::AnotherKey), None),
        Ok(Ok(Some(info))) if info.party_index != index => (Some(Unfit::WrongParty(info.party_index)), None),
        Ok(Ok(Some(info))) if info.state != ShareState::Active => (Some(Unfit::NotActive(info.state)), None),
        // A cosigner older than labels holds cggmp21 shares.
        Ok(Ok(Some(info))) if info.protocol.as_deref().unwrap_or(Protocol::Cggmp21.label()) != protocol.label() => {
            (Some(Unfit::OtherProtocol), None)
        }
        Ok(Ok(Some(_))) => (None, None),
    };
    CosignerReport {
        index,
        endpoint: transport.endpoint().to_string(),
        unfit,
        detail,
        blamed: false,
        refusal: None,
        policy,
    }
}

/// The error for an operation that needs `need` cosigners when only `found` can serve. Its
/// message lists each cosigner that could not, and why, by party index only (a front may show
/// the message to its caller); endpoints and underlying errors go into the context for
/// operators.
///
/// When a cosigner's spending policy refused, the error is that refusal ([`ErrorKind::PolicyDenied`])
/// with every refusing cosigner's words: starting or repairing cosigners does not help, an
/// approval or a smaller payment does.
pub(crate) fn too_few(need: usize, found: usize, total: usize, skipped: &[CosignerReport]) -> Error {
    let mut reasons: Vec<&CosignerReport> = skipped.iter().collect();
    reasons.sort_by_key(|r| r.index);
    reasons.dedup_by_key(|r| r.index);
    let refusals: Vec<(&CosignerReport, &Error)> =
        reasons.iter().filter_map(|r| r.refusal.as_ref().map(|e| (*r, e))).collect();
    if let Some((_, first)) = refusals.first() {
        let said: Vec<String> =
            refusals.iter().map(|(r, e)| format!("cosigner {} refused: {}", r.index, e.message())).collect();
        let others: Vec<String> = reasons.iter().filter(|r| !r.refused_by_policy()).map(ToString::to_string).collect();
        let mut message = format!("the cosigners' spending policy refused this: {}", said.join("; "));
        if !others.is_empty() {
            message.push_str(&format!(" (and {})", others.join("; ")));
        }
        let mut e = Error::new(ErrorKind::PolicyDenied, message);
        for (k, v) in first.context() {
            if *k != "party" {
                e = e.with_context(k, v);
            }
        }
        return e.with_context(
            "cosigners",
            refusals.iter().map(|(r, _)| r.index.to_string()).collect::<Vec<_>>().join(","),
        );
    }
    let listed: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    let message = format!(
        "this operation needs {need} of the {total} cosigner(s) but only {found} can serve the key: {}; \
         start or repair the others (mpc-wallet status shows each)",
        if listed.is_empty() { "none answered".to_string() } else { listed.join("; ") }
    );
    let details: Vec<String> = reasons
        .iter()
        .map(|r| match &r.detail {
            Some(d) => format!("cosigner {} at {}: {d}", r.index, r.endpoint),
            None => format!("cosigner {} at {}", r.index, r.endpoint),
        })
        .collect();
    Error::new(ErrorKind::CosignerUnavailable, message)
        .with_context("cosigners", details.join("; "))
        .with_blamed(reasons.iter().filter(|r| r.blamed).map(|r| r.index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(index: PartyIndex, unfit: Option<Unfit>, detail: Option<&str>) -> CosignerReport {
        CosignerReport {
            index,
            endpoint: format!("https://cosigner-{index}.internal:8443"),
            unfit,
            detail: detail.map(str::to_string),
            blamed: false,
            refusal: None,
            policy: None,
        }
    }

    #[test]
    fn a_policy_refusal_is_the_error_with_the_cosigners_words() {
        let mut refused = report(1, Some(Unfit::Refused(ErrorKind::PolicyDenied)), Some("refused"));
        refused.refusal = Some(
            Error::new(ErrorKind::PolicyDenied, "its net outflow is 900 sats, over max_sats_per_tx (500)")
                .with_context("rule", "max_sats_per_tx")
                .with_context("party", 1),
        );
        let down = report(2, Some(Unfit::Unreachable(ErrorKind::Timeout)), None);
        let e = too_few(1, 0, 2, &[refused, down]);
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().contains("cosigner 1 refused: its net outflow is 900 sats"), "{e}");
        assert!(e.message().contains("cosigner 2: unreachable"), "{e}");
        assert_eq!(e.context_value("rule"), Some("max_sats_per_tx"));
        assert!(!e.message().contains("internal"), "no endpoint in the message: {e}");
    }

    #[test]
    fn the_message_lists_every_cosigner_without_endpoints() {
        let skipped = [
            report(
                2,
                Some(Unfit::Unreachable(ErrorKind::CosignerUnavailable)),
                Some("connection refused at https://cosigner-2.internal:8443"),
            ),
            report(1, Some(Unfit::NoShare), None),
            report(1, Some(Unfit::NoShare), None),
        ];
        let e = too_few(1, 0, 2, &skipped);
        assert_eq!(e.kind(), ErrorKind::CosignerUnavailable);
        assert!(e.message().contains("cosigner 1: holds no share of this key; cosigner 2: unreachable"), "{e}");
        assert!(!e.message().contains("internal"), "{}", e.message());
        let details = e.context_value("cosigners").unwrap();
        assert!(details.contains("cosigner 2 at https://cosigner-2.internal:8443: connection refused"), "{details}");
    }

    #[test]
    fn reasons_read_as_advice() {
        assert_eq!(Unfit::NotActive(ShareState::Frozen).to_string(), "its share is frozen");
        assert_eq!(Unfit::NotActive(ShareState::Pending).to_string(), "its share is pending, not active");
        assert!(Unfit::Unreachable(ErrorKind::Unauthorized).to_string().contains("MPC_JWT_SECRET"));
        assert_eq!(report(3, None, None).to_string(), "cosigner 3: can serve");
    }
}
