//! DKG or restore: one pure decision from the local record and the cosigners' views
//! (docs/ARCHITECTURE.md, "The path of a request"; docs/rfcs/0001_dkg_vs_restore.md).

use wallet_traits::{Error, ErrorKind, ExecutionId, KeyInfo, PartyIndex, Result, ShareMeta, ShareState};

/// What one cosigner said about the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CosignerView {
    /// It could not be asked; the text says why.
    Unreachable(String),
    /// It holds no share of the key.
    Missing,
    /// It holds a share.
    Holds(Box<KeyInfo>),
}

/// What the builder does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run DKG, after rolling back these cosigners' orphaned Pending shares (a DKG the agent
    /// never sealed its part of).
    Dkg {
        /// Cosigners holding an uncommitted share of an earlier, abandoned run.
        rollback_first: Vec<(PartyIndex, ExecutionId)>,
    },
    /// Use the local Active share.
    Restore {
        /// Cosigners that are unreachable, lost their share or hold another key: signing still
        /// works while at least t-1 others are fine.
        degraded: Vec<PartyIndex>,
    },
    /// The local share is Pending and every party sealed its part: commit on these cosigners,
    /// then flip the local share to Active.
    CompleteCommit {
        /// Cosigners whose share is still Pending.
        commit_on: Vec<PartyIndex>,
        /// Cosigners that cannot be committed now (unreachable or missing).
        degraded: Vec<PartyIndex>,
    },
    /// The local share is Pending but the run never completed everywhere and nobody committed:
    /// delete the Pending shares (these cosigners' and the local one), then run DKG.
    RollBack {
        /// Cosigners holding a Pending share of the run.
        rollback_on: Vec<PartyIndex>,
    },
}

fn mismatch(i: PartyIndex) -> Error {
    Error::new(
        ErrorKind::ShareMismatch,
        format!(
            "cosigner {i} holds a different collective key than this agent; check MPC_COSIGNER_ENDPOINTS \
             points at this wallet's cosigners. Nothing was changed."
        ),
    )
    .with_context("cosigner", i)
}

/// Decides what to do. Never plans a DKG while any party holds a committed share of the key.
// One function on purpose: it is the table of docs/rfcs/0001_dkg_vs_restore.md row by row, and
// the table test reads against it; split up, the rows' order (which decides) would be hidden.
pub fn plan(local: Option<&ShareMeta>, views: &[(PartyIndex, CosignerView)]) -> Result<Plan> {
    let unreachable: Vec<PartyIndex> =
        views.iter().filter(|(_, v)| matches!(v, CosignerView::Unreachable(_))).map(|(i, _)| *i).collect();
    let holds = || views.iter().filter_map(|(i, v)| if let CosignerView::Holds(k) = v { Some((*i, k)) } else { None });
    let Some(local) = local else {
        if let Some((i, _)) = holds().find(|(_, k)| k.state != ShareState::Pending) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "cosigner {i} holds a committed share of this key but this agent has none; restore the \
                     agent's store from backup (or recover with two cosigners), or choose a new MPC_WALLET_ID"
                ),
            )
            .with_context("cosigner", i));
        }
        if let Some(&i) = unreachable.first() {
            let why = views.iter().find_map(|(j, v)| match v {
                CosignerView::Unreachable(w) if *j == i => Some(w.as_str()),
                _ => None,
            });
            return Err(Error::new(
                ErrorKind::CosignerUnavailable,
                format!("provisioning a new key needs every cosigner, and cosigner {i} is unreachable ({}); start it and retry", why.unwrap_or("")),
            )
            .with_context("cosigner", i));
        }
        return Ok(Plan::Dkg { rollback_first: holds().map(|(i, k)| (i, k.execution_id)).collect() });
    };

    let disagree: Vec<PartyIndex> = holds().filter(|(_, k)| k.public_key != local.public_key).map(|(i, _)| i).collect();
    let agree = holds().filter(|(_, k)| k.public_key == local.public_key && k.state == ShareState::Active).count();
    // A restore skips a cosigner holding another key as long as t-1 others can serve (it is
    // reported as degraded); finishing a commit needs every party to agree, and a key no
    // reachable cosigner agrees on is a misconfiguration, not a degraded wallet.
    if let Some(&i) = disagree.first() {
        if local.state != ShareState::Active || agree + 1 < usize::from(local.threshold) {
            return Err(mismatch(i));
        }
    }
    let missing: Vec<PartyIndex> =
        views.iter().filter(|(_, v)| matches!(v, CosignerView::Missing)).map(|(i, _)| *i).collect();
    let mut degraded: Vec<PartyIndex> = unreachable.iter().chain(&missing).chain(&disagree).copied().collect();
    degraded.sort_unstable();
    match local.state {
        ShareState::Frozen => Err(Error::new(
            ErrorKind::PolicyDenied,
            "this wallet's share is frozen after a protocol blamed a party; an operator must review it before it is used",
        )),
        ShareState::Active => Ok(Plan::Restore { degraded }),
        ShareState::Pending => {
            let same_run = |k: &KeyInfo| k.execution_id == local.execution_id;
            let pending: Vec<PartyIndex> =
                holds().filter(|(_, k)| same_run(k) && k.state == ShareState::Pending).map(|(i, _)| i).collect();
            let any_committed = holds().any(|(_, k)| same_run(k) && k.state == ShareState::Active);
            if any_committed || degraded.is_empty() {
                // Some party committed (so the run completed everywhere), or every party sealed it.
                Ok(Plan::CompleteCommit { commit_on: pending, degraded })
            } else if !unreachable.is_empty() {
                Err(Error::new(
                    ErrorKind::CosignerUnavailable,
                    "an earlier provisioning run is unfinished and a cosigner is unreachable, so it cannot be \
                     completed or rolled back safely; start every cosigner and retry",
                )
                .with_context("cosigner", unreachable[0]))
            } else {
                Ok(Plan::RollBack { rollback_on: pending })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eid(b: u8) -> ExecutionId {
        ExecutionId::from_bytes([b; 32])
    }

    fn meta(pk: u8, state: ShareState, run: u8) -> ShareMeta {
        ShareMeta { public_key: vec![pk; 33], threshold: 2, parties: 3, party_index: 0, state, execution_id: eid(run) }
    }

    fn holds(i: PartyIndex, pk: u8, state: ShareState, run: u8) -> (PartyIndex, CosignerView) {
        (
            i,
            CosignerView::Holds(Box::new(KeyInfo {
                public_key: vec![pk; 33],
                threshold: 2,
                parties: 3,
                party_index: i,
                state,
                execution_id: eid(run),
                protocol: None,
                migrating: None,
                policy: None,
            })),
        )
    }

    fn missing(i: PartyIndex) -> (PartyIndex, CosignerView) {
        (i, CosignerView::Missing)
    }

    fn down(i: PartyIndex) -> (PartyIndex, CosignerView) {
        (i, CosignerView::Unreachable("connection refused".into()))
    }

    use ShareState::{Active, Frozen, Pending};

    #[test]
    fn table() {
        type Expect = std::result::Result<Plan, ErrorKind>;
        type Case = (&'static str, Option<ShareMeta>, Vec<(PartyIndex, CosignerView)>, Expect);
        let cases: Vec<Case> = vec![
            ("fresh", None, vec![missing(1), missing(2)], Ok(Plan::Dkg { rollback_first: vec![] })),
            ("fresh, cosigner down", None, vec![missing(1), down(2)], Err(ErrorKind::CosignerUnavailable)),
            (
                "no local, cosigner active",
                None,
                vec![holds(1, 7, Active, 1), missing(2)],
                Err(ErrorKind::AlreadyExists),
            ),
            (
                "no local, orphan pending",
                None,
                vec![holds(1, 7, Pending, 1), missing(2)],
                Ok(Plan::Dkg { rollback_first: vec![(1, eid(1))] }),
            ),
            (
                "restore",
                Some(meta(7, Active, 1)),
                vec![holds(1, 7, Active, 1), holds(2, 7, Active, 1)],
                Ok(Plan::Restore { degraded: vec![] }),
            ),
            (
                "restore, one down",
                Some(meta(7, Active, 1)),
                vec![holds(1, 7, Active, 1), down(2)],
                Ok(Plan::Restore { degraded: vec![2] }),
            ),
            (
                "restore, one holds another key",
                Some(meta(7, Active, 1)),
                vec![holds(1, 7, Active, 1), holds(2, 8, Active, 9)],
                Ok(Plan::Restore { degraded: vec![2] }),
            ),
            (
                "mismatch: no cosigner agrees",
                Some(meta(7, Active, 1)),
                vec![holds(1, 8, Active, 9), missing(2)],
                Err(ErrorKind::ShareMismatch),
            ),
            (
                "mismatch while pending",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 8, Pending, 1), missing(2)],
                Err(ErrorKind::ShareMismatch),
            ),
            (
                "pending, all sealed",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 7, Pending, 1), holds(2, 7, Pending, 1)],
                Ok(Plan::CompleteCommit { commit_on: vec![1, 2], degraded: vec![] }),
            ),
            (
                "pending, cosigners committed",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 7, Active, 1), holds(2, 7, Active, 1)],
                Ok(Plan::CompleteCommit { commit_on: vec![], degraded: vec![] }),
            ),
            (
                "pending, one committed, one down",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 7, Active, 1), down(2)],
                Ok(Plan::CompleteCommit { commit_on: vec![], degraded: vec![2] }),
            ),
            (
                "pending, one never sealed",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 7, Pending, 1), missing(2)],
                Ok(Plan::RollBack { rollback_on: vec![1] }),
            ),
            (
                "pending, undecidable",
                Some(meta(7, Pending, 1)),
                vec![holds(1, 7, Pending, 1), down(2)],
                Err(ErrorKind::CosignerUnavailable),
            ),
            (
                "frozen",
                Some(meta(7, Frozen, 1)),
                vec![holds(1, 7, Active, 1), holds(2, 7, Active, 1)],
                Err(ErrorKind::PolicyDenied),
            ),
        ];
        for (name, local, views, expect) in cases {
            let got = plan(local.as_ref(), &views).map_err(|e| e.kind());
            assert_eq!(got, expect, "case: {name}");
        }
    }
}
