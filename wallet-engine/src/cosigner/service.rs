//! The cosigner's logic, independent of any transport: a network server or the in-process
//! `local://` transport wraps a [`CosignerService`], which itself implements
//! [`CosignerTransport`] so both sides share one API.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use wallet_traits::{
    session_queue, CosignerTransport, EcdhPartial, EcdhRequest, Error, ErrorKind, ExecutionId, KeyId, KeyInfo,
    PartyIndex, Result, SessionChannel, SessionEvent, SessionOutcome, SessionParams, SessionRequest, ShareMeta,
    ShareState, ShareStore, StoredShare, AGENT_INDEX, SHARE_FORMAT_VERSION,
};

use super::{
    policy::{AllowAll, SigningPolicy, TxReview},
    spending::SpendingPolicy,
};
use crate::{
    at_rest::primes::PrimeSource,
    at_rest::seal::{share_labels, Sealer},
    keys::Keyring,
    mpc::{self, AuxOptions, Protocol, Share},
    staging, transaction,
};

pub use wallet_traits::MAX_PARTIES;
/// How many execution ids a cosigner without policy state remembers to refuse replays.
const SEEN_CAPACITY: usize = 100_000;
/// How long a stored execution id is refused: longer than any request or token lives.
const SEEN_FOR_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Default)]
struct SeenIds {
    set: HashSet<ExecutionId>,
    order: VecDeque<ExecutionId>,
}

impl SeenIds {
    /// Records `eid`; false if it was seen before.
    fn insert(&mut self, eid: ExecutionId) -> bool {
        if !self.set.insert(eid) {
            return false;
        }
        self.order.push_back(eid);
        if self.order.len() > SEEN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// One cosigner party: its store, its secret, its primes. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CosignerService {
    party_index: PartyIndex,
    name: String,
    store: Arc<dyn ShareStore>,
    sealer: Sealer,
    primes: Arc<dyn PrimeSource>,
    keyring: Arc<Keyring>,
    seen: Arc<Mutex<SeenIds>>,
    // Opened Active shares, so signing does not pay Argon2id every time.
    // Keyed by the record's run too: a committed migration keeps the public key, not the run.
    active: Arc<tokio::sync::Mutex<HashMap<KeyId, OpenedShare>>>,
    policy: Arc<dyn SigningPolicy>,
    spending: Option<SpendingPolicy>,
    aux: AuxOptions,
}

impl std::fmt::Debug for CosignerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignerService")
            .field("party_index", &self.party_index)
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
}

impl CosignerService {
    /// The cosigner whose identity is `keyring` (party 1..n-1), keeping its shares in `store`,
    /// sealed by `sealer`, taking prime pairs from `primes`.
    pub fn new(
        keyring: Keyring,
        store: Arc<dyn ShareStore>,
        sealer: Sealer,
        primes: Arc<dyn PrimeSource>,
    ) -> Result<Self> {
        let party_index = keyring.party_index();
        if party_index == AGENT_INDEX || party_index >= MAX_PARTIES {
            return Err(Error::new(ErrorKind::Config, format!("a cosigner's party index is 1 to {}", MAX_PARTIES - 1))
                .with_context("party_index", party_index));
        }
        Ok(Self {
            party_index,
            name: format!("cosigner {party_index}"),
            store,
            sealer,
            primes,
            keyring: Arc::new(keyring),
            seen: Arc::new(Mutex::new(SeenIds::default())),
            active: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
            policy: Arc::new(AllowAll),
            spending: None,
            aux: AuxOptions { multiexp_tables: true },
        })
    }

    /// Whether aux info generation (DKG, migration) precomputes the multiexponentiation tables
    /// that make each signing faster (default: yes; seconds per share, kept sealed with it).
    pub fn with_multiexp_tables(mut self, on: bool) -> Self {
        self.aux.multiexp_tables = on;
        self
    }

    /// Reviews every transaction before this cosigner signs inputs of it (default: [`AllowAll`]).
    pub fn with_policy(mut self, policy: Arc<dyn SigningPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Enforces `spending` (limits, allowlist, approvals, counted in this cosigner's store) on
    /// every transaction and raw digest it signs.
    pub fn with_spending_policy(mut self, spending: SpendingPolicy) -> Self {
        self.spending = Some(spending);
        self
    }

    /// The store this cosigner keeps its shares (and policy state) in.
    pub fn store(&self) -> Arc<dyn ShareStore> {
        self.store.clone()
    }

    /// The spending policy in force, if any.
    pub fn spending_policy(&self) -> Option<&SpendingPolicy> {
        self.spending.as_ref()
    }

    /// This cosigner's party index.
    pub fn party_index(&self) -> PartyIndex {
        self.party_index
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg).with_context("party", self.party_index)
    }

    /// Refuses an execution id used before. Kept in the store where it keeps policy state, so a
    /// request captured before a restart is refused after it too; in memory otherwise.
    async fn mark_seen(&self, eid: ExecutionId) -> Result<()> {
        let fresh = match self.store.policy_state() {
            Some(state) => {
                let now = super::spending::now_ms();
                state.mark_seen("execution", eid.as_bytes(), now.saturating_add(SEEN_FOR_MS), now).await?
            }
            None => self.seen.lock().expect("seen lock").insert(eid),
        };
        if fresh {
            Ok(())
        } else {
            Err(self
                .err(ErrorKind::PolicyDenied, "this execution id was used before; start a new run with a fresh id")
                .with_context("execution_id", eid))
        }
    }

    /// The opened Active share of `key`. The record is read every time (one small read), so a
    /// share an operator froze or deleted stops serving at once; only opening it is cached.
    async fn active_share(&self, key: &KeyId) -> Result<Arc<Share>> {
        self.active_record(key).await.map(|(share, _)| share)
    }

    /// [`CosignerService::active_share`], with the record it read.
    async fn active_record(&self, key: &KeyId) -> Result<(Arc<Share>, StoredShare)> {
        let mut cache = self.active.lock().await;
        let Some(record) = self.store.load_share(key).await? else {
            cache.remove(key);
            return Err(
                self.err(ErrorKind::NotFound, format!("cosigner {} holds no share of key {key}", self.party_index))
            );
        };
        if record.meta.state != ShareState::Active {
            cache.remove(key);
        }
        if let Some((_, s)) = cache.get(key).filter(|(run, s)| {
            *run == record.meta.execution_id && mpc::public_key_of(s).as_bytes()[..] == record.meta.public_key[..]
        }) {
            return Ok((s.clone(), record));
        }
        match record.meta.state {
            ShareState::Active => {}
            ShareState::Pending => {
                return Err(
                    self.err(ErrorKind::PolicyDenied, "the share is not committed yet; finish provisioning first")
                )
            }
            ShareState::Frozen => {
                return Err(self.err(ErrorKind::PolicyDenied, "the share is frozen; an operator must review it"))
            }
        }
        if record.meta.party_index != self.party_index {
            return Err(self.err(ErrorKind::Corrupted, "the stored share belongs to another party index"));
        }
        let group = match staging::group_of(&record)? {
            None => None,
            Some(group) => Some(self.group_share(&group, &cache).await.map_err(|e| e.with_context("key", key))?),
        };
        let (shares, _) = staging::open_record(&self.sealer, &record, group).await?;
        if shares.share.protocol() != Protocol::CURRENT {
            // The agent says so at its start; here it is only logged for the operator.
            tracing::info!(party = self.party_index, key = %key, protocol = %shares.share.protocol(),
                "serving a share of an older protocol until the agent migrates the wallet");
        }
        let share = Arc::new(shares.share);
        cache.insert(key.clone(), (record.meta.execution_id, share.clone()));
        Ok((share, record))
    }

    /// The share in force of `group`, the group key a further key's record refers to, whatever
    /// that key's state (its aux info completes the further key): from `cache`, or opened.
    async fn group_share(&self, group: &KeyId, cache: &HashMap<KeyId, OpenedShare>) -> Result<Arc<Share>> {
        let record = self.store.load_share(group).await?.ok_or_else(|| {
            self.err(
                ErrorKind::Corrupted,
                "a further key's record refers to its group's first key, which this cosigner's store does not \
                 hold; restore that key's record from backup",
            )
            .with_context("group_key", group)
        })?;
        if let Some((_, s)) = cache.get(group).filter(|(run, _)| *run == record.meta.execution_id) {
            return Ok(s.clone());
        }
        if record.meta.party_index != self.party_index || staging::group_of(&record)?.is_some() {
            return Err(
                self.err(ErrorKind::Corrupted, "a further key's group record is not a group record of this party")
            );
        }
        let (shares, _) = staging::open_record(&self.sealer, &record, None).await?;
        Ok(Arc::new(shares.share))
    }

    /// The request's shape (one check for every receiver), then what only this cosigner knows.
    fn validate(&self, req: &SessionRequest) -> Result<()> {
        req.check().map_err(|e| self.err(ErrorKind::InvalidInput, e.message().to_string()))?;
        if !req.parties.contains(&self.party_index) {
            return Err(self.err(ErrorKind::InvalidInput, "this cosigner is not among the parties"));
        }
        if let SessionParams::Linkage { point } = &req.params {
            if mpc::parse_point(point).is_err() {
                return Err(self.err(ErrorKind::InvalidInput, "a linkage session needs a valid counterparty point"));
            }
        }
        Ok(())
    }

    async fn store_pending(
        &self,
        req: &SessionRequest,
        share: Share,
        group: Option<mpc::GroupRecord>,
    ) -> Result<SessionOutcome> {
        let (SessionParams::Dkg { threshold: t, total: n } | SessionParams::Keygen { threshold: t, total: n, .. }) =
            req.params
        else {
            return Err(self.err(ErrorKind::Internal, "a share from a session that is not a DKG"));
        };
        let pk = mpc::public_key_of(&share);
        let share = Arc::new(share);
        let (sealed, _) = staging::seal_record(&self.sealer, &req.key, share.clone(), None, group).await?;
        let record = StoredShare {
            key: req.key.clone(),
            meta: ShareMeta {
                public_key: pk.as_bytes().to_vec(),
                threshold: t,
                parties: n,
                party_index: self.party_index,
                state: ShareState::Pending,
                execution_id: req.execution_id,
            },
            version: 1,
            format_version: SHARE_FORMAT_VERSION,
            sealed,
        };
        self.store.create_share(&record).await?;
        // Served once committed (the cache holds it for the record's run); dropped if rolled back.
        self.active.lock().await.insert(req.key.clone(), (req.execution_id, share));
        tracing::info!(party = self.party_index, key = %req.key, "sealed a pending share");
        Ok(SessionOutcome { public_key: pk.as_bytes().to_vec() })
    }

    /// A migration's new share, staged beside the share in force until the agent commits it.
    async fn stage_migrated(&self, req: &SessionRequest, next: Share) -> Result<SessionOutcome> {
        let record = self
            .store
            .load_share(&req.key)
            .await?
            .ok_or_else(|| self.err(ErrorKind::NotFound, "the share to migrate vanished during the run"))?;
        let (shares, _) = staging::open_record(&self.sealer, &record, None).await?;
        let pk = mpc::public_key_of(&next);
        staging::stage(&self.store, &self.sealer, &record, shares.share, req.execution_id, next).await?;
        tracing::info!(party = self.party_index, key = %req.key, "staged a migrated share");
        Ok(SessionOutcome { public_key: pk.as_bytes().to_vec() })
    }

    /// Refuses a run that would create a share of `req.key` where one exists.
    async fn refuse_existing(&self, req: &SessionRequest) -> Result<()> {
        if self.store.load_share(&req.key).await?.is_some() {
            return Err(self.err(
                ErrorKind::AlreadyExists,
                format!(
                    "cosigner {} already holds a share of key {}; DKG will not overwrite it",
                    self.party_index, req.key
                ),
            ));
        }
        Ok(())
    }
}

impl CosignerService {
    /// Starts this cosigner's party of `req`, after the checks only it can make (no share yet for
    /// DKG; an active share and exactly its threshold of parties otherwise).
    async fn start_party(&self, req: &SessionRequest) -> Result<mpc::RunningParty<PartyOutput>> {
        let keyring = self.keyring.clone();
        let r = req.clone();
        match &req.params {
            SessionParams::Dkg { .. } => {
                self.refuse_existing(req).await?;
                let (primes, aux) = (self.take_primes(), self.aux);
                mpc::spawn_party(keyring, req, move |io| async move {
                    mpc::run_dkg(io, r, primes, aux, || {}).await.map(|s| PartyOutput::Share(Box::new(s), None))
                })
            }
            SessionParams::Keygen { aux_from, total, .. } => {
                self.refuse_existing(req).await?;
                let group = wallet_traits::KeyId::new(req.key.wallet.clone(), *aux_from);
                let (share, record) = self.active_record(&group).await?;
                let group_record = match staging::group_record(&record, *total)? {
                    Some(g) if group != req.key => g,
                    _ => {
                        return Err(self.err(
                            ErrorKind::InvalidInput,
                            format!("key {group} is not a cggmp24 key of the same parties whose aux info a further key can reuse"),
                        ))
                    }
                };
                mpc::spawn_party(keyring, req, move |io| async move {
                    mpc::run_keygen_with_aux(io, r, &share)
                        .await
                        .map(|s| PartyOutput::Share(Box::new(s), Some(group_record)))
                })
            }
            SessionParams::Migrate {} => {
                let old = self.active_share(&req.key).await?;
                if old.protocol() == Protocol::CURRENT {
                    return Err(self.err(
                        ErrorKind::AlreadyExists,
                        format!(
                            "the share of key {} is {} already; there is nothing to migrate",
                            req.key,
                            Protocol::CURRENT
                        ),
                    ));
                }
                let (primes, aux) = (self.take_primes(), self.aux);
                mpc::spawn_party(keyring, req, move |io| async move {
                    let primes = primes.await?;
                    mpc::run_migration(io, r, &old, primes, aux).await.map(|s| PartyOutput::Staged(Box::new(s)))
                })
            }
            SessionParams::Sign { tweak, .. } | SessionParams::SignData { tweak, .. } => {
                // SHA-256 of data other than 32 bytes is no transaction's sighash (that would take
                // a second preimage): only a digest, or 32 bytes of data, is reviewed as one.
                let raw = !matches!(&req.params, SessionParams::SignData { data, .. } if data.len() != 32);
                if raw {
                    self.policy.review_digest(&req.key, tweak.as_ref()).map_err(|e| self.refused(req, e))?;
                    if let Some(spending) = &self.spending {
                        spending.review_digest(&req.key).await.map_err(|e| self.refused(req, e))?;
                    }
                }
                let (share, tweak) = (self.signing_share(req, "signing").await?, *tweak);
                mpc::spawn_party(keyring, req, move |io| async move {
                    let share = match &tweak {
                        Some(t) => Arc::new(mpc::tweak_share(&share, t)?),
                        None => share,
                    };
                    let pk = mpc::public_key_of(&share);
                    mpc::run_sign(io, r, share).await.map(|_| PartyOutput::Signed(pk))
                })
            }
            SessionParams::SignTx { tx, inputs, change } => {
                let root = self.signing_share(req, "signing a transaction").await?;
                let pk = mpc::public_key_of(&root);
                let (parsed, prepared) = transaction::prepare(&pk, tx, inputs).map_err(|e| self.refused(req, e))?;
                let review = TxReview { key: &req.key, tx: &parsed, inputs };
                self.policy.review(&review).map_err(|e| self.refused(req, e))?;
                // Counted before any protocol message: once a signature can exist, it is charged.
                if let Some(spending) = &self.spending {
                    spending
                        .review_transaction(&req.key, &pk, &parsed, inputs, change)
                        .await
                        .map_err(|e| self.refused(req, e))?;
                }
                let jobs: Vec<_> = prepared.iter().map(|p| (p.tweak, p.digest)).collect();
                mpc::spawn_party(keyring, req, move |io| async move {
                    mpc::run_sign_tx(io, r, root, jobs).await.map(|_| PartyOutput::Signed(pk))
                })
            }
            SessionParams::Linkage { .. } => {
                let share = self.signing_share(req, "a linkage proof").await?;
                mpc::spawn_party(keyring, req, move |io| async move {
                    mpc::run_linkage(io, r, share).await.map(|p| PartyOutput::Linked(p.shared))
                })
            }
        }
    }

    /// This party's primes for a run, taken in a task of the runtime from now on: they may take
    /// minutes, keygen does not need them, and the party itself runs on the blocking pool.
    fn take_primes(&self) -> impl std::future::Future<Output = Result<mpc::Primes>> + Send + 'static {
        let source = self.primes.clone();
        let task = tokio::spawn(async move { source.take().await });
        async move { task.await.map_err(|e| internal("prime task", e))? }
    }

    /// `e`, logged: a transaction this cosigner will not sign.
    fn refused(&self, req: &SessionRequest, e: Error) -> Error {
        tracing::warn!(party = self.party_index, key = %req.key, kind = %e.kind(), "refused to sign a transaction: {}", e.message());
        e.with_context("party", self.party_index)
    }

    /// The active share `req` is about, if `req` has exactly its threshold of parties (`what`
    /// names the run in the error).
    async fn signing_share(&self, req: &SessionRequest, what: &str) -> Result<Arc<Share>> {
        let share = self.active_share(&req.key).await?;
        if req.parties.len() != usize::from(share.min_signers()) {
            return Err(
                self.err(ErrorKind::InvalidInput, format!("{what} needs exactly {} parties", share.min_signers()))
            );
        }
        Ok(share)
    }

    /// Relays the party's envelopes into `events`, then its outcome: for DKG the pending share,
    /// sealed and stored unless the agent gave up.
    async fn report(
        self,
        req: SessionRequest,
        mut outbound: futures::channel::mpsc::Receiver<wallet_traits::Envelope>,
        result: tokio::task::JoinHandle<Result<PartyOutput>>,
        mut events: futures::channel::mpsc::Sender<SessionEvent>,
    ) {
        while let Some(env) = outbound.next().await {
            // If the agent went away the party notices through its closed inbox; keep draining.
            let _ = events.send(SessionEvent::Message(env)).await;
        }
        let outcome = match result.await.map_err(|e| internal("protocol task", e)) {
            // An agent that gave up will not commit: do not leave a Pending share behind.
            Ok(Ok(PartyOutput::Share(..))) if events.is_closed() => {
                Err(self.err(ErrorKind::CosignerUnavailable, "the agent abandoned the session"))
            }
            Ok(Ok(PartyOutput::Share(share, group))) => self.store_pending(&req, *share, group).await,
            Ok(Ok(PartyOutput::Staged(_))) if events.is_closed() => {
                Err(self.err(ErrorKind::CosignerUnavailable, "the agent abandoned the session"))
            }
            Ok(Ok(PartyOutput::Staged(share))) => self.stage_migrated(&req, *share).await,
            Ok(Ok(PartyOutput::Signed(pk))) => Ok(SessionOutcome { public_key: pk.as_bytes().to_vec() }),
            Ok(Ok(PartyOutput::Linked(shared))) => Ok(SessionOutcome { public_key: shared.as_bytes().to_vec() }),
            Ok(Err(e)) | Err(e) => Err(e),
        };
        let event = match outcome {
            Ok(o) => SessionEvent::Done(o),
            Err(e) => {
                tracing::warn!(party = self.party_index, key = %req.key, error = %e, "session failed");
                SessionEvent::Failed(e.with_context("party", self.party_index).to_wire())
            }
        };
        let _ = events.send(event).await;
    }
}

#[async_trait]
impl CosignerTransport for CosignerService {
    fn endpoint(&self) -> &str {
        &self.name
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        let Some(r) = self.store.load_share(key).await? else { return Ok(None) };
        // The labels are public; a record whose labels do not read is reported without them
        // (opening it, for a run, then fails with what is wrong).
        let labels = share_labels(&r.sealed).ok();
        Ok(Some(KeyInfo {
            public_key: r.meta.public_key,
            threshold: r.meta.threshold,
            parties: r.meta.parties,
            party_index: r.meta.party_index,
            state: r.meta.state,
            execution_id: r.meta.execution_id,
            protocol: labels.as_ref().map(|l| l.protocol.clone()),
            migrating: labels.and_then(|l| l.next.map(|(eid, _)| eid)),
            policy: match &self.spending {
                Some(s) => Some(s.report(key.wallet.as_str()).await?),
                None => None,
            },
        }))
    }

    async fn open_session(&self, req: SessionRequest) -> Result<SessionChannel> {
        self.validate(&req)?;
        self.mark_seen(req.execution_id).await?;
        let mpc::RunningParty { inbound, outbound, result } = self.start_party(&req).await?;
        let (events, from_party) = session_queue();
        tokio::spawn(self.clone().report(req, outbound, result, events));
        Ok(SessionChannel::new(inbound, from_party))
    }

    async fn partial_ecdh(&self, req: EcdhRequest) -> Result<EcdhPartial> {
        self.mark_seen(req.execution_id).await?;
        let share = self.active_share(&req.key).await?;
        let q = mpc::parse_point(&req.point)?;
        let ctx = mpc::ecdh_context(&req.key, &req.execution_id, &req.point);
        let (point, proof) = mpc::ecdh_partial(&share, &q, &ctx)?;
        Ok(EcdhPartial { party_index: self.party_index, point, proof })
    }

    async fn commit(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        let mut record = self.store.load_share(key).await?.ok_or_else(|| {
            self.err(ErrorKind::NotFound, format!("cosigner {} has no share of key {key} to commit", self.party_index))
        })?;
        if record.meta.state == ShareState::Active && staging::staged_run(&record)? == Some(*eid) {
            staging::promote(&self.store, &self.sealer, &record, *eid)
                .await
                .map_err(|e| e.with_context("party", self.party_index))?;
            self.active.lock().await.remove(key);
            tracing::info!(party = self.party_index, key = %key, "committed the migrated share");
            return Ok(());
        }
        if record.meta.execution_id != *eid {
            return Err(self.err(ErrorKind::ShareMismatch, "the stored share comes from another run"));
        }
        match record.meta.state {
            ShareState::Active => Ok(()),
            ShareState::Frozen => Err(self.err(ErrorKind::PolicyDenied, "the share is frozen")),
            ShareState::Pending => {
                record.meta.state = ShareState::Active;
                self.store.update_share(&record, record.version).await?;
                tracing::info!(party = self.party_index, key = %key, "committed share");
                Ok(())
            }
        }
    }

    async fn submit_approval(&self, approval: &[u8]) -> Result<bool> {
        match &self.spending {
            Some(s) => s.submit_approval(approval).await.map_err(|e| e.with_context("party", self.party_index)),
            None => Err(self.err(
                ErrorKind::Unsupported,
                "this cosigner enforces no spending policy (MPC_POLICY_FILE), so it takes no approvals",
            )),
        }
    }

    async fn rollback(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        let Some(record) = self.store.load_share(key).await? else { return Ok(()) };
        if record.meta.state == ShareState::Active && record.meta.execution_id != *eid {
            // A migration's staged share (or nothing staged any more): the share in force stays.
            return staging::unstage(&self.store, &self.sealer, &record, *eid).await;
        }
        if record.meta.execution_id != *eid {
            return Err(
                self.err(ErrorKind::ShareMismatch, "the stored share comes from another DKG run; not rolling it back")
            );
        }
        match record.meta.state {
            ShareState::Pending => {
                self.active.lock().await.remove(key);
                self.store.delete_share(key, record.version).await
            }
            _ => Err(self.err(ErrorKind::PolicyDenied, "refusing to roll back a committed share")),
        }
    }
}

/// An opened Active share and the run of its record.
type OpenedShare = (ExecutionId, Arc<Share>);

/// What a cosigner's party produces.
pub(crate) enum PartyOutput {
    /// A new key's share, stored Pending (a further key's record refers to its group record).
    Share(Box<Share>, Option<mpc::GroupRecord>),
    /// A migrated share, staged beside the one in force.
    Staged(Box<Share>),
    Signed(wallet_traits::PublicKey),
    /// The shared secret a linkage proof is about.
    Linked(wallet_traits::PublicKey),
}
