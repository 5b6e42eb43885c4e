#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod certificates;
mod chain;
mod crypto;
mod error;
mod ids;
mod outputs;
mod policy;
mod record;
mod registry;
mod store;
mod transport;

pub use certificates::{CertificateQuery, CertificateRecord, CertificateStore};
pub use chain::{
    Broadcast, Broadcaster, BroadcasterBuildFn, BroadcasterFactory, ChainServices, ChainTracker, ChainTrackerBuildFn,
    ChainTrackerFactory, ScriptUtxo, ServiceConfig, TxOnChain,
};
pub use crypto::{EcdsaSignature, KeyDeriver, LinkageProof, PublicKey, Signer};
pub use error::{Error, ErrorKind, Result, WireError};
pub use ids::{hex_32, ExecutionId, KeyId, PartyIndex, WalletId, AGENT_INDEX};
pub use outputs::{
    parse_txid, ActionQuery, ActionRecord, ActionStatus, Books, Derivation, Imported, Outpoint, OutputErrors,
    OutputQuery, OutputRecord, OutputStore, OutputStoreBuildFn, OutputStoreFactory, Page, QueryMode, Recorded,
    SignedAction,
};
pub use policy::{Approval, AuditHead, AuditRecord, Ledger, LedgerEntry, PolicyStore, Ruling};
pub use record::{ShareMeta, ShareState, StoredShare};
pub use registry::{
    check_store, connect_transport, is_credential_name, open_store, options, redact_url, scheme_of, store_registry,
    transport_registry, BoxFuture, Options, Plugins, Registry, ShareStoreFactory, StoreBuildFn, StoreCheckFn,
    StoreOptions, TransportBuildFn, TransportFactory,
};
pub use store::{ContractErrors, DerivationCacheStore, PrimePoolStore, ShareStore};
pub use transport::{
    max_inputs_per_session, session_queue, ChangeClaim, CosignerTransport, EcdhPartial, EcdhRequest, Envelope,
    EnvelopeSink, EventStream, InputToSign, KeyInfo, PolicyReport, SessionChannel, SessionEvent, SessionKind,
    SessionOutcome, SessionParams, SessionPeer, SessionRequest, ENVELOPES_PER_SIGNING, MAX_CHANGE_CLAIMS, MAX_PARTIES,
    MAX_SIGN_DATA, SESSION_CAPACITY,
};

/// Re-exported so plugins submit factories with the same `inventory` version.
pub use inventory;

/// Version of the sealed record format written by this release.
pub const SHARE_FORMAT_VERSION: u16 = 1;
