//! Provisioning one key: DKG the first time (with its two-phase commit), restore every time
//! after, completing or rolling back an interrupted run as the plan says.

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
    at_rest::seal::Sealer,
    coordinator::{coordinate, Remote, RunFailure},
    keys::Keyring,
    mpc::{self, Primes, Share},
    wallet::Cosigner,
};

/// One provisioning run's parties and settings, resolved by the builder.
pub(super) struct Provisioner {
    pub(super) key: KeyId,
    pub(super) t: u16,
    pub(super) n: u16,
    pub(super) store: Arc<dyn ShareStore>,
    pub(super) sealer: Sealer,
    pub(super) primes: Arc<dyn PrimeSource>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) cosigners: Vec<Cosigner>,
    pub(super) progress: Option<ProgressFn>,
    pub(super) idle: Duration,
    pub(super) pause_before_local_commit: Option<Duration>,
    pub(super) derivation_cache_max: usize,
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

    pub(super) async fn provision(&self) -> Result<(Share, Option<DerivationCache>, Provisioned)> {
        let (local, views) = self.timed(Phase::Plan, self.look()).await?;
        let opened = match &local {
            Some(record) => Some(self.timed(Phase::Restore, self.open(record)).await?),
            None => None,
        };
        match plan(local.as_ref().map(|r| &r.meta), &views)? {
            Plan::Restore { degraded } => {
                self.warn_degraded(&degraded);
                let (share, cache) = opened.expect("restore implies a local share");
                Ok((share, cache, Provisioned::Restored))
            }
            Plan::CompleteCommit { commit_on, degraded } => {
                let record = local.expect("commit implies a local share");
                tracing::info!(key = %self.key, "completing an interrupted commit");
                self.timed(Phase::Commit, self.commit(&record, &commit_on)).await?;
                self.warn_degraded(&degraded);
                let (share, cache) = opened.expect("commit implies a local share");
                Ok((share, cache, Provisioned::Restored))
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
        let share = self.dkg().await?;
        let record = self
            .store
            .load_share(&self.key)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the committed share vanished from the store"))?;
        let (_, cache) = self.open(&record).await?;
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
                Ok(Ok(Some(info))) => CosignerView::Holds(info),
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

    /// Opens the local share; a wrong secret fails here, before anything is written anywhere.
    async fn open(&self, record: &StoredShare) -> Result<(Share, Option<DerivationCache>)> {
        let (sealer, key, rec) = (self.sealer.clone(), self.key.clone(), record.clone());
        let (share, keys) = tokio::task::spawn_blocking(move || -> Result<_> {
            let (plain, keys) =
                sealer.open_share_with_cache_keys(&key, AGENT_INDEX, &rec.meta.public_key, &rec.sealed)?;
            Ok((mpc::decode_share(&plain)?, keys))
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("share opening task: {e}")))??;
        if share.core.i != AGENT_INDEX || mpc::public_key_of(&share).as_bytes()[..] != record.meta.public_key[..] {
            return Err(Error::new(ErrorKind::Corrupted, "the opened share does not match its record's metadata"));
        }
        Ok((share, DerivationCache::new(self.store.clone(), self.key.clone(), &keys, self.derivation_cache_max)))
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

    /// Runs DKG with every party and commits it (docs/ARCHITECTURE.md, "Shares and the commit").
    async fn dkg(&self) -> Result<Share> {
        let eid = ExecutionId::random();
        let request = SessionRequest {
            key: self.key.clone(),
            execution_id: eid,
            parties: (0..self.n).collect(),
            params: SessionParams::Dkg { threshold: self.t, total: self.n },
        };
        let mut remotes = Vec::with_capacity(self.cosigners.len());
        for c in &self.cosigners {
            let channel = c.transport.open_session(request.clone()).await.map_err(|e| c.name(e))?;
            remotes.push(Remote { index: c.index, endpoint: c.transport.endpoint().to_string(), channel });
        }
        let (share, outcomes) = self.run_dkg(&request, remotes).await?;
        let pk = mpc::public_key_of(&share);
        if let Some((c, _)) = self.cosigners.iter().zip(&outcomes).find(|(_, o)| o.public_key != pk.as_bytes()) {
            let _ = self.rollback(&positions_all(self.n), &eid).await;
            return Err(c.name(Error::new(
                ErrorKind::ShareMismatch,
                format!("cosigner {} ended DKG with another collective key; the run was rolled back", c.index),
            )));
        }
        self.timed(Phase::Commit, self.seal_and_commit(&share, eid)).await?;
        Ok(share)
    }

    /// The protocol part of DKG: keygen and aux info with every cosigner, reporting progress.
    /// On failure, rolls back whatever Pending share a cosigner may already have sealed.
    async fn run_dkg(&self, request: &SessionRequest, remotes: Vec<Remote>) -> Result<(Share, Vec<SessionOutcome>)> {
        let eid = request.execution_id;
        let t0 = Instant::now();
        self.report(Progress::Started(Phase::Keygen));
        // Keygen needs no primes, so it runs while this party's pair is fetched or generated.
        let primes = self.fetch_primes();
        let progress = self.progress.clone();
        let aux_started = Arc::new(std::sync::Mutex::new(None));
        let aux_mark = aux_started.clone();
        let r = request.clone();
        let local = mpc::spawn_party(self.keyring.clone(), request, move |io| {
            mpc::run_dkg(io, r, primes, move || {
                if let Some(f) = &progress {
                    f(Progress::Finished(Phase::Keygen, t0.elapsed()));
                    f(Progress::Started(Phase::AuxInfo));
                }
                *aux_mark.lock().expect("aux mark") = Some(Instant::now());
            })
        })?;
        let positions: Vec<u16> = self.cosigners.iter().map(|c| c.index).collect();
        match coordinate(eid, 0, local, remotes, positions, self.idle).await {
            Ok(done) => {
                let aux_t0 = aux_started.lock().expect("aux mark").unwrap_or(t0);
                self.report(Progress::Finished(Phase::AuxInfo, aux_t0.elapsed()));
                Ok(done)
            }
            // DKG needs every party: there is no other cosigner to go on with.
            Err(RunFailure { error, .. }) => {
                for c in &self.cosigners {
                    if let Err(re) = c.transport.rollback(&self.key, &eid).await {
                        tracing::warn!(cosigner = c.index, error = %re, "could not roll back after a failed DKG; the next start will");
                    }
                }
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
    /// their sessions), then every party flips to Active.
    async fn seal_and_commit(&self, share: &Share, eid: ExecutionId) -> Result<()> {
        let pk = mpc::public_key_of(share);
        let plain = mpc::encode_share(share);
        let (sealer, key) = (self.sealer.clone(), self.key.clone());
        let sealed = tokio::task::spawn_blocking(move || sealer.seal_share(&key, AGENT_INDEX, pk.as_bytes(), &plain))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("sealing task: {e}")))??;
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
        self.commit(&record, &positions_all(self.n)).await
    }
}

fn positions_all(n: u16) -> Vec<PartyIndex> {
    (1..n).collect()
}
