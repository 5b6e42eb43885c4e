//! The demo's embedded default as the benchmarks set it up (each bench declares `embedded` and
//! `fleet` beside this module).

use std::path::Path;

use wallet_engine::{ShareSecret, WalletBuilder};

use crate::{
    embedded,
    fleet::{agent_builder, prefill, StoreSpec, SECRET},
};

/// Builders for one wallet in `dir` with two in-process cosigners behind `local://` and SQLite
/// files: the first build runs DKG, later ones restore. The prime pools are filled ahead with the
/// INSECURE fixture primes, so DKG excludes prime generation.
pub(crate) fn embedded_wallet(runtime: &tokio::runtime::Runtime, dir: &Path) -> impl Fn() -> WalletBuilder {
    let agent_store = StoreSpec::sqlite(&dir.join("agent.db"));
    prefill(&agent_store, "agent", 1);
    for i in 1..=2 {
        prefill(&StoreSpec::sqlite(&dir.join(format!("cosigner-{i}.db"))), "cosigner", 1);
    }
    let (agent, cosigners) =
        runtime.block_on(embedded::start(dir, &ShareSecret::new(SECRET).unwrap(), true, None)).unwrap();
    move || cosigners.iter().fold(agent_builder(&agent_store, agent.clone()), |b, t| b.cosigner(t.clone()))
}
