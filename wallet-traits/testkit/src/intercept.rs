//! A transport wrapper for tests that must change or observe one kind of call on a real
//! cosigner (lie in an ECDH partial, tamper with relayed envelopes, count round trips) while
//! everything else passes through unchanged.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use wallet_traits::{
    CosignerTransport, EcdhPartial, EcdhRequest, ExecutionId, KeyId, KeyInfo, Result, SessionChannel, SessionRequest,
};

type PartialHook = Arc<dyn Fn(EcdhPartial) -> EcdhPartial + Send + Sync>;
type SessionHook = Arc<dyn Fn(SessionChannel) -> SessionChannel + Send + Sync>;

/// Passes every call to `inner`, except where a hook is set; counts partial ECDH calls and
/// opened sessions.
pub struct Intercept {
    inner: Arc<dyn CosignerTransport>,
    on_partial_ecdh: Option<PartialHook>,
    on_session: Option<SessionHook>,
    partial_ecdh_calls: Arc<AtomicUsize>,
    sessions: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Intercept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercept").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Intercept {
    /// A pass-through wrapper around `inner`.
    pub fn new(inner: Arc<dyn CosignerTransport>) -> Self {
        Self {
            inner,
            on_partial_ecdh: None,
            on_session: None,
            partial_ecdh_calls: Arc::default(),
            sessions: Arc::default(),
        }
    }

    /// Rewrites every ECDH partial the cosigner returns.
    #[must_use]
    pub fn on_partial_ecdh(mut self, f: impl Fn(EcdhPartial) -> EcdhPartial + Send + Sync + 'static) -> Self {
        self.on_partial_ecdh = Some(Arc::new(f));
        self
    }

    /// Replaces every opened session's channel (for example with one whose envelopes a task
    /// tampers with before forwarding them).
    #[must_use]
    pub fn on_session(mut self, f: impl Fn(SessionChannel) -> SessionChannel + Send + Sync + 'static) -> Self {
        self.on_session = Some(Arc::new(f));
        self
    }

    /// Shares the counter of opened sessions with `counter`.
    #[must_use]
    pub fn sessions_into(mut self, counter: Arc<AtomicUsize>) -> Self {
        self.sessions = counter;
        self
    }

    /// Shares the partial-ECDH call counter with `counter`.
    #[must_use]
    pub fn counting_into(mut self, counter: Arc<AtomicUsize>) -> Self {
        self.partial_ecdh_calls = counter;
        self
    }
}

#[async_trait]
impl CosignerTransport for Intercept {
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        self.inner.key_info(key).await
    }

    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        let channel = self.inner.open_session(request).await?;
        Ok(match &self.on_session {
            Some(f) => f(channel),
            None => channel,
        })
    }

    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        self.partial_ecdh_calls.fetch_add(1, Ordering::SeqCst);
        let partial = self.inner.partial_ecdh(request).await?;
        Ok(match &self.on_partial_ecdh {
            Some(f) => f(partial),
            None => partial,
        })
    }

    async fn commit(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.inner.commit(key, eid).await
    }

    async fn rollback(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.inner.rollback(key, eid).await
    }
}
