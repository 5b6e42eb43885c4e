//! Between the framework's types and the proto messages, and between `Error` and gRPC status.
//!
//! Decoding validates everything a peer could get wrong (lengths, ranges, ids) and reports it as
//! `InvalidInput`; the client turns that into `Corrupted` for replies it cannot read.

use serde::{de::IntoDeserializer, Deserialize};
use tonic::{metadata::MetadataValue, Code, Status};
use wallet_traits::{
    ChangeClaim, EcdhPartial, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, InputToSign, KeyId, KeyInfo,
    PolicyReport, Result, SessionEvent, SessionOutcome, SessionParams, SessionRequest, ShareState, WalletId, WireError,
};

use crate::proto as pb;

/// Binary metadata entry (in the status trailers) carrying the full [`WireError`].
pub(crate) const ERROR_METADATA_KEY: &str = "mpc-error-bin";

/// Longest error message put on the wire; trailers must stay well under HTTP/2 header limits.
const MAX_ERROR_MESSAGE: usize = 2048;

fn malformed(what: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, format!("malformed {what}"))
}

pub(crate) fn key_to_pb(key: &KeyId) -> pb::KeyId {
    pb::KeyId { wallet: key.wallet.as_str().to_string(), index: key.index }
}

pub(crate) fn key_from_pb(key: Option<pb::KeyId>) -> Result<KeyId> {
    let key = key.ok_or_else(|| malformed("request: the key is missing"))?;
    Ok(KeyId::new(WalletId::new(key.wallet)?, key.index))
}

pub(crate) fn eid_from_pb(bytes: &[u8]) -> Result<ExecutionId> {
    <[u8; 32]>::try_from(bytes)
        .map(ExecutionId::from_bytes)
        .map_err(|_| malformed("execution id: expected 32 bytes").with_context("bytes", bytes.len()))
}

fn u16_from(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value)
        .map_err(|_| malformed(&format!("{what}: does not fit in 16 bits")).with_context("value", value))
}

fn bytes32_from(value: Option<Vec<u8>>, what: &str) -> Result<Option<[u8; 32]>> {
    value
        .map(|v| <[u8; 32]>::try_from(v.as_slice()).map_err(|_| malformed(&format!("{what}: expected 32 bytes"))))
        .transpose()
}

pub(crate) fn session_request_to_pb(r: &SessionRequest) -> pb::SessionRequest {
    let mut m = pb::SessionRequest {
        key: Some(key_to_pb(&r.key)),
        execution_id: r.execution_id.as_bytes().to_vec(),
        parties: r.parties.iter().map(|&p| u32::from(p)).collect(),
        ..Default::default()
    };
    match &r.params {
        SessionParams::Dkg { threshold, total } => {
            m.kind = pb::SessionKind::Dkg as i32;
            (m.threshold, m.total) = ((*threshold).into(), (*total).into());
        }
        SessionParams::Sign { digest, tweak } => {
            m.kind = pb::SessionKind::Sign as i32;
            (m.digest, m.tweak) = (Some(digest.to_vec()), tweak.map(|t| t.to_vec()));
        }
        SessionParams::Linkage { point } => {
            m.kind = pb::SessionKind::Linkage as i32;
            m.point = Some(point.clone());
        }
        SessionParams::Keygen { threshold, total, aux_from } => {
            m.kind = pb::SessionKind::Keygen as i32;
            (m.threshold, m.total, m.aux_from) = ((*threshold).into(), (*total).into(), Some(*aux_from));
        }
        SessionParams::Migrate {} => m.kind = pb::SessionKind::Migrate as i32,
        SessionParams::SignData { data, tweak } => {
            m.kind = pb::SessionKind::SignData as i32;
            (m.data, m.tweak) = (Some(data.clone()), tweak.map(|t| t.to_vec()));
        }
        SessionParams::SignTx { tx, inputs, change } => {
            m.kind = pb::SessionKind::SignTx as i32;
            m.tx = Some(tx.clone());
            m.change = change.iter().map(|c| pb::ChangeClaim { vout: c.vout, tweak: c.tweak.to_vec() }).collect();
            m.inputs = inputs
                .iter()
                .map(|i| pb::InputToSign {
                    index: i.index,
                    sighash_type: i.sighash_type,
                    tweak: i.tweak.map(|t| t.to_vec()),
                })
                .collect();
        }
    }
    m
}

/// The kind decides which fields may be set: a digest, tweak or point where the kind takes none
/// makes the request malformed (threshold and total are ignored outside DKG, as earlier
/// releases sent them with every kind), and an unknown kind (a newer peer's) is refused by name.
pub(crate) fn session_request_from_pb(r: pb::SessionRequest) -> Result<SessionRequest> {
    let mixed = || malformed("session request: a field of another session kind is set");
    let kind = pb::SessionKind::try_from(r.kind);
    if kind != Ok(pb::SessionKind::SignTx) && (r.tx.is_some() || !r.inputs.is_empty() || !r.change.is_empty()) {
        return Err(mixed());
    }
    if kind != Ok(pb::SessionKind::Keygen) && r.aux_from.is_some() {
        return Err(mixed());
    }
    if kind != Ok(pb::SessionKind::SignData) && r.data.is_some() {
        return Err(mixed());
    }
    let params = match kind {
        Ok(pb::SessionKind::Dkg) => {
            if r.digest.is_some() || r.tweak.is_some() || r.point.is_some() {
                return Err(mixed());
            }
            SessionParams::Dkg { threshold: u16_from(r.threshold, "threshold")?, total: u16_from(r.total, "total")? }
        }
        Ok(pb::SessionKind::Keygen) => {
            if r.digest.is_some() || r.tweak.is_some() || r.point.is_some() {
                return Err(mixed());
            }
            SessionParams::Keygen {
                threshold: u16_from(r.threshold, "threshold")?,
                total: u16_from(r.total, "total")?,
                aux_from: r.aux_from.ok_or_else(|| malformed("session request: keygen without aux_from"))?,
            }
        }
        Ok(pb::SessionKind::Migrate) => {
            if r.digest.is_some() || r.tweak.is_some() || r.point.is_some() {
                return Err(mixed());
            }
            SessionParams::Migrate {}
        }
        Ok(pb::SessionKind::Sign) => {
            if r.point.is_some() {
                return Err(mixed());
            }
            let digest = bytes32_from(r.digest, "digest")?.ok_or_else(|| malformed("session request: no digest"))?;
            SessionParams::Sign { digest, tweak: bytes32_from(r.tweak, "tweak")? }
        }
        Ok(pb::SessionKind::SignData) => {
            if r.point.is_some() || r.digest.is_some() {
                return Err(mixed());
            }
            let data = r.data.ok_or_else(|| malformed("session request: no data"))?;
            SessionParams::SignData { data, tweak: bytes32_from(r.tweak, "tweak")? }
        }
        Ok(pb::SessionKind::Linkage) => {
            if r.digest.is_some() || r.tweak.is_some() {
                return Err(mixed());
            }
            SessionParams::Linkage { point: r.point.ok_or_else(|| malformed("session request: no point"))? }
        }
        Ok(pb::SessionKind::SignTx) => {
            if r.digest.is_some() || r.tweak.is_some() || r.point.is_some() {
                return Err(mixed());
            }
            let inputs = r
                .inputs
                .into_iter()
                .map(|i| {
                    Ok(InputToSign {
                        index: i.index,
                        sighash_type: i.sighash_type,
                        tweak: bytes32_from(i.tweak, "input tweak")?,
                    })
                })
                .collect::<Result<_>>()?;
            let change = r
                .change
                .into_iter()
                .map(|c| {
                    let tweak = bytes32_from(Some(c.tweak), "change tweak")?.unwrap_or_default();
                    Ok(ChangeClaim { vout: c.vout, tweak })
                })
                .collect::<Result<_>>()?;
            let tx = r.tx.ok_or_else(|| malformed("session request: no transaction"))?;
            SessionParams::SignTx { tx, inputs, change }
        }
        _ => return Err(malformed("session request: unknown session kind").with_context("kind", r.kind)),
    };
    Ok(SessionRequest {
        key: key_from_pb(r.key)?,
        execution_id: eid_from_pb(&r.execution_id)?,
        parties: r.parties.into_iter().map(|p| u16_from(p, "party index")).collect::<Result<_>>()?,
        params,
    })
}

pub(crate) fn envelope_to_pb(e: Envelope) -> pb::Envelope {
    pb::Envelope {
        execution_id: e.execution_id.as_bytes().to_vec(),
        stage: e.stage.into(),
        from: e.from.into(),
        to: e.to.into(),
        broadcast: e.broadcast,
        seq: e.seq,
        payload: e.payload,
    }
}

pub(crate) fn envelope_from_pb(e: pb::Envelope) -> Result<Envelope> {
    Ok(Envelope {
        execution_id: eid_from_pb(&e.execution_id)?,
        stage: u16_from(e.stage, "envelope stage")?,
        from: u16_from(e.from, "envelope sender")?,
        to: u16_from(e.to, "envelope recipient")?,
        broadcast: e.broadcast,
        seq: e.seq,
        payload: e.payload,
    })
}

pub(crate) fn event_to_pb(ev: SessionEvent) -> pb::ServerFrame {
    use pb::server_frame::Event;
    let event = match ev {
        SessionEvent::Message(env) => Event::Message(envelope_to_pb(env)),
        SessionEvent::Done(o) => Event::Done(pb::SessionOutcome { public_key: o.public_key }),
        SessionEvent::Failed(w) => Event::Failed(wire_error_to_pb(&w)),
    };
    pb::ServerFrame { event: Some(event) }
}

pub(crate) fn event_from_pb(frame: pb::ServerFrame) -> Result<SessionEvent> {
    use pb::server_frame::Event;
    match frame.event {
        Some(Event::Message(env)) => Ok(SessionEvent::Message(envelope_from_pb(env)?)),
        Some(Event::Done(o)) => Ok(SessionEvent::Done(SessionOutcome { public_key: o.public_key })),
        Some(Event::Failed(w)) => Ok(SessionEvent::Failed(wire_error_from_pb(w))),
        None => Err(malformed("session event: it is empty")),
    }
}

pub(crate) fn key_info_to_pb(info: KeyInfo) -> pb::KeyInfo {
    pb::KeyInfo {
        public_key: info.public_key,
        threshold: info.threshold.into(),
        parties: info.parties.into(),
        party_index: info.party_index.into(),
        state: match info.state {
            ShareState::Pending => pb::ShareState::Pending,
            ShareState::Active => pb::ShareState::Active,
            ShareState::Frozen => pb::ShareState::Frozen,
        } as i32,
        execution_id: info.execution_id.as_bytes().to_vec(),
        protocol: info.protocol,
        migrating: info.migrating.map(|e| e.as_bytes().to_vec()),
        policy: info.policy.map(|p| pb::PolicyReport {
            fingerprint: p.fingerprint,
            max_sats_per_tx: p.max_sats_per_tx,
            window_secs: p.window_secs,
            max_sats_per_window: p.max_sats_per_window,
            max_tx_per_window: p.max_tx_per_window,
            allowed_destinations: p.allowed_destinations,
            approvers: p.approvers,
            raw_digests: p.raw_digests,
            window_sats: p.window_sats,
            window_txs: p.window_txs,
        }),
    }
}

pub(crate) fn key_info_from_pb(info: pb::KeyInfo) -> Result<KeyInfo> {
    let state = match pb::ShareState::try_from(info.state) {
        Ok(pb::ShareState::Pending) => ShareState::Pending,
        Ok(pb::ShareState::Active) => ShareState::Active,
        Ok(pb::ShareState::Frozen) => ShareState::Frozen,
        _ => return Err(malformed("key info: unknown share state").with_context("state", info.state)),
    };
    Ok(KeyInfo {
        public_key: info.public_key,
        threshold: u16_from(info.threshold, "threshold")?,
        parties: u16_from(info.parties, "parties")?,
        party_index: u16_from(info.party_index, "party index")?,
        state,
        execution_id: eid_from_pb(&info.execution_id)?,
        protocol: info.protocol,
        migrating: info.migrating.as_deref().map(eid_from_pb).transpose()?,
        policy: info.policy.map(|p| PolicyReport {
            fingerprint: p.fingerprint,
            max_sats_per_tx: p.max_sats_per_tx,
            window_secs: p.window_secs,
            max_sats_per_window: p.max_sats_per_window,
            max_tx_per_window: p.max_tx_per_window,
            allowed_destinations: p.allowed_destinations,
            approvers: p.approvers,
            raw_digests: p.raw_digests,
            window_sats: p.window_sats,
            window_txs: p.window_txs,
        }),
    })
}

pub(crate) fn ecdh_request_to_pb(r: EcdhRequest) -> pb::EcdhRequest {
    pb::EcdhRequest { key: Some(key_to_pb(&r.key)), execution_id: r.execution_id.as_bytes().to_vec(), point: r.point }
}

pub(crate) fn ecdh_request_from_pb(r: pb::EcdhRequest) -> Result<EcdhRequest> {
    Ok(EcdhRequest { key: key_from_pb(r.key)?, execution_id: eid_from_pb(&r.execution_id)?, point: r.point })
}

pub(crate) fn ecdh_partial_to_pb(p: EcdhPartial) -> pb::EcdhPartial {
    pb::EcdhPartial { party_index: p.party_index.into(), point: p.point, proof: p.proof }
}

pub(crate) fn ecdh_partial_from_pb(p: pb::EcdhPartial) -> Result<EcdhPartial> {
    Ok(EcdhPartial { party_index: u16_from(p.party_index, "party index")?, point: p.point, proof: p.proof })
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

pub(crate) fn wire_error_to_pb(w: &WireError) -> pb::WireError {
    pb::WireError {
        kind: w.kind.as_str().to_string(),
        message: truncate(w.message.clone(), MAX_ERROR_MESSAGE),
        context: w.context.iter().map(|(k, v)| pb::ContextEntry { key: k.clone(), value: v.clone() }).collect(),
        blamed: w.blamed.iter().map(|&b| u32::from(b)).collect(),
    }
}

/// The kind named `name` (snake_case); a kind this build does not know reads as `Internal`, so
/// a newer cosigner never makes an older agent fail to parse its errors.
fn kind_from_str(name: &str) -> Option<ErrorKind> {
    ErrorKind::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}

pub(crate) fn wire_error_from_pb(w: pb::WireError) -> WireError {
    let (kind, message) = match kind_from_str(&w.kind) {
        Some(kind) => (kind, w.message),
        None => (ErrorKind::Internal, format!("{} (unknown error kind '{}')", w.message, w.kind.escape_default())),
    };
    WireError {
        kind,
        message,
        context: w.context.into_iter().map(|c| (c.key, c.value)).collect(),
        // Party indexes are 16 bits; a larger value cannot name a party, so it is dropped.
        blamed: w.blamed.into_iter().filter_map(|b| u16::try_from(b).ok()).collect(),
    }
}

/// The gRPC code for an error kind.
pub(crate) fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Corrupted => Code::InvalidArgument,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::PolicyDenied => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::Conflict | ErrorKind::ShareMismatch => Code::FailedPrecondition,
        ErrorKind::ProtocolAbort => Code::Aborted,
        ErrorKind::CosignerUnavailable => Code::Unavailable,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::Unsupported => Code::Unimplemented,
        _ => Code::Internal,
    }
}

/// A status with `code` carrying `error` in full.
pub(crate) fn status_with_code(code: Code, error: &Error) -> Status {
    let wire = wire_error_to_pb(&error.to_wire());
    let mut status = Status::new(code, wire.message.clone());
    status
        .metadata_mut()
        .insert_bin(ERROR_METADATA_KEY, MetadataValue::from_bytes(&prost::Message::encode_to_vec(&wire)));
    status
}

/// A status for `error`, its code chosen by kind.
pub(crate) fn status_of(error: &Error) -> Status {
    status_with_code(code_for(error.kind()), error)
}

/// The [`WireError`] a status carries, if it came from a cosigner of this API.
pub(crate) fn wire_error_of(status: &Status) -> Option<WireError> {
    let value = status.metadata().get_bin(ERROR_METADATA_KEY)?;
    let bytes = value.to_bytes().ok()?;
    let wire = <pb::WireError as prost::Message>::decode(bytes.as_ref()).ok()?;
    Some(wire_error_from_pb(wire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Conflict,
            ErrorKind::WrongSecret,
            ErrorKind::Corrupted,
            ErrorKind::ShareMismatch,
            ErrorKind::CosignerUnavailable,
            ErrorKind::Unauthorized,
            ErrorKind::PolicyDenied,
            ErrorKind::InvalidInput,
            ErrorKind::ProtocolAbort,
            ErrorKind::Timeout,
            ErrorKind::Unsupported,
            ErrorKind::Config,
            ErrorKind::Storage,
            ErrorKind::Internal,
            ErrorKind::Rejected,
            ErrorKind::ServiceUnavailable,
        ] {
            assert_eq!(kind_from_str(kind.as_str()), Some(kind));
        }
        assert_eq!(kind_from_str("no_such_kind"), None);
    }

    #[test]
    fn a_transaction_session_round_trips_and_its_fields_stay_its_own() {
        let params = SessionParams::SignTx {
            tx: vec![1, 2, 3],
            inputs: vec![
                InputToSign { index: 0, sighash_type: 0x41, tweak: None },
                InputToSign { index: 2, sighash_type: 0xc3, tweak: Some([7; 32]) },
            ],
            change: vec![ChangeClaim { vout: 1, tweak: [9; 32] }],
        };
        let key = KeyId::new(WalletId::new("w").unwrap(), 0);
        let r = SessionRequest { key, execution_id: ExecutionId::random(), parties: vec![0, 1], params };
        assert_eq!(session_request_from_pb(session_request_to_pb(&r)).unwrap(), r);
        let mut with_digest = session_request_to_pb(&r);
        with_digest.digest = Some(vec![0; 32]);
        assert!(session_request_from_pb(with_digest).is_err());
        let sign = SessionRequest { params: SessionParams::Sign { digest: [1; 32], tweak: None }, ..r.clone() };
        let mut with_tx = session_request_to_pb(&sign);
        with_tx.tx = Some(vec![1]);
        assert!(session_request_from_pb(with_tx).unwrap_err().message().contains("another session kind"));
        let mut short_tweak = session_request_to_pb(&r);
        short_tweak.inputs[1].tweak = Some(vec![7; 31]);
        assert!(session_request_from_pb(short_tweak).unwrap_err().message().contains("32 bytes"));
        let mut short_claim = session_request_to_pb(&r);
        short_claim.change[0].tweak = vec![9; 31];
        assert!(session_request_from_pb(short_claim).unwrap_err().message().contains("32 bytes"));
        let data = SessionRequest {
            params: SessionParams::SignData { data: vec![5; 100], tweak: Some([3; 32]) },
            ..r.clone()
        };
        assert_eq!(session_request_from_pb(session_request_to_pb(&data)).unwrap(), data);
        let mut data_on_sign = session_request_to_pb(&sign);
        data_on_sign.data = Some(vec![1]);
        assert!(session_request_from_pb(data_on_sign).unwrap_err().message().contains("another session kind"));
        let mut claim_on_sign = session_request_to_pb(&sign);
        claim_on_sign.change = session_request_to_pb(&r).change;
        assert!(session_request_from_pb(claim_on_sign).unwrap_err().message().contains("another session kind"));
    }

    #[test]
    fn a_migration_and_a_further_keygen_round_trip_and_aux_from_stays_the_keygens() {
        let key = KeyId::new(WalletId::new("w").unwrap(), 1);
        for params in [SessionParams::Migrate {}, SessionParams::Keygen { threshold: 2, total: 3, aux_from: 0 }] {
            let r = SessionRequest {
                key: key.clone(),
                execution_id: ExecutionId::random(),
                parties: vec![0, 1, 2],
                params,
            };
            assert_eq!(session_request_from_pb(session_request_to_pb(&r)).unwrap(), r);
        }
        let dkg = SessionRequest {
            key,
            execution_id: ExecutionId::random(),
            parties: vec![0, 1, 2],
            params: SessionParams::Dkg { threshold: 2, total: 3 },
        };
        let mut with_aux_from = session_request_to_pb(&dkg);
        with_aux_from.aux_from = Some(0);
        assert!(session_request_from_pb(with_aux_from).unwrap_err().message().contains("another session kind"));
        let mut keygen = session_request_to_pb(&dkg);
        keygen.kind = pb::SessionKind::Keygen as i32;
        assert!(session_request_from_pb(keygen).unwrap_err().message().contains("aux_from"));
    }

    #[test]
    fn status_carries_the_whole_error() {
        let e = Error::new(ErrorKind::ProtocolAbort, "bad proof").with_context("party", 2).with_blamed([2, 3]);
        let status = status_of(&e);
        assert_eq!(status.code(), Code::Aborted);
        let w = wire_error_of(&status).expect("wire error in metadata");
        assert_eq!(
            (w.kind, w.message.as_str(), w.blamed.as_slice()),
            (ErrorKind::ProtocolAbort, "bad proof", &[2, 3][..])
        );
        assert_eq!(w.context, vec![("party".to_string(), "2".to_string())]);
    }

    #[test]
    fn unknown_kind_reads_as_internal() {
        let w =
            wire_error_from_pb(pb::WireError { kind: "brand_new".into(), message: "m".into(), ..Default::default() });
        assert_eq!(w.kind, ErrorKind::Internal);
        assert!(w.message.contains("brand_new"));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = truncate("é".repeat(MAX_ERROR_MESSAGE), MAX_ERROR_MESSAGE);
        assert!(s.len() <= MAX_ERROR_MESSAGE + 3 && s.ends_with("..."));
    }

    #[test]
    fn malformed_values_are_refused() {
        assert_eq!(eid_from_pb(&[1; 5]).unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut env = envelope_to_pb(Envelope {
            execution_id: ExecutionId::from_bytes([7; 32]),
            stage: 1,
            from: 0,
            to: 1,
            broadcast: false,
            seq: 0,
            payload: vec![],
        });
        env.to = 70_000;
        assert_eq!(envelope_from_pb(env).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(key_from_pb(None).is_err());
        assert!(key_from_pb(Some(pb::KeyId { wallet: "bad wallet".into(), index: 0 })).is_err());
    }
}
