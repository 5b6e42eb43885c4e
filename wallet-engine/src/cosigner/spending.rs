//! A cosigner's spending policy in force: the rules of its policy file (`wallet-policy`, pure),
//! counted in its own store ([`PolicyStore`]), so that an agent that was turned cannot talk it
//! into signing past them (docs/SECURITY.md, "Spending policy").
//!
//! Every decision, allowed or refused, goes through [`PolicyStore::settle`]: the limits are read
//! and the charge written in one atomic step before this cosigner sends any protocol message, so
//! concurrent sessions cannot share one remaining budget and a restart forgets nothing. Each
//! decision is appended to the store's hash-chained audit log.

use std::sync::{Arc, Mutex};

use wallet_bsv::{Network, Transaction};
use wallet_policy::{Context, Decision, Policy, Rules};
use wallet_traits::{
    ChangeClaim, Error, ErrorKind, InputToSign, KeyId, PolicyStore, PublicKey, Result, Ruling, ShareStore,
};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The spending policy of a cosigner and the store that counts against it.
#[derive(Clone)]
pub struct SpendingPolicy {
    policy: Arc<Policy>,
    store: Arc<dyn ShareStore>,
}

impl std::fmt::Debug for SpendingPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendingPolicy").field("fingerprint", &self.policy.fingerprint()).finish_non_exhaustive()
    }
}

impl SpendingPolicy {
    /// `policy`, counted in `store`, which must keep policy state: a limit a store cannot count
    /// would be no limit, so a store without it is a configuration error naming the fix.
    pub fn new(policy: Policy, store: Arc<dyn ShareStore>, party: u16) -> Result<Self> {
        if store.policy_state().is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                "this cosigner's store keeps no policy state, so it cannot count a spending policy's limits: use \
                 a SQLite or Postgres store (MPC_STORAGE_PATH, MPC_STORAGE_URL), or run without MPC_POLICY_FILE",
            )
            .with_context("party", party));
        }
        Ok(Self { policy: Arc::new(policy), store })
    }

    /// The policy file's fingerprint: two cosigners with the same rules report the same one.
    pub fn fingerprint(&self) -> String {
        self.policy.fingerprint()
    }

    /// The rules in force for `wallet`.
    pub fn rules_for(&self, wallet: &str) -> Rules {
        self.policy.rules_for(wallet)
    }

    fn state(&self) -> &dyn PolicyStore {
        self.store.policy_state().expect("checked when the policy was built")
    }

    /// Runs `decide` in the store's atomic step; the refusal it reached, if any, is the error.
    async fn settle(
        &self,
        key: &KeyId,
        tx: &[u8; 32],
        rules: &Rules,
        decide: impl Fn(&wallet_traits::Ledger, &Context<'_>) -> Decision + Send + Sync,
    ) -> Result<()> {
        let wallet = key.wallet.as_str();
        let now = now_ms();
        let refusal: Mutex<Option<Error>> = Mutex::new(None);
        let rule = |ledger: &wallet_traits::Ledger| -> Ruling {
            let ctx = Context { wallet, now_ms: now, network: Network::Mainnet, cosigners: &[] };
            let decision = decide(ledger, &ctx);
            *refusal.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = decision.refusal;
            decision.ruling
        };
        self.state().settle(wallet, tx, rules.window_start(now), now, &rule).await?;
        match refusal.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Whether this cosigner signs a raw digest for `key` (refused under `raw_digests = "deny"`,
    /// the default once a policy is given); audited either way.
    pub async fn review_digest(&self, key: &KeyId) -> Result<()> {
        let rules = self.rules_for(key.wallet.as_str());
        self.settle(key, &[0; 32], &rules, |ledger, ctx| wallet_policy::decide_raw_digest(&rules, ledger, ctx)).await
    }

    /// Whether this cosigner signs `inputs` of `tx` (parsed and checked by `transaction::prepare`)
    /// for `key`, whose root key is `root`, with `change` claimed as the wallet's own: assessed,
    /// decided and, when allowed, charged before any protocol message; audited either way.
    pub async fn review_transaction(
        &self,
        key: &KeyId,
        root: &PublicKey,
        tx: &Transaction,
        inputs: &[InputToSign],
        change: &[ChangeClaim],
    ) -> Result<()> {
        let rules = self.rules_for(key.wallet.as_str());
        match wallet_policy::assess(root, tx, inputs, change) {
            Ok(assessment) => {
                let id = assessment.tx;
                self.settle(key, &id, &rules, |ledger, ctx| wallet_policy::decide(&rules, &assessment, ledger, ctx))
                    .await
            }
            Err(refusal) => {
                // Refused before any rule was weighed (a sighash type, a false claim): audited too.
                let id = wallet_policy::policy_tx_id(tx);
                let audited = refusal.clone();
                let recorded = self
                    .settle(key, &[0; 32], &rules, move |ledger, ctx| Decision {
                        rule: wallet_policy::Rule::of(&audited),
                        ruling: wallet_policy::audit_refusal(ledger, ctx, Some(&id), &audited),
                        refusal: Some(audited.clone()),
                    })
                    .await;
                Err(recorded.err().unwrap_or(refusal))
            }
        }
    }

    /// The policy in force for `wallet` and what its window holds, for the agent to read.
    pub async fn report(&self, wallet: &str) -> Result<wallet_traits::PolicyReport> {
        let rules = self.rules_for(wallet);
        let (window_sats, window_txs) = self.state().window(wallet, rules.window_start(now_ms())).await?;
        let s = rules.status();
        Ok(wallet_traits::PolicyReport {
            fingerprint: self.fingerprint(),
            max_sats_per_tx: s.max_sats_per_tx,
            window_secs: s.window_secs,
            max_sats_per_window: s.max_sats_per_window,
            max_tx_per_window: s.max_tx_per_window,
            allowed_destinations: s.allowed_destinations.map(|n| n as u64),
            approvers: s.approvers as u64,
            raw_digests: s.raw_digests == wallet_policy::RawDigests::Allow,
            window_sats,
            window_txs,
        })
    }

    /// Keeps a person's signed approval (`bytes`, as `mpc-wallet approve` makes it) once it
    /// verifies against the approver keys pinned for its wallet: a later transaction it covers is
    /// allowed past the limits once. `false` when it was submitted before.
    pub async fn submit_approval(&self, bytes: &[u8]) -> Result<bool> {
        let wallet = wallet_policy::approval_wallet(bytes)?;
        let rules = self.rules_for(&wallet);
        let signed = wallet_policy::parse_and_verify(bytes, rules.approver_keys(), now_ms())?;
        self.state().add_approval(&signed.to_store()).await
    }

    /// Records `id` of `kind` as used until `expires_ms`; `false` when it was used before (also
    /// before a restart).
    pub async fn mark_seen(&self, kind: &str, id: &[u8], expires_ms: u64) -> Result<bool> {
        self.state().mark_seen(kind, id, expires_ms, now_ms()).await
    }
}
