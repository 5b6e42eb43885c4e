#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, OnceLock},
};

use async_trait::async_trait;
use futures::{channel::mpsc, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use wallet_traits::{
    BoxFuture, CosignerTransport, EcdhPartial, EcdhRequest, Envelope, Error, ErrorKind, ExecutionId, KeyId, KeyInfo,
    Options, Result, SessionChannel, SessionEvent, SessionRequest, TransportFactory, WireError,
};

/// The URL scheme: `local://NAME` names a cosigner registered in this process.
pub const LOCAL_SCHEME: &str = "local";

wallet_traits::inventory::submit! { TransportFactory::new(LOCAL_SCHEME, LocalTransport::from_url) }

fn hub() -> &'static Mutex<BTreeMap<String, Arc<dyn CosignerTransport>>> {
    static HUB: OnceLock<Mutex<BTreeMap<String, Arc<dyn CosignerTransport>>>> = OnceLock::new();
    HUB.get_or_init(Default::default)
}

/// Makes `service` reachable as `local://{name}`. Replaces an earlier registration of the name.
pub fn register_local_cosigner(name: &str, service: Arc<dyn CosignerTransport>) {
    hub().lock().expect("local hub lock").insert(name.to_string(), service);
}

/// Removes `local://{name}`; later connections fail as if the cosigner were down.
pub fn unregister_local_cosigner(name: &str) {
    hub().lock().expect("local hub lock").remove(name);
}

/// A client of an in-process cosigner with the semantics of a network transport: every request,
/// response, envelope and error is serialized to CBOR bytes and parsed again on the other side,
/// so nothing relies on memory shared between parties.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    endpoint: String,
    name: String,
}

impl LocalTransport {
    /// A transport to `local://{name}`.
    pub fn new(name: &str) -> Self {
        Self { endpoint: format!("{LOCAL_SCHEME}://{name}"), name: name.to_string() }
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
        hub().lock().expect("local hub lock").get(&self.name).cloned().ok_or_else(|| {
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
        let remote = match t.open_session(wire(&request)?).await {
            Ok(channel) => channel,
            Err(e) => return Err(wire(&e.to_wire())?.into()),
        };
        let (to_tx, mut to_rx) = mpsc::unbounded::<Envelope>();
        let (from_tx, from_rx) = mpsc::unbounded::<SessionEvent>();
        let SessionChannel { outgoing, mut incoming } = remote;
        // Agent -> cosigner: as bytes; dropping the agent's sender closes the cosigner's inbox.
        tokio::spawn(async move {
            while let Some(env) = to_rx.next().await {
                let Ok(bytes) = encode(&env) else { break };
                let Ok(env) = decode::<Envelope>(&bytes) else { break };
                if outgoing.unbounded_send(env).is_err() {
                    break;
                }
            }
        });
        // Cosigner -> agent.
        tokio::spawn(async move {
            while let Some(ev) = incoming.next().await {
                let Ok(bytes) = encode(&ev) else { break };
                let Ok(ev) = decode::<SessionEvent>(&bytes) else { break };
                if from_tx.unbounded_send(ev).is_err() {
                    break;
                }
            }
        });
        Ok(SessionChannel { outgoing: to_tx, incoming: from_rx })
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
}
