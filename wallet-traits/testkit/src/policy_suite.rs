//! The conformance suite of the [`PolicyStore`] contract, run against every store that keeps
//! policy state ([`policy_store_tests!`](crate::policy_store_tests)). The decisions here are
//! stand-ins (a budget of 500 satoshis, made-up hashes): the suite checks what a store must
//! guarantee, whatever the policy.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use wallet_traits::{Approval, AuditHead, Ledger, LedgerEntry, PolicyStore, Ruling, ShareStore};

/// The store's policy state; a store under this suite must keep one.
pub fn policy_of(store: &dyn ShareStore) -> &dyn PolicyStore {
    store.policy_state().expect("a store under the policy suite keeps policy state")
}

fn id(tag: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    let unique = crate::unique(tag);
    for (i, c) in unique.bytes().enumerate() {
        b[i % 32] ^= c;
    }
    b[31] |= 1;
    b
}

/// A stand-in audit link: any function of the head and body does for a store.
fn link(head: &AuditHead, body: &[u8]) -> [u8; 32] {
    let mut h = head.hash;
    h[0] = h[0].wrapping_add(1);
    for (i, b) in body.iter().enumerate() {
        h[i % 32] ^= b;
    }
    h
}

/// A ruling that charges `tx` to `charged` at `at_ms` (or refuses when `charged` is `None`).
fn ruling(ledger: &Ledger, tx: [u8; 32], charged: Option<u64>, at_ms: u64, note: &str) -> Ruling {
    let audit = note.as_bytes().to_vec();
    Ruling {
        charge: charged.map(|charged| LedgerEntry { tx, charged, at_ms, state: note.as_bytes().to_vec() }),
        spend_approval: None,
        audit_hash: link(&ledger.head, &audit),
        audit,
    }
}

/// The cases, one public async function each.
pub mod policy_cases {
    use super::*;

    /// A charge is stored, read back as the entry of its transaction, counted in the window, and
    /// raised by a later decision; every decision appends one audit record chained to the head.
    pub async fn settle_charges_and_chains(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let (wallet, tx) = (crate::unique("wallet"), id("tx"));
        let first = p
            .settle(&wallet, &tx, 0, 1_000, &|l| {
                assert_eq!((l.window_sats, l.window_txs, l.entry.clone()), (0, 0, None));
                ruling(l, tx, Some(300), 1_000, "first")
            })
            .await
            .unwrap();
        assert_eq!(p.window(&wallet, 0).await.unwrap(), (300, 1));
        let second = p
            .settle(&wallet, &tx, 0, 2_000, &|l| {
                let entry = l.entry.clone().expect("the entry of the transaction");
                assert_eq!((entry.charged, entry.at_ms, entry.state.as_slice()), (300, 1_000, &b"first"[..]));
                assert_eq!((l.window_sats, l.window_txs), (300, 1));
                assert_eq!(l.head.hash, first.audit_hash, "the head is the last record");
                ruling(l, tx, Some(450), 1_000, "second")
            })
            .await
            .unwrap();
        assert_eq!(p.window(&wallet, 0).await.unwrap(), (450, 1), "one transaction, charged more");
        let log = p.audit(Some(&wallet), 0, 10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!((log[0].body.as_slice(), log[0].hash), (&b"first"[..], first.audit_hash));
        assert_eq!((log[1].body.as_slice(), log[1].hash, log[1].at_ms), (&b"second"[..], second.audit_hash, 2_000));
        assert_eq!(log[1].seq, log[0].seq + 1, "the records follow one another");
    }

    /// A refusal writes its audit record and nothing else; a transaction of all zeros names none.
    pub async fn a_refusal_writes_only_its_record(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let wallet = crate::unique("wallet");
        p.settle(&wallet, &id("tx"), 0, 10, &|l| ruling(l, id("x"), None, 10, "refused")).await.unwrap();
        p.settle(&wallet, &[0; 32], 0, 11, &|l| {
            assert!(l.entry.is_none());
            ruling(l, [0; 32], None, 11, "raw digest refused")
        })
        .await
        .unwrap();
        assert_eq!(p.window(&wallet, 0).await.unwrap(), (0, 0));
        let log = p.audit(Some(&wallet), 0, 10).await.unwrap();
        assert_eq!(log.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>(), [&b"refused"[..], b"raw digest refused"]);
    }

    /// Decisions racing for one budget never share it: ten sessions of 100 satoshis against a
    /// window of 500 leave exactly five charged.
    pub async fn concurrent_decisions_never_share_a_budget(s: Arc<dyn ShareStore>) {
        let wallet = Arc::new(crate::unique("wallet"));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let (s, wallet, calls) = (s.clone(), wallet.clone(), calls.clone());
                tokio::spawn(async move {
                    let tx = id(&format!("tx{i}"));
                    let ruling = policy_of(&*s)
                        .settle(&wallet, &tx, 0, 5_000, &|l| {
                            calls.fetch_add(1, Ordering::SeqCst);
                            let fits = l.window_sats + 100 <= 500;
                            ruling(l, tx, fits.then_some(100), 5_000, if fits { "allowed" } else { "refused" })
                        })
                        .await
                        .unwrap();
                    ruling.charge.is_some()
                })
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.unwrap());
        }
        assert_eq!(allowed, 5, "exactly the budget was charged");
        assert_eq!(calls.load(Ordering::SeqCst), 10, "each decision ran once");
        assert_eq!(policy_of(&*s).window(&wallet, 0).await.unwrap(), (500, 5));
        let log = policy_of(&*s).audit(Some(&wallet), 0, 100).await.unwrap();
        assert_eq!(log.len(), 10, "every decision is in the log");
    }

    /// The window counts entries charged since its start, per wallet; an entry re-dated by a
    /// later charge moves into the window.
    pub async fn the_window_counts_from_its_start(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let (wallet, other) = (crate::unique("wallet"), crate::unique("other"));
        let (old, new) = (id("old"), id("new"));
        p.settle(&wallet, &old, 0, 100, &|l| ruling(l, old, Some(70), 100, "old")).await.unwrap();
        p.settle(&wallet, &new, 0, 900, &|l| ruling(l, new, Some(20), 900, "new")).await.unwrap();
        p.settle(&other, &new, 0, 900, &|l| ruling(l, new, Some(5), 900, "other's")).await.unwrap();
        assert_eq!(p.window(&wallet, 500).await.unwrap(), (20, 1));
        assert_eq!(p.window(&wallet, 0).await.unwrap(), (90, 2));
        assert_eq!(p.window(&other, 0).await.unwrap(), (5, 1));
        p.settle(&wallet, &old, 500, 1_000, &|l| {
            assert_eq!((l.window_sats, l.window_txs), (20, 1));
            assert_eq!(l.entry.as_ref().map(|e| e.at_ms), Some(100), "the entry from before the window");
            ruling(l, old, Some(80), 1_000, "old, again")
        })
        .await
        .unwrap();
        assert_eq!(p.window(&wallet, 500).await.unwrap(), (100, 2), "re-dated into the window");
    }

    /// Approvals are kept once each, offered while open, and spent once with the decision that
    /// uses them; a ruling that spends one not open writes nothing at all.
    pub async fn approvals_are_kept_offered_and_spent_once(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let (wallet, tx) = (crate::unique("wallet"), id("tx"));
        let approval = |tag: &str, wallet: &str, expires_ms| Approval {
            id: id(tag),
            wallet: wallet.to_string(),
            expires_ms,
            body: tag.as_bytes().to_vec(),
        };
        let open = approval("open", &wallet, 10_000);
        assert!(p.add_approval(&open).await.unwrap());
        assert!(!p.add_approval(&open).await.unwrap(), "an approval counts once");
        assert!(p.add_approval(&approval("expired", &wallet, 50)).await.unwrap());
        assert!(p.add_approval(&approval("foreign", &crate::unique("other"), 10_000)).await.unwrap());
        p.settle(&wallet, &tx, 0, 100, &|l| {
            assert_eq!(l.approvals, vec![open.clone()], "only this wallet's open approvals");
            Ruling { spend_approval: Some(open.id), ..ruling(l, tx, Some(1_000), 100, "approved") }
        })
        .await
        .unwrap();
        p.settle(&wallet, &tx, 0, 200, &|l| {
            assert!(l.approvals.is_empty(), "a spent approval is not offered again");
            ruling(l, tx, Some(1_000), 100, "again")
        })
        .await
        .unwrap();
        let before = (p.window(&wallet, 0).await.unwrap(), p.audit(Some(&wallet), 0, 10).await.unwrap());
        let other = id("other tx");
        let e = p
            .settle(&wallet, &other, 0, 300, &|l| Ruling {
                spend_approval: Some(open.id),
                ..ruling(l, other, Some(5), 300, "spent twice")
            })
            .await;
        assert!(e.is_err(), "an approval is spent once");
        let after = (p.window(&wallet, 0).await.unwrap(), p.audit(Some(&wallet), 0, 10).await.unwrap());
        assert_eq!(before, after, "a failed settle writes nothing");
    }

    /// A ruling that charges another transaction than it was asked about is refused whole.
    pub async fn a_ruling_about_another_transaction_writes_nothing(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let wallet = crate::unique("wallet");
        let (asked, other) = (id("asked"), id("other"));
        assert!(p.settle(&wallet, &asked, 0, 1, &|l| ruling(l, other, Some(9), 1, "wrong")).await.is_err());
        assert!(p.settle(&wallet, &[0; 32], 0, 1, &|l| ruling(l, [0; 32], Some(9), 1, "none")).await.is_err());
        assert_eq!(p.window(&wallet, 0).await.unwrap(), (0, 0));
        assert!(p.audit(Some(&wallet), 0, 10).await.unwrap().is_empty());
    }

    /// The log lists oldest first, after a sequence number, for one wallet or all, by pages.
    pub async fn the_log_pages_and_filters(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let (a, b) = (crate::unique("a"), crate::unique("b"));
        for (wallet, note) in [(&a, "a1"), (&b, "b1"), (&a, "a2"), (&a, "a3")] {
            p.settle(wallet, &[0; 32], 0, 1, &|l| ruling(l, [0; 32], None, 1, note)).await.unwrap();
        }
        let of_a = p.audit(Some(&a), 0, 10).await.unwrap();
        assert_eq!(of_a.iter().map(|r| r.body.as_slice()).collect::<Vec<_>>(), [&b"a1"[..], b"a2", b"a3"]);
        let page = p.audit(Some(&a), of_a[0].seq, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].body, b"a2");
        let all = p.audit(None, of_a[0].seq - 1, 100).await.unwrap();
        let mine: Vec<&[u8]> =
            all.iter().filter(|r| r.wallet == a || r.wallet == b).map(|r| r.body.as_slice()).collect();
        assert_eq!(mine, [&b"a1"[..], b"b1", b"a2", b"a3"]);
        assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1), "the whole log has no gaps");
    }

    /// An id is seen once until it expires, per kind; expired ids are forgotten.
    pub async fn seen_ids_are_refused_until_they_expire(s: Arc<dyn ShareStore>) {
        let p = policy_of(&*s);
        let token = id("token");
        assert!(p.mark_seen("jti", &token, 1_000, 10).await.unwrap());
        assert!(!p.mark_seen("jti", &token, 1_000, 20).await.unwrap(), "a replay");
        assert!(p.mark_seen("eid", &token, 1_000, 20).await.unwrap(), "kinds are apart");
        assert!(p.mark_seen("jti", &token, 3_000, 1_001).await.unwrap(), "expired, so forgotten");
        assert!(!p.mark_seen("jti", &token, 3_000, 1_002).await.unwrap());
    }
}

/// Expands to one `#[tokio::test]` per case of [`policy_cases`], each against a fresh
/// [`StoreFixture`](crate::StoreFixture) from `$make` (an async function) whose store keeps
/// policy state. Put it in a module named after the store.
#[macro_export]
macro_rules! policy_store_tests {
    ($make:path) => {
        $crate::policy_store_tests!(@cases $make;
            settle_charges_and_chains, a_refusal_writes_only_its_record, concurrent_decisions_never_share_a_budget,
            the_window_counts_from_its_start, approvals_are_kept_offered_and_spent_once,
            a_ruling_about_another_transaction_writes_nothing, the_log_pages_and_filters,
            seen_ids_are_refused_until_they_expire);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture: $crate::StoreFixture = $make().await;
                $crate::policy_cases::$case(fixture.subject.clone()).await;
                drop(fixture);
            }
        )*
    };
}
