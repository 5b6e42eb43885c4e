//! The conformance suite every [`OutputStore`] runs: [`output_store_tests!`](crate::output_store_tests)
//! expands to one test per case of [`output_cases`].

use std::{collections::BTreeSet, sync::Arc};

use wallet_traits::{
    ActionQuery, ActionRecord, ActionStatus, Books, Derivation, ErrorKind, ExecutionId, Outpoint, OutputQuery,
    OutputRecord, OutputStore, QueryMode, SignedAction,
};

use crate::Fixture;

/// An output store for one [`output_store_tests!`](crate::output_store_tests) case.
pub type OutputFixture = Fixture<Arc<dyn OutputStore>>;

/// A name no earlier run used: cases share one store (and one database across runs).
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", &ExecutionId::random().to_string()[..16])
}

/// A txid no earlier run used.
pub fn random_txid() -> [u8; 32] {
    *ExecutionId::random().as_bytes()
}

/// An action as the wallet records a received transaction (`unproven`, with raw bytes), or an
/// unsigned outgoing one when `txid` is `None`.
pub fn sample_action(reference: &str, txid: Option<[u8; 32]>, labels: &[&str]) -> ActionRecord {
    ActionRecord {
        reference: reference.to_string(),
        txid,
        status: if txid.is_some() { ActionStatus::Unproven } else { ActionStatus::Unsigned },
        outgoing: txid.is_none(),
        satoshis: 0,
        description: "a conformance action".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        version: 1,
        lock_time: 0,
        raw_tx: txid.map(|t| t.to_vec()),
        input_beef: None,
        merkle_path: None,
        created_at: 1_700_000_000_000,
    }
}

/// A spendable change output of `satoshis` in `basket`, at `txid:vout`, created by `created_by`.
pub fn sample_output(created_by: &str, txid: [u8; 32], vout: u32, basket: &str, satoshis: u64) -> OutputRecord {
    OutputRecord {
        outpoint: Outpoint::new(txid, vout),
        created_by: created_by.to_string(),
        satoshis,
        locking_script: vec![0x76, 0xa9, 0x14, vout as u8, 0x88, 0xac],
        basket: Some(basket.to_string()),
        tags: Vec::new(),
        custom_instructions: None,
        description: "change".into(),
        spendable: true,
        change: true,
        derivation: Some(Derivation {
            prefix: "cHJlZml4".into(),
            suffix: format!("c3VmZml4{vout}"),
            sender: format!("02{}", "ab".repeat(32)),
        }),
        spent_by: None,
    }
}

/// Receives one transaction paying `amounts` into `basket` (as change) and returns its outpoints.
pub async fn fund(store: &dyn OutputStore, basket: &str, amounts: &[u64]) -> Vec<Outpoint> {
    let reference = unique("fund");
    let txid = random_txid();
    let outputs: Vec<_> =
        amounts.iter().enumerate().map(|(i, a)| sample_output(&reference, txid, i as u32, basket, *a)).collect();
    let mut action = sample_action(&reference, Some(txid), &["funding"]);
    action.satoshis = amounts.iter().sum::<u64>() as i64;
    store.record_action(&action, &outputs).await.expect("record a funding transaction");
    outputs.iter().map(|o| o.outpoint).collect()
}

/// Records an unsigned outgoing action and returns its reference.
pub async fn open_action(store: &dyn OutputStore) -> String {
    let reference = unique("pay");
    store.record_action(&sample_action(&reference, None, &["payment"]), &[]).await.expect("record an unsigned action");
    reference
}

/// Commits the open action `reference` as a `noSend` payment of 4,100 satoshis whose change, 5,900
/// satoshis at output 1, goes back to `basket`; returns its txid.
pub(crate) async fn commit_no_send(store: &dyn OutputStore, reference: &str, basket: &str) -> [u8; 32] {
    let txid = random_txid();
    let signed = SignedAction {
        txid,
        raw_tx: vec![7; 200],
        input_beef: None,
        status: ActionStatus::NoSend,
        satoshis: -4100,
        outputs: vec![sample_output(reference, txid, 1, basket, 5900)],
    };
    store.commit_action(reference, &signed).await.unwrap();
    txid
}

/// Each case of the suite, for [`output_store_tests!`](crate::output_store_tests).
pub mod output_cases {
    use super::*;

    /// A received transaction reads back as recorded, by reference, txid and outpoint.
    pub async fn record_and_read(s: Arc<dyn OutputStore>) {
        let (basket, reference, txid) = (unique("basket"), unique("in"), random_txid());
        let mut output = sample_output(&reference, txid, 0, &basket, 1234);
        output.tags = vec!["alpha".into(), "beta".into()];
        output.custom_instructions = Some("{\"k\":1}".into());
        output.change = false;
        output.derivation = None;
        let mut action = sample_action(&reference, Some(txid), &["label-a", "label-b"]);
        action.satoshis = 1234;
        action.input_beef = Some(vec![1, 2, 3]);
        let recorded = s.record_action(&action, std::slice::from_ref(&output)).await.unwrap();
        assert_eq!((recorded.reference.as_str(), recorded.new_action, recorded.outputs_added), (&*reference, true, 1));
        assert_eq!(s.action(&reference).await.unwrap(), Some(action.clone()), "the action reads back whole");
        assert_eq!(s.action_by_txid(&txid).await.unwrap(), Some(action));
        assert_eq!(s.output(&output.outpoint).await.unwrap(), Some(output.clone()), "the output reads back whole");
        assert_eq!(s.output(&Outpoint::new(txid, 1)).await.unwrap(), None);
        assert_eq!(s.action(&unique("none")).await.unwrap(), None);
        let page = s.list_outputs(&OutputQuery { basket: Some(basket.clone()), ..Default::default() }).await.unwrap();
        assert_eq!((page.total, page.items), (1, vec![output]));
        assert_eq!(s.balance(&basket).await.unwrap(), 1234);
        assert_eq!(s.balance(&unique("empty")).await.unwrap(), 0);
    }

    /// The same transaction received twice counts once; a taken reference is refused.
    pub async fn same_transaction_counts_once(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let (first, second, txid) = (unique("in"), unique("in"), random_txid());
        let outputs = [sample_output(&first, txid, 0, &basket, 500), sample_output(&first, txid, 1, &basket, 700)];
        s.record_action(&sample_action(&first, Some(txid), &["one"]), &outputs[..1]).await.unwrap();
        // Again under another reference, with one more output and another label.
        let again: Vec<_> = outputs.iter().map(|o| OutputRecord { created_by: second.clone(), ..o.clone() }).collect();
        let recorded = s.record_action(&sample_action(&second, Some(txid), &["two"]), &again).await.unwrap();
        assert_eq!(recorded.reference, first, "the earlier action keeps the transaction");
        assert!(!recorded.new_action);
        assert_eq!(recorded.outputs_added, 1, "only the output not yet known is added");
        assert_eq!(s.balance(&basket).await.unwrap(), 1200, "nothing counted twice");
        assert_eq!(s.action(&second).await.unwrap(), None);
        let action = s.action(&first).await.unwrap().unwrap();
        assert_eq!(action.labels, vec!["one".to_string(), "two".to_string()]);
        let added = s.output(&outputs[1].outpoint).await.unwrap().unwrap();
        assert_eq!(added.created_by, first, "outputs are filed under the action that holds the transaction");

        let e = s.record_action(&sample_action(&first, Some(random_txid()), &[]), &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    }

    /// Funding picks an exact match, else the smallest that covers, else the largest, and only
    /// spendable change of the basket asked for.
    pub async fn reserve_change_picks_like_the_toolbox(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[100, 500, 1000, 5000]).await;
        // Not change, or in another basket: never picked.
        let reference = unique("other");
        let txid = random_txid();
        let mut not_change = sample_output(&reference, txid, 0, &basket, 700);
        not_change.change = false;
        let elsewhere = sample_output(&reference, txid, 1, &unique("basket"), 700);
        s.record_action(&sample_action(&reference, Some(txid), &[]), &[not_change, elsewhere]).await.unwrap();

        let pay = open_action(&*s).await;
        let pick = |target, exact| {
            let (s, pay, basket) = (s.clone(), pay.clone(), basket.clone());
            async move { s.reserve_change(&pay, &basket, target, exact).await.unwrap().map(|o| o.satoshis) }
        };
        assert_eq!(pick(700, Some(500)).await, Some(500), "exact match first");
        assert_eq!(pick(700, None).await, Some(1000), "then the smallest that covers");
        assert_eq!(pick(1_000_000, None).await, Some(5000), "then the largest");
        assert_eq!(pick(1_000_000, None).await, Some(100));
        assert_eq!(pick(1, None).await, None, "the basket's change is used up");
        let reserved =
            s.list_outputs(&OutputQuery { spent_by: Some(pay.clone()), ..Default::default() }).await.unwrap();
        let reserved: BTreeSet<_> = reserved.items.iter().map(|o| o.outpoint).collect();
        assert_eq!(reserved, funded.iter().copied().collect(), "the reservations are on record");
        assert_eq!(s.balance(&basket).await.unwrap(), 700, "reserved outputs are not spendable; the other one stays");
    }

    /// Concurrent reservations never get the same output, and together get every one.
    pub async fn concurrent_reservations_never_share(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded: BTreeSet<_> = fund(&*s, &basket, &[1000; 40]).await.into_iter().collect();
        let takers = (0..8).map(|_| {
            let (s, basket) = (s.clone(), basket.clone());
            tokio::spawn(async move {
                let pay = open_action(&*s).await;
                let mut got = Vec::new();
                while let Some(o) = s.reserve_change(&pay, &basket, 1500, None).await.expect("reserve_change") {
                    assert_eq!(o.spent_by.as_deref(), Some(pay.as_str()));
                    got.push(o.outpoint);
                    tokio::task::yield_now().await;
                }
                got
            })
        });
        let mut all = Vec::new();
        for taker in takers.collect::<Vec<_>>() {
            all.extend(taker.await.unwrap());
        }
        let distinct: BTreeSet<_> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "an output was reserved twice");
        assert_eq!(distinct, funded, "every output was reserved once");
    }

    /// Aborting (failing) an action releases what it reserved, once; a failed action reserves no more.
    pub async fn abort_releases_reservations(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[300, 400]).await;
        let pay = open_action(&*s).await;
        s.reserve_change(&pay, &basket, 600, None).await.unwrap().expect("an output");
        s.reserve_outputs(&pay, &funded[..1]).await.unwrap();
        assert_eq!(s.balance(&basket).await.unwrap(), 0);
        assert!(s.fail_action(&pay).await.unwrap());
        assert_eq!(s.balance(&basket).await.unwrap(), 700, "both outputs are spendable again");
        for o in &funded {
            let o = s.output(o).await.unwrap().unwrap();
            assert!(o.spendable && o.spent_by.is_none(), "{o:?}");
        }
        assert!(!s.fail_action(&pay).await.unwrap(), "failing twice changes nothing");
        assert_eq!(s.action(&pay).await.unwrap().unwrap().status, ActionStatus::Failed);
        let e = s.reserve_change(&pay, &basket, 1, None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let e = s.fail_action(&unique("none")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }

    /// A signed action spends its inputs and adds its change in one step; when its broadcast
    /// then fails, the inputs come back and the change never pays.
    pub async fn commit_then_failed_broadcast(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[10_000]).await;
        let pay = open_action(&*s).await;
        let input = s.reserve_change(&pay, &basket, 4000, None).await.unwrap().expect("an output");
        let txid = random_txid();
        let signed = SignedAction {
            txid,
            raw_tx: vec![7; 200],
            input_beef: Some(vec![8; 20]),
            status: ActionStatus::Sending,
            satoshis: -4100,
            outputs: vec![sample_output(&pay, txid, 1, &basket, 5900)],
        };
        s.commit_action(&pay, &signed).await.unwrap();
        assert_eq!(s.balance(&basket).await.unwrap(), 5900, "the change is spendable, the input spent");
        let action = s.action_by_txid(&txid).await.unwrap().expect("the signed action by its txid");
        assert_eq!((action.reference.as_str(), action.status, action.satoshis), (&*pay, ActionStatus::Sending, -4100));
        assert_eq!(action.raw_tx.as_deref(), Some(&[7u8; 200][..]));
        let e = s.commit_action(&pay, &signed).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "a committed action is not open: {e}");
        let e = s.commit_action(&unique("none"), &signed).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

        assert!(s.fail_action(&pay).await.unwrap());
        assert_eq!(s.balance(&basket).await.unwrap(), 10_000, "the input is back, the change gone");
        assert!(s.output(&input.outpoint).await.unwrap().unwrap().spendable);
        let change = s.output(&Outpoint::new(txid, 1)).await.unwrap().unwrap();
        assert!(!change.spendable, "a failed transaction's change never pays");
        // Spending that change is refused.
        let other = open_action(&*s).await;
        let e = s.reserve_outputs(&other, &[change.outpoint]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    }

    /// An action whose change a live action reserved or spent cannot fail: its inputs coming back
    /// would be money the later transaction already spent (a double spend the wallet would sign).
    pub async fn a_spent_chain_cannot_fail_under_its_spender(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[10_000]).await;
        let first = open_action(&*s).await;
        s.reserve_change(&first, &basket, 4000, None).await.unwrap().expect("an output");
        let txid = commit_no_send(&*s, &first, &basket).await;
        let second = open_action(&*s).await;
        s.reserve_outputs(&second, &[Outpoint::new(txid, 1)]).await.unwrap();
        let e = s.fail_action(&first).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(e.context_value("spent_by"), Some(second.as_str()), "{e}");
        assert_eq!(s.action(&first).await.unwrap().unwrap().status, ActionStatus::NoSend, "nothing changed");
        assert_eq!(s.balance(&basket).await.unwrap(), 0, "no input came back");
        // Once the spender failed, the first may fail too, and its input comes back.
        assert!(s.fail_action(&second).await.unwrap());
        assert!(s.fail_action(&first).await.unwrap());
        assert_eq!(s.balance(&basket).await.unwrap(), 10_000);
    }

    /// Reserving by outpoint is all or none.
    pub async fn reserve_outputs_all_or_none(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[10, 20, 30]).await;
        let first = open_action(&*s).await;
        s.reserve_outputs(&first, &funded[1..2]).await.unwrap();
        let second = open_action(&*s).await;
        let e = s.reserve_outputs(&second, &funded).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(s.balance(&basket).await.unwrap(), 40, "the refused call reserved nothing");
        let unknown = Outpoint::new(random_txid(), 0);
        let e = s.reserve_outputs(&second, &[funded[0], unknown]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(s.balance(&basket).await.unwrap(), 40);
        let got = s.reserve_outputs(&second, &[funded[0], funded[2]]).await.unwrap();
        assert_eq!(got.iter().map(|o| o.satoshis).collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!(s.balance(&basket).await.unwrap(), 0);
    }

    /// Outputs list by basket, tags (any or all) and spendability, paged, with the total.
    pub async fn list_outputs_filters_and_pages(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let reference = unique("in");
        let txid = random_txid();
        let tags: [&[&str]; 5] = [&["a"], &["a", "b"], &["b"], &[], &["a", "b", "c"]];
        let outputs: Vec<_> = tags
            .iter()
            .enumerate()
            .map(|(i, t)| OutputRecord {
                tags: t.iter().map(|t| t.to_string()).collect(),
                ..sample_output(&reference, txid, i as u32, &basket, 100 + i as u64)
            })
            .collect();
        s.record_action(&sample_action(&reference, Some(txid), &[]), &outputs).await.unwrap();
        let list = |tags: &[&str], tag_mode, limit, offset| {
            let q = OutputQuery {
                basket: Some(basket.clone()),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                tag_mode,
                spendable_only: true,
                limit,
                offset,
                ..Default::default()
            };
            let s = s.clone();
            async move {
                let page = s.list_outputs(&q).await.unwrap();
                (page.total, page.items.iter().map(|o| o.outpoint.vout).collect::<Vec<_>>())
            }
        };
        assert_eq!(list(&[], QueryMode::Any, None, 0).await, (5, vec![0, 1, 2, 3, 4]));
        assert_eq!(list(&["a"], QueryMode::Any, None, 0).await, (3, vec![0, 1, 4]));
        assert_eq!(list(&["a", "b"], QueryMode::Any, None, 0).await, (4, vec![0, 1, 2, 4]));
        assert_eq!(list(&["a", "b"], QueryMode::All, None, 0).await, (2, vec![1, 4]));
        assert_eq!(list(&["b", "a", "a"], QueryMode::All, None, 0).await, (2, vec![1, 4]), "repeats count once");
        assert_eq!(list(&["zzz"], QueryMode::Any, None, 0).await, (0, vec![]));
        assert_eq!(list(&[], QueryMode::Any, Some(2), 1).await, (5, vec![1, 2]), "a page keeps the total");
        assert_eq!(list(&[], QueryMode::Any, Some(10), 4).await, (5, vec![4]));
        let pay = open_action(&*s).await;
        s.reserve_outputs(&pay, &[outputs[0].outpoint]).await.unwrap();
        assert_eq!(list(&["a"], QueryMode::Any, None, 0).await, (2, vec![1, 4]), "a reserved output is not listed");
    }

    /// Actions list by labels (any or all) and status, paged, with the total.
    pub async fn list_actions_filters_and_pages(s: Arc<dyn OutputStore>) {
        let tag = unique("label");
        let (x, y) = (format!("{tag}-x"), format!("{tag}-y"));
        let labels: [Vec<&str>; 4] = [vec![&x], vec![&x, &y], vec![&y], vec![]];
        let mut references = Vec::new();
        for l in &labels {
            let reference = unique("in");
            s.record_action(&sample_action(&reference, Some(random_txid()), l), &[]).await.unwrap();
            references.push(reference);
        }
        let list = |labels: Vec<String>, label_mode, statuses: Vec<ActionStatus>, limit, offset| {
            let q = ActionQuery { labels, label_mode, statuses, limit, offset };
            let (s, references) = (s.clone(), references.clone());
            async move {
                let page = s.list_actions(&q).await.unwrap();
                let at = page.items.iter().map(|a| references.iter().position(|r| *r == a.reference)).collect();
                (page.total, at)
            }
        };
        let some = |v: &[usize]| v.iter().map(|i| Some(*i)).collect::<Vec<_>>();
        let (lx, ly) = (vec![x.clone()], vec![y.clone()]);
        let both = vec![x.clone(), y.clone()];
        assert_eq!(list(lx.clone(), QueryMode::Any, vec![], None, 0).await, (2, some(&[0, 1])));
        assert_eq!(list(both.clone(), QueryMode::Any, vec![], None, 0).await, (3, some(&[0, 1, 2])));
        assert_eq!(list(both.clone(), QueryMode::All, vec![], None, 0).await, (1, some(&[1])));
        assert_eq!(list(both.clone(), QueryMode::Any, vec![], Some(1), 1).await, (3, some(&[1])));
        s.set_status(&references[2], ActionStatus::Completed).await.unwrap();
        let done = vec![ActionStatus::Completed];
        assert_eq!(list(ly.clone(), QueryMode::Any, done, None, 0).await, (1, some(&[2])));
        let pending = vec![ActionStatus::Unproven, ActionStatus::Sending];
        assert_eq!(list(ly, QueryMode::Any, pending, None, 0).await, (1, some(&[1])));
    }

    /// A relinquished output leaves its basket for good.
    pub async fn relinquish_leaves_the_basket(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[50, 60]).await;
        assert!(!s.relinquish_output(&unique("other"), &funded[0]).await.unwrap(), "not in that basket");
        assert!(s.relinquish_output(&basket, &funded[0]).await.unwrap());
        assert!(!s.relinquish_output(&basket, &funded[0]).await.unwrap(), "already gone");
        assert_eq!(s.balance(&basket).await.unwrap(), 60);
        let page = s.list_outputs(&OutputQuery { basket: Some(basket.clone()), ..Default::default() }).await.unwrap();
        assert_eq!(page.items.iter().map(|o| o.outpoint).collect::<Vec<_>>(), vec![funded[1]]);
        let pay = open_action(&*s).await;
        assert_eq!(s.reserve_change(&pay, &basket, 1, None).await.unwrap().map(|o| o.satoshis), Some(60));
        // Released, it stays out of the basket.
        s.fail_action(&pay).await.unwrap();
        assert!(!s.output(&funded[0]).await.unwrap().unwrap().spendable);
    }

    /// An output the chain says was spent elsewhere leaves the balance and change selection but
    /// stays listed; a reserved one is left to its action.
    pub async fn spent_elsewhere_is_no_longer_spendable(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[50, 60, 70]).await;
        assert!(s.mark_spent_elsewhere(&funded[0]).await.unwrap());
        assert!(!s.mark_spent_elsewhere(&funded[0]).await.unwrap(), "already marked");
        assert!(!s.mark_spent_elsewhere(&Outpoint::new(random_txid(), 0)).await.unwrap(), "unknown");
        assert_eq!(s.balance(&basket).await.unwrap(), 130);
        let marked = s.output(&funded[0]).await.unwrap().unwrap();
        assert!(!marked.spendable && marked.spent_by.is_none() && marked.basket.as_deref() == Some(basket.as_str()));
        let pay = open_action(&*s).await;
        assert_eq!(s.reserve_change(&pay, &basket, 65, None).await.unwrap().map(|o| o.satoshis), Some(70));
        assert!(!s.mark_spent_elsewhere(&funded[2]).await.unwrap(), "reserved by the wallet's own action");
        s.fail_action(&pay).await.unwrap();
        assert_eq!(s.balance(&basket).await.unwrap(), 130, "the release brought back only the reserved one");
    }

    /// An action failed although the network took its transaction comes back: its input spent by
    /// it again, its change spendable, `unproven`. An input another live action took meanwhile
    /// is a conflict, and nothing changes.
    pub async fn unfail_restores_what_fail_undid(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[10_000]).await;
        let pay = open_action(&*s).await;
        let input = s.reserve_change(&pay, &basket, 4000, None).await.unwrap().expect("an output");
        commit_no_send(&*s, &pay, &basket).await;
        assert!(!s.unfail_action(&pay, &[input.outpoint]).await.unwrap(), "not failed: nothing to do");
        assert!(s.fail_action(&pay).await.unwrap());
        assert_eq!(s.balance(&basket).await.unwrap(), 10_000);

        // Meanwhile another action took the input: un-failing is refused, nothing changes.
        let other = open_action(&*s).await;
        s.reserve_outputs(&other, &[input.outpoint]).await.unwrap();
        let e = s.unfail_action(&pay, &[input.outpoint]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert_eq!(s.action(&pay).await.unwrap().unwrap().status, ActionStatus::Failed);
        s.fail_action(&other).await.unwrap();

        let outside = Outpoint::new(random_txid(), 3);
        assert!(s.unfail_action(&pay, &[input.outpoint, outside]).await.unwrap());
        assert_eq!(s.action(&pay).await.unwrap().unwrap().status, ActionStatus::Unproven);
        assert_eq!(s.balance(&basket).await.unwrap(), 5900, "the input spent again, the change back");
        assert_eq!(s.output(&input.outpoint).await.unwrap().unwrap().spent_by.as_deref(), Some(pay.as_str()));
        let e = s.unfail_action(&unique("none"), &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }

    /// Purging drops the bytes of old failed actions only, a bounded number a call, and keeps
    /// their rows.
    pub async fn purge_drops_old_failed_bytes_only(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[10_000, 20_000]).await;
        let mut failed = Vec::new();
        for _ in 0..3 {
            let pay = open_action(&*s).await;
            s.reserve_change(&pay, &basket, 100, None).await.unwrap().expect("an output");
            commit_no_send(&*s, &pay, &basket).await;
            s.fail_action(&pay).await.unwrap();
            failed.push(pay);
        }
        let live = open_action(&*s).await;
        s.reserve_change(&live, &basket, 100, None).await.unwrap().expect("an output");
        commit_no_send(&*s, &live, &basket).await;
        // sample_action's creation time is in 2023: every one is old against now.
        let now = 1_800_000_000_000;
        assert_eq!(s.purge_failed(1_600_000_000_000, 10).await.unwrap(), 0, "none that old");
        assert_eq!(s.purge_failed(now, 2).await.unwrap(), 2, "bounded");
        assert_eq!(s.purge_failed(now, 10).await.unwrap(), 1);
        assert_eq!(s.purge_failed(now, 10).await.unwrap(), 0, "nothing left to purge");
        for pay in &failed {
            let a = s.action(pay).await.unwrap().expect("the row stays");
            assert_eq!((a.status, a.raw_tx, a.input_beef), (ActionStatus::Failed, None, None));
        }
        assert!(s.action(&live).await.unwrap().unwrap().raw_tx.is_some(), "a live action keeps its bytes");
    }

    /// Proof attempts count for unproven transactions only, and start again from 0.
    pub async fn proof_attempts_count_and_reset(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[1]).await;
        let txid = funded[0].txid;
        assert_eq!(s.count_proof_attempt(&txid).await.unwrap(), 1);
        assert_eq!(s.count_proof_attempt(&txid).await.unwrap(), 2);
        assert_eq!(s.count_proof_attempt(&random_txid()).await.unwrap(), 0, "an unknown transaction");
        s.reset_proof_attempts(&txid).await.unwrap();
        assert_eq!(s.count_proof_attempt(&txid).await.unwrap(), 1, "counted from 0 again");
        assert!(s.set_merkle_path(&txid, &[1]).await.unwrap());
        assert_eq!(s.count_proof_attempt(&txid).await.unwrap(), 0, "a proven transaction is not counted");
        let pay = open_action(&*s).await;
        s.reserve_change(&pay, &basket, 1, None).await.unwrap().expect("an output");
        let sent = commit_no_send(&*s, &pay, &basket).await;
        assert_eq!(s.count_proof_attempt(&sent).await.unwrap(), 0, "a noSend transaction is not counted");
        s.reset_proof_attempts(&random_txid()).await.unwrap();
    }

    /// Everything exported from one store imports whole into an empty one, once: a second
    /// import adds nothing, and what the target held stays.
    pub async fn books_export_and_import_whole(s: Arc<dyn OutputStore>, empty: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let (reference, txid) = (unique("in"), random_txid());
        let mut output = sample_output(&reference, txid, 0, &basket, 1234);
        output.tags = vec!["alpha".into(), "beta".into()];
        output.custom_instructions = Some("{\"k\":1}".into());
        let mut action = sample_action(&reference, Some(txid), &["label-a", "label-b"]);
        action.satoshis = 1234;
        action.input_beef = Some(vec![1, 2, 3]);
        action.merkle_path = Some(vec![4, 5]);
        s.record_action(&action, std::slice::from_ref(&output)).await.unwrap();
        fund(&*s, &basket, &[10_000, 20_000]).await;
        let pay = open_action(&*s).await;
        s.reserve_change(&pay, &basket, 9000, None).await.unwrap().expect("an output");
        commit_no_send(&*s, &pay, &basket).await;
        let failed = open_action(&*s).await;
        s.fail_action(&failed).await.unwrap();

        let books = s.export_books().await.unwrap();
        assert_eq!((books.actions.len(), books.outputs.len()), (4, 4), "{books:?}");
        assert_eq!(books.actions[0], s.action(&reference).await.unwrap().unwrap(), "oldest first, whole");
        assert_eq!(books.outputs[0], output, "tags and instructions with it");

        // What the target held before stays, and is not in the count.
        let own = fund(&*empty, &basket, &[5]).await;
        let imported = empty.import_books(&books).await.unwrap();
        assert_eq!((imported.actions, imported.outputs, imported.replaced, imported.skipped), (4, 4, 0, 0));
        for a in &books.actions {
            assert_eq!(empty.action(&a.reference).await.unwrap().as_ref(), Some(a), "{}", a.reference);
        }
        for o in &books.outputs {
            assert_eq!(empty.output(&o.outpoint).await.unwrap().as_ref(), Some(o), "{}", o.outpoint);
        }
        assert_eq!(empty.balance(&basket).await.unwrap(), s.balance(&basket).await.unwrap() + 5);
        assert!(empty.output(&own[0]).await.unwrap().is_some());
        let again = empty.import_books(&books).await.unwrap();
        assert_eq!((again.actions, again.outputs, again.replaced), (0, 0, 8), "nothing new");
        let both = empty.export_books().await.unwrap();
        assert_eq!((both.actions.len(), both.outputs.len()), (5, 5));
        assert_eq!(both.actions[1..], books.actions[..], "the same rows, unchanged");
        // A row that moved on here takes the books' state again (the backup is what is restored).
        empty.set_status(&pay, ActionStatus::Unproven).await.unwrap();
        empty.mark_spent_elsewhere(&own[0]).await.unwrap();
        empty.import_books(&books).await.unwrap();
        assert_eq!(empty.action(&pay).await.unwrap().unwrap().status, ActionStatus::NoSend);
        assert!(!empty.output(&own[0]).await.unwrap().unwrap().spendable, "a row the books lack stays as it is");
        // A transaction the store holds under another reference is left out.
        let mut renamed = books.actions[0].clone();
        renamed.reference = unique("renamed");
        let other = empty.import_books(&Books { actions: vec![renamed.clone()], outputs: vec![] }).await.unwrap();
        assert_eq!((other.actions, other.skipped), (0, 1));
        assert_eq!(empty.action(&renamed.reference).await.unwrap(), None);
        // The reservation and the spend came along: the imported change cannot be spent twice.
        let spent = books.outputs.iter().find(|o| o.spent_by.as_deref() == Some(pay.as_str())).expect("spent");
        assert!(!empty.output(&spent.outpoint).await.unwrap().unwrap().spendable);
    }

    /// Statuses and merkle proofs: set, proven, and the refusals around them.
    pub async fn status_and_proof(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        let funded = fund(&*s, &basket, &[1]).await;
        let funding = s.output(&funded[0]).await.unwrap().unwrap().created_by;
        s.set_status(&funding, ActionStatus::Unproven).await.unwrap();
        assert!(s.set_merkle_path(&funded[0].txid, &[1, 2, 3]).await.unwrap());
        let action = s.action(&funding).await.unwrap().unwrap();
        assert_eq!((action.status, action.merkle_path), (ActionStatus::Completed, Some(vec![1, 2, 3])));
        assert!(!s.set_merkle_path(&random_txid(), &[1]).await.unwrap(), "an unknown transaction");
        let e = s.fail_action(&funding).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "a proven action cannot fail: {e}");
        let e = s.set_status(&funding, ActionStatus::Failed).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        // A reorg drops its block: unproven again, its output untouched; proven again after.
        assert!(s.clear_merkle_path(&funded[0].txid).await.unwrap());
        assert!(!s.clear_merkle_path(&funded[0].txid).await.unwrap(), "no longer completed");
        assert!(!s.clear_merkle_path(&random_txid()).await.unwrap(), "an unknown transaction");
        let action = s.action(&funding).await.unwrap().unwrap();
        assert_eq!((action.status, action.merkle_path), (ActionStatus::Unproven, None));
        assert_eq!(s.balance(&basket).await.unwrap(), 1);
        assert!(s.set_merkle_path(&funded[0].txid, &[4, 5]).await.unwrap());
        assert_eq!(s.action(&funding).await.unwrap().unwrap().status, ActionStatus::Completed);
        let e = s.set_status(&unique("none"), ActionStatus::Unproven).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }

    /// An amount no column holds is refused, and the action it came with is not recorded.
    pub async fn impossible_amounts_are_refused(s: Arc<dyn OutputStore>) {
        let (basket, reference, txid) = (unique("basket"), unique("in"), random_txid());
        let output = sample_output(&reference, txid, 0, &basket, u64::MAX);
        let e = s.record_action(&sample_action(&reference, Some(txid), &[]), &[output]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(s.action(&reference).await.unwrap(), None, "nothing of the refused receipt is stored");
        assert_eq!(s.balance(&basket).await.unwrap(), 0);
    }

    /// What is kept for signing an open action reads back whole (any bytes), replaced by a later
    /// keep; an unknown action has none and keeps none.
    pub async fn keep_and_read_signable(s: Arc<dyn OutputStore>) {
        let pay = open_action(&*s).await;
        assert_eq!(s.signable(&pay).await.unwrap(), None, "nothing kept yet");
        let blob: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        s.keep_signable(&pay, &blob).await.unwrap();
        assert_eq!(s.signable(&pay).await.unwrap(), Some(blob), "the bytes read back whole");
        s.keep_signable(&pay, &[0, 1, 2]).await.unwrap();
        assert_eq!(s.signable(&pay).await.unwrap(), Some(vec![0, 1, 2]), "a later keep replaces it");
        let action = s.action(&pay).await.unwrap().unwrap();
        assert_eq!((action.status, action.raw_tx), (ActionStatus::Unsigned, None), "the action is as it was");
        let other = open_action(&*s).await;
        assert_eq!(s.signable(&other).await.unwrap(), None, "kept per action");

        let unknown = unique("none");
        assert_eq!(s.signable(&unknown).await.unwrap(), None);
        let e = s.keep_signable(&unknown, &[1]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(s.action(&unknown).await.unwrap(), None, "keeping recorded nothing");
    }

    /// Committing an action drops what was kept for signing it, and a committed action keeps none.
    pub async fn commit_drops_the_signable(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[10_000]).await;
        let pay = open_action(&*s).await;
        s.reserve_change(&pay, &basket, 4000, None).await.unwrap().expect("an output");
        s.keep_signable(&pay, &[9; 64]).await.unwrap();
        commit_no_send(&*s, &pay, &basket).await;
        assert_eq!(s.signable(&pay).await.unwrap(), None, "a signed action is not signed again");
        let e = s.keep_signable(&pay, &[9; 64]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "a committed action is not open: {e}");
        assert_eq!(s.signable(&pay).await.unwrap(), None);
        // Failed later (an abort of the noSend transaction), it still has none.
        assert!(s.fail_action(&pay).await.unwrap());
        assert_eq!(s.signable(&pay).await.unwrap(), None);
    }

    /// Failing an action drops what was kept for signing it, and a failed action keeps none.
    pub async fn fail_drops_the_signable(s: Arc<dyn OutputStore>) {
        let basket = unique("basket");
        fund(&*s, &basket, &[500]).await;
        let pay = open_action(&*s).await;
        s.reserve_change(&pay, &basket, 100, None).await.unwrap().expect("an output");
        s.keep_signable(&pay, &[5; 32]).await.unwrap();
        assert!(s.fail_action(&pay).await.unwrap());
        assert_eq!(s.signable(&pay).await.unwrap(), None, "an aborted action cannot be signed");
        assert_eq!(s.balance(&basket).await.unwrap(), 500, "the reservation was released as before");
        let e = s.keep_signable(&pay, &[5; 32]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "a failed action is not open: {e}");
        assert_eq!(s.signable(&pay).await.unwrap(), None);
    }

    /// Debug output of records shows sizes, not raw transactions or scripts.
    pub async fn debug_hides_bytes(s: Arc<dyn OutputStore>) {
        let reference = unique("in");
        let txid = random_txid();
        let mut action = sample_action(&reference, Some(txid), &[]);
        action.raw_tx = Some(vec![0xee; 64]);
        s.record_action(&action, &[]).await.unwrap();
        let read = s.action(&reference).await.unwrap().unwrap();
        let shown = format!("{read:?} {:?}", sample_output(&reference, txid, 0, "b", 1));
        assert!(!shown.contains(&"ee".repeat(8)) && !shown.contains("238, 238"), "{shown}");
        assert!(!format!("{s:?}").is_empty());
    }
}

/// Expands to one `#[tokio::test]` per case of [`output_cases`], each against a fresh
/// [`OutputFixture`] from `$make` (an async function). Put it in a module named after the store.
#[macro_export]
macro_rules! output_store_tests {
    ($make:path) => {
        $crate::output_store_tests!(@cases $make;
            record_and_read, same_transaction_counts_once, reserve_change_picks_like_the_toolbox,
            concurrent_reservations_never_share, abort_releases_reservations, commit_then_failed_broadcast,
            a_spent_chain_cannot_fail_under_its_spender,
            reserve_outputs_all_or_none, list_outputs_filters_and_pages, list_actions_filters_and_pages,
            relinquish_leaves_the_basket, spent_elsewhere_is_no_longer_spendable, unfail_restores_what_fail_undid,
            purge_drops_old_failed_bytes_only, proof_attempts_count_and_reset,
            status_and_proof, impossible_amounts_are_refused,
            keep_and_read_signable, commit_drops_the_signable, fail_drops_the_signable, debug_hides_bytes);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        /// The cases that need a second, empty store.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn books_export_and_import_whole() {
            let (from, to): ($crate::OutputFixture, $crate::OutputFixture) = ($make().await, $make().await);
            $crate::output_cases::books_export_and_import_whole(from.subject.clone(), to.subject.clone()).await;
            drop((from, to));
        }
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture: $crate::OutputFixture = $make().await;
                $crate::output_cases::$case(fixture.subject.clone()).await;
                drop(fixture);
            }
        )*
    };
}
