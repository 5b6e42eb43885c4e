//! The identity methods of `serve` (`wallet_brc100::identity::Identity`): certificates kept beside
//! the books, issuance over BRC-103, discovery on an overlay.

use std::sync::Arc;

use wallet_brc100::{actions::Actions, identity::Identity, KeyMethods};

/// The identity methods over `keys`, keeping certificates in the books' store when it keeps them.
pub(crate) fn open(keys: Arc<KeyMethods>, books: Option<&Arc<Actions>>) -> Arc<Identity> {
    let store = books.and_then(|b| b.output_store().clone().certificates());
    Arc::new(Identity::new(keys, store))
}
