//! Whole-crate tests: real transactions of real keys, decisions settled against an in-memory
//! store that does what a `PolicyStore` does, and the audit chain those decisions leave.

use k256::ecdsa::SigningKey;
use wallet_bsv::{amount::MAX_SATOSHIS, brc42, Network, Script, Transaction, TxId, TxInput, TxOutput};
use wallet_traits::{Approval, AuditHead, AuditRecord, ErrorKind, InputToSign, Ledger, LedgerEntry, PublicKey, Result};

use crate::*;

const WALLET: &str = "agent-1";
const HOUR_MS: u64 = 3_600_000;
const T0: u64 = 1_700_000_000_000;

fn signing_key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).unwrap()
}

fn public(n: u8) -> PublicKey {
    ApproverKey::from_hex(&hex::encode([n; 32])).unwrap().public_key()
}

/// The wallet's root key.
fn root() -> PublicKey {
    public(1)
}

/// P2PKH of someone else's key `n`.
fn pay_to(n: u8) -> Script {
    Script::p2pkh_lock_to(public(n).as_bytes())
}

const CHANGE_TWEAK: [u8; 32] = [5; 32];

fn change_script() -> Script {
    Script::p2pkh_lock_to(brc42::child_public_key(&root(), &CHANGE_TWEAK).unwrap().as_bytes())
}

/// A transaction spending outputs of `amounts` (P2PKH of the root key, the txid salted by
/// `salt` so each call with another salt is another transaction) to `outputs`.
fn tx(salt: u8, amounts: &[u64], outputs: Vec<(Script, u64)>) -> Transaction {
    Transaction {
        version: 1,
        inputs: amounts
            .iter()
            .enumerate()
            .map(|(i, sats)| TxInput {
                source_txid: TxId([salt; 32]),
                source_vout: i as u32,
                unlocking_script: Script::default(),
                sequence: 0xffff_ffff,
                source_output: Some(TxOutput {
                    satoshis: *sats,
                    locking_script: Script::p2pkh_lock_to(root().as_bytes()),
                }),
            })
            .collect(),
        outputs: outputs.into_iter().map(|(locking_script, satoshis)| TxOutput { satoshis, locking_script }).collect(),
        lock_time: 0,
    }
}

fn all(index: u32) -> InputToSign {
    InputToSign { index, sighash_type: wallet_bsv::sighash::ALL_FORKID, tweak: None }
}

fn claim(vout: u32) -> ChangeClaim {
    ChangeClaim { vout, tweak: CHANGE_TWEAK }
}

/// What a `PolicyStore` keeps, in memory, applied as `settle` applies a ruling.
#[derive(Default)]
struct Store {
    entries: Vec<(String, LedgerEntry)>,
    approvals: Vec<(Approval, bool)>,
    audit: Vec<AuditRecord>,
}

impl Store {
    fn add_approval(&mut self, a: &SignedApproval) {
        self.approvals.push((a.to_store(), false));
    }

    fn ledger(&self, wallet: &str, tx: &[u8; 32], since_ms: u64, now_ms: u64) -> Ledger {
        let window = self.entries.iter().filter(|(w, e)| w == wallet && e.at_ms >= since_ms);
        Ledger {
            window_sats: window.clone().fold(0u64, |sum, (_, e)| sum.saturating_add(e.charged)),
            window_txs: window.count() as u64,
            entry: self.entries.iter().find(|(w, e)| w == wallet && e.tx == *tx).map(|(_, e)| e.clone()),
            approvals: self
                .approvals
                .iter()
                .filter(|(a, spent)| !spent && a.wallet == wallet && a.expires_ms > now_ms)
                .map(|(a, _)| a.clone())
                .collect(),
            head: self.audit.last().map(|r| AuditHead { seq: r.seq, hash: r.hash }).unwrap_or_default(),
        }
    }

    fn settle(&mut self, wallet: &str, tx: &[u8; 32], since_ms: u64, now_ms: u64, decision: &Decision) {
        let ruling = &decision.ruling;
        let head = self.ledger(wallet, tx, since_ms, now_ms).head;
        if let Some(entry) = &ruling.charge {
            assert_eq!(entry.tx, *tx);
            self.entries.retain(|(w, e)| !(w == wallet && e.tx == *tx));
            self.entries.push((wallet.to_string(), entry.clone()));
        }
        if let Some(id) = ruling.spend_approval {
            let (_, spent) = self.approvals.iter_mut().find(|(a, _)| a.id == id).expect("spends a stored approval");
            assert!(!*spent, "an approval is spent once");
            *spent = true;
        }
        self.audit.push(AuditRecord {
            seq: head.seq + 1,
            wallet: wallet.to_string(),
            at_ms: now_ms,
            body: ruling.audit.clone(),
            hash: ruling.audit_hash,
        });
    }

    /// One signing session: assess, then decide in the store's step.
    fn session(
        &mut self,
        rules: &Rules,
        tx: &Transaction,
        inputs: &[InputToSign],
        claims: &[ChangeClaim],
        now_ms: u64,
    ) -> Result<Decision> {
        let ctx = context(now_ms);
        let assessment = match assess(&root(), tx, inputs, claims) {
            Ok(a) => a,
            Err(e) => {
                let id = policy_tx_id(tx);
                let ledger = self.ledger(WALLET, &id, rules.window_start(now_ms), now_ms);
                let ruling = audit_refusal(&ledger, &ctx, Some(&id), &e);
                let d = Decision { rule: Rule::of(&e), ruling, refusal: Some(e.clone()) };
                self.settle(WALLET, &id, rules.window_start(now_ms), now_ms, &d);
                return Err(e);
            }
        };
        let since = rules.window_start(now_ms);
        let ledger = self.ledger(WALLET, &assessment.tx, since, now_ms);
        let d = decide(rules, &assessment, &ledger, &ctx);
        self.settle(WALLET, &assessment.tx, since, now_ms, &d);
        Ok(d)
    }

    fn entry(&self, tx: &Transaction) -> Option<&LedgerEntry> {
        let id = policy_tx_id(tx);
        self.entries.iter().find(|(_, e)| e.tx == id).map(|(_, e)| e)
    }

    fn last_body(&self) -> AuditBody {
        AuditBody::parse(&self.audit.last().unwrap().body).unwrap()
    }
}

const COSIGNERS: [&str; 2] = ["https://c1.example:8443", "https://ops:secret@c2.example/api"];

fn context(now_ms: u64) -> Context<'static> {
    static URLS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let urls = URLS.get_or_init(|| COSIGNERS.iter().map(|s| s.to_string()).collect());
    Context { wallet: WALLET, now_ms, network: Network::Mainnet, cosigners: urls }
}

fn rules(toml: &str) -> Rules {
    Policy::from_toml(toml).unwrap().rules_for(WALLET)
}

fn approver_rules(extra: &str) -> Rules {
    rules(&format!("approver_keys = [\"{}\"]\n{extra}", public(40)))
}

fn approve(key: u8, destination: &Script, sats: u64, expires_at_ms: u64, nonce: u8) -> SignedApproval {
    let body = ApprovalBody {
        wallet: WALLET.into(),
        destination: destination.as_bytes().to_vec(),
        sats,
        expires_at_ms,
        nonce: [nonce; 16],
    };
    sign_approval(body, &signing_key(key))
}

fn refusal(d: &Decision) -> &wallet_traits::Error {
    let e = d.refusal.as_ref().expect("refused");
    assert_eq!(d.ruling.charge, None);
    assert_eq!(d.ruling.spend_approval, None);
    e
}

// --- assess ---

#[test]
fn only_sighash_all_forkid_is_signed() {
    let t = tx(1, &[1000, 2000], vec![(pay_to(9), 2900)]);
    for (sighash_type, name) in [(0x42, "NONE|FORKID"), (0x43, "SINGLE|FORKID"), (0xc1, "ALL|ANYONECANPAY|FORKID")] {
        let inputs = [all(0), InputToSign { index: 1, sighash_type, tweak: None }];
        let e = assess(&root(), &t, &inputs, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(
            e.message().contains(&format!("input 1 is to be signed with sighash type {sighash_type:#x} ({name})")),
            "{e}"
        );
        assert_eq!(Rule::of(&e), Rule::Sighash);
        assert_eq!(e.context_value("input"), Some("1"));
    }
    let e = assess(&root(), &t, &[InputToSign { index: 0, sighash_type: 0x01, tweak: None }], &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    let a = assess(&root(), &t, &[all(0), all(1)], &[]).unwrap();
    assert_eq!(a.inputs, [SignedInput { index: 0, sats: 1000 }, SignedInput { index: 1, sats: 2000 }]);
    assert_eq!(a.outflow, 3000);
}

#[test]
fn a_false_change_claim_refuses_the_session() {
    let t = tx(1, &[10_000], vec![(pay_to(9), 1000), (change_script(), 8900), (pay_to(8), 50)]);
    assert_eq!(assess(&root(), &t, &[all(0)], &[claim(1)]).unwrap().outflow, 1100);
    let wrong_tweak = ChangeClaim { vout: 1, tweak: [6; 32] };
    let cases = [
        (vec![claim(0)], "output 0 is not P2PKH of the key the claim names"),
        (vec![wrong_tweak], "output 1 is not P2PKH"),
        (vec![claim(1), claim(2)], "output 2 is not P2PKH"),
        (vec![claim(1), claim(1)], "output 1 is claimed twice"),
        (vec![claim(3)], "output 3 does not exist"),
        (vec![ChangeClaim { vout: u32::MAX, tweak: CHANGE_TWEAK }], "does not exist"),
    ];
    for (claims, wanted) in cases {
        let e = assess(&root(), &t, &[all(0)], &claims).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
        assert!(e.message().starts_with("a change claim is false"), "{e}");
        assert!(e.message().contains(wanted), "{wanted}: {e}");
        assert_eq!(Rule::of(&e), Rule::ChangeClaim);
    }
    // An all-zero tweak is the root key itself.
    let to_root = tx(1, &[10_000], vec![(Script::p2pkh_lock_to(root().as_bytes()), 9900)]);
    let a = assess(&root(), &to_root, &[all(0)], &[ChangeClaim { vout: 0, tweak: [0; 32] }]).unwrap();
    assert_eq!((a.outflow, a.destinations.len()), (100, 0));
}

#[test]
fn destinations_are_the_unclaimed_outputs_with_money() {
    let data = Script::new(vec![0x00, 0x6a, 0x04, 1, 2, 3, 4]);
    let t = tx(1, &[6000, 5000], vec![(pay_to(9), 1000), (change_script(), 4000), (data, 0), (pay_to(8), 200)]);
    let a = assess(&root(), &t, &[all(1)], &[claim(1)]).unwrap();
    assert_eq!(a.tx, policy_tx_id(&t));
    assert_eq!(a.change, [ChangeOutput { vout: 1, sats: 4000 }]);
    let dests: Vec<(u32, Vec<u8>, u64)> = a.destinations.iter().map(|d| (d.vout, d.script.clone(), d.sats)).collect();
    assert_eq!(dests, [(0, pay_to(9).into_bytes(), 1000), (3, pay_to(8).into_bytes(), 200)]);
    assert_eq!(a.outflow, 1000, "this session signs input 1 only: 5000 less 4000 of change");
    // Change beyond what the session spends floors the outflow at 0.
    let a = assess(&root(), &t, &[all(1)], &[]).unwrap();
    assert_eq!((a.outflow, a.destinations.len()), (5000, 3));
    let t = tx(1, &[100], vec![(change_script(), 9000)]);
    assert_eq!(assess(&root(), &t, &[all(0)], &[claim(0)]).unwrap().outflow, 0);
}

#[test]
fn amounts_past_2_pow_64_are_refused_not_wrapped() {
    // Enough outputs of the most there can be to pass 2^64: a wrapping sum sees a small number.
    let n = (u64::MAX / MAX_SATOSHIS) as usize + 1;
    let outputs = (0..n).map(|_| (pay_to(9), MAX_SATOSHIS)).collect();
    let e = assess(&root(), &tx(1, &[1000], outputs), &[all(0)], &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("outputs add up to more than 21 million coins"), "{e}");
    let e =
        assess(&root(), &tx(1, &[1000], vec![(pay_to(9), u64::MAX), (pay_to(9), 1001)]), &[all(0)], &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = assess(&root(), &tx(1, &[MAX_SATOSHIS, MAX_SATOSHIS], vec![]), &[all(0), all(1)], &[]).unwrap_err();
    assert!(e.message().contains("inputs to sign spend more than 21 million coins"), "{e}");
    assert_eq!(Rule::of(&e), Rule::Invalid);
}

#[test]
fn malformed_sessions_are_refused() {
    let t = tx(1, &[1000], vec![(pay_to(9), 900)]);
    for (inputs, wanted) in [
        (vec![], "at least one input"),
        (vec![all(1)], "input 1 does not exist"),
        (vec![all(0), all(0)], "input 0 is listed twice"),
    ] {
        let e = assess(&root(), &t, &inputs, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains(wanted), "{e}");
    }
    let mut raw = t.clone();
    raw.inputs[0].source_output = None;
    assert!(assess(&root(), &raw, &[all(0)], &[]).unwrap_err().message().contains("Extended Format"));
}

#[test]
fn the_policy_id_is_one_per_transaction() {
    let t = tx(1, &[1000, 2000, 3000], vec![(pay_to(9), 5000), (change_script(), 900)]);
    let first = assess(&root(), &t, &[all(0)], &[claim(1)]).unwrap();
    let second = assess(&root(), &t, &[all(1), all(2)], &[]).unwrap();
    assert_eq!(first.tx, second.tx);
    // Unlocking scripts are not signed: a partly signed transaction is the same one.
    let mut signed = t.clone();
    signed.inputs[0].unlocking_script = Script::new(vec![0x51; 100]);
    assert_eq!(policy_tx_id(&signed), first.tx);
    assert_ne!(policy_tx_id(&t), t.txid().0);
    // Every part ALL|FORKID signs makes another transaction.
    let changes: [fn(&mut Transaction); 6] = [
        |t| t.outputs[0].satoshis += 1,
        |t| t.outputs[1].locking_script = pay_to(7),
        |t| t.inputs[2].source_vout = 9,
        |t| t.inputs[1].sequence = 0,
        |t| t.lock_time = 1,
        |t| t.version = 2,
    ];
    for change in changes {
        let mut other = t.clone();
        change(&mut other);
        assert_ne!(policy_tx_id(&other), first.tx);
    }
}

// --- decide ---

#[test]
fn the_per_transaction_cap() {
    let r = rules("max_sats_per_tx = 50000");
    let mut store = Store::default();
    let over = tx(1, &[100_000], vec![(pay_to(9), 50_000), (change_script(), 49_900)]);
    let d = store.session(&r, &over, &[all(0)], &[claim(1)], T0).unwrap();
    let e = refusal(&d);
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert_eq!(d.rule, Rule::MaxSatsPerTx);
    assert!(e.message().contains("its net outflow is 50100 sats, over max_sats_per_tx (50000)"), "{e}");
    assert!(e.message().contains("No approver key is configured"), "{e}");
    assert_eq!(e.context_value("approval_request"), None);
    let body = store.last_body();
    assert_eq!(
        (body.allowed, body.rule.as_str(), body.outflow, body.charge),
        (false, "max_sats_per_tx", Some(50_100), 0)
    );
    assert!(store.entries.is_empty());

    let under = tx(2, &[100_000], vec![(pay_to(9), 49_900), (change_script(), 50_000)]);
    let d = store.session(&r, &under, &[all(0)], &[claim(1)], T0).unwrap();
    assert!(d.allowed());
    assert_eq!(d.rule, Rule::Ok);
    let entry = d.ruling.charge.as_ref().unwrap();
    assert_eq!((entry.charged, entry.at_ms), (50_000, T0));
    let body = store.last_body();
    assert_eq!(
        (body.allowed, body.rule.as_str(), body.charge, body.window_sats, body.window_txs),
        (true, "ok", 50_000, 50_000, 1)
    );
    assert_eq!(body.destinations, [AuditDestination { vout: 0, script: pay_to(9).to_hex(), sats: 49_900 }]);
}

#[test]
fn many_small_payments_exhaust_the_window() {
    let r = rules("window_secs = 3600\nmax_sats_per_window = 10000");
    let mut store = Store::default();
    let payment = |salt| tx(salt, &[1600], vec![(pay_to(9), 1000), (change_script(), 500)]);
    for i in 0..9u8 {
        let d = store.session(&r, &payment(i), &[all(0)], &[claim(1)], T0 + u64::from(i) * 1000).unwrap();
        assert!(d.allowed(), "payment {i}: {:?}", d.refusal);
    }
    assert_eq!(store.last_body().window_sats, 9900);
    let d = store.session(&r, &payment(9), &[all(0)], &[claim(1)], T0 + 10_000).unwrap();
    let e = refusal(&d);
    assert_eq!(d.rule, Rule::WindowSats);
    assert!(
        e.message().contains("it would charge 1100 sats to a window with 100 sats of max_sats_per_window (10000) left"),
        "{e}"
    );
    assert!(e.message().contains("The window (the last 3600 s) has 100 sats (max_sats_per_window 10000) left."), "{e}");
    // Once the first payments leave the window, there is room again.
    let d = store.session(&r, &payment(9), &[all(0)], &[claim(1)], T0 + HOUR_MS + 2000).unwrap();
    assert!(d.allowed(), "{:?}", d.refusal);
}

#[test]
fn the_transaction_count_of_the_window() {
    let r = rules("max_tx_per_window = 3");
    let mut store = Store::default();
    let payment = |salt| tx(salt, &[1000, 1000], vec![(pay_to(9), 1900)]);
    for salt in 0..3 {
        assert!(store.session(&r, &payment(salt), &[all(0)], &[], T0).unwrap().allowed());
    }
    let d = store.session(&r, &payment(3), &[all(0)], &[], T0).unwrap();
    assert_eq!(d.rule, Rule::WindowTxs);
    assert!(refusal(&d).message().contains("the window already holds 3 transactions, and max_tx_per_window is 3"));
    // Another session of a transaction already counted adds no transaction.
    let d = store.session(&r, &payment(2), &[all(1)], &[], T0).unwrap();
    assert!(d.allowed(), "{:?}", d.refusal);
    assert_eq!(store.last_body().window_txs, 3);
    assert_eq!(store.entry(&payment(2)).unwrap().charged, 2000);
}

#[test]
fn the_allowlist() {
    let friend = wallet_bsv::address::p2pkh_address(&pay_to(7).p2pkh_hash().unwrap(), Network::Mainnet);
    let r = rules(&format!("allowed_destinations = [\"{friend}\", \"6a\"]"));
    let mut store = Store::default();
    let ok = tx(1, &[10_000], vec![(pay_to(7), 1000), (change_script(), 8900), (Script::new(vec![0x6a]), 5)]);
    assert!(store.session(&r, &ok, &[all(0)], &[claim(1)], T0).unwrap().allowed());
    // Change to the wallet itself needs no listing, but unclaimed it is a destination like any.
    let d = store.session(&r, &ok, &[all(0)], &[], T0).unwrap();
    assert!(d.allowed(), "change credited by the first session stays credited: {:?}", d.refusal);
    let unclaimed = tx(2, &[10_000], vec![(pay_to(7), 1000), (change_script(), 8900)]);
    let d = store.session(&r, &unclaimed, &[all(0)], &[], T0).unwrap();
    assert_eq!(d.rule, Rule::AllowedDestinations);

    let stranger = tx(3, &[10_000], vec![(pay_to(8), 1000), (change_script(), 8900)]);
    let d = store.session(&r, &stranger, &[all(0)], &[claim(1)], T0).unwrap();
    let e = refusal(&d);
    let shown = wallet_bsv::address::p2pkh_address(&pay_to(8).p2pkh_hash().unwrap(), Network::Mainnet);
    assert!(
        e.message().contains(&format!("output 0 pays 1000 sats to {shown}, which is not in allowed_destinations")),
        "{e}"
    );
    assert_eq!(Rule::of(e), Rule::AllowedDestinations);
}

#[test]
fn a_payment_split_over_sessions_is_counted_once() {
    let r = rules("max_sats_per_window = 5000");
    let mut store = Store::default();
    // 20000 in, 3000 out to someone else, 16900 back as change, 100 of fee: 3100 leaves.
    let t = tx(1, &[10_000, 10_000], vec![(pay_to(9), 3000), (change_script(), 16_900)]);
    let first = store.session(&r, &t, &[all(0)], &[claim(1)], T0).unwrap();
    assert!(first.allowed());
    assert_eq!(first.ruling.charge.as_ref().unwrap().charged, 0, "10000 in, 16900 back");
    // The second session claims the same change again: it is credited once, not twice (counted
    // per session, both sessions would show no outflow at all).
    let second = store.session(&r, &t, &[all(1)], &[claim(1)], T0 + 1).unwrap();
    assert!(second.allowed());
    let entry = store.entry(&t).unwrap();
    assert_eq!((entry.charged, entry.at_ms), (3100, T0));
    let body = store.last_body();
    assert_eq!((body.outflow, body.charge, body.window_sats, body.window_txs), (Some(3100), 3100, 3100, 1));
    // Signing again (a retry, or all inputs at once) charges nothing more.
    let again = store.session(&r, &t, &[all(0), all(1)], &[claim(1)], T0 + 2).unwrap();
    assert!(again.allowed());
    assert_eq!(store.last_body().charge, 0);
    assert_eq!(store.entry(&t).unwrap().charged, 3100);
    // A session that claims no change cannot lower what was counted either.
    let unclaimed = store.session(&r, &t, &[all(1)], &[], T0 + 3).unwrap();
    assert!(unclaimed.allowed());
    assert_eq!(store.entry(&t).unwrap().charged, 3100);
    assert_eq!(store.ledger(WALLET, &[0; 32], 0, T0).window_sats, 3100);

    // Split the other way round, the window still sees the whole outflow.
    let big = tx(2, &[10_000, 10_000], vec![(pay_to(9), 5000), (change_script(), 14_900)]);
    assert!(store.session(&r, &big, &[all(0)], &[claim(1)], T0).unwrap().allowed());
    let d = store.session(&r, &big, &[all(1)], &[], T0).unwrap();
    assert_eq!(d.rule, Rule::WindowSats, "3100 + 5100 > 5000");
    assert_eq!(store.entry(&big).unwrap().charged, 0);
}

#[test]
fn an_entry_from_before_the_window_is_counted_anew_when_it_grows() {
    let r = rules("window_secs = 60\nmax_sats_per_window = 5000\nmax_tx_per_window = 1");
    let mut store = Store::default();
    let t = tx(1, &[4000, 4000], vec![(pay_to(9), 3000), (change_script(), 4900)]);
    assert!(store.session(&r, &t, &[all(0)], &[claim(1)], T0).unwrap().allowed());
    assert_eq!(store.entry(&t).unwrap().charged, 0);
    let later = T0 + 61_000;
    let d = store.session(&r, &t, &[all(1)], &[], later).unwrap();
    assert!(d.allowed(), "{:?}", d.refusal);
    let entry = store.entry(&t).unwrap();
    assert_eq!((entry.charged, entry.at_ms), (3100, later));
    assert_eq!(store.ledger(WALLET, &[0; 32], r.window_start(later), later).window_txs, 1);
}

#[test]
fn an_approval_lifts_the_limits_once() {
    let r = approver_rules("max_sats_per_tx = 50000\nmax_sats_per_window = 60000\nallowed_destinations = []");
    let mut store = Store::default();
    let payment = |salt| tx(salt, &[100_000], vec![(pay_to(9), 80_000), (change_script(), 19_900)]);
    let d = store.session(&r, &payment(1), &[all(0)], &[claim(1)], T0).unwrap();
    let e = refusal(&d).clone();
    assert_eq!(d.rule, Rule::AllowedDestinations, "the first rule broken");
    let to = wallet_bsv::address::p2pkh_address(&pay_to(9).p2pkh_hash().unwrap(), Network::Mainnet);
    let command = format!(
        "mpc-wallet approve --wallet agent-1 --to {to} --sats 80100 --cosigner https://c1.example:8443 --cosigner \
         'https://***@c2.example/api'"
    );
    assert_eq!(e.context_value("approve"), Some(command.as_str()));
    let request = approval_request_id(WALLET, [pay_to(9).as_bytes()], 80_100);
    assert_eq!(e.context_value("approval_request"), Some(request.as_str()));
    assert!(e.message().contains(&format!("{command} (approval request {request})")), "{e}");
    assert!(e.message().contains("over max_sats_per_tx (50000)") && e.message().contains("60000 sats"), "{e}");
    assert!(!e.message().contains("secret"), "credentials of a cosigner URL are not shown: {e}");

    // Two approvals fit; the smaller is spent.
    let big = approve(40, &pay_to(9), 200_000, T0 + HOUR_MS, 1);
    let exact = approve(40, &pay_to(9), 80_100, T0 + HOUR_MS, 2);
    store.add_approval(&big);
    store.add_approval(&exact);
    let d = store.session(&r, &payment(1), &[all(0)], &[claim(1)], T0 + 1).unwrap();
    assert!(d.allowed(), "{:?}", d.refusal);
    assert_eq!((d.rule, d.ruling.spend_approval), (Rule::Approval, Some(exact.id())));
    let body = store.last_body();
    assert_eq!((body.rule.as_str(), body.approval), ("approval", Some(hex::encode(exact.id()))));
    assert_eq!(body.window_sats, 80_100, "an approved payment still counts in the window");

    // A retry of the same transaction is allowed under the approval it spent.
    let d = store.session(&r, &payment(1), &[all(0)], &[claim(1)], T0 + 2).unwrap();
    assert_eq!((d.rule, d.ruling.spend_approval), (Rule::Approval, None));
    // Another payment spends the other approval, then nothing is left.
    let d = store.session(&r, &payment(2), &[all(0)], &[claim(1)], T0 + 3).unwrap();
    assert_eq!(d.ruling.spend_approval, Some(big.id()));
    let d = store.session(&r, &payment(3), &[all(0)], &[claim(1)], T0 + 4).unwrap();
    assert!(!d.allowed());
    assert_eq!(store.approvals.iter().filter(|(_, spent)| *spent).count(), 2);
}

#[test]
fn an_approved_transaction_split_over_sessions_stays_within_the_approval() {
    let r = approver_rules("max_sats_per_tx = 10000");
    let mut store = Store::default();
    let t = tx(1, &[50_000, 50_000], vec![(pay_to(9), 90_000), (change_script(), 9_900)]);
    assert!(!store.session(&r, &t, &[all(0)], &[claim(1)], T0).unwrap().allowed());
    let approval = approve(40, &pay_to(9), 90_100, T0 + HOUR_MS, 1);
    store.add_approval(&approval);
    let first = store.session(&r, &t, &[all(0)], &[claim(1)], T0).unwrap();
    assert_eq!((first.rule, first.ruling.spend_approval), (Rule::Approval, Some(approval.id())));
    assert_eq!(store.entry(&t).unwrap().charged, 40_100);
    let second = store.session(&r, &t, &[all(1)], &[], T0).unwrap();
    assert!(second.allowed(), "{:?}", second.refusal);
    assert_eq!((second.rule, second.ruling.spend_approval), (Rule::Approval, None));
    assert_eq!(store.entry(&t).unwrap().charged, 90_100);

    // An approval never covers more than it names: the same payment approved for less is
    // allowed for the first session only.
    let t = tx(2, &[50_000, 50_000], vec![(pay_to(9), 90_000), (change_script(), 9_900)]);
    store.add_approval(&approve(40, &pay_to(9), 50_000, T0 + HOUR_MS, 2));
    assert!(store.session(&r, &t, &[all(0)], &[claim(1)], T0).unwrap().allowed());
    let d = store.session(&r, &t, &[all(1)], &[], T0).unwrap();
    assert_eq!(d.rule, Rule::MaxSatsPerTx);
    assert!(refusal(&d).message().contains("--sats 90100"));
}

#[test]
fn approvals_that_do_not_fit_have_no_effect() {
    let r = approver_rules("max_sats_per_tx = 50000");
    let payment = tx(1, &[100_000], vec![(pay_to(9), 80_000), (change_script(), 19_900)]);
    let mut other_wallet = approve(40, &pay_to(9), 80_100, T0 + HOUR_MS, 6).body;
    other_wallet.wallet = "agent-2".into();
    let other_wallet = sign_approval(other_wallet, &signing_key(40));
    let cases = [
        ("expired", approve(40, &pay_to(9), 80_100, T0, 1)),
        ("for less than the outflow", approve(40, &pay_to(9), 80_099, T0 + HOUR_MS, 2)),
        ("for another destination", approve(40, &pay_to(8), 80_100, T0 + HOUR_MS, 3)),
        ("signed by an unpinned key", approve(41, &pay_to(9), 80_100, T0 + HOUR_MS, 4)),
        ("for another wallet", other_wallet),
    ];
    for (what, approval) in cases {
        let mut store = Store::default();
        store.add_approval(&approval);
        // The store is not trusted to have filtered: hand the approval over regardless.
        let id = policy_tx_id(&payment);
        let mut ledger = store.ledger(WALLET, &id, 0, 0);
        ledger.approvals = vec![approval.to_store()];
        ledger.approvals[0].wallet = WALLET.into();
        ledger.approvals[0].expires_ms = u64::MAX;
        let a = assess(&root(), &payment, &[all(0)], &[claim(1)]).unwrap();
        let d = decide(&r, &a, &ledger, &context(T0));
        assert_eq!(d.rule, Rule::MaxSatsPerTx, "{what}");
        refusal(&d);
    }
    // An approval whose bytes were altered in the store (amount raised) does not verify.
    let honest = approve(40, &pay_to(9), 1000, T0 + HOUR_MS, 5);
    let mut tampered = honest.to_store();
    tampered.body = String::from_utf8(tampered.body).unwrap().replace("\"sats\":1000", "\"sats\":90000").into_bytes();
    let a = assess(&root(), &payment, &[all(0)], &[claim(1)]).unwrap();
    let ledger = Ledger { approvals: vec![tampered], ..Ledger::default() };
    assert!(!decide(&r, &a, &ledger, &context(T0)).allowed());
    // Without approver keys, even a valid approval counts for nothing.
    let no_approvers = rules("max_sats_per_tx = 50000");
    let ledger =
        Ledger { approvals: vec![approve(40, &pay_to(9), 80_100, T0 + HOUR_MS, 7).to_store()], ..Ledger::default() };
    assert!(!decide(&no_approvers, &a, &ledger, &context(T0)).allowed());
    assert!(decide(&r, &a, &ledger, &context(T0)).allowed(), "the same approval with the key pinned");
}

#[test]
fn refusals_say_when_no_approval_can_help() {
    let r = approver_rules("max_sats_per_tx = 1000");
    let mut store = Store::default();
    let two = tx(1, &[100_000], vec![(pay_to(9), 5000), (pay_to(8), 5000)]);
    let d = store.session(&r, &two, &[all(0)], &[], T0).unwrap();
    let e = refusal(&d);
    assert!(e.message().contains("this transaction pays 2: pay each in a transaction of its own"), "{e}");
    assert_eq!(e.context_value("approve"), None);
    let fee_only = tx(2, &[100_000], vec![(change_script(), 10)]);
    let d = store.session(&r, &fee_only, &[all(0)], &[claim(0)], T0).unwrap();
    assert!(refusal(&d).message().contains("pays none beyond its fee"), "{:?}", d.refusal);
    // A script that is not P2PKH is named in hex.
    let script = Script::new(vec![0x51, 0x52, 0x93]);
    let odd = tx(3, &[100_000], vec![(script.clone(), 99_000)]);
    let d = store.session(&r, &odd, &[all(0)], &[], T0).unwrap();
    assert!(refusal(&d).context_value("approve").unwrap().contains(&format!("--to {} ", script.to_hex())));
}

#[test]
fn corrupt_ledger_entries_refuse() {
    let r = Rules::default();
    let t = tx(1, &[1000], vec![(pay_to(9), 900)]);
    let a = assess(&root(), &t, &[all(0)], &[]).unwrap();
    let entry = LedgerEntry { tx: a.tx, charged: 100, at_ms: T0, state: b"{}".to_vec() };
    let ledger = Ledger { entry: Some(entry.clone()), ..Ledger::default() };
    let d = decide(&r, &a, &ledger, &context(T0));
    assert_eq!((d.rule, refusal(&d).kind()), (Rule::Ledger, ErrorKind::Corrupted));
    let ledger = Ledger { entry: Some(LedgerEntry { tx: [7; 32], ..entry }), ..Ledger::default() };
    let d = decide(&r, &a, &ledger, &context(T0));
    assert_eq!((d.rule, refusal(&d).kind()), (Rule::Ledger, ErrorKind::Internal));
}

#[test]
fn raw_digests_are_decided_and_audited() {
    let mut store = Store::default();
    for (text, allowed) in [("", false), ("raw_digests = \"allow\"", true)] {
        let r = rules(text);
        let ledger = store.ledger(WALLET, &[0; 32], 0, T0);
        let d = decide_raw_digest(&r, &ledger, &context(T0));
        assert_eq!(d.allowed(), allowed);
        store.settle(WALLET, &[0; 32], 0, T0, &d);
        let body = store.last_body();
        assert_eq!((body.allowed, body.rule.as_str(), body.tx), (allowed, "raw_digest", None));
    }
    let e = decide_raw_digest(&Rules::default(), &Ledger::default(), &context(T0)).refusal.unwrap();
    assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    assert!(e.message().contains("raw_digests = \"deny\""), "{e}");
}

// --- the audit chain ---

/// A store with a dozen decisions of every kind in its log.
fn busy_store() -> Store {
    let r = approver_rules("max_sats_per_tx = 50000");
    let mut store = Store::default();
    for salt in 0..4 {
        let t = tx(salt, &[10_000], vec![(pay_to(9), 1000 * u64::from(salt + 1)), (change_script(), 5000)]);
        store.session(&r, &t, &[all(0)], &[claim(1)], T0 + u64::from(salt)).unwrap();
    }
    let big = tx(9, &[100_000], vec![(pay_to(9), 80_000)]);
    store.session(&r, &big, &[all(0)], &[], T0 + 10).unwrap();
    store.add_approval(&approve(40, &pay_to(9), 100_000, T0 + HOUR_MS, 1));
    store.session(&r, &big, &[all(0)], &[], T0 + 11).unwrap();
    let sighash = InputToSign { index: 0, sighash_type: 0x42, tweak: None };
    store.session(&r, &big, &[sighash], &[], T0 + 12).unwrap_err();
    store.session(&r, &big, &[all(0)], &[claim(0)], T0 + 13).unwrap_err();
    let ledger = store.ledger(WALLET, &[0; 32], 0, T0 + 14);
    let d = decide_raw_digest(&r, &ledger, &context(T0 + 14));
    store.settle(WALLET, &[0; 32], 0, T0 + 14, &d);
    store
}

#[test]
fn a_complete_chain_verifies() {
    let store = busy_store();
    assert_eq!(store.audit.len(), 9);
    let rules: Vec<String> = store.audit.iter().map(|r| AuditBody::parse(&r.body).unwrap().rule).collect();
    assert_eq!(rules, ["ok", "ok", "ok", "ok", "max_sats_per_tx", "approval", "sighash", "change_claim", "raw_digest"]);
    let head = verify_chain(&store.audit).unwrap();
    assert_eq!(head, AuditHead { seq: 9, hash: store.audit[8].hash });
    // A run that starts later, from the record before it, and page by page.
    let middle = verify_chain_from(AuditHead { seq: 3, hash: store.audit[2].hash }, &store.audit[3..]).unwrap();
    assert_eq!(middle, head);
    let first = verify_chain(&store.audit[..4]).unwrap();
    assert_eq!(verify_chain_from(first, &store.audit[4..]).unwrap(), head);
    assert_eq!(verify_chain(&[]).unwrap(), AuditHead::default());
    // The first record chains to zeros.
    assert_eq!(store.audit[0].hash, audit_link(&[0; 32], 1, &store.audit[0].body));
}

fn broken_at(records: &[AuditRecord]) -> String {
    let e = verify_chain(records).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted);
    e.context_value("seq").unwrap().to_string()
}

#[test]
fn edited_removed_and_reordered_records_are_found() {
    let store = busy_store();

    let mut edited = store.audit.clone();
    edited[4].body = String::from_utf8(edited[4].body.clone())
        .unwrap()
        .replace("\"allowed\":false", "\"allowed\":true")
        .into_bytes();
    assert_ne!(edited[4].body, store.audit[4].body);
    assert_eq!(broken_at(&edited), "5");

    // Edited and re-hashed: the next record no longer chains to it.
    let mut rehashed = edited.clone();
    rehashed[4].hash = audit_link(&rehashed[3].hash, 5, &rehashed[4].body);
    assert_eq!(broken_at(&rehashed), "6");

    let mut column = store.audit.clone();
    column[2].wallet = "someone-else".into();
    let e = verify_chain(&column).unwrap_err();
    assert!(e.message().contains("record 3: its wallet or time was changed"), "{e}");

    let mut removed = store.audit.clone();
    removed.remove(3);
    let e = verify_chain(&removed).unwrap_err();
    assert!(e.message().contains("the record after 3 is 5: records were removed"), "{e}");
    // Removed and renumbered: the hashes give it away.
    for (i, r) in removed.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
    }
    assert_eq!(broken_at(&removed), "4");

    let mut swapped = store.audit.clone();
    swapped.swap(5, 6);
    assert_eq!(broken_at(&swapped), "7");
    swapped[5].seq = 6;
    swapped[6].seq = 7;
    assert_eq!(broken_at(&swapped), "6");

    // The last record dropped is not visible from the records alone, but is against a known head.
    let head = verify_chain(&store.audit).unwrap();
    assert_ne!(verify_chain(&store.audit[..8]).unwrap(), head);

    // A run checked from the wrong previous hash.
    let e = verify_chain_from(AuditHead { seq: 3, hash: [1; 32] }, &store.audit[3..]).unwrap_err();
    assert_eq!(e.context_value("seq"), Some("4"));
}

#[test]
fn refusals_before_a_transaction_is_read_are_audited() {
    let store = busy_store();
    let sighash = AuditBody::parse(&store.audit[6].body).unwrap();
    assert!(!sighash.allowed);
    assert_eq!(sighash.tx, Some(hex::encode(policy_tx_id(&tx(9, &[100_000], vec![(pay_to(9), 80_000)])))));
    assert!(sighash.detail.unwrap().contains("0x42 (NONE|FORKID)"));
    let claim = AuditBody::parse(&store.audit[7].body).unwrap();
    assert_eq!((claim.rule.as_str(), claim.charge), ("change_claim", 0));
    assert!(claim.detail.unwrap().starts_with("a change claim is false"));
}
