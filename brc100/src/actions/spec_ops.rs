//! @bsv/wallet-toolbox's special operations, which clients reach through ordinary
//! `listOutputs` and `listActions` calls: a reserved basket, tag or label (a fixed SHA-256 hex
//! string the toolbox defines) asks for something other than a listing. The values are the
//! toolbox's (`src/sdk/types.ts`), so a client written against it works here unchanged.

use wallet_traits::Result;

/// `listOutputs` basket (or tag): `totalOutputs` is the wallet's spendable change balance and
/// `outputs` is empty.
pub const WALLET_BALANCE: &str = "893b7646de0e1c9f741bd6e9169b76a8847ae34adef7bef1e6a285371206d2e8";

/// `listOutputs` basket: the spendable change outputs the chain no longer holds as unspent
/// (tag `release` marks them unspendable, tag `all` looks at every basket).
pub const INVALID_CHANGE: &str = "5a76fd430a311f8bc0553859061710a4475c19fed46e2ff95969aa918e612e57";

/// `listOutputs` basket: sets the change parameters ([`super::ChangeParams`]) until the wallet
/// restarts; its two tags are how many change outputs to keep (`numberOfDesiredUTXOs`, 1 to 1000)
/// and their least value in satoshis (`minimumDesiredUTXOValue`, at least 1). The listing is empty.
pub const SET_WALLET_CHANGE_PARAMS: &str = "a4979d28ced8581e9c1c92f1001cc7cb3aabf8ea32e10888ad898f0a509a3929";

/// `listActions` label: only `nosend` actions; with the label `abort`, each is aborted (its
/// inputs released) and listed as `failed`.
pub const NO_SEND_ACTIONS: &str = "ac6b20a3bb320adafecd637b25c84b792ad828d3aa510d05dc841481f664277d";

/// `listActions` label: only `failed` actions; with the label `unfail`, each is looked for on the
/// chain and, found, restored (`unproven`, its inputs spent again, its change back).
pub const FAILED_ACTIONS: &str = "97d4eb1e49215e3374cc2c1939a7c43a55e95c7427bf2d45ed63e3b4e0c88153";

/// The change parameters [`SET_WALLET_CHANGE_PARAMS`]'s tags give: exactly two whole numbers,
/// checked as [`super::ChangeParams::check`] checks them.
pub(crate) fn change_params(tags: &[String]) -> Result<super::ChangeParams> {
    let refused = || {
        super::validate::bad(
            "tags",
            "two whole numbers for specOpSetWalletChangeParams: how many change outputs to keep (1 to 1000) and \
             their least value in satoshis (at least 1), such as [\"8\", \"1000\"]",
        )
    };
    let [count, min] = tags else { return Err(refused()) };
    let (Ok(target_count), Ok(min_sats)) = (count.trim().parse::<u32>(), min.trim().parse::<u64>()) else {
        return Err(refused());
    };
    let params = super::ChangeParams { target_count, min_sats };
    params.check().map_err(|_| refused())?;
    Ok(params)
}

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
    fn change_params_are_two_whole_numbers_in_range() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = change_params(&s(&["12", " 5000 "])).unwrap();
        assert_eq!((p.target_count, p.min_sats), (12, 5000));
        for bad in [
            &["8"][..],
            &["8", "1000", "1"],
            &["0", "1000"],
            &["1001", "1000"],
            &["8", "0"],
            &["8", "-1"],
            &["eight", "1000"],
        ] {
            let e = change_params(&s(bad)).unwrap_err();
            assert_eq!(e.context_value("parameter"), Some("tags"), "{bad:?}");
            assert!(e.message().contains("1 to 1000"), "{e}");
        }
    }

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
