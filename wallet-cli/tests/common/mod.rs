//! Helpers shared by the CLI's end-to-end tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use wallet_backend_sqlite::SqliteShareStore;
use wallet_traits::{KeyId, ShareStore, StoredShare, WalletId};

/// The rest of the first stdout line that starts with `prefix`.
pub fn line<'a>(stdout: &'a str, prefix: &str) -> Option<&'a str> {
    stdout.lines().find_map(|l| l.strip_prefix(prefix))
}

/// Key 0 of `wallet` as stored in the agent's and both cosigners' SQLite files in `dir`.
pub async fn records(dir: &Path, wallet: &str) -> Vec<Option<StoredShare>> {
    let key = KeyId::new(WalletId::new(wallet).unwrap(), 0);
    let mut out = vec![];
    for f in ["agent.db", "cosigner-1.db", "cosigner-2.db"] {
        let s = SqliteShareStore::open(dir.join(f)).await.unwrap();
        out.push(s.load_share(&key).await.unwrap());
        s.close().await;
    }
    out
}
