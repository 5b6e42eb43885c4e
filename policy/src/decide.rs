//! The decision: an [`Assessment`] against the [`Rules`] and a wallet's [`Ledger`], run inside the
//! store's atomic step, counting each transaction once however many sessions sign it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wallet_bsv::{address, amount, Network, Script};
use wallet_traits::{redact_url, Error, ErrorKind, Ledger, LedgerEntry, Ruling};

use crate::{
    approval::{parse_and_verify, SignedApproval},
    assess::{Assessment, Destination},
    audit::{audit_link, AuditBody, AuditDestination, AUDIT_VERSION},
    config::{RawDigests, Rules},
};

/// The rule a decision turned on, as the audit log and an error's `rule` context name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Allowed: every rule holds.
    Ok,
    /// Allowed by a person's approval despite a limit or the allowlist.
    Approval,
    /// Refused: the transaction's net outflow is over `max_sats_per_tx`.
    MaxSatsPerTx,
    /// Refused: the window's satoshis would pass `max_sats_per_window`.
    WindowSats,
    /// Refused: the window's transactions would pass `max_tx_per_window`.
    WindowTxs,
    /// Refused: an output pays a script not in `allowed_destinations`.
    AllowedDestinations,
    /// Refused: an input is to be signed with another sighash type than `ALL|FORKID`.
    Sighash,
    /// Refused: a change claim is false.
    ChangeClaim,
    /// A raw digest: refused (`raw_digests = "deny"`) or, when allowed, recorded.
    RawDigest,
    /// Refused: the ledger's record of the transaction does not read.
    Ledger,
    /// Refused: the request is malformed (amounts past 21 million coins, missing inputs).
    Invalid,
}

impl Rule {
    const ALL: [Rule; 11] = [
        Rule::Ok,
        Rule::Approval,
        Rule::MaxSatsPerTx,
        Rule::WindowSats,
        Rule::WindowTxs,
        Rule::AllowedDestinations,
        Rule::Sighash,
        Rule::ChangeClaim,
        Rule::RawDigest,
        Rule::Ledger,
        Rule::Invalid,
    ];

    /// The name in audit records and error contexts.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Ok => "ok",
            Rule::Approval => "approval",
            Rule::MaxSatsPerTx => "max_sats_per_tx",
            Rule::WindowSats => "window_sats",
            Rule::WindowTxs => "window_txs",
            Rule::AllowedDestinations => "allowed_destinations",
            Rule::Sighash => "sighash",
            Rule::ChangeClaim => "change_claim",
            Rule::RawDigest => "raw_digest",
            Rule::Ledger => "ledger",
            Rule::Invalid => "invalid",
        }
    }

    /// The rule an error of this crate names in its `rule` context; [`Rule::Invalid`] for any
    /// other error.
    pub fn of(error: &Error) -> Rule {
        let name = error.context_value("rule");
        Rule::ALL.into_iter().find(|r| Some(r.as_str()) == name).unwrap_or(Rule::Invalid)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who and when a decision is about, and what a refusal tells a person.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The wallet.
    pub wallet: &'a str,
    /// Now, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The wallet's network, to show P2PKH destinations as its addresses.
    pub network: Network,
    /// The cosigner URLs the `mpc-wallet approve` command of a refusal names (shown with
    /// credentials redacted); empty: a `<URL>` placeholder.
    pub cosigners: &'a [String],
}

/// A decision: the ruling the store writes and, when refused, the error to return.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The rule it turned on.
    pub rule: Rule,
    /// What the store writes (the closure passed to `settle` returns it).
    pub ruling: Ruling,
    /// `None`: allowed. Otherwise the `PolicyDenied` error for the caller, which names the rule,
    /// the limit, what the window has left and, when approvers are configured, the
    /// `mpc-wallet approve` command that would allow the payment.
    pub refusal: Option<Error>,
}

impl Decision {
    /// Whether it allows.
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// What the policy records in a transaction's [`LedgerEntry::state`]: every input counted
/// (index → satoshis) and every output credited as change (vout → satoshis) over all sessions
/// so far, and the approval that allowed it, if one did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryState {
    v: u32,
    inputs: BTreeMap<u32, u64>,
    change: BTreeMap<u32, u64>,
    approval: Option<UsedApproval>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsedApproval {
    id: String,
    destination: String,
    sats: u64,
}

const STATE_VERSION: u32 = 1;

impl EntryState {
    fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<EntryState>(bytes).ok().filter(|s| s.v == STATE_VERSION)
    }
}

/// A refusal's reason: the rule and what it says.
struct Violation {
    rule: Rule,
    text: String,
}

/// A script as a person reads it: the address of P2PKH on `network`, else hex.
fn show_script(script: &[u8], network: Network) -> String {
    match Script::new(script.to_vec()).p2pkh_hash() {
        Some(hash) => address::p2pkh_address(&hash, network),
        None => hex::encode(script),
    }
}

/// [`show_script`] cut short for a sentence.
fn show_script_short(script: &[u8], network: Network) -> String {
    let shown = show_script(script, network);
    if shown.len() > 80 {
        format!("{}… ({} bytes of script)", &shown[..64], script.len())
    } else {
        shown
    }
}

/// `s` as one shell word.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The id of an approval request: 16 hex characters of SHA-256 over the wallet, the distinct
/// destination scripts (sorted) and the amount, so a person can match a request to a refusal.
pub fn approval_request_id<'a>(wallet: &str, destinations: impl IntoIterator<Item = &'a [u8]>, sats: u64) -> String {
    let distinct: BTreeSet<&[u8]> = destinations.into_iter().collect();
    let mut h = Sha256::new();
    h.update(b"mpc-wallet approval request v1\0");
    h.update((wallet.len() as u64).to_be_bytes());
    h.update(wallet.as_bytes());
    h.update((distinct.len() as u64).to_be_bytes());
    for script in distinct {
        h.update((script.len() as u64).to_be_bytes());
        h.update(script);
    }
    h.update(sats.to_be_bytes());
    hex::encode(&h.finalize()[..8])
}

fn ruling(ledger: &Ledger, body: &AuditBody, charge: Option<LedgerEntry>, spend: Option<[u8; 32]>) -> Ruling {
    let audit = body.to_bytes();
    let audit_hash = audit_link(&ledger.head.hash, ledger.head.seq.saturating_add(1), &audit);
    Ruling { charge, spend_approval: spend, audit, audit_hash }
}

fn audit_destinations<'a>(destinations: impl IntoIterator<Item = &'a Destination>) -> Vec<AuditDestination> {
    destinations
        .into_iter()
        .map(|d| AuditDestination { vout: d.vout, script: hex::encode(&d.script), sats: d.sats })
        .collect()
}

/// The record of a decision under `rule`, allowed unless `refusal` is given: about no transaction,
/// charging nothing, the window as `ledger` has it; callers fill in what they know besides.
fn audit_body(ledger: &Ledger, ctx: &Context<'_>, rule: Rule, refusal: Option<&Error>) -> AuditBody {
    AuditBody {
        v: AUDIT_VERSION,
        at_ms: ctx.now_ms,
        wallet: ctx.wallet.to_string(),
        allowed: refusal.is_none(),
        rule: rule.as_str().to_string(),
        tx: None,
        outflow: None,
        charge: 0,
        destinations: Vec::new(),
        window_sats: ledger.window_sats,
        window_txs: ledger.window_txs,
        approval: None,
        detail: refusal.map(|e| e.message().to_string()),
    }
}

/// The ruling of a refusal decided before or outside [`decide`] (a sighash type, a false change
/// claim, a malformed transaction: an error of [`crate::assess`]): no charge, and an audit
/// record of `refusal` under [`Rule::of`] it. `tx` is the transaction's policy id when there is
/// one (pass the same to the store's `settle`; all zeros when there is none).
pub fn audit_refusal(ledger: &Ledger, ctx: &Context<'_>, tx: Option<&[u8; 32]>, refusal: &Error) -> Ruling {
    let body = AuditBody { tx: tx.map(hex::encode), ..audit_body(ledger, ctx, Rule::of(refusal), Some(refusal)) };
    ruling(ledger, &body, None, None)
}

/// Whether to sign a raw digest, audited either way ([`Rule::RawDigest`]; settle it with a `tx`
/// of all zeros). Refused under `raw_digests = "deny"`.
pub fn decide_raw_digest(rules: &Rules, ledger: &Ledger, ctx: &Context<'_>) -> Decision {
    let refusal = (rules.raw_digests() == RawDigests::Deny).then(|| {
        Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "the spending policy of wallet `{}` refuses to sign a raw digest (raw_digests = \"deny\"): a digest \
                 cannot be read, so no rule could be checked. Sign transactions instead, or set \
                 raw_digests = \"allow\" in the policy file; nothing was signed",
                ctx.wallet
            ),
        )
        .with_context("rule", Rule::RawDigest)
        .with_context("wallet", ctx.wallet)
    });
    let body = audit_body(ledger, ctx, Rule::RawDigest, refusal.as_ref());
    Decision { rule: Rule::RawDigest, ruling: ruling(ledger, &body, None, None), refusal }
}

/// A refusal about the ledger or the amounts, which no approval lifts.
fn refuse_outright(
    ledger: &Ledger,
    ctx: &Context<'_>,
    a: &Assessment,
    rule: Rule,
    kind: ErrorKind,
    why: &str,
) -> Decision {
    let error = Error::new(kind, format!("wallet `{}`: {why}; nothing was signed", ctx.wallet))
        .with_context("rule", rule)
        .with_context("wallet", ctx.wallet);
    Decision { rule, ruling: audit_refusal(ledger, ctx, Some(&a.tx), &error), refusal: Some(error) }
}

/// Decides one signing session of a transaction, inside the store's atomic step (`ledger` is
/// what `settle` read for `ctx.wallet` and `assessment.tx`, from [`Rules::window_start`]).
///
/// The transaction is counted once over all its sessions: the entry's state holds every input
/// counted and every output credited as change so far; this session's are added to them (an
/// index counted twice counts once), the transaction's net outflow is the counted inputs less
/// the credited change (0 at least), and the session is charged what that adds to the entry's
/// `charged`, which never decreases. A transaction with no entry is one more in the window (so
/// is an entry charged before the window began that this session charges more: it is dated
/// anew and counted whole).
///
/// Each configured limit must hold: the net outflow within `max_sats_per_tx`; the window's
/// satoshis plus the charge within `max_sats_per_window` and its transactions within
/// `max_tx_per_window` (each checked only when this decision adds to it); every paying output
/// in `allowed_destinations`. When one fails, an approval can lift all of them for this
/// transaction: one of `ledger.approvals` for this wallet, unexpired, signed by one of
/// `rules.approver_keys` (verified here), naming the one script every paying output is locked
/// by and at least the net outflow; the smallest such is spent, and later sessions of the same
/// transaction are allowed under it while its outflow stays within the approved amount.
pub fn decide(rules: &Rules, assessment: &Assessment, ledger: &Ledger, ctx: &Context<'_>) -> Decision {
    let a = assessment;
    let now = ctx.now_ms;
    let (mut state, prev_charged, prev_at) = match &ledger.entry {
        None => (EntryState { v: STATE_VERSION, ..EntryState::default() }, 0, None),
        Some(e) if e.tx != a.tx => {
            return refuse_outright(
                ledger,
                ctx,
                a,
                Rule::Ledger,
                ErrorKind::Internal,
                "the store returned the entry of another transaction; check the policy store",
            )
        }
        Some(e) => match EntryState::parse(&e.state) {
            Some(s) => (s, e.charged, Some(e.at_ms)),
            // Without the record of what was counted, a further session could be under-charged.
            None => {
                return refuse_outright(
                    ledger,
                    ctx,
                    a,
                    Rule::Ledger,
                    ErrorKind::Corrupted,
                    "the ledger's record of this transaction does not read, so what was counted is unknown; \
                     restore the policy store from a backup",
                )
            }
        },
    };
    for i in &a.inputs {
        let counted = state.inputs.entry(i.index).or_insert(0);
        *counted = (*counted).max(i.sats);
    }
    for c in &a.change {
        let credited = state.change.entry(c.vout).or_insert(0);
        *credited = (*credited).max(c.sats);
    }
    let sums = amount::total(state.inputs.values().copied())
        .and_then(|spends| Ok((spends, amount::total(state.change.values().copied())?)));
    let Ok((spends, returns)) = sums else {
        return refuse_outright(
            ledger,
            ctx,
            a,
            Rule::Invalid,
            ErrorKind::InvalidInput,
            "the transaction's counted amounts add up to more than 21 million coins",
        );
    };
    let outflow = spends.saturating_sub(returns);
    let charged = prev_charged.max(outflow);
    let charge = charged - prev_charged;
    // Change credited by an earlier session pays no one else, whatever this session claims.
    let destinations: Vec<&Destination> =
        a.destinations.iter().filter(|d| !state.change.contains_key(&d.vout)).collect();
    let (add_sats, add_txs, at_ms) = match prev_at {
        None => (charge, 1, now),
        Some(at) if at < rules.window_start(now) && charge > 0 => (charged, 1, now),
        Some(at) => (charge, 0, at),
    };

    let mut violations = Vec::new();
    if let Some(allowed) = rules.allowed_destinations() {
        for d in destinations.iter().filter(|d| !allowed.contains(&d.script)) {
            violations.push(Violation {
                rule: Rule::AllowedDestinations,
                text: format!(
                    "output {} pays {} sats to {}, which is not in allowed_destinations",
                    d.vout,
                    d.sats,
                    show_script_short(&d.script, ctx.network)
                ),
            });
        }
    }
    if let Some(max) = rules.max_sats_per_tx() {
        if outflow > max {
            violations.push(Violation {
                rule: Rule::MaxSatsPerTx,
                text: format!("its net outflow is {outflow} sats, over max_sats_per_tx ({max})"),
            });
        }
    }
    if let Some(max) = rules.max_sats_per_window() {
        if add_sats > 0 && ledger.window_sats.saturating_add(add_sats) > max {
            violations.push(Violation {
                rule: Rule::WindowSats,
                text: format!(
                    "it would charge {add_sats} sats to a window with {} sats of max_sats_per_window ({max}) left",
                    max.saturating_sub(ledger.window_sats)
                ),
            });
        }
    }
    if let Some(max) = rules.max_tx_per_window() {
        if add_txs > 0 && ledger.window_txs.saturating_add(add_txs) > max {
            violations.push(Violation {
                rule: Rule::WindowTxs,
                text: format!(
                    "the window already holds {} transactions, and max_tx_per_window is {max}",
                    ledger.window_txs
                ),
            });
        }
    }

    let only_destination = match destinations.first() {
        Some(first) if destinations.iter().all(|d| d.script == first.script) => Some(first.script.as_slice()),
        _ => None,
    };
    let (rule, spend) = if violations.is_empty() {
        (Rule::Ok, None)
    } else if state.approval.as_ref().is_some_and(|used| {
        outflow <= used.sats && destinations.iter().all(|d| hex::encode(&d.script) == used.destination)
    }) {
        // A later session of a transaction an approval already allowed: the approval was spent
        // on the transaction, not on one session of it.
        (Rule::Approval, None)
    } else if let Some(approval) = only_destination.and_then(|dest| find_approval(rules, ledger, ctx, dest, outflow)) {
        state.approval = Some(UsedApproval {
            id: hex::encode(approval.id()),
            destination: hex::encode(&approval.body.destination),
            sats: approval.body.sats,
        });
        (Rule::Approval, Some(approval.id()))
    } else {
        let error = refusal(rules, ledger, ctx, &destinations, outflow, &violations);
        let body = AuditBody {
            tx: Some(hex::encode(a.tx)),
            outflow: Some(outflow),
            destinations: audit_destinations(destinations.iter().copied()),
            ..audit_body(ledger, ctx, violations[0].rule, Some(&error))
        };
        return Decision { rule: violations[0].rule, ruling: ruling(ledger, &body, None, None), refusal: Some(error) };
    };

    let body = AuditBody {
        tx: Some(hex::encode(a.tx)),
        outflow: Some(outflow),
        charge: add_sats,
        destinations: audit_destinations(destinations.iter().copied()),
        window_sats: ledger.window_sats.saturating_add(add_sats),
        window_txs: ledger.window_txs.saturating_add(add_txs),
        approval: if rule == Rule::Approval { state.approval.as_ref().map(|u| u.id.clone()) } else { None },
        ..audit_body(ledger, ctx, rule, None)
    };
    let state = serde_json::to_vec(&state).expect("plain data serializes");
    let entry = LedgerEntry { tx: a.tx, charged, at_ms, state };
    Decision { rule, ruling: ruling(ledger, &body, Some(entry), spend), refusal: None }
}

/// The smallest approval of `ledger` that allows paying `outflow` to `destination` now:
/// re-checked here (wallet, expiry, signature by a pinned key, id), since the store is not
/// trusted to have checked.
fn find_approval(
    rules: &Rules,
    ledger: &Ledger,
    ctx: &Context<'_>,
    destination: &[u8],
    outflow: u64,
) -> Option<SignedApproval> {
    ledger
        .approvals
        .iter()
        .filter(|stored| stored.wallet == ctx.wallet && stored.expires_ms > ctx.now_ms)
        .filter_map(|stored| {
            let signed = parse_and_verify(&stored.body, rules.approver_keys(), ctx.now_ms).ok()?;
            let fits = signed.id() == stored.id
                && signed.body.wallet == ctx.wallet
                && signed.body.destination == destination
                && signed.body.sats >= outflow;
            fits.then_some(signed)
        })
        .min_by_key(|signed| (signed.body.sats, signed.id()))
}

/// The error of a refusal by the limits or the allowlist: what broke, what the window has left,
/// and how a person can allow the payment.
fn refusal(
    rules: &Rules,
    ledger: &Ledger,
    ctx: &Context<'_>,
    destinations: &[&Destination],
    outflow: u64,
    violations: &[Violation],
) -> Error {
    let reasons: Vec<&str> = violations.iter().map(|v| v.text.as_str()).collect();
    let mut message =
        format!("the spending policy of wallet `{}` refuses this transaction: {}.", ctx.wallet, reasons.join("; "));
    let mut left = Vec::new();
    if let Some(max) = rules.max_sats_per_window() {
        left.push(format!("{} sats (max_sats_per_window {max})", max.saturating_sub(ledger.window_sats)));
    }
    if let Some(max) = rules.max_tx_per_window() {
        left.push(format!("{} transactions (max_tx_per_window {max})", max.saturating_sub(ledger.window_txs)));
    }
    if !left.is_empty() {
        message.push_str(&format!(" The window (the last {} s) has {} left.", rules.window_secs(), left.join(" and ")));
    }
    let scripts: BTreeSet<&[u8]> = destinations.iter().map(|d| d.script.as_slice()).collect();
    let request = approval_request_id(ctx.wallet, scripts.iter().copied(), outflow);
    let mut error_context = Vec::new();
    if rules.approver_keys().is_empty() {
        message.push_str(
            " No approver key is configured (approver_keys), so no approval can lift this: change the policy file \
             or wait for the window to move on.",
        );
    } else if scripts.is_empty() {
        message.push_str(
            " An approval names one destination and this transaction pays none beyond its fee, so no approval can \
             lift this.",
        );
    } else if scripts.len() > 1 {
        message.push_str(&format!(
            " An approval covers a payment to one destination and this transaction pays {}: pay each in a \
             transaction of its own.",
            scripts.len()
        ));
    } else {
        let to = scripts.first().map(|s| show_script(s, ctx.network)).unwrap_or_default();
        let mut command =
            format!("mpc-wallet approve --wallet {} --to {} --sats {outflow}", shell_word(ctx.wallet), shell_word(&to));
        if ctx.cosigners.is_empty() {
            command.push_str(" --cosigner <URL>");
        }
        for url in ctx.cosigners {
            command.push_str(&format!(" --cosigner {}", shell_word(&redact_url(url))));
        }
        message.push_str(&format!(
            " To allow this one payment, a person with an approver key runs: {command} (approval request {request}); \
             then retry."
        ));
        error_context.push(("approve", command));
        error_context.push(("approval_request", request));
    }
    message.push_str(" Nothing was signed.");
    let mut error = Error::new(ErrorKind::PolicyDenied, message)
        .with_context("rule", violations[0].rule)
        .with_context("wallet", ctx.wallet)
        .with_context("outflow", outflow);
    for (key, value) in error_context {
        error = error.with_context(key, value);
    }
    error
}
