#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, OnceLock},
};

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use wallet_traits::{
    BoxFuture, CosignerTransport, EcdhPartial, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, KeyId, KeyInfo,
    Options, Result, SessionChannel, SessionEvent, SessionPeer, SessionRequest, TransportFactory, WireError,
};

/// The URL scheme: `local://NAME` names a cosigner registered in this process.
pub const LOCAL_SCHEME: &str = "local";

wallet_traits::inventory::submit! { TransportFactory::new(LOCAL_SCHEME, LocalTransport::from_url) }

/// Adds this crate's factories to `plugins`: for a program that installs its plugins explicitly
/// ([`wallet_traits::Plugins::new`]) instead of taking every one `inventory` collected.
pub fn install(plugins: wallet_traits::Plugins) -> wallet_traits::Plugins {
    static F: TransportFactory = TransportFactory::new(LOCAL_SCHEME, LocalTransport::from_url);
    plugins.with_transport(&F)
}

type Services = Arc<Mutex<BTreeMap<String, Arc<dyn CosignerTransport>>>>;

/// In-process cosigners by name. A value, so a program or a test can keep its cosigners apart
/// from everyone else's; `local://NAME` URLs (the registry's factory, which cannot carry a value)
/// resolve in [`LocalHub::global`].
#[derive(Clone, Default)]
pub struct LocalHub(Services);

impl std::fmt::Debug for LocalHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LocalHub").field(&self.0.lock().map(|m| m.len()).unwrap_or_default()).finish()
    }
}

impl LocalHub {
    /// An empty hub of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's hub, where `local://NAME` URLs are looked up.
    pub fn global() -> &'static LocalHub {
        static HUB: OnceLock<LocalHub> = OnceLock::new();
        HUB.get_or_init(LocalHub::new)
    }

    /// Makes `service` reachable under `name`. Replaces an earlier registration of the name.
    pub fn register(&self, name: &str, service: Arc<dyn CosignerTransport>) {
        self.0.lock().expect("local hub lock").insert(name.to_string(), service);
    }

    /// Removes `name`; later calls fail as if the cosigner were down.
    pub fn unregister(&self, name: &str) {
        self.0.lock().expect("local hub lock").remove(name);
    }

    /// A transport to the cosigner registered here as `name` (now or later).
    pub fn transport(&self, name: &str) -> LocalTransport {
        LocalTransport { endpoint: format!("{LOCAL_SCHEME}://{name}"), name: name.to_string(), hub: self.clone() }
    }

    fn get(&self, name: &str) -> Option<Arc<dyn CosignerTransport>> {
        self.0.lock().expect("local hub lock").get(name).cloned()
    }
}

/// Makes `service` reachable as `local://{name}` in [`LocalHub::global`].
pub fn register_local_cosigner(name: &str, service: Arc<dyn CosignerTransport>) {
    LocalHub::global().register(name, service);
}

/// Removes `local://{name}` from [`LocalHub::global`].
pub fn unregister_local_cosigner(name: &str) {
    LocalHub::global().unregister(name);
}

/// A client of an in-process cosigner with the semantics of a network transport: every request,
/// response, envelope and error is serialized to CBOR bytes and parsed again on the other side,
/// so nothing relies on memory shared between parties.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    endpoint: String,
    name: String,
    hub: LocalHub,
}

impl LocalTransport {
    /// A transport to `local://{name}` in [`LocalHub::global`].
    pub fn new(name: &str) -> Self {
        LocalHub::global().transport(name)
    }

    /// Factory for the registry.
    pub fn from_url(url: String, _options: Options) -> BoxFuture<'static, Result<Arc<dyn CosignerTransport>>> {
        Box::pin(async move {
            let name = url
                .split_once("://")
                .map(|(_, n)| n.trim_end_matches('/'))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    Error::new(ErrorKind::Config, "a local endpoint looks like local://NAME").with_context("url", &url)
                })?;
            Ok(Arc::new(LocalTransport::new(name)) as Arc<dyn CosignerTransport>)
        })
    }

    fn target(&self) -> Result<Arc<dyn CosignerTransport>> {
        self.hub.get(&self.name).ok_or_else(|| {
            Error::new(ErrorKind::CosignerUnavailable, "no in-process cosigner is registered under this name")
                .with_context("endpoint", &self.endpoint)
        })
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| Error::new(ErrorKind::Internal, format!("encode: {e}")))?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    ciborium::from_reader(b).map_err(|_| Error::new(ErrorKind::Corrupted, "a local transport message does not parse"))
}

/// Carries a value across the "wire".
fn wire<T: Serialize + DeserializeOwned>(v: &T) -> Result<T> {
    decode(&encode(v)?)
}

/// Carries a call's result back, errors included (as [`WireError`]).
fn wire_result<T: Serialize + DeserializeOwned>(r: Result<T>) -> Result<T> {
    let r: std::result::Result<T, WireError> = r.map_err(|e| e.to_wire());
    wire(&r)?.map_err(Error::from)
}

#[async_trait]
impl CosignerTransport for LocalTransport {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn health(&self) -> Result<()> {
        let t = self.target()?;
        wire_result(t.health().await)
    }

    async fn key_info(&self, key: &KeyId) -> Result<Option<KeyInfo>> {
        let t = self.target()?;
        wire_result(t.key_info(&wire(key)?).await)
    }

    async fn open_session(&self, request: SessionRequest) -> Result<SessionChannel> {
        let t = self.target()?;
        // The request's shape is checked on the receiving side, as every server does.
        let request = wire(&request)?;
        let opened = match request.check() {
            Ok(()) => t.open_session(request).await,
            Err(e) => Err(e),
        };
        let remote = match opened {
            Ok(channel) => channel,
            Err(e) => return Err(wire(&e.to_wire())?.into()),
        };
        // Both directions through bounded queues, as over a network (wallet_traits::SESSION_CAPACITY).
        let (channel, peer) = SessionChannel::bounded();
        let (SessionPeer { mut inbound, mut events }, SessionChannel { mut outgoing, mut incoming }) = (peer, remote);
        // Agent -> cosigner: as bytes; the agent dropping or closing its sink closes the cosigner's inbox.
        tokio::spawn(async move {
            while let Some(env) = inbound.next().await {
                let Ok(bytes) = encode(&env) else { break };
                let Ok(env) = decode::<Envelope>(&bytes) else { break };
                if outgoing.send(env).await.is_err() {
                    break;
                }
            }
            let _ = outgoing.close().await;
        });
        // Cosigner -> agent.
        tokio::spawn(async move {
            while let Some(ev) = incoming.next().await {
                let Ok(bytes) = encode(&ev) else { break };
                let Ok(ev) = decode::<SessionEvent>(&bytes) else { break };
                if events.send(ev).await.is_err() {
                    break;
                }
            }
        });
        Ok(channel)
    }

    async fn partial_ecdh(&self, request: EcdhRequest) -> Result<EcdhPartial> {
        let t = self.target()?;
        wire_result(t.partial_ecdh(wire(&request)?).await)
    }

    async fn commit(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let t = self.target()?;
        wire_result(t.commit(&wire(key)?, &wire(execution_id)?).await)
    }

    async fn rollback(&self, key: &KeyId, execution_id: &ExecutionId) -> Result<()> {
        let t = self.target()?;
        wire_result(t.rollback(&wire(key)?, &wire(execution_id)?).await)
    }

    async fn submit_approval(&self, approval: &[u8]) -> Result<bool> {
        let t = self.target()?;
        wire_result(t.submit_approval(approval).await)
    }
}
