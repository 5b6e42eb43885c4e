//! The embedded default: two in-process cosigners (local://), each with its own SQLite file
//! beside the agent's. All shares then sit on one machine: for trying the wallet and tests.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result};
use wallet_backend_sqlite::SqliteShareStore;
use wallet_engine::{CosignerService, Keyring, Sealer, ShareSecret, SpendingPolicy, StorePrimePool};
use wallet_policy::Policy;
use wallet_traits::{CosignerTransport, ShareStore};
use wallet_transport_local::LocalHub;

pub(crate) const WARNING: &str = "warning: embedded default: the agent and both cosigners run in this process and all \
     shares sit on this machine. For trying the wallet and for tests, not for production.";

/// The agent's keyring and transports to two local cosigners whose files live in `dir`, making
/// multiexponentiation tables as the agent does (`multiexp_tables`) and enforcing `policy`
/// (MPC_POLICY_FILE) when given, each counting in its own file.
pub(crate) async fn start(
    dir: &Path,
    secret: &ShareSecret,
    multiexp_tables: bool,
    policy: Option<&Policy>,
) -> Result<(Keyring, Vec<Arc<dyn CosignerTransport>>)> {
    // Party keys seal the messages between parties; in-process they can be fresh every run.
    let mut keyrings = Keyring::generate_group(3).into_iter();
    let agent = keyrings.next().expect("three keyrings");
    let sealer = Sealer::new(secret.clone(), Default::default());
    // A hub of its own: nothing else in the process can reach these cosigners by name.
    let hub = LocalHub::new();
    let mut transports: Vec<Arc<dyn CosignerTransport>> = Vec::new();
    for (i, keyring) in (1..=2u16).zip(keyrings) {
        let path = dir.join(format!("cosigner-{i}.db"));
        let store: Arc<dyn ShareStore> =
            Arc::new(SqliteShareStore::open(&path).await.with_context(|| format!("opening {}", path.display()))?);
        let primes = insecure_test_primes(i)
            .unwrap_or_else(|| Arc::new(StorePrimePool::new(store.clone(), sealer.clone(), "cosigner")));
        let spending = policy.map(|p| SpendingPolicy::new(p.clone(), store.clone(), i)).transpose()?;
        let mut service =
            CosignerService::new(keyring, store, sealer.clone(), primes)?.with_multiexp_tables(multiexp_tables);
        if let Some(spending) = spending {
            service = service.with_spending_policy(spending);
        }
        let name = format!("embedded-cosigner-{i}");
        hub.register(&name, Arc::new(service));
        transports.push(Arc::new(hub.transport(&name)));
    }
    Ok((agent, transports))
}

/// Test only (feature `fault-injection`): with MPC_INSECURE_TEST_PRIMES=1 party `party` of this
/// process takes the engine's INSECURE fixture primes instead of pooled or generated ones, so the
/// test suite's examples and interop runs do not spend minutes on primes. Says so loudly.
#[cfg(feature = "fault-injection")]
pub(crate) fn insecure_test_primes(party: u16) -> Option<std::sync::Arc<dyn wallet_engine::PrimeSource>> {
    if std::env::var("MPC_INSECURE_TEST_PRIMES").ok().as_deref() != Some("1") {
        return None;
    }
    eprintln!("warning: MPC_INSECURE_TEST_PRIMES: party {party} uses PUBLIC fixture primes; its keys are not secret");
    Some(std::sync::Arc::new(wallet_engine::InsecureTestPrimesOfParty(party)))
}

/// Without the test feature there are no fixture primes.
#[cfg(not(feature = "fault-injection"))]
pub(crate) fn insecure_test_primes(_party: u16) -> Option<std::sync::Arc<dyn wallet_engine::PrimeSource>> {
    None
}
