//! The BRC-100 action methods (`internalizeAction`, `createAction`, `signAction`,
//! `abortAction`, `listOutputs`, `listActions`, `relinquishOutput`, `getHeight`,
//! `getHeaderForHeight`) over an [`OutputStore`], a [`Signer`] that signs transactions, and the
//! chain services, behaving as @bsv/wallet-toolbox does for @bsv/sdk's clients
//! (docs/ARCHITECTURE.md, "Receiving and paying"); and the wallet's change management
//! ([`ChangeParams`], [`Actions::consolidate`]).

mod args;
mod beef;
mod consolidate;
mod create;
mod held;
mod internalize;
mod list;
pub use list::LISTED;
mod reconcile;
mod recover;
mod signable;
pub mod spec_ops;
mod validate;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

pub use args::*;
pub use consolidate::{Consolidation, CONSOLIDATION_LABEL, MAX_CONSOLIDATE_INPUTS};
pub use held::{MAX_HELD, MAX_HELD_BYTES};
pub use reconcile::{UtxoReview, MAX_REVIEW, PROOF_ATTEMPTS, REORG_DEPTH, UNFAIL_WINDOW};
pub use recover::{Recovered, CHANGE_PREFIX, MAX_RECOVERY_KEYS, RECOVERED_LABEL, RECOVERY_GAP};
use wallet_bsv::{SatoshisPerKilobyte, TxId};
use wallet_traits::{
    Broadcaster, ChainServices, ChainTracker, Error, ErrorKind, Outpoint, OutputStore, Result, Signer,
};

use crate::KeyMethods;

/// The basket that holds the wallet's own change, which funds `createAction`.
pub const CHANGE_BASKET: &str = "default";

/// An action left `unsigned` longer than this was abandoned (its creator crashed or never
/// called `signAction`): [`Actions::fail_abandoned`] releases its inputs.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(10 * 60);

/// How the wallet keeps its change (the toolbox's `numberOfDesiredUTXOs` and
/// `minimumDesiredUTXOValue` of the `default` basket): `createAction` splits its change toward
/// `target_count` spendable outputs of at least `min_sats` each, and [`Actions::consolidate`]
/// merges the smallest when there are more, or dust. Held in memory by [`Actions`]; the
/// configuration (`MPC_CHANGE_TARGET_COUNT`, `MPC_CHANGE_MIN_SATS`) is their lasting source, and
/// the toolbox's `specOpSetWalletChangeParams` changes them until the wallet restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeParams {
    /// How many spendable change outputs the wallet aims to hold (1 to
    /// [`ChangeParams::MAX_TARGET_COUNT`]; default 8).
    pub target_count: u32,
    /// The least value of a change output the wallet makes when it can choose, and below which
    /// an output is dust to fold (at least 1; default 1000, the toolbox's
    /// `minimumDesiredUTXOValue`).
    pub min_sats: u64,
}

impl ChangeParams {
    /// The most change outputs a wallet may aim to hold.
    pub const MAX_TARGET_COUNT: u32 = 1000;

    /// Refuses a target count outside 1 to [`Self::MAX_TARGET_COUNT`] and a minimum of 0.
    pub fn check(&self) -> Result<()> {
        if !(1..=Self::MAX_TARGET_COUNT).contains(&self.target_count) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the number of change outputs to keep must be from 1 to {} (it is {}), such as 8",
                    Self::MAX_TARGET_COUNT,
                    self.target_count
                ),
            ));
        }
        if self.min_sats == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the least value of a change output must be at least 1 satoshi, such as 1000",
            ));
        }
        Ok(())
    }
}

impl Default for ChangeParams {
    fn default() -> Self {
        Self { target_count: 8, min_sats: 1000 }
    }
}

/// A transaction `createAction` left for `signAction`: the caller signs the inputs it
/// supplied, the wallet signs its own. Held in memory ([`held`]) and kept with its action in the
/// output store ([`signable`]), which outlives a restart.
#[derive(Debug, Clone)]
struct Signable {
    tx: wallet_bsv::Transaction,
    draft: create::Draft,
}

/// The action methods of one wallet.
pub struct Actions {
    keys: Arc<KeyMethods>,
    signer: Arc<dyn Signer>,
    store: Arc<dyn OutputStore>,
    chain: ChainServices,
    fee: SatoshisPerKilobyte,
    change: RwLock<ChangeParams>,
    held: held::Held,
    /// The tip the proof task last looked at ([`Actions::check_for_proofs`]).
    proof_tip: std::sync::Mutex<Option<u64>>,
    /// New blocks without a proof before an unproven transaction is asked after on the chain.
    proof_attempts: u32,
    change_keys: std::sync::Mutex<recover::ChangeKeys>,
    #[cfg(feature = "fault-injection")]
    pause_before_commit: Option<Duration>,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions").field("store", &self.store).field("fee", &self.fee).finish_non_exhaustive()
    }
}

impl Actions {
    /// The output store the books are kept in (where the wallet's certificates live too).
    pub fn output_store(&self) -> &Arc<dyn OutputStore> {
        &self.store
    }

    /// Action methods over `store`, signing with `signer` (the wallet whose keys `keys` derive),
    /// paying `fee_sat_per_kb` satoshis per 1000 bytes.
    pub fn new(
        keys: Arc<KeyMethods>,
        signer: Arc<dyn Signer>,
        store: Arc<dyn OutputStore>,
        chain: ChainServices,
        fee_sat_per_kb: u64,
    ) -> Self {
        Self {
            keys,
            signer,
            store,
            chain,
            fee: SatoshisPerKilobyte(fee_sat_per_kb),
            change: RwLock::new(ChangeParams::default()),
            held: Default::default(),
            proof_tip: Default::default(),
            proof_attempts: PROOF_ATTEMPTS,
            change_keys: Default::default(),
            #[cfg(feature = "fault-injection")]
            pause_before_commit: None,
        }
    }

    /// How many new blocks without a proof before an unproven transaction is asked after on the
    /// chain ([`PROOF_ATTEMPTS`] unless set; at least 1).
    pub fn proof_attempts(mut self, blocks: u32) -> Self {
        self.proof_attempts = blocks.max(1);
        self
    }

    /// These change parameters instead of the defaults (see [`ChangeParams`]); refused as
    /// [`ChangeParams::check`] refuses.
    pub fn change_params(self, params: ChangeParams) -> Result<Self> {
        self.set_change_params(params)?;
        Ok(self)
    }

    /// Replaces the change parameters while the wallet runs (the toolbox's
    /// `specOpSetWalletChangeParams`); in memory only: a restart takes the configured ones.
    pub fn set_change_params(&self, params: ChangeParams) -> Result<()> {
        params.check()?;
        // A poisoned lock holds a plain Copy value that no panic can leave half written.
        *self.change.write().unwrap_or_else(|e| e.into_inner()) = params;
        Ok(())
    }

    /// The change parameters in force.
    pub fn current_change_params(&self) -> ChangeParams {
        *self.change.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Fault injection for crash tests (feature `fault-injection`): wait this long after a
    /// transaction is signed and before it is recorded.
    #[cfg(feature = "fault-injection")]
    pub fn pause_before_commit(mut self, pause: Duration) -> Self {
        self.pause_before_commit = Some(pause);
        self
    }

    /// The output store.
    pub fn store(&self) -> &Arc<dyn OutputStore> {
        &self.store
    }

    /// The key methods.
    pub fn keys(&self) -> &Arc<KeyMethods> {
        &self.keys
    }

    fn broadcaster(&self) -> Result<&Arc<dyn Broadcaster>> {
        self.chain.broadcaster()
    }

    fn chain_tracker(&self) -> Result<&Arc<dyn ChainTracker>> {
        self.chain.chain_tracker()
    }

    /// `getHeight`: the chain tracker's tip.
    pub async fn get_height(&self) -> Result<u64> {
        self.chain_tracker()?.current_height().await
    }

    /// `getHeaderForHeight`: the 80-byte header, hex.
    pub async fn get_header_for_height(&self, args: GetHeaderArgs) -> Result<String> {
        if args.height == 0 {
            // BRC-100's PositiveInteger, as the toolbox checks it.
            return Err(validate::bad("height", "a positive block height"));
        }
        Ok(hex::encode(self.chain_tracker()?.header_for_height(args.height).await?))
    }

    /// `relinquishOutput`: the output leaves its basket; it stays recorded.
    pub async fn relinquish_output(&self, args: RelinquishOutputArgs) -> Result<bool> {
        let basket = validate::name(&args.basket, "basket")?;
        let outpoint = Outpoint::parse(&args.output).map_err(|e| e.set_context("parameter", "output"))?;
        if !self.store.relinquish_output(&basket, &outpoint).await? {
            return Err(validate::bad("output", "an output of the basket"));
        }
        Ok(true)
    }

    /// `abortAction`: an action not yet signed, or signed but kept from the network (`noSend`), is
    /// failed and its inputs are spendable again; a transaction waiting for `signAction` is
    /// dropped (the store drops its kept copy with the failure).
    pub async fn abort_action(&self, args: AbortActionArgs) -> Result<bool> {
        let reference = self.reference_of(&args.reference).await?;
        self.held.take(&reference);
        let action = self.store.action(&reference).await?.ok_or_else(|| validate::bad("reference", "an action"))?;
        if !action.status.is_open() && action.status != wallet_traits::ActionStatus::NoSend {
            return Err(validate::bad(
                "reference",
                &format!("an action that can be aborted (this one is {})", action.status),
            ));
        }
        self.store.fail_action(&reference).await?;
        Ok(true)
    }

    /// BRC-100 lets `abortAction` name an action by reference or by txid.
    async fn reference_of(&self, reference_or_txid: &str) -> Result<String> {
        if reference_or_txid.len() == 64 {
            if let Ok(txid) = wallet_traits::parse_txid(reference_or_txid) {
                if let Some(action) = self.store.action_by_txid(&txid).await? {
                    return Ok(action.reference);
                }
            }
        }
        Ok(reference_or_txid.to_string())
    }

    /// Fails every action left `unsigned` longer than [`ABANDONED_AFTER`] (its signing never
    /// finished: a crash, or a `signAction` that never came), releasing its inputs. Returns how
    /// many. Safe against a live signer: an action is broadcast only after it is committed, and a
    /// failed action can no longer be committed.
    pub async fn fail_abandoned(&self) -> Result<usize> {
        self.fail_unsigned_before(now_millis().saturating_sub(ABANDONED_AFTER.as_millis() as u64)).await
    }

    /// Fails every `unsigned` action, whatever its age, releasing its inputs: after a restore
    /// from backup, where no signing session of the old machine can finish. Returns how many.
    pub async fn fail_unsigned(&self) -> Result<usize> {
        self.fail_unsigned_before(u64::MAX).await
    }

    async fn fail_unsigned_before(&self, cutoff: u64) -> Result<usize> {
        let query =
            wallet_traits::ActionQuery { statuses: vec![wallet_traits::ActionStatus::Unsigned], ..Default::default() };
        let mut failed = 0;
        for action in self.store.list_actions(&query).await?.items {
            if action.created_at < cutoff && self.store.fail_action(&action.reference).await? {
                self.held.take(&action.reference);
                failed += 1;
            }
        }
        Ok(failed)
    }
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A txid as the store keeps it (display order) from its hash (internal order).
fn display(txid: &TxId) -> [u8; 32] {
    let mut b = txid.0;
    b.reverse();
    b
}

/// The hash-order txid of a display-order one.
fn internal(display: &[u8; 32]) -> TxId {
    let mut b = *display;
    b.reverse();
    TxId(b)
}

/// `n` random bytes, base64: references and BRC-29 derivation prefixes and suffixes.
fn random_base64(n: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}
