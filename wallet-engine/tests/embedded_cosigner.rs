//! A program embeds cosigners with the engine's `CosignerBuilder`, configured by the same typed
//! `CosignerConfig` the `mpc-wallet cosigner` command reads, and an agent configured by
//! `WalletConfig` signs with them: no CLI involved.

mod common;

use std::sync::Arc;

use wallet_engine::{
    CosignerBuilder, CosignerConfig, InsecureTestPrimes, PartyKey, Provisioned, WalletBuilder, WalletConfig,
};
use wallet_traits::{ErrorKind, Plugins};
use wallet_transport_local::{register_local_cosigner, unregister_local_cosigner};

fn vars(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_cosigner_signs_without_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PartyKey> = (0..3).map(|_| PartyKey::generate()).collect();
    let peers_of = |me: usize| {
        (0..3).filter(|&i| i != me).map(|i| format!("{i}={}", keys[i].public())).collect::<Vec<_>>().join(",")
    };
    let mut names = Vec::new();
    for (i, key) in keys.iter().enumerate().skip(1) {
        let config = CosignerConfig::from_vars(vars(&[
            ("MPC_PARTY_INDEX", i.to_string()),
            ("MPC_SHARE_SECRET", common::SECRET.to_string()),
            ("MPC_JWT_SECRET", "unused by an in-process cosigner".to_string()),
            ("MPC_HTTP_LISTEN", "127.0.0.1:0".to_string()),
            ("MPC_STORAGE_PATH", dir.path().join(format!("cosigner-{i}.db")).display().to_string()),
            ("MPC_PARTY_KEY", key.to_hex().to_string()),
            ("MPC_PEER_KEYS", peers_of(i)),
            ("MPC_PRIME_POOL_TARGET", "0".to_string()),
        ]))
        .unwrap();
        // The plugins are a value: without SQLite installed the store cannot be opened, whatever
        // the binary links.
        let e = config.validate_with(&Plugins::new()).unwrap_err();
        assert_eq!(e.context_value("variable"), Some("MPC_STORAGE_PATH"), "{e}");
        let e = CosignerBuilder::from_config(&config).unwrap().plugins(Plugins::new()).build().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let plugins = wallet_backend_sqlite::install(Plugins::new());
        config.validate_with(&plugins).unwrap();
        let builder = CosignerBuilder::from_config(&config).unwrap().plugins(plugins);
        let service = builder.prime_source(Arc::new(InsecureTestPrimes)).build().await.unwrap();
        let name = common::unique(&format!("embedded{i}"));
        register_local_cosigner(&name, Arc::new(service));
        names.push(name);
    }

    let config = WalletConfig::from_vars(vars(&[
        ("MPC_WALLET_ID", common::WALLET.to_string()),
        ("MPC_SHARE_SECRET", common::SECRET.to_string()),
        ("MPC_STORAGE_PATH", dir.path().join("agent.db").display().to_string()),
        ("MPC_COSIGNER_ENDPOINTS", names.iter().map(|n| format!("local://{n}")).collect::<Vec<_>>().join(",")),
        ("MPC_PARTY_KEY", keys[0].to_hex().to_string()),
        ("MPC_PEER_KEYS", peers_of(0)),
    ]))
    .unwrap();
    let plugins = wallet_transport_local::install(wallet_backend_sqlite::install(Plugins::new()));
    config.validate_with(&plugins).unwrap();
    let (wallet, provisioned) = WalletBuilder::from_config(config)
        .unwrap()
        .plugins(plugins)
        .prime_source(Arc::new(InsecureTestPrimes))
        .build()
        .await
        .unwrap();
    assert_eq!(provisioned, Provisioned::Created);
    let digest = common::digest("embedded cosigners");
    let sig = wallet.sign_digest(&digest, None).await.unwrap();
    assert!(common::k256_verifies(wallet.identity_key().as_bytes(), &digest, &sig));
    for n in &names {
        unregister_local_cosigner(n);
    }
}
