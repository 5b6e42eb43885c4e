//! The identity methods of `serve` (`wallet_brc100::identity::Identity`): certificates kept beside
//! the books, issuance over BRC-103, discovery on an overlay.

use std::sync::Arc;

use anyhow::Result;
use wallet_auth::AuthClient;
use wallet_brc100::{
    actions::Actions,
    identity::{Discovery, Identity, TrustSettings},
    KeyMethods,
};
use wallet_engine::WalletConfig;
use wallet_service_overlay::OverlayLookup;

/// The identity methods over `keys`, keeping certificates in the books' store when it keeps them,
/// acquiring them by issuance over BRC-103, and discovering on the overlay of `MPC_LOOKUP_URL` when it is set.
/// `say` prints which overlay discovery uses.
pub(crate) fn open(
    keys: Arc<KeyMethods>,
    books: Option<&Arc<Actions>>,
    cfg: &WalletConfig,
    say: fn(&str),
) -> Result<Arc<Identity>> {
    let store = books.and_then(|b| b.output_store().clone().certificates());
    // Issuance reaches certifiers as this wallet, over BRC-103.
    let channel = Arc::new(AuthClient::new(keys.clone()));
    let mut identity = Identity::new(keys, store).with_certifier_channel(channel);
    if let Some(discovery) = discovery(cfg, say)? {
        identity = identity.with_discovery(discovery);
    }
    Ok(Arc::new(identity))
}

/// The trust settings of discovery (MPC_TRUSTED_CERTIFIERS, MPC_TRUST_LEVEL); an invalid one fails
/// naming its variable.
pub(crate) fn trust_settings(cfg: &WalletConfig) -> wallet_traits::Result<TrustSettings> {
    TrustSettings::parse(cfg.trusted_certifiers.as_deref(), cfg.trust_level)
}

/// Discovery as `cfg` asks for it: none without `MPC_LOOKUP_URL`. The trust settings are checked
/// either way, so a mistake in them is said at start, naming its variable.
fn discovery(cfg: &WalletConfig, say: fn(&str)) -> Result<Option<Arc<Discovery>>> {
    let trust = trust_settings(cfg)?;
    let Some(url) = cfg.lookup_url.as_deref() else { return Ok(None) };
    let lookup = OverlayLookup::new(url)?;
    say(&format!(
        "discovery: overlay {} ({} trusted certifiers, trust level {})",
        lookup.url(),
        trust.trusted_certifiers.len(),
        trust.trust_level
    ));
    Ok(Some(Discovery::new(Arc::new(lookup), trust)))
}
