//! Which chain services the wallet uses: a broadcaster and a chain tracker, each a plugin found
//! by name, configured by URL and an optional API key.

use std::sync::Arc;

use wallet_traits::{Broadcaster, ChainTracker, Plugins, Result, ServiceConfig};

use super::Network;

/// The broadcaster's and chain tracker's configuration.
#[derive(Clone, Default)]
pub struct ChainConfig {
    /// MPC_BROADCASTER: the broadcaster plugin's name; `None` for the default, `arc`.
    pub broadcaster: Option<String>,
    /// MPC_ARC_URL: the broadcaster's URL (default: the plugin's for the network).
    pub arc_url: Option<String>,
    /// MPC_ARC_API_KEY, sent as `Authorization: Bearer`.
    pub arc_api_key: Option<String>,
    /// MPC_CHAIN_TRACKER: the chain tracker plugin's name; `None` for the default, `whatsonchain`.
    pub chain_tracker: Option<String>,
    /// MPC_CHAIN_TRACKER_URL (default: the plugin's for the network).
    pub chain_tracker_url: Option<String>,
    /// MPC_CHAIN_TRACKER_API_KEY.
    pub chain_tracker_api_key: Option<String>,
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("broadcaster", &self.broadcaster)
            .field("arc_url", &self.arc_url.as_deref().map(wallet_traits::redact_url))
            .field("chain_tracker", &self.chain_tracker)
            .field("chain_tracker_url", &self.chain_tracker_url.as_deref().map(wallet_traits::redact_url))
            .finish_non_exhaustive()
    }
}

fn network_name(network: Network) -> &'static str {
    match network {
        Network::Mainnet => "main",
        Network::Testnet => "test",
    }
}

/// The service named `name`, else `default` when its URL is set or its plugin is installed;
/// `None` when nothing was asked for and the default is not installed. A service asked for by
/// name or URL that is not installed is an error naming the known ones.
fn resolve<T: ?Sized>(
    name: Option<&str>,
    default: &str,
    url_set: bool,
    installed: &[&str],
    build: impl FnOnce(&str) -> Result<Arc<T>>,
) -> Result<Option<Arc<T>>> {
    match name {
        Some(name) => build(name).map(Some),
        None if url_set || installed.contains(&default) => build(default).map(Some),
        None => Ok(None),
    }
}

fn service(url: &Option<String>, api_key: &Option<String>, network: Network) -> ServiceConfig {
    ServiceConfig { url: url.clone(), network: network_name(network), api_key: api_key.clone() }
}

impl ChainConfig {
    /// The broadcaster, if one is configured or the default (`arc`) is installed.
    pub fn broadcaster(&self, plugins: &Plugins, network: Network) -> Result<Option<Arc<dyn Broadcaster>>> {
        let config = service(&self.arc_url, &self.arc_api_key, network);
        let installed = plugins.broadcasters().schemes();
        resolve(self.broadcaster.as_deref(), "arc", self.arc_url.is_some(), &installed, |n| {
            plugins.broadcaster(n, config)
        })
    }

    /// The chain tracker, if one is configured or the default (`whatsonchain`) is installed.
    pub fn chain_tracker(&self, plugins: &Plugins, network: Network) -> Result<Option<Arc<dyn ChainTracker>>> {
        let config = service(&self.chain_tracker_url, &self.chain_tracker_api_key, network);
        let installed = plugins.chain_trackers().schemes();
        let url_set = self.chain_tracker_url.is_some();
        resolve(self.chain_tracker.as_deref(), "whatsonchain", url_set, &installed, |n| {
            plugins.chain_tracker(n, config)
        })
    }
}

#[cfg(test)]
mod tests {
    use wallet_traits::{Broadcast, BroadcasterFactory, ErrorKind};

    use super::*;

    #[derive(Debug)]
    struct Fixed(Option<String>);

    #[async_trait::async_trait]
    impl Broadcaster for Fixed {
        async fn broadcast(&self, _: &[u8]) -> Result<Broadcast> {
            Ok(Broadcast { txid: self.0.clone().unwrap_or_default(), status: "OK".into(), detail: None })
        }
    }

    static ARC: BroadcasterFactory = BroadcasterFactory { name: "arc", build: |c| Ok(Arc::new(Fixed(c.url))) };

    #[tokio::test]
    async fn services_resolve_by_name_and_a_missing_one_is_an_error_only_when_asked_for() {
        let none = Plugins::new();
        let with_arc = Plugins::new().with_broadcaster(&ARC);
        // Nothing asked for and nothing installed: no broadcaster, no error.
        assert!(ChainConfig::default().broadcaster(&none, Network::Mainnet).unwrap().is_none());
        // The default is installed: it is built, with the configured URL.
        let cfg = ChainConfig { arc_url: Some("http://127.0.0.1:1".into()), ..Default::default() };
        let b = cfg.broadcaster(&with_arc, Network::Testnet).unwrap().unwrap();
        assert_eq!(b.broadcast(&[]).await.unwrap().txid, "http://127.0.0.1:1");
        // A URL or a name without its plugin fails, naming what is known.
        assert_eq!(cfg.broadcaster(&none, Network::Mainnet).unwrap_err().kind(), ErrorKind::Config);
        let named = ChainConfig { broadcaster: Some("teranode".into()), ..Default::default() };
        let e = named.broadcaster(&with_arc, Network::Mainnet).unwrap_err();
        assert!(e.message().contains("unknown broadcaster name 'teranode'; known names: arc"), "{e}");
        assert!(ChainConfig::default().chain_tracker(&with_arc, Network::Mainnet).unwrap().is_none());
        // API keys stay out of Debug.
        let secret = ChainConfig { arc_api_key: Some("k-123".into()), ..Default::default() };
        assert!(!format!("{secret:?}").contains("k-123"));
    }
}
