//! Provisioning one key: DKG the first time (with its two-phase commit), restore every time
//! after, completing or rolling back an interrupted run as the plan says; and the migration of
//! a cggmp21 key to cggmp24, committed in two phases the same way.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::join_all;
use wallet_traits::{
    Error, ErrorKind, ExecutionId, KeyId, PartyIndex, Result, SessionOutcome, SessionParams, SessionRequest, ShareMeta,
    ShareState, ShareStore, StoredShare, AGENT_INDEX, SHARE_FORMAT_VERSION,
};

use super::{
    builder::{Phase, Progress, ProgressFn, Provisioned},
    plan::{plan, CosignerView, Plan},
};
use crate::{
    at_rest::cache::DerivationCache,
    at_rest::primes::PrimeSource,
    at_rest::seal::{share_labels, RecordKeys, Sealer},
    coordinator::{coordinate, Remote, RunFailure},
    keys::Keyring,
    mpc::{self, AuxOptions, Primes, Protocol, Share},
    staging,
    wallet::Cosigner,
};

/// One provisioning run's parties and settings, resolved by the builder (and kept by the wallet
/// it made, for further keys).
#[derive(Clone)]
pub(crate) struct Provisioner {
    pub(crate) key: KeyId,
    pub(super) t: u16,
    pub(super) n: u16,
    pub(super) store: Arc<dyn ShareStore>,
    pub(super) sealer: Sealer,
    pub(super) primes: Arc<dyn PrimeSource>,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) cosigners: Vec<Cosigner>,
    pub(super) progress: Option<ProgressFn>,
    pub(super) idle: Duration,
    pub(super) pause_before_local_commit: Option<Duration>,
    pub(super) derivation_cache_max: usize,
    pub(super) aux: AuxOptions,
    pub(crate) migrate: bool,
    /// Fault injection: where a migration stops, after pausing how long (for a kill).
    pub(crate) stop_at: Option<(MigrationStep, Option<Duration>)>,
    /// The group's first key's share in force, when a wallet of it provisions a further key
    /// ([`crate::Wallet::key`]): it need not be opened again.
    pub(crate) group: Option<(KeyId, Arc<Share>)>,
}

impl Provisioner {
    fn report(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(p);
        }
    }

    async fn timed<T>(&self, phase: Phase, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.report(Progress::Started(phase));
        let t0 = Instant::now();
        let out = f.await?;
        self.report(Progress::Finished(phase, t0.elapsed()));
        Ok(out)
    }

    pub(crate) async fn provision(&self) -> Result<(Share, Option<DerivationCache>, Provisioned)> {
        let (local, views) = self.timed(Phase::Plan, self.look()).await?;
        let opened = match &local {
            Some(record) => Some(self.timed(Phase::Restore, self.open(record)).await?),
            None => None,
        };
        match plan(local.as_ref().map(|r| &r.meta), &views)? {
            Plan::Restore { degraded } => {
                self.warn_degraded(&degraded);
                let record = local.expect("restore implies a local share");
                let (shares, cache) = opened.expect("restore implies a local share");
                let share = self.settle_migration(&record, shares, &views).await?;
                if self.migrate && share.protocol() != Protocol::CURRENT {
                    let share = self.migration(share, &views).await?;
                    return Ok((share, cache, Provisioned::Migrated));
                }
                Ok((share, cache, Provisioned::Restored))
            }
            Plan::CompleteCommit { commit_on, degraded } => {
                let record = local.expect("commit implies a local share");
                tracing::info!(key = %self.key, "completing an interrupted commit");
                self.timed(Phase::Commit, self.commit(&record, &commit_on)).await?;
                self.warn_degraded(&degraded);
                let (shares, cache) = opened.expect("commit implies a local share");
                Ok((shares.share, cache, Provisioned::Restored))
            }
            Plan::RollBack { rollback_on } => {
                let record = local.expect("rollback implies a local share");
                tracing::warn!(key = %self.key, "rolling back an unfinished provisioning run");
                self.rollback(&rollback_on, &record.meta.execution_id).await?;
                self.store.delete_share(&self.key, record.version).await?;
                self.created().await
            }
            Plan::Dkg { rollback_first } => {
                for (i, eid) in &rollback_first {
                    self.rollback(&[*i], eid).await?;
                }
                self.created().await
            }
        }
    }

    /// Runs DKG, then opens the committed record once more for its derivation-cache keys.
    async fn created(&self) -> Result<(Share, Option<DerivationCache>, Provisioned)> {
        let (share, keys) = self.dkg().await?;
        let cache = DerivationCache::new(self.store.clone(), self.key.clone(), &keys, self.derivation_cache_max);
        Ok((share, cache, Provisioned::Created))
    }

    fn warn_degraded(&self, degraded: &[PartyIndex]) {
        for i in degraded {
            tracing::warn!(cosigner = i, key = %self.key, "cosigner is unreachable or lost its share; signing uses the others");
        }
    }

    fn cosigner(&self, i: PartyIndex) -> &Cosigner {
        &self.cosigners[usize::from(i - 1)]
    }

    /// The local record and every cosigner's view of the key.
    async fn look(&self) -> Result<(Option<StoredShare>, Vec<(PartyIndex, CosignerView)>)> {
        let local = self.store.load_share(&self.key).await?;
        if let Some(r) = &local {
            if r.meta.party_index != AGENT_INDEX || r.meta.parties != self.n || r.meta.threshold != self.t {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the stored share is party {} of a {}-of-{} key, but the configuration describes a {}-of-{} agent; \
                         fix MPC_THRESHOLD / MPC_COSIGNER_ENDPOINTS",
                        r.meta.party_index, r.meta.threshold, r.meta.parties, self.t, self.n
                    ),
                ));
            }
        }
        let views = join_all(self.cosigners.iter().map(|c| async move {
            let view = match tokio::time::timeout(self.idle.min(Duration::from_secs(30)), c.transport.key_info(&self.key)).await {
                Ok(Ok(Some(info))) if info.party_index != c.index => {
                    return Err(c.name(Error::new(
                        ErrorKind::Config,
                        format!(
                            "the cosigner at position {} reports party index {}; list MPC_COSIGNER_ENDPOINTS in party order",
                            c.index, info.party_index
                        ),
                    )))
                }
                Ok(Ok(Some(info))) => CosignerView::Holds(Box::new(info)),
                Ok(Ok(None)) => CosignerView::Missing,
                Ok(Err(e)) if e.kind() == ErrorKind::CosignerUnavailable || e.kind() == ErrorKind::Timeout => {
                    CosignerView::Unreachable(e.to_string())
                }
                Ok(Err(e)) => return Err(c.name(e)),
                Err(_) => CosignerView::Unreachable("no answer".into()),
            };
            Ok((c.index, view))
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Ok((local, views))
    }

    /// Opens the local share (a further key's with its group's); a wrong secret fails here,
    /// before anything is written anywhere.
    async fn open(&self, record: &StoredShare) -> Result<(mpc::RecordShares, Option<DerivationCache>)> {
        let group = match staging::group_of(record)? {
            None => None,
            Some(group) => Some(self.group_share_of(&group).await?),
        };
        let (shares, keys) = staging::open_record(&self.sealer, record, group).await?;
        Ok((shares, DerivationCache::new(self.store.clone(), self.key.clone(), &keys, self.derivation_cache_max)))
    }

    /// The share in force of `group`, this key's group key: the one the wallet that provisions
    /// this key holds, if it is that record's, or opened from the store.
    async fn group_share_of(&self, group: &KeyId) -> Result<Arc<Share>> {
        let record = self.store.load_share(group).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupted,
                "a further key's record refers to its group's first key, which this store does not hold; \
                 restore that key's record from backup",
            )
            .with_context("key", &self.key)
            .with_context("group_key", group)
        })?;
        self.group_share_in(&record).await
    }

    /// The share in force of the group record `record`.
    async fn group_share_in(&self, record: &StoredShare) -> Result<Arc<Share>> {
        if let Some((key, share)) = &self.group {
            // A migration keeps the key but not the share: the protocol must match too.
            if *key == record.key
                && mpc::public_key_of(share).as_bytes()[..] == record.meta.public_key[..]
                && share_labels(&record.sealed)?.protocol == share.protocol().label()
            {
                return Ok(share.clone());
            }
        }
        if staging::group_of(record)?.is_some() {
            return Err(Error::new(ErrorKind::Corrupted, "a further key's group record refers to yet another key")
                .with_context("group_key", &record.key));
        }
        let (shares, _) = staging::open_record(&self.sealer, record, None).await?;
        Ok(Arc::new(shares.share))
    }

    async fn rollback(&self, on: &[PartyIndex], eid: &ExecutionId) -> Result<()> {
        for &i in on {
            let c = self.cosigner(i);
            c.transport.rollback(&self.key, eid).await.map_err(|e| c.name(e))?;
        }
        Ok(())
    }

    /// Steps 3 and 4 of the DKG commit: cosigners flip to Active, then the agent does.
    async fn commit(&self, record: &StoredShare, on: &[PartyIndex]) -> Result<()> {
        let eid = record.meta.execution_id;
        for &i in on {
            let c = self.cosigner(i);
            c.transport.commit(&self.key, &eid).await.map_err(|e| c.name(e))?;
        }
        if let Some(pause) = self.pause_before_local_commit {
            tracing::warn!(?pause, "fault injection: pausing before the agent's own commit");
            tokio::time::sleep(pause).await;
        }
        let mut active = record.clone();
        active.meta.state = ShareState::Active;
        self.store.update_share(&active, record.version).await?;
        Ok(())
    }

    /// The group's first key (index 0), when this is a further key and the agent holds that
    /// key's committed cggmp24 share: its aux info serves this key too.
    async fn group_share(&self) -> Result<Option<(Arc<Share>, mpc::GroupRecord)>> {
        if self.key.index == 0 {
            return Ok(None);
        }
        let group = KeyId::new(self.key.wallet.clone(), 0);
        let Some(record) = self.store.load_share(&group).await? else { return Ok(None) };
        let Some(group_record) = staging::group_record(&record, self.n)? else { return Ok(None) };
        Ok(Some((self.group_share_in(&record).await?, group_record)))
    }

    /// Opens a session of `params` with every cosigner.
    async fn open_all(&self, request: &SessionRequest) -> Result<Vec<Remote>> {
        let mut remotes = Vec::with_capacity(self.cosigners.len());
        for c in &self.cosigners {
            let channel = c.transport.open_session(request.clone()).await.map_err(|e| c.name(e))?;
            remotes.push(Remote { index: c.index, endpoint: c.transport.endpoint().to_string(), channel });
        }
        Ok(remotes)
    }

    /// Runs DKG with every party and commits it (docs/ARCHITECTURE.md, "Shares and the commit").
    /// A further key of a group whose first key is cggmp24 runs only the threshold keygen and
    /// reuses the group's aux info.
    async fn dkg(&self) -> Result<(Share, RecordKeys)> {
        let eid = ExecutionId::random();
        let group = self.group_share().await?;
        let params = match &group {
            Some(_) => SessionParams::Keygen { threshold: self.t, total: self.n, aux_from: 0 },
            None => SessionParams::Dkg { threshold: self.t, total: self.n },
        };
        let request =
            SessionRequest { key: self.key.clone(), execution_id: eid, parties: (0..self.n).collect(), params };
        let remotes = self.open_all(&request).await?;
        let group_record = group.as_ref().map(|(_, r)| *r);
        let (share, outcomes) = self.run_dkg(&request, remotes, group.map(|(s, _)| s)).await?;
        let pk = mpc::public_key_of(&share);
        if let Some((c, _)) = self.cosigners.iter().zip(&outcomes).find(|(_, o)| o.public_key != pk.as_bytes()) {
            let _ = self.rollback(&positions_all(self.n), &eid).await;
            return Err(c.name(Error::new(
                ErrorKind::ShareMismatch,
                format!("cosigner {} ended DKG with another collective key; the run was rolled back", c.index),
            )));
        }
        let keys = self.timed(Phase::Commit, self.seal_and_commit(&share, eid, group_record)).await?;
        Ok((share, keys))
    }

    /// The protocol part of DKG: keygen and aux info with every cosigner, reporting progress.
    /// On failure, rolls back whatever Pending share a cosigner may already have sealed.
    async fn run_dkg(
        &self,
        request: &SessionRequest,
        remotes: Vec<Remote>,
        group: Option<Arc<Share>>,
    ) -> Result<(Share, Vec<SessionOutcome>)> {
        let eid = request.execution_id;
        let t0 = Instant::now();
        self.report(Progress::Started(Phase::Keygen));
        let r = request.clone();
        let aux_started = Arc::new(std::sync::Mutex::new(None));
        let local = if let Some(group) = group {
            let progress = self.progress.clone();
            mpc::spawn_party(self.keyring.clone(), request, move |io| async move {
                let share = mpc::run_keygen_with_aux(io, r, &group).await;
                if let (Some(f), Ok(_)) = (&progress, &share) {
                    f(Progress::Finished(Phase::Keygen, t0.elapsed()));
                }
                share
            })?
        } else {
            // Keygen needs no primes, so it runs while this party's primes are fetched or generated.
            let primes = self.fetch_primes();
            let progress = self.progress.clone();
            let aux_mark = aux_started.clone();
            let aux = self.aux;
            mpc::spawn_party(self.keyring.clone(), request, move |io| {
                mpc::run_dkg(io, r, primes, aux, move || {
                    if let Some(f) = &progress {
                        f(Progress::Finished(Phase::Keygen, t0.elapsed()));
                        f(Progress::Started(Phase::AuxInfo));
                    }
                    *aux_mark.lock().expect("aux mark") = Some(Instant::now());
                })
            })?
        };
        let positions: Vec<u16> = self.cosigners.iter().map(|c| c.index).collect();
        match coordinate(eid, 0, local, remotes, positions, self.idle).await {
            Ok(done) => {
                if let Some(aux_t0) = *aux_started.lock().expect("aux mark") {
                    self.report(Progress::Finished(Phase::AuxInfo, aux_t0.elapsed()));
                }
                Ok(done)
            }
            // DKG needs every party: there is no other cosigner to go on with.
            Err(RunFailure { error, .. }) => {
                self.rollback_all_quietly(&eid).await;
                Err(error)
            }
        }
    }

    /// This party's prime pair, taken in a task of its own (reporting [`Phase::Primes`]).
    fn fetch_primes(&self) -> impl std::future::Future<Output = Result<Primes>> + Send + 'static {
        self.report(Progress::Started(Phase::Primes));
        let (source, progress) = (self.primes.clone(), self.progress.clone());
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let p = source.take().await;
            if let (Some(f), Ok(_)) = (&progress, &p) {
                f(Progress::Finished(Phase::Primes, t0.elapsed()));
            }
            p
        });
        async move { task.await.map_err(|e| Error::new(ErrorKind::Internal, format!("prime task: {e}")))? }
    }

    /// Steps 2 to 4 of the commit: the agent seals its share as Pending (the cosigners did in
    /// their sessions; a further key's record refers to `group`), then every party flips to Active.
    async fn seal_and_commit(
        &self,
        share: &Share,
        eid: ExecutionId,
        group: Option<mpc::GroupRecord>,
    ) -> Result<RecordKeys> {
        let pk = mpc::public_key_of(share);
        let (sealed, keys) =
            staging::seal_record(&self.sealer, &self.key, Arc::new(share.clone()), None, group).await?;
        let record = StoredShare {
            key: self.key.clone(),
            meta: ShareMeta {
                public_key: pk.as_bytes().to_vec(),
                threshold: self.t,
                parties: self.n,
                party_index: AGENT_INDEX,
                state: ShareState::Pending,
                execution_id: eid,
            },
            version: 1,
            format_version: SHARE_FORMAT_VERSION,
            sealed,
        };
        if let Err(e) = self.store.create_share(&record).await {
            // Nothing committed yet: undo the cosigners' Pending shares so a retry starts clean.
            let _ = self.rollback(&positions_all(self.n), &eid).await;
            return Err(e);
        }
        // A crash from here on is completed by the next build (Plan::CompleteCommit).
        self.commit(&record, &positions_all(self.n)).await?;
        Ok(keys)
    }
}

/// Where a migration run may be stopped, for crash tests (feature `fault-injection`): each is a
/// point after which a real crash would leave the parties' records as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationStep {
    /// Every cosigner staged its new share; the agent has not staged its own.
    CosignersStaged,
    /// Every party staged; no cosigner committed.
    AgentStaged,
    /// The first cosigner committed; the others did not.
    FirstCosignerCommitted,
    /// Every cosigner committed; the agent did not.
    CosignersCommitted,
}

impl Provisioner {
    async fn stop_at(&self, step: MigrationStep) -> Result<()> {
        match self.stop_at {
            Some((at, pause)) if at == step => {
                if let Some(pause) = pause {
                    tracing::warn!(?step, ?pause, "fault injection: pausing the migration");
                    tokio::time::sleep(pause).await;
                }
                Err(Error::new(ErrorKind::Internal, format!("fault injection: stopped the migration at {step:?}")))
            }
            _ => Ok(()),
        }
    }

    /// Completes or rolls back a migration a stop interrupted, so that every party signs with
    /// one protocol again (docs/ARCHITECTURE.md, "Protocols"), and returns the agent's share in
    /// force. Roll forward once any party committed or every party staged; otherwise roll back;
    /// while a cosigner is unreachable and neither is certain, leave everything as it is (the
    /// old shares still sign).
    async fn settle_migration(
        &self,
        record: &StoredShare,
        shares: mpc::RecordShares,
        views: &[(PartyIndex, CosignerView)],
    ) -> Result<Share> {
        let holding = |f: &dyn Fn(&wallet_traits::KeyInfo) -> bool| -> Vec<PartyIndex> {
            views
                .iter()
                .filter_map(|(i, v)| match v {
                    CosignerView::Holds(k) if f(k) => Some(*i),
                    _ => None,
                })
                .collect()
        };
        let Some((run, next)) = shares.next else {
            // Staged runs the agent does not hold: it never staged them (nobody can have
            // committed), unless it committed them already itself.
            for (i, v) in views {
                let CosignerView::Holds(k) = v else { continue };
                let Some(staged) = k.migrating else { continue };
                let c = self.cosigner(*i);
                let done = if staged == record.meta.execution_id {
                    c.transport.commit(&self.key, &staged).await
                } else {
                    c.transport.rollback(&self.key, &staged).await
                };
                if let Err(e) = done {
                    tracing::warn!(cosigner = i, error = %e, "could not settle a staged migration; the next start retries");
                }
            }
            return Ok(shares.share);
        };
        let committed = holding(&|k| k.execution_id == run);
        let staged = holding(&|k| k.migrating == Some(run));
        if !committed.is_empty() || staged.len() == self.cosigners.len() {
            tracing::info!(key = %self.key, "completing an interrupted migration");
            return match self.commit_migration(record, run, &staged).await {
                Ok(()) => Ok(next),
                Err(e) => {
                    tracing::warn!(error = %e, "could not complete the interrupted migration; the next start retries");
                    Ok(shares.share)
                }
            };
        }
        if views.iter().any(|(_, v)| matches!(v, CosignerView::Unreachable(_))) {
            tracing::warn!(key = %self.key, "a migration is unfinished and a cosigner is unreachable; signing with the old shares until it can be settled");
            return Ok(shares.share);
        }
        tracing::warn!(key = %self.key, "rolling back an unfinished migration");
        self.rollback(&staged, &run).await?;
        staging::unstage(&self.store, &self.sealer, record, run).await?;
        Ok(shares.share)
    }

    /// Phase two of a migration: the cosigners in `on` promote their staged share, then the agent.
    async fn commit_migration(&self, record: &StoredShare, run: ExecutionId, on: &[PartyIndex]) -> Result<()> {
        for (k, &i) in on.iter().enumerate() {
            let c = self.cosigner(i);
            c.transport.commit(&self.key, &run).await.map_err(|e| c.name(e))?;
            if k == 0 {
                self.stop_at(MigrationStep::FirstCosignerCommitted).await?;
            }
        }
        self.stop_at(MigrationStep::CosignersCommitted).await?;
        staging::promote(&self.store, &self.sealer, record, run).await
    }

    /// Migrates the key to the current protocol with every party (docs/ARCHITECTURE.md,
    /// "Protocols"): cggmp24 aux info for the existing key, staged by every party, then committed
    /// in two phases. The key, and so every address and derived key, stays the same.
    async fn migration(&self, old: Share, views: &[(PartyIndex, CosignerView)]) -> Result<Share> {
        let pk = mpc::public_key_of(&old);
        for (i, v) in views {
            let fit =
                matches!(v, CosignerView::Holds(k) if k.state == ShareState::Active && k.public_key == pk.as_bytes());
            if !fit {
                return Err(Error::new(
                    ErrorKind::CosignerUnavailable,
                    format!("a migration needs every cosigner holding the key, and cosigner {i} cannot take part; start it (or restore its share) and retry. Nothing was changed."),
                )
                .with_context("cosigner", i));
            }
        }
        let eid = ExecutionId::random();
        let request = SessionRequest {
            key: self.key.clone(),
            execution_id: eid,
            parties: (0..self.n).collect(),
            params: SessionParams::Migrate {},
        };
        let remotes = self.open_all(&request).await?;
        let primes = self.fetch_primes();
        self.report(Progress::Started(Phase::AuxInfo));
        let t0 = Instant::now();
        let (r, aux, from) = (request.clone(), self.aux, old.clone());
        let local = mpc::spawn_party(self.keyring.clone(), &request, move |io| async move {
            let primes = primes.await?;
            mpc::run_migration(io, r, &from, primes, aux).await
        })?;
        let positions: Vec<u16> = self.cosigners.iter().map(|c| c.index).collect();
        let (next, outcomes) = match coordinate(eid, 0, local, remotes, positions, self.idle).await {
            Ok(done) => done,
            Err(RunFailure { error, .. }) => {
                self.rollback_all_quietly(&eid).await;
                return Err(error);
            }
        };
        self.report(Progress::Finished(Phase::AuxInfo, t0.elapsed()));
        if outcomes.iter().any(|o| o.public_key != pk.as_bytes()) {
            self.rollback_all_quietly(&eid).await;
            return Err(Error::new(
                ErrorKind::ShareMismatch,
                "a cosigner ended the migration with another key; it was rolled back",
            ));
        }
        self.stop_at(MigrationStep::CosignersStaged).await?;
        self.report(Progress::Started(Phase::Commit));
        let t0 = Instant::now();
        let record = self
            .store
            .load_share(&self.key)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the agent's share vanished during the migration"))?;
        if let Err(e) = staging::stage(&self.store, &self.sealer, &record, old, eid, next.clone()).await {
            self.rollback_all_quietly(&eid).await;
            return Err(e);
        }
        self.stop_at(MigrationStep::AgentStaged).await?;
        // From here a stop is completed by the next start (settle_migration).
        let record = self
            .store
            .load_share(&self.key)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the agent's share vanished during the migration"))?;
        self.commit_migration(&record, eid, &positions_all(self.n)).await?;
        self.report(Progress::Finished(Phase::Commit, t0.elapsed()));
        tracing::info!(key = %self.key, protocol = %next.protocol(), "migrated the key");
        Ok(next)
    }

    async fn rollback_all_quietly(&self, eid: &ExecutionId) {
        for c in &self.cosigners {
            if let Err(e) = c.transport.rollback(&self.key, eid).await {
                tracing::warn!(cosigner = c.index, error = %e, "could not roll back; the next start will");
            }
        }
    }
}

fn positions_all(n: u16) -> Vec<PartyIndex> {
    (1..n).collect()
}
