//! The transport conformance suite: every `CosignerTransport` (local, HTTP, gRPC, plugins) must
//! carry the same calls with the same semantics. It needs no engine: a [`ScriptedCosigner`]
//! answers on the server side, and the suite checks what arrives through the transport.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use wallet_traits::{
    CosignerTransport, EcdhPartial, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, KeyId, KeyInfo, Result,
    SessionChannel, SessionEvent, SessionOutcome, SessionParams, SessionPeer, SessionRequest, ShareState, WalletId,
};

use crate::SuiteReport;

/// The wallet the scripted cosigner knows.
pub const KNOWN_WALLET: &str = "conformance-wallet";
/// The stage that makes an echo session finish.
pub const FINISH_STAGE: u16 = 99;
/// The execution id the scripted cosigner accepts for commits.
pub const COMMIT_EID: [u8; 32] = [1; 32];

/// How a scripted session behaves, chosen by the first byte of the request's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Echo every envelope back (sender and recipient swapped); finish on [`FINISH_STAGE`].
    Echo = 0,
    /// Report `Failed(PolicyDenied)` at once.
    Fail = 1,
    /// Refuse to open (`NotFound`).
    Refuse = 2,
}

/// A cosigner that follows a script, for transport tests.
#[derive(Debug, Default)]
pub struct ScriptedCosigner {
    closed_sessions: Arc<AtomicUsize>,
}

impl ScriptedCosigner {
    /// A new scripted cosigner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sessions whose inbound side the agent closed.
    pub fn closed_sessions(&self) -> usize {
        self.closed_sessions.load(Ordering::SeqCst)
    }

    /// Its answer to `key_info` for the known wallet.
    pub fn known_info() -> KeyInfo {
        KeyInfo {
            public_key: vec![2; 33],
            threshold: 2,
            parties: 3,
            party_index: 1,
            state: ShareState::Active,
            execution_id: ExecutionId::from_bytes(COMMIT_EID),
            protocol: Some("cggmp24/0.7.0-alpha.3".into()),
            migrating: Some(ExecutionId::from_bytes([9; 32])),
            policy: Some(wallet_traits::PolicyReport {
                fingerprint: "0123456789abcdef".into(),
                max_sats_per_tx: Some(50_000),
                window_secs: 86_400,
                max_sats_per_window: None,
                max_tx_per_window: Some(500),
                allowed_destinations: Some(2),
                approvers: 1,
                raw_digests: false,
                window_sats: 12_345,
                window_txs: 3,
            }),
        }
    }
}

/// A session request that runs `script`.
pub fn scripted_request(script: Script) -> SessionRequest {
    let mut digest = [0u8; 32];
    digest[0] = script as u8;
    SessionRequest {
        key: known_key(),
        execution_id: ExecutionId::random(),
        parties: vec![0, 1],
        params: SessionParams::Sign { digest, tweak: None },
    }
}

/// Key 0 of the known wallet.
pub fn known_key() -> KeyId {
    KeyId::new(WalletId::new(KNOWN_WALLET).expect("valid id"), 0)
}

#[async_trait]
impl CosignerTransport for ScriptedCosigner {
    fn endpoint(&self) -> &str {
        "scripted"
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        Ok((key.wallet.as_str() == KNOWN_WALLET).then(Self::known_info))
    }

    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        let script = match request.params {
            SessionParams::Sign { digest, .. } => digest[0],
            _ => 0,
        };
        if script == Script::Refuse as u8 {
            return Err(Error::new(ErrorKind::NotFound, "scripted refusal").with_context("party", 1));
        }
        let (channel, SessionPeer { mut inbound, mut events }) = SessionChannel::bounded();
        let closed = self.closed_sessions.clone();
        tokio::spawn(async move {
            if script == Script::Fail as u8 {
                let e = Error::new(ErrorKind::PolicyDenied, "scripted failure").with_blamed([2]);
                let _ = events.send(SessionEvent::Failed(e.to_wire())).await;
                return;
            }
            while let Some(env) = inbound.next().await {
                if env.stage == FINISH_STAGE {
                    let _ = events.send(SessionEvent::Done(SessionOutcome { public_key: vec![3; 33] })).await;
                    return;
                }
                let echo = Envelope { from: env.to, to: env.from, ..env };
                let _ = events.send(SessionEvent::Message(echo)).await;
            }
            closed.fetch_add(1, Ordering::SeqCst);
        });
        Ok(channel)
    }

    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        let mut point = request.point;
        point.reverse();
        Ok(EcdhPartial { party_index: 1, point, proof: request.execution_id.as_bytes().to_vec() })
    }

    async fn commit(&self, _key: &KeyId, eid: &ExecutionId) -> Result<()> {
        if *eid.as_bytes() == COMMIT_EID {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::ShareMismatch, "scripted: another run"))
        }
    }

    async fn rollback(&self, _key: &KeyId, _eid: &ExecutionId) -> Result<()> {
        Ok(())
    }
}

fn envelope(eid: ExecutionId, stage: u16, seq: u64, len: usize) -> Envelope {
    Envelope {
        execution_id: eid,
        stage,
        from: 0,
        to: 1,
        broadcast: seq % 2 == 1,
        seq,
        payload: (0..len).map(|i| (i as u64 ^ seq) as u8).collect(),
    }
}

async fn next_event(ch: &mut SessionChannel) -> Option<SessionEvent> {
    tokio::time::timeout(Duration::from_secs(30), ch.incoming.next()).await.expect("an event within 30 s")
}

/// Runs an echo session of `count` envelopes of `len` bytes and checks every echo and the end.
async fn echo_session(client: &dyn CosignerTransport, count: u64, len: usize) {
    let req = scripted_request(Script::Echo);
    let eid = req.execution_id;
    let mut ch = client.open_session(req).await.expect("open an echo session");
    for seq in 0..count {
        let sent = envelope(eid, (seq % 3) as u16, seq, len);
        ch.outgoing.send(sent.clone()).await.expect("send");
        match next_event(&mut ch).await {
            Some(SessionEvent::Message(got)) => {
                assert_eq!((got.from, got.to), (1, 0), "echo comes from the cosigner");
                assert_eq!((got.stage, got.seq, got.broadcast), (sent.stage, sent.seq, sent.broadcast));
                assert_eq!(got.execution_id, eid);
                assert!(got.payload == sent.payload, "payload of {} bytes intact", sent.payload.len());
            }
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    ch.outgoing.send(envelope(eid, FINISH_STAGE, count, 0)).await.expect("send finish");
    match next_event(&mut ch).await {
        Some(SessionEvent::Done(o)) => assert_eq!(o.public_key, vec![3; 33]),
        other => panic!("expected Done, got {other:?}"),
    }
    assert!(next_event(&mut ch).await.is_none(), "nothing follows Done");
}

/// Each case of [`transport_suite`] on its own, for [`transport_tests!`](crate::transport_tests):
/// a client connected to `service` through the transport under test.
pub mod transport_cases {
    use std::time::Duration;

    use wallet_traits::{CosignerTransport, EcdhRequest, Error, ErrorKind, ExecutionId, KeyId, SessionEvent, WalletId};

    use super::{echo_session, next_event};
    use crate::{known_key, scripted_request, Script, ScriptedCosigner, COMMIT_EID};

    /// The transport suite's case `health`.
    pub async fn health(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        client.health().await.expect("health");
    }

    /// The transport suite's case `key_info`.
    pub async fn key_info(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        assert_eq!(client.key_info(&known_key()).await.unwrap(), Some(ScriptedCosigner::known_info()));
        let other = KeyId::new(WalletId::new("unknown-wallet").unwrap(), 0);
        assert_eq!(client.key_info(&other).await.unwrap(), None);
    }

    /// The transport suite's case `errors_keep_their_kind`.
    pub async fn errors_keep_their_kind(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        let e = client.open_session(scripted_request(Script::Refuse)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let e = client.commit(&known_key(), &ExecutionId::random()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ShareMismatch, "{e}");
    }

    /// The transport suite's case `commit_and_rollback`.
    pub async fn commit_and_rollback(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        client.commit(&known_key(), &ExecutionId::from_bytes(COMMIT_EID)).await.expect("commit");
        client.rollback(&known_key(), &ExecutionId::random()).await.expect("rollback");
    }

    /// The transport suite's case `partial_ecdh`.
    pub async fn partial_ecdh(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        let eid = ExecutionId::random();
        let point: Vec<u8> = (0..33).collect();
        let p = client
            .partial_ecdh(EcdhRequest { key: known_key(), execution_id: eid, point: point.clone() })
            .await
            .unwrap();
        let mut reversed = point;
        reversed.reverse();
        assert_eq!((p.party_index, p.point, p.proof), (1, reversed, eid.as_bytes().to_vec()));
    }

    /// The transport suite's case `session_messages_in_order_then_done`.
    pub async fn session_messages_in_order_then_done(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        echo_session(client, 20, 1024).await
    }

    /// The transport suite's case `session_large_and_empty_payloads`.
    pub async fn session_large_and_empty_payloads(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        echo_session(client, 1, 0).await;
        echo_session(client, 2, 512 * 1024).await;
    }

    /// The transport suite's case `session_failure_keeps_kind_and_blame`.
    pub async fn session_failure_keeps_kind_and_blame(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        let mut ch = client.open_session(scripted_request(Script::Fail)).await.expect("open");
        match next_event(&mut ch).await {
            Some(SessionEvent::Failed(w)) => {
                let e: Error = w.into();
                assert_eq!(e.kind(), ErrorKind::PolicyDenied);
                assert_eq!(e.blamed(), &[2]);
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(next_event(&mut ch).await.is_none(), "nothing follows Failed");
    }

    /// The transport suite's case `agent_closing_ends_the_session`.
    pub async fn agent_closing_ends_the_session(client: &dyn CosignerTransport, service: &ScriptedCosigner) {
        let before = service.closed_sessions();
        let ch = client.open_session(scripted_request(Script::Echo)).await.expect("open");
        drop(ch);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while service.closed_sessions() == before {
            assert!(tokio::time::Instant::now() < deadline, "the cosigner never saw the session close");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The transport suite's case `sixteen_concurrent_sessions`.
    pub async fn sixteen_concurrent_sessions(client: &dyn CosignerTransport, _service: &ScriptedCosigner) {
        let runs = (0..16).map(|_| echo_session(client, 5, 4096));
        futures::future::join_all(runs).await;
    }
}

/// Checks a transport end to end. `connect` receives the server-side service and returns a
/// client connected to it through the transport under test.
pub async fn transport_suite<F, Fut>(connect: F) -> SuiteReport
where
    F: FnOnce(Arc<dyn CosignerTransport>) -> Fut,
    Fut: Future<Output = Arc<dyn CosignerTransport>>,
{
    let service = Arc::new(ScriptedCosigner::new());
    let client = connect(service.clone()).await;
    let (client, service) = (client.as_ref(), service.as_ref());
    let mut r = SuiteReport::default();
    r.run("health", transport_cases::health(client, service)).await;
    r.run("key_info", transport_cases::key_info(client, service)).await;
    r.run("errors_keep_their_kind", transport_cases::errors_keep_their_kind(client, service)).await;
    r.run("commit_and_rollback", transport_cases::commit_and_rollback(client, service)).await;
    r.run("partial_ecdh", transport_cases::partial_ecdh(client, service)).await;
    r.run("session_messages_in_order_then_done", transport_cases::session_messages_in_order_then_done(client, service))
        .await;
    r.run("session_large_and_empty_payloads", transport_cases::session_large_and_empty_payloads(client, service)).await;
    r.run(
        "session_failure_keeps_kind_and_blame",
        transport_cases::session_failure_keeps_kind_and_blame(client, service),
    )
    .await;
    r.run("agent_closing_ends_the_session", transport_cases::agent_closing_ends_the_session(client, service)).await;
    r.run("sixteen_concurrent_sessions", transport_cases::sixteen_concurrent_sessions(client, service)).await;
    r
}

/// Expands to one `#[tokio::test]` per transport conformance case (the names of
/// [`transport_cases`]), each against a fresh [`ScriptedCosigner`] that `$make` (an async
/// function taking it as `Arc<dyn CosignerTransport>`) serves and connects to, returning a
/// [`TransportFixture`].
#[macro_export]
macro_rules! transport_tests {
    ($make:path) => {
        $crate::transport_tests!(@cases $make; health, key_info, errors_keep_their_kind, commit_and_rollback, partial_ecdh, session_messages_in_order_then_done, session_large_and_empty_payloads, session_failure_keeps_kind_and_blame, agent_closing_ends_the_session, sixteen_concurrent_sessions);
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $case() {
                let service = ::std::sync::Arc::new($crate::ScriptedCosigner::new());
                let fixture: $crate::TransportFixture = $make(service.clone()).await;
                $crate::transport_cases::$case(fixture.subject.as_ref(), &service).await;
                drop(fixture);
            }
        )*
    };
}

/// A client for one [`transport_tests!`](crate::transport_tests) case.
pub type TransportFixture = crate::Fixture<Arc<dyn CosignerTransport>>;
