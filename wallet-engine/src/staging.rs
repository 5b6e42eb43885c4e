//! A share record's staged successor (docs/ARCHITECTURE.md, "Protocols"): a migration seals
//! each party's new share beside the one in force, the commit promotes it, a rollback drops it.
//! The agent and the cosigners keep their records the same way.

use std::sync::Arc;

use wallet_traits::{Error, ErrorKind, ExecutionId, KeyId, Result, ShareState, ShareStore, StoredShare};

use crate::{
    at_rest::seal::{share_labels, RecordKeys, RecordSalt, Sealer},
    mpc::{self, GroupRecord, Protocol, RecordShares, Share},
};

/// Opens a record's shares on the blocking pool (Argon2id takes a moment), with the keys of its
/// derivation cache; each share is checked against the record. A further key's record
/// ([`group_of`]) needs its group's share in force, `group`.
pub(crate) async fn open_record(
    sealer: &Sealer,
    record: &StoredShare,
    group: Option<Arc<Share>>,
) -> Result<(RecordShares, RecordKeys)> {
    let (sealer, record) = (sealer.clone(), record.clone());
    tokio::task::spawn_blocking(move || {
        let (opened, keys) = sealer.open_share_with_cache_keys(
            &record.key,
            record.meta.party_index,
            &record.meta.public_key,
            &record.sealed,
        )?;
        let shares = mpc::decode_record(&opened, record.meta.party_index, &record.meta.public_key, group.as_deref())?;
        Ok((shares, keys))
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, format!("share opening task: {e}")))?
}

/// Seals `share` of `key` (with `next` staged beside it, or referring to `group` for a further
/// key) on the blocking pool, where Argon2id belongs; the counterpart of [`open_record`].
pub(crate) async fn seal_record(
    sealer: &Sealer,
    key: &KeyId,
    share: Arc<Share>,
    next: Option<(ExecutionId, Share)>,
    group: Option<GroupRecord>,
) -> Result<(Vec<u8>, RecordKeys)> {
    let (sealer, key) = (sealer.clone(), key.clone());
    tokio::task::spawn_blocking(move || {
        mpc::seal_record_with_cache_keys(&sealer, &key, &share, next.as_ref().map(|(e, n)| (*e, n)), group)
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, format!("sealing task: {e}")))?
}

/// The run of the successor staged in `record`, if any (from its public labels).
pub(crate) fn staged_run(record: &StoredShare) -> Result<Option<ExecutionId>> {
    Ok(share_labels(&record.sealed)?.next.map(|(eid, _)| eid))
}

/// For a further key's record, which holds only its key part: the key of the group whose
/// share completes it (from its public labels).
pub(crate) fn group_of(record: &StoredShare) -> Result<Option<KeyId>> {
    let Some(index) = share_labels(&record.sealed)?.aux_from else { return Ok(None) };
    if index == record.key.index {
        return Err(Error::new(ErrorKind::Corrupted, "a share record names itself as its group"));
    }
    Ok(Some(KeyId::new(record.key.wallet.clone(), index)))
}

/// The group record a further key of `group`'s party group is sealed against: `group`'s
/// committed record, if it holds a cggmp24 share for the same parties (otherwise the further key
/// runs a whole DKG of its own).
pub(crate) fn group_record(group: &StoredShare, parties: u16) -> Result<Option<GroupRecord>> {
    let labels = share_labels(&group.sealed)?;
    let fits = group.meta.state == ShareState::Active
        && group.meta.parties == parties
        && labels.aux_from.is_none()
        && labels.next.is_none()
        && labels.protocol == Protocol::CURRENT.label();
    Ok(fits
        .then(|| RecordSalt::of(&group.sealed))
        .transpose()?
        .map(|salt| GroupRecord { index: group.key.index, salt }))
}

/// Reseals `record` with `share` in force and `next` staged, compare-and-swap on its version.
async fn reseal(
    store: &Arc<dyn ShareStore>,
    sealer: &Sealer,
    record: &StoredShare,
    share: Share,
    next: Option<(ExecutionId, Share)>,
    execution_id: ExecutionId,
) -> Result<()> {
    let (sealed, _) = seal_record(sealer, &record.key, Arc::new(share), next, None).await?;
    let mut updated = record.clone();
    updated.sealed = sealed;
    updated.meta.execution_id = execution_id;
    store.update_share(&updated, record.version).await.map(|_| ())
}

/// Seals `next`, made by run `eid`, beside `current`, the share in force of `record` (replacing
/// any successor staged before: one that was never committed).
pub(crate) async fn stage(
    store: &Arc<dyn ShareStore>,
    sealer: &Sealer,
    record: &StoredShare,
    current: Share,
    eid: ExecutionId,
    next: Share,
) -> Result<()> {
    reseal(store, sealer, record, current, Some((eid, next)), record.meta.execution_id).await
}

/// Promotes the successor of run `eid` staged in `record`: it becomes the share in force and
/// `eid` the record's run. Idempotent: a record whose run is `eid` already is left alone.
pub(crate) async fn promote(
    store: &Arc<dyn ShareStore>,
    sealer: &Sealer,
    record: &StoredShare,
    eid: ExecutionId,
) -> Result<()> {
    if record.meta.execution_id == eid {
        return Ok(());
    }
    let (shares, _) = open_record(sealer, record, None).await?;
    match shares.next {
        Some((staged, next)) if staged == eid => reseal(store, sealer, record, next, None, eid).await,
        _ => Err(Error::new(ErrorKind::ShareMismatch, "no share of this migration run is staged here")
            .with_context("execution_id", eid)),
    }
}

/// Drops the successor of run `eid` staged in `record`, keeping the share in force.
/// Idempotent: nothing staged, nothing to do.
pub(crate) async fn unstage(
    store: &Arc<dyn ShareStore>,
    sealer: &Sealer,
    record: &StoredShare,
    eid: ExecutionId,
) -> Result<()> {
    match staged_run(record)? {
        Some(staged) if staged == eid => {
            let (shares, _) = open_record(sealer, record, None).await?;
            reseal(store, sealer, record, shares.share, None, record.meta.execution_id).await
        }
        _ => Ok(()),
    }
}
