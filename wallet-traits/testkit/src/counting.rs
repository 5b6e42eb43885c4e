//! A scripted cosigner that counts what reaches it.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use futures::SinkExt;
use wallet_traits::{
    CosignerTransport, EcdhPartial, EcdhRequest, Envelope, ExecutionId, KeyId, KeyInfo, Result, SessionChannel,
    SessionRequest,
};

use crate::ScriptedCosigner;

/// A [`ScriptedCosigner`] that counts the calls (all but `health`) and the session envelopes
/// that reach it: what shows a refused request never got to the service.
#[derive(Debug, Default)]
pub struct CountingCosigner {
    inner: ScriptedCosigner,
    calls: AtomicUsize,
    envelopes: Arc<AtomicUsize>,
}

impl CountingCosigner {
    /// Calls that reached it.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Envelopes sessions delivered to it.
    pub fn envelopes(&self) -> usize {
        self.envelopes.load(Ordering::SeqCst)
    }
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl CosignerTransport for CountingCosigner {
    fn endpoint(&self) -> &str {
        "counting"
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        self.hit();
        self.inner.key_info(key).await
    }
    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        self.hit();
        let SessionChannel { outgoing, incoming } = self.inner.open_session(request).await?;
        let count = self.envelopes.clone();
        let counted = outgoing.with(move |env: Envelope| {
            count.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok::<_, wallet_traits::Error>(env))
        });
        Ok(SessionChannel::new(counted, incoming))
    }
    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        self.hit();
        self.inner.partial_ecdh(request).await
    }
    async fn commit(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.hit();
        self.inner.commit(key, eid).await
    }
    async fn rollback(&self, key: &KeyId, eid: &ExecutionId) -> Result<()> {
        self.hit();
        self.inner.rollback(key, eid).await
    }
}
