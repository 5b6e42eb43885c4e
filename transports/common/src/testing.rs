//! For the tests of servers built on this crate: the tokens every cosigner endpoint must refuse.

use std::time::Duration;

use wallet_traits::{ErrorKind, WalletId};

use crate::{now, TokenMinter};

/// One way a bearer token can be wrong, and the kind a server refuses it with: `Unauthorized`
/// (HTTP 401, gRPC UNAUTHENTICATED), or `PolicyDenied` (403, PERMISSION_DENIED) for a valid
/// token issued for another wallet.
#[derive(Debug, Clone, Copy)]
pub struct BadToken {
    /// What is wrong with it.
    pub name: &'static str,
    /// How it is refused.
    pub kind: ErrorKind,
}

const CASES: [BadToken; 6] = [
    BadToken { name: "no token", kind: ErrorKind::Unauthorized },
    BadToken { name: "garbage", kind: ErrorKind::Unauthorized },
    BadToken { name: "wrong key", kind: ErrorKind::Unauthorized },
    BadToken { name: "expired", kind: ErrorKind::Unauthorized },
    BadToken { name: "wrong aud", kind: ErrorKind::Unauthorized },
    BadToken { name: "wrong sub", kind: ErrorKind::PolicyDenied },
];

impl BadToken {
    /// Every case.
    pub fn cases() -> [BadToken; 6] {
        CASES
    }

    /// A fresh token of this case (`None`: no token) meant for `audience` and `wallet`, where
    /// `minter` holds the server's secret. Fresh every call: a server spends a token it
    /// verified, even one it then refuses for its wallet.
    pub fn mint(&self, minter: &TokenMinter, audience: &str, wallet: &WalletId) -> Option<String> {
        let token = match self.name {
            "no token" => return None,
            "garbage" => return Some("not.a.jwt".into()),
            "wrong key" => TokenMinter::hs256(b"a secret this server does not know!!").unwrap().mint(audience, wallet),
            "expired" => minter.mint_with(audience, wallet, now() - 600, Duration::from_secs(60)),
            "wrong aud" => minter.mint("grpc://127.0.0.1:1", wallet),
            _ => minter.mint(audience, &WalletId::new("another-wallet").unwrap()),
        };
        Some(token.expect("minting a test token").to_string())
    }
}
