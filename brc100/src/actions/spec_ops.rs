//! @bsv/wallet-toolbox's special operations, which clients reach through ordinary
//! `listOutputs` and `listActions` calls: a reserved basket, tag or label (a fixed SHA-256 hex
//! string the toolbox defines) asks for something other than a listing. The values are the
//! toolbox's (`src/sdk/types.ts`), so a client written against it works here unchanged.

/// `listOutputs` basket (or tag): `totalOutputs` is the wallet's spendable change balance and
/// `outputs` is empty.
pub const WALLET_BALANCE: &str = "893b7646de0e1c9f741bd6e9169b76a8847ae34adef7bef1e6a285371206d2e8";

/// `listOutputs` basket: the spendable change outputs the chain no longer holds as unspent
/// (tag `release` marks them unspendable, tag `all` looks at every basket).
pub const INVALID_CHANGE: &str = "5a76fd430a311f8bc0553859061710a4475c19fed46e2ff95969aa918e612e57";

/// `listOutputs` basket: sets the change parameters (tags: how many change outputs to keep, their
/// least value).
pub const SET_WALLET_CHANGE_PARAMS: &str = "a4979d28ced8581e9c1c92f1001cc7cb3aabf8ea32e10888ad898f0a509a3929";

/// `listActions` label: only `nosend` actions; with the label `abort`, each is aborted (its
/// inputs released) and listed as `failed`.
pub const NO_SEND_ACTIONS: &str = "ac6b20a3bb320adafecd637b25c84b792ad828d3aa510d05dc841481f664277d";

/// `listActions` label: only `failed` actions; with the label `unfail`, each is looked for on the
/// chain and, found, restored (`unproven`, its inputs spent again, its change back).
pub const FAILED_ACTIONS: &str = "97d4eb1e49215e3374cc2c1939a7c43a55e95c7427bf2d45ed63e3b4e0c88153";

/// A `listActions` special operation, with the labels it takes for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionsOp {
    /// [`NO_SEND_ACTIONS`]; `abort` when the label `abort` came with it.
    NoSend { abort: bool },
    /// [`FAILED_ACTIONS`]; `unfail` when the label `unfail` came with it.
    Failed { unfail: bool },
}

/// Splits `listActions` labels into the special operation they name, if any, and the ordinary
/// labels left to filter by. As the toolbox does, `abort` (or `unfail`) belongs to the operation
/// only when the operation is there; otherwise it is an ordinary label.
pub(crate) fn partition_labels(labels: Vec<String>) -> (Option<ActionsOp>, Vec<String>) {
    let op = if labels.iter().any(|l| l == NO_SEND_ACTIONS) {
        Some(ActionsOp::NoSend { abort: labels.iter().any(|l| l == "abort") })
    } else if labels.iter().any(|l| l == FAILED_ACTIONS) {
        Some(ActionsOp::Failed { unfail: labels.iter().any(|l| l == "unfail") })
    } else {
        None
    };
    let taken: &[&str] = match op {
        None => &[],
        Some(ActionsOp::NoSend { .. }) => &[NO_SEND_ACTIONS, FAILED_ACTIONS, "abort"],
        Some(ActionsOp::Failed { .. }) => &[NO_SEND_ACTIONS, FAILED_ACTIONS, "unfail"],
    };
    (op, labels.into_iter().filter(|l| !taken.contains(&l.as_str())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_split_as_the_toolbox_splits_them() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(partition_labels(s(&["abort", "x"])), (None, s(&["abort", "x"])));
        assert_eq!(
            partition_labels(s(&[NO_SEND_ACTIONS, "abort", "x"])),
            (Some(ActionsOp::NoSend { abort: true }), s(&["x"]))
        );
        assert_eq!(partition_labels(s(&[NO_SEND_ACTIONS])), (Some(ActionsOp::NoSend { abort: false }), vec![]));
        assert_eq!(
            partition_labels(s(&["unfail", FAILED_ACTIONS, "abort"])),
            (Some(ActionsOp::Failed { unfail: true }), s(&["abort"]))
        );
    }
}
