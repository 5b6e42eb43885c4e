//! Benchmark (not a test): the BRC-100 action methods of the MPC wallet on the embedded default
//! (two in-process cosigners behind `local://`, SQLite files, fixture primes), each over a real
//! SQLite output store, with in-bench chain services (a broadcaster that takes everything, a
//! chain tracker that knows the blocks the bench mined). Prints ratios measured in this run:
//! `internalizeAction` throughput, `createAction` of 1, 4 and 16 inputs against as many
//! raw-digest signatures, `listOutputs` over 10,000 outputs.
//!
//! `cargo bench -p mpc-wallet --bench actions`

mod common;
#[path = "../src/embedded.rs"]
#[allow(dead_code)] // the demo's warning text
mod embedded;
#[path = "../tests/fleet/mod.rs"]
mod fleet;
#[path = "../../brc100/tests/payments/mod.rs"]
mod payments;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use payments::{internalize_args, pay, payment, Chain};
use wallet_backend_sqlite::SqliteOutputStore;
use wallet_brc100::{
    actions::{Actions, CreateActionOptions, ListOutputsArgs, WalletPayment, CHANGE_BASKET},
    KeyMethods, SingleKey,
};
use wallet_bsv::{AtomicBeef, Script};
use wallet_engine::{Wallet, WalletConfig};
use wallet_traits::{
    ActionRecord, ActionStatus, ChainServices, ChangeClaim, Derivation, EcdsaSignature, InputToSign, KeyDeriver,
    LinkageProof, Outpoint, OutputRecord, PublicKey, Result, Signer,
};

/// Payments per `internalizeAction` run.
const PAYMENTS: usize = 200;
/// Satoshis of each output that funds a `createAction`.
const UNIT: u64 = 1_000;
/// What a `createAction` of n inputs pays less than n units: more than the fee (a few satoshis
/// at the default rate), far less than a unit, so exactly n inputs cover it.
const MARGIN: u64 = 500;
/// Outputs in the `listOutputs` store, recorded as `FILL_ACTIONS` actions.
const OUTPUTS: usize = 10_000;
const FILL_ACTIONS: usize = 100;
/// Calls per `listOutputs` figure (the median is printed).
const LIST_CALLS: usize = 20;

/// The wallet as the action methods see it, adding up the time spent in signing sessions and
/// in derivations (`ecdh`: the sealed cache, or a distributed ECDH on a miss), so the bench can
/// say where a call's time goes. The bookkeeping is an `Instant` and a lock per call.
#[derive(Debug)]
struct Timed {
    wallet: Arc<Wallet>,
    signing: Mutex<Duration>,
    deriving: Mutex<Duration>,
}

impl Timed {
    /// (signing, deriving) since the last call.
    fn take(&self) -> (Duration, Duration) {
        (std::mem::take(&mut *self.signing.lock().unwrap()), std::mem::take(&mut *self.deriving.lock().unwrap()))
    }
}

#[async_trait]
impl Signer for Timed {
    fn public_key(&self) -> PublicKey {
        self.wallet.identity_key()
    }

    async fn sign_digest(&self, digest: &[u8; 32], tweak: Option<&[u8; 32]>) -> Result<EcdsaSignature> {
        let t = Instant::now();
        let r = self.wallet.sign_digest(digest, tweak).await;
        *self.signing.lock().unwrap() += t.elapsed();
        r
    }

    async fn sign_transaction(
        &self,
        tx_ef: &[u8],
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<Vec<EcdsaSignature>> {
        let t = Instant::now();
        let r = Signer::sign_transaction(self.wallet.as_ref(), tx_ef, inputs, change).await;
        *self.signing.lock().unwrap() += t.elapsed();
        r
    }
}

#[async_trait]
impl KeyDeriver for Timed {
    fn identity_key(&self) -> PublicKey {
        self.wallet.identity_key()
    }

    async fn ecdh(&self, point: &PublicKey) -> Result<PublicKey> {
        let t = Instant::now();
        let r = self.wallet.ecdh(point).await;
        *self.deriving.lock().unwrap() += t.elapsed();
        r
    }

    async fn linkage_proof(&self, counterparty: &PublicKey) -> Result<LinkageProof> {
        self.wallet.linkage_proof(counterparty).await
    }
}

/// The action methods of `wallet` over a fresh SQLite output store at `file`.
async fn books(wallet: &Arc<Timed>, chain: &Arc<Chain>, file: &Path) -> Actions {
    let store = SqliteOutputStore::open(file, "bench").await.unwrap();
    let keys = Arc::new(KeyMethods::new(wallet.clone(), wallet.clone(), wallet.wallet.network()));
    let services = ChainServices { broadcaster: Some(chain.clone()), chain_tracker: Some(chain.clone()) };
    Actions::new(keys, wallet.clone(), Arc::new(store), services, WalletConfig::default().fee_sat_per_kb)
}

fn fresh_sender() -> SingleKey {
    SingleKey::from_bytes(rand::random()).unwrap()
}

/// Payments of `sats` to the wallet, one from each sender, built before any clock starts.
async fn payments_from(
    chain: &Chain,
    wallet: &Wallet,
    senders: impl Iterator<Item = SingleKey>,
    sats: u64,
) -> Vec<(Vec<u8>, WalletPayment)> {
    let identity = wallet.identity_key().to_hex();
    let mut out = Vec::new();
    for sender in senders {
        out.push(payment(chain, &sender, &identity, sats, true, false).await);
    }
    out
}

/// Internalizes every payment, one after another; the wall time.
async fn internalize_all(books: &Actions, payments: Vec<(Vec<u8>, WalletPayment)>) -> Duration {
    let t = Instant::now();
    for (tx, remittance) in payments {
        assert!(books.internalize_action(internalize_args(tx, remittance)).await.unwrap());
    }
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `OUTPUTS` spendable change outputs recorded straight through the output store.
async fn fill(books: &Actions) -> Duration {
    let per_action = OUTPUTS / FILL_ACTIONS;
    let sender = fresh_sender().public_key().to_hex();
    let t = Instant::now();
    for a in 0..FILL_ACTIONS {
        let reference = format!("fill-{a}");
        let txid: [u8; 32] = rand::random();
        let outputs: Vec<OutputRecord> = (0..per_action)
            .map(|vout| OutputRecord {
                outpoint: Outpoint::new(txid, vout as u32),
                created_by: reference.clone(),
                satoshis: UNIT,
                locking_script: Script::p2pkh_lock(&rand::random()).as_bytes().to_vec(),
                basket: Some(CHANGE_BASKET.to_string()),
                tags: Vec::new(),
                custom_instructions: None,
                description: String::new(),
                spendable: true,
                change: true,
                derivation: Some(Derivation {
                    prefix: format!("p{a}"),
                    suffix: format!("s{vout}"),
                    sender: sender.clone(),
                }),
                spent_by: None,
            })
            .collect();
        let action = ActionRecord {
            reference,
            txid: Some(txid),
            status: ActionStatus::Completed,
            outgoing: false,
            satoshis: (per_action as u64 * UNIT) as i64,
            description: "a payment in".into(),
            labels: Vec::new(),
            version: 1,
            lock_time: 0,
            raw_tx: None,
            input_beef: None,
            merkle_path: None,
            created_at: 0,
        };
        books.store().record_action(&action, &outputs).await.unwrap();
    }
    t.elapsed()
}

/// The median time of `LIST_CALLS` `listOutputs` calls with `args`, checking each lists `expect`.
async fn time_list(books: &Actions, args: ListOutputsArgs, expect: usize) -> Duration {
    let mut times = Vec::with_capacity(LIST_CALLS);
    for _ in 0..LIST_CALLS {
        let t = Instant::now();
        let r = books.list_outputs(args.clone()).await.unwrap();
        times.push(t.elapsed());
        assert_eq!((r.outputs.len(), r.total_outputs), (expect, OUTPUTS as u64));
    }
    median(times)
}

async fn run(wallet: Wallet, dir: &Path) {
    let wallet = Arc::new(wallet);
    let timed = Arc::new(Timed { wallet: wallet.clone(), signing: Default::default(), deriving: Default::default() });
    let chain = Arc::new(Chain::default());

    // internalizeAction: a fresh sender per payment, so each derivation misses the cache and runs
    // one distributed ECDH (then stores it sealed); then one sender throughout, warmed up first.
    let fresh_books = books(&timed, &chain, &dir.join("internalize-fresh.db")).await;
    let paid = payments_from(&chain, &wallet, (0..PAYMENTS).map(|_| fresh_sender()), UNIT).await;
    timed.take();
    let fresh = internalize_all(&fresh_books, paid).await;
    let (_, fresh_deriving) = timed.take();
    assert_eq!(fresh_books.store().balance(CHANGE_BASKET).await.unwrap(), PAYMENTS as u64 * UNIT);
    let same_books = books(&timed, &chain, &dir.join("internalize-same.db")).await;
    let sender = fresh_sender();
    let paid = payments_from(&chain, &wallet, std::iter::repeat_n(sender, PAYMENTS + 1), UNIT).await;
    let mut paid = paid.into_iter();
    internalize_all(&same_books, paid.next().into_iter().collect()).await;
    timed.take();
    let same = internalize_all(&same_books, paid.collect()).await;
    let (_, same_deriving) = timed.take();
    assert_eq!(same_books.store().balance(CHANGE_BASKET).await.unwrap(), (PAYMENTS as u64 + 1) * UNIT);
    let mut ecdh = Vec::new();
    for _ in 0..20 {
        let point = fresh_sender().public_key();
        let t = Instant::now();
        wallet.distributed_ecdh(&point).await.unwrap();
        ecdh.push(t.elapsed());
    }
    let ecdh = median(ecdh);

    // createAction of n inputs: n outputs of UNIT in a fresh store, paying n units less MARGIN.
    let mut creates = Vec::new();
    for n in [1usize, 4, 16] {
        let books = books(&timed, &chain, &dir.join(format!("create-{n}.db"))).await;
        let paid = payments_from(&chain, &wallet, (0..n).map(|_| fresh_sender()), UNIT).await;
        internalize_all(&books, paid).await;
        timed.take();
        let t = Instant::now();
        let r = books.create_action(pay(n as u64 * UNIT - MARGIN, CreateActionOptions::default())).await.unwrap();
        let create = t.elapsed();
        let (signing, deriving) = timed.take();
        let tx = AtomicBeef::from_bytes(&r.tx.unwrap()).unwrap().subject_tx().clone();
        assert_eq!(tx.inputs.len(), n, "createAction must spend all {n} funding outputs; it spent {}", tx.inputs.len());
        // As many signatures, each its own session, with a tweak as every BRC-29 input has.
        let t = Instant::now();
        for i in 0..n {
            let digest: [u8; 32] = rand::random();
            wallet.sign_digest(&digest, Some(&[i as u8 + 1; 32])).await.unwrap();
        }
        creates.push((n, create, signing, deriving, t.elapsed()));
    }

    // listOutputs: 10,000 outputs recorded through the store's record_action, not internalized.
    let list_books = books(&timed, &chain, &dir.join("list.db")).await;
    let filled = fill(&list_books).await;
    let page = |limit: Option<u32>, offset: Option<u32>, include: Option<&str>| ListOutputsArgs {
        basket: CHANGE_BASKET.into(),
        limit,
        offset,
        include: include.map(str::to_string),
        ..Default::default()
    };
    let lists = [
        ("page of 10 (default)", time_list(&list_books, page(None, None, None), 10).await),
        ("page of 10 at offset 9,990", time_list(&list_books, page(None, Some(9_990), None), 10).await),
        ("page of 1000", time_list(&list_books, page(Some(1000), None, None), 1000).await),
        (
            "page of 1000, include locking scripts",
            time_list(&list_books, page(Some(1000), None, Some("locking scripts")), 1000).await,
        ),
    ];
    let mut balance = Vec::with_capacity(LIST_CALLS);
    for _ in 0..LIST_CALLS {
        let t = Instant::now();
        let b = list_books.store().balance(CHANGE_BASKET).await.unwrap();
        balance.push(t.elapsed());
        assert_eq!(b, OUTPUTS as u64 * UNIT);
    }
    let balance = median(balance);

    let per_s = |d: Duration| PAYMENTS as f64 / d.as_secs_f64();
    let each = |d: Duration| ms(d) / PAYMENTS as f64;
    println!("internalizeAction, {PAYMENTS} BRC-29 payments one after another (derivation = the wallet's ecdh):");
    println!(
        "  a fresh sender each (one distributed ECDH each): {:>7.1} /s, {:.2} ms each, derivation {:.2} ms",
        per_s(fresh),
        each(fresh),
        each(fresh_deriving)
    );
    println!(
        "  one sender (derivation cache hit):               {:>7.1} /s, {:.2} ms each, derivation {:.2} ms",
        per_s(same),
        each(same),
        each(same_deriving)
    );
    println!("  distributed ECDH alone, median of 20: {:.2} ms", ms(ecdh));
    println!("  ratio fresh / one sender (time per payment): {:.2}", fresh.as_secs_f64() / same.as_secs_f64());
    println!("createAction of n inputs (n BRC-29 outputs of {UNIT} sat) vs n raw-digest signatures (tweaked):");
    for (n, create, signing, deriving, raw) in &creates {
        println!(
            "  {n:>2} input(s): createAction {:.3} s (signing session {:.3} s, derivations {:.1} ms, rest {:.1} ms); \
             {n:>2} raw signature(s) {:.3} s; ratio createAction / raw {:.2}",
            create.as_secs_f64(),
            signing.as_secs_f64(),
            ms(*deriving),
            ms(create.saturating_sub(*signing + *deriving)),
            raw.as_secs_f64(),
            create.as_secs_f64() / raw.as_secs_f64()
        );
    }
    let one = creates[0].1.as_secs_f64();
    for (n, create, ..) in &creates[1..] {
        println!("  ratio {n:>2}-input / 1-input createAction: {:.2}", create.as_secs_f64() / one);
    }
    println!(
        "listOutputs over {OUTPUTS} spendable outputs (filled with record_action, {FILL_ACTIONS} actions: {:.2} s), \
         median of {LIST_CALLS}:",
        filled.as_secs_f64()
    );
    for (name, d) in &lists {
        println!("  {name:<40} {:>8.2} ms", ms(*d));
    }
    println!("  {:<40} {:>8.2} ms", "balance (the store's sum)", ms(balance));
    println!("  ratio page of 1000 / page of 10: {:.1}", lists[2].1.as_secs_f64() / lists[0].1.as_secs_f64());
}

fn main() {
    println!("machine: {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    let runtime = fleet::runtime();
    let dir = tempfile::tempdir().unwrap();
    let build = common::embedded_wallet(&runtime, dir.path());
    let (wallet, _) = runtime.block_on(build().build()).unwrap();
    runtime.block_on(run(wallet, dir.path()));
}
