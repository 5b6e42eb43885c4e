//! Crash safety of an [`OutputStore`]: a writer that records payments in and out until it is
//! killed with SIGKILL, and the check that every payment is entirely recorded or not at all and
//! that no satoshi appeared or vanished.
//!
//! The parent test runs [`kill_writer_during_writes`](crate::crash::kill_writer_during_writes)
//! with the child test's name, as the share-store crash test does; the child calls
//! [`payment_writer`]. Each generation receives 3 × 1000 satoshis (one action with three tagged
//! outputs), then pays 1000 out of the basket: an unsigned action, reservations, and a commit
//! with its change; every third payment then fails, as a rejected broadcast does.

use wallet_traits::{ActionQuery, ActionStatus, OutputQuery, OutputRecord, OutputStore, QueryMode, SignedAction};

use crate::{
    crash::report_generation,
    output_suite::{sample_action, sample_output},
};

const BASKET: &str = "crash-basket";
const INCOMING: &str = "crash-in";
const OUTGOING: &str = "crash-out";
const RECEIVED: u64 = 1000;
const OUTPUTS_PER_RECEIPT: u32 = 3;
const PAID: u64 = 1000;
const TAGS: [&str; 2] = ["crash-tag-1", "crash-tag-2"];

fn txid(generation: u64, which: u8) -> [u8; 32] {
    let mut t = [which; 32];
    t[..8].copy_from_slice(&generation.to_be_bytes());
    t
}

async fn with_label(store: &dyn OutputStore, label: &str) -> Vec<wallet_traits::ActionRecord> {
    let query = ActionQuery { labels: vec![label.into()], label_mode: QueryMode::Any, ..Default::default() };
    store.list_actions(&query).await.expect("list_actions").items
}

async fn outputs(store: &dyn OutputStore, query: OutputQuery) -> Vec<OutputRecord> {
    store.list_outputs(&query).await.expect("list_outputs").items
}

/// Records payments generation after generation, resuming after what the store holds (an
/// unsigned payment a crash left behind is failed first, as the wallet fails abandoned
/// actions). Prints each completed generation. Stops after `generations` when given.
///
/// ### Panics
///
/// On any store error.
pub async fn payment_writer(store: &dyn OutputStore, generations: Option<u64>) -> u64 {
    for action in with_label(store, OUTGOING).await {
        if action.status == ActionStatus::Unsigned {
            store.fail_action(&action.reference).await.expect("fail an abandoned payment");
        }
    }
    let mut generation = with_label(store, INCOMING).await.len() as u64;
    let mut written = 0;
    while generations.is_none_or(|n| written < n) {
        let incoming = format!("{INCOMING}-{generation}");
        let t = txid(generation, 0);
        let received: Vec<_> = (0..OUTPUTS_PER_RECEIPT)
            .map(|vout| OutputRecord {
                tags: TAGS.iter().map(|t| t.to_string()).collect(),
                ..sample_output(&incoming, t, vout, BASKET, RECEIVED)
            })
            .collect();
        let mut action = sample_action(&incoming, Some(t), &[INCOMING, "crash"]);
        action.satoshis = (RECEIVED * u64::from(OUTPUTS_PER_RECEIPT)) as i64;
        store.record_action(&action, &received).await.expect("record a receipt");

        let outgoing = format!("{OUTGOING}-{generation}");
        store.record_action(&sample_action(&outgoing, None, &[OUTGOING]), &[]).await.expect("record a payment");
        let mut inputs = 0;
        while inputs < PAID + 500 {
            let o = store.reserve_change(&outgoing, BASKET, PAID + 500 - inputs, None).await.expect("reserve");
            inputs += o.expect("the basket holds enough").satoshis;
        }
        let t = txid(generation, 1);
        let signed = SignedAction {
            txid: t,
            raw_tx: t.to_vec(),
            input_beef: None,
            status: ActionStatus::Sending,
            satoshis: -(PAID as i64),
            outputs: vec![sample_output(&outgoing, t, 1, BASKET, inputs - PAID)],
        };
        store.commit_action(&outgoing, &signed).await.expect("commit a payment");
        if generation % 3 == 2 {
            store.fail_action(&outgoing).await.expect("fail a payment");
        }
        generation += 1;
        written += 1;
        report_generation(generation);
    }
    generation
}

/// Checks every receipt and payment is whole and the books balance; returns the number of
/// receipts.
///
/// ### Panics
///
/// On a partly recorded payment, or satoshis that appeared or vanished.
pub async fn check_payments(store: &dyn OutputStore) -> u64 {
    let receipts = with_label(store, INCOMING).await;
    for r in &receipts {
        assert_eq!(r.labels, vec!["crash".to_string(), INCOMING.to_string()], "{}: labels torn", r.reference);
        let created = outputs(store, OutputQuery { created_by: Some(r.reference.clone()), ..Default::default() }).await;
        assert_eq!(created.len() as u32, OUTPUTS_PER_RECEIPT, "{}: outputs torn", r.reference);
        for o in &created {
            assert_eq!(o.tags.len(), TAGS.len(), "{}: tags torn", o.outpoint);
        }
    }
    let (mut reserved_by_open, mut live_payments) = (0, 0);
    for p in with_label(store, OUTGOING).await {
        let created = outputs(store, OutputQuery { created_by: Some(p.reference.clone()), ..Default::default() }).await;
        let spent = outputs(store, OutputQuery { spent_by: Some(p.reference.clone()), ..Default::default() }).await;
        let inputs: u64 = spent.iter().map(|o| o.satoshis).sum();
        match p.status {
            ActionStatus::Unsigned => {
                assert!(created.is_empty() && p.txid.is_none(), "{}: unsigned yet has outputs", p.reference);
                reserved_by_open += inputs;
            }
            ActionStatus::Sending => {
                assert_eq!(created.len(), 1, "{}: committed without its change", p.reference);
                assert_eq!(created[0].satoshis + PAID, inputs, "{}: change and inputs disagree", p.reference);
                live_payments += 1;
            }
            ActionStatus::Failed => {
                assert!(spent.is_empty(), "{}: failed but still holds inputs", p.reference);
                assert!(created.iter().all(|o| !o.spendable), "{}: a failed payment's change pays", p.reference);
            }
            other => panic!("{}: unexpected status {other}", p.reference),
        }
    }
    let balance = store.balance(BASKET).await.expect("balance");
    let received = receipts.len() as u64 * RECEIVED * u64::from(OUTPUTS_PER_RECEIPT);
    assert_eq!(
        balance + reserved_by_open + PAID * live_payments,
        received,
        "satoshis appeared or vanished: balance {balance}, reserved {reserved_by_open}, {live_payments} payments"
    );
    receipts.len() as u64
}

/// Defines an output store's crash-safety tests: `payment_writer_child` (the child; on its own
/// a bounded run and check) and `a_payment_writer_killed_mid_write_leaves_every_payment_whole`
/// (six SIGKILLs, each followed by [`check_payments`] on the reopened store). `|dir| expr` opens
/// the store under `dir: &Path`, as in [`crash_safety_tests!`](crate::crash_safety_tests).
#[macro_export]
macro_rules! output_crash_tests {
    (|$dir:ident| $open:expr) => {
        #[tokio::test]
        async fn payment_writer_child() {
            use $crate::{
                crash::crash_child_dir,
                output_crash::{check_payments, payment_writer},
            };
            if let Some(child_dir) = crash_child_dir() {
                let $dir: &::std::path::Path = &child_dir;
                let store = $open;
                payment_writer(&store, None).await;
                unreachable!("the writer runs until it is killed");
            }
            let tmp = $crate::__private::tempfile::tempdir().unwrap();
            let $dir: &::std::path::Path = tmp.path();
            let store = $open;
            assert_eq!(payment_writer(&store, Some(4)).await, 4);
            assert_eq!(check_payments(&store).await, 4);
            assert_eq!(payment_writer(&store, Some(2)).await, 6, "resumes after what the store holds");
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn a_payment_writer_killed_mid_write_leaves_every_payment_whole() {
            use $crate::{crash::kill_writer_during_writes, output_crash::check_payments};
            let tmp = $crate::__private::tempfile::tempdir().unwrap();
            for round in 0..6 {
                let path = tmp.path().to_path_buf();
                let reported =
                    tokio::task::spawn_blocking(move || kill_writer_during_writes("payment_writer_child", &path, 3))
                        .await
                        .unwrap();
                let $dir: &::std::path::Path = tmp.path();
                let store = $open;
                let receipts = check_payments(&store).await;
                assert!(receipts >= reported, "round {round}: {reported} reported, {receipts} on record");
                drop(store);
            }
        }
    };
}
