#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
pub mod testing;

pub use auth::{bearer, AuthLayer, Authenticate, Refusal};

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use wallet_traits::{Error, ErrorKind, Result, WalletId};
use zeroize::Zeroizing;

/// Issuer the agent writes into its tokens.
pub const AGENT_ISSUER: &str = "mpc-wallet-agent";
/// Lifetime of a minted token.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Longest lifetime a verifier accepts, so a leaked long-lived token is useless.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Shortest accepted HS256 secret.
pub const MIN_HS256_SECRET: usize = 32;
const LEEWAY_SECS: u64 = 5;
const REPLAY_CAPACITY: usize = 200_000;
const PRUNE_EVERY: usize = 1024;

/// The claims of an agent-to-cosigner token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience: the cosigner.
    pub aud: String,
    /// Subject: the wallet id.
    pub sub: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// Unique token id; a cosigner accepts each once.
    pub jti: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn config(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, msg)
}

fn unauthorized(msg: &str) -> Error {
    Error::new(ErrorKind::Unauthorized, format!("{msg}; check that the agent and cosigner share MPC_JWT_SECRET"))
}

fn expired() -> Error {
    Error::new(ErrorKind::Unauthorized, "the token has expired; check that the agent's and cosigner's clocks agree")
}

/// The audience of an endpoint: `scheme://host:port`, lower-cased, without path or credentials.
pub fn audience_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

/// Mints a fresh token per request (agent side).
pub struct TokenMinter {
    key: EncodingKey,
    algorithm: Algorithm,
    issuer: String,
}

impl fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMinter").field("algorithm", &self.algorithm).field("issuer", &self.issuer).finish()
    }
}

impl TokenMinter {
    /// HS256 with a shared secret of at least 32 bytes (MPC_JWT_SECRET).
    pub fn hs256(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_HS256_SECRET {
            return Err(config(format!("MPC_JWT_SECRET must be at least {MIN_HS256_SECRET} bytes")));
        }
        Ok(Self { key: EncodingKey::from_secret(secret), algorithm: Algorithm::HS256, issuer: AGENT_ISSUER.into() })
    }

    /// EdDSA with an Ed25519 private key in PKCS#8 PEM.
    pub fn ed25519_pem(private_pem: &[u8]) -> Result<Self> {
        let key = EncodingKey::from_ed_pem(private_pem)
            .map_err(|_| config("the JWT signing key is not an Ed25519 PEM private key"))?;
        Ok(Self { key, algorithm: Algorithm::EdDSA, issuer: AGENT_ISSUER.into() })
    }

    /// A token for `audience` about `wallet`, valid for [`TOKEN_TTL`].
    pub fn mint(&self, audience: &str, wallet: &WalletId) -> Result<Zeroizing<String>> {
        self.mint_with(audience, wallet, now(), TOKEN_TTL)
    }

    /// A token with explicit times (tests make expired ones with it).
    pub fn mint_with(&self, audience: &str, wallet: &WalletId, iat: u64, ttl: Duration) -> Result<Zeroizing<String>> {
        let mut jti = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut jti);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_string(),
            sub: wallet.as_str().to_string(),
            iat,
            exp: iat + ttl.as_secs(),
            jti: hex::encode(jti),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|_| Error::new(ErrorKind::Internal, "could not sign a token"))
    }
}

/// Verifies tokens (cosigner side) and remembers their ids to refuse replays.
pub struct TokenVerifier {
    key: DecodingKey,
    algorithm: Algorithm,
    audiences: Vec<String>,
    seen: Mutex<HashMap<String, u64>>,
    replay_capacity: usize,
    /// Where token ids are also kept, so a token captured before a restart is refused after it.
    durable: Option<Arc<dyn wallet_traits::ShareStore>>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier").field("algorithm", &self.algorithm).field("audiences", &self.audiences).finish()
    }
}

impl TokenVerifier {
    /// HS256 with the shared secret, accepting `audiences`.
    pub fn hs256(secret: &[u8], audiences: Vec<String>) -> Result<Self> {
        if secret.len() < MIN_HS256_SECRET {
            return Err(config(format!("MPC_JWT_SECRET must be at least {MIN_HS256_SECRET} bytes")));
        }
        Self::new(DecodingKey::from_secret(secret), Algorithm::HS256, audiences)
    }

    /// EdDSA with the agent's Ed25519 public key in PEM.
    pub fn ed25519_pem(public_pem: &[u8], audiences: Vec<String>) -> Result<Self> {
        let key = DecodingKey::from_ed_pem(public_pem)
            .map_err(|_| config("the JWT verification key is not an Ed25519 PEM public key"))?;
        Self::new(key, Algorithm::EdDSA, audiences)
    }

    fn new(key: DecodingKey, algorithm: Algorithm, audiences: Vec<String>) -> Result<Self> {
        if audiences.is_empty() {
            return Err(config("a cosigner needs at least one JWT audience (its public endpoint URL)"));
        }
        Ok(Self {
            key,
            algorithm,
            audiences,
            seen: Mutex::new(HashMap::new()),
            replay_capacity: REPLAY_CAPACITY,
            durable: None,
        })
    }

    /// Also keeps every accepted token id in `store` until the token expires (the store's policy
    /// state, [`wallet_traits::PolicyStore::mark_seen`]), so a token captured before the
    /// cosigner restarts is refused after it as it would have been before. A store that keeps no
    /// policy state changes nothing: ids then live in memory only.
    pub fn remembering_in(mut self, store: Arc<dyn wallet_traits::ShareStore>) -> Self {
        if store.policy_state().is_some() {
            self.durable = Some(store);
        }
        self
    }

    /// Whether token ids outlive a restart ([`TokenVerifier::remembering_in`]).
    pub fn remembers(&self) -> bool {
        self.durable.is_some()
    }

    /// The durable half of the replay check, after [`verify_token`](Self::verify_token): `token`'s
    /// id is recorded in the store, and refused when it was recorded before (by an earlier run of
    /// this cosigner). Without a store, nothing to do.
    pub async fn first_use(&self, token: &VerifiedToken) -> Result<()> {
        let Some(state) = self.durable.as_ref().and_then(|s| s.policy_state()) else { return Ok(()) };
        let now_ms = now().saturating_mul(1000);
        let expires_ms = token.claims.exp.saturating_add(LEEWAY_SECS).saturating_mul(1000);
        if state.mark_seen("token", token.claims.jti.as_bytes(), expires_ms, now_ms).await? {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Unauthorized, "this token was already used (replayed jti, before a restart)"))
        }
    }

    /// The audiences this verifier accepts.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Checks everything about `token` that does not depend on the request: signature,
    /// issuer, audience, expiry, bounded lifetime, and that its `jti` was never seen (a `jti` is
    /// accepted once, so this consumes the token). A server calls it on the request's headers,
    /// before reading any body; the result authorizes nothing until
    /// [`VerifiedToken::for_wallet`] binds it to the wallet the request is about.
    ///
    /// Errors are `Unauthorized`, or `CosignerUnavailable` when too many live tokens are tracked.
    pub fn verify_token(&self, token: &str) -> Result<VerifiedToken> {
        let mut v = Validation::new(self.algorithm);
        v.set_audience(&self.audiences);
        v.set_issuer(&[AGENT_ISSUER]);
        v.set_required_spec_claims(&["exp", "aud", "sub", "iss", "iat"]);
        v.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => expired(),
                K::InvalidAudience => unauthorized("the token is for another cosigner (aud)"),
                K::InvalidSignature | K::InvalidAlgorithm => unauthorized("the token's signature does not verify"),
                _ => unauthorized("the token is malformed or missing claims"),
            }
        })?;
        let c = data.claims;
        if c.exp.saturating_sub(c.iat) > MAX_TOKEN_LIFETIME.as_secs() || c.iat > now() + LEEWAY_SECS {
            return Err(unauthorized("the token's lifetime is too long or it was issued in the future"));
        }
        if c.jti.is_empty() {
            return Err(unauthorized("the token has no id (jti)"));
        }
        let mut seen = self.seen.lock().expect("replay cache lock");
        // Drop expired ids now and then (they cannot be replayed anyway: exp is checked above),
        // and whenever the set is full, so a full set frees itself once its tokens expire.
        if seen.len().is_multiple_of(PRUNE_EVERY) || seen.len() >= self.replay_capacity {
            let t = now();
            seen.retain(|_, exp| *exp + LEEWAY_SECS >= t);
        }
        if seen.len() >= self.replay_capacity {
            return Err(Error::new(
                ErrorKind::CosignerUnavailable,
                "too many live tokens to track replays; retry shortly",
            ));
        }
        if seen.insert(c.jti.clone(), c.exp).is_some() {
            return Err(Error::new(ErrorKind::Unauthorized, "this token was already used (replayed jti)"));
        }
        Ok(VerifiedToken { claims: c })
    }
}

/// A token [`TokenVerifier::verify_token`] accepted: genuine, fresh, for this cosigner, and
/// seen for the first time. It is not yet bound to a wallet: [`VerifiedToken::for_wallet`] is
/// the only way to its claims, so a server cannot act on a token without checking its subject.
///
/// Servers carry it from the authentication step (which runs on the headers, before any body
/// is read) to the handler (which knows the wallet once it has the request).
#[derive(Debug, Clone)]
#[must_use = "a verified token authorizes nothing until `for_wallet` checks its subject"]
pub struct VerifiedToken {
    claims: Claims,
}

impl VerifiedToken {
    /// The claims, if the token was issued for `wallet` (its `sub`); a token for another wallet
    /// is `PolicyDenied`.
    pub fn for_wallet(&self, wallet: &WalletId) -> Result<Claims> {
        if self.claims.sub != wallet.as_str() {
            return Err(Error::new(ErrorKind::PolicyDenied, "the token was issued for another wallet (sub)"));
        }
        Ok(self.claims.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    fn wallet(s: &str) -> WalletId {
        WalletId::new(s).unwrap()
    }

    /// Both steps, as a server runs them once it knows the request's wallet.
    fn verify(v: &TokenVerifier, token: &str, w: &WalletId) -> Result<Claims> {
        v.verify_token(token)?.for_wallet(w)
    }

    #[tokio::test]
    async fn a_token_used_before_a_restart_is_refused_after_it() {
        let store: Arc<dyn wallet_traits::ShareStore> = Arc::new(wallet_testkit::MemoryShareStore::new());
        let m = TokenMinter::hs256(SECRET).unwrap();
        let running = || {
            TokenVerifier::hs256(SECRET, vec!["http://127.0.0.1:8001".into()]).unwrap().remembering_in(store.clone())
        };
        let t = m.mint("http://127.0.0.1:8001", &wallet("w")).unwrap();
        let before = running();
        assert!(before.remembers());
        before.first_use(&before.verify_token(&t).unwrap()).await.unwrap();
        // A new process: its memory is empty, the store is not.
        let after = running();
        let token = after.verify_token(&t).expect("new in this process's memory");
        let e = after.first_use(&token).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.message().contains("replayed"), "{e}");
        // A store without policy state keeps nothing: ids live in memory only.
        let plain: Arc<dyn wallet_traits::ShareStore> = Arc::new(wallet_testkit::MemoryShareStore::shares_only());
        assert!(!TokenVerifier::hs256(SECRET, vec!["a".into()]).unwrap().remembering_in(plain).remembers());
    }

    #[test]
    fn good_token_once() {
        let m = TokenMinter::hs256(SECRET).unwrap();
        let v = TokenVerifier::hs256(SECRET, vec!["http://127.0.0.1:8001".into()]).unwrap();
        let t = m.mint("http://127.0.0.1:8001", &wallet("w")).unwrap();
        assert_eq!(verify(&v, &t, &wallet("w")).unwrap().sub, "w");
        assert_eq!(verify(&v, &t, &wallet("w")).unwrap_err().kind(), ErrorKind::Unauthorized, "replay");
    }

    #[test]
    fn the_token_is_checked_without_the_wallet_then_bound_to_it() {
        let m = TokenMinter::hs256(SECRET).unwrap();
        let v = TokenVerifier::hs256(SECRET, vec!["aud-1".into()]).unwrap();
        let w = wallet("w");
        let t = m.mint("aud-1", &w).unwrap();
        // The first step needs only the token: a server runs it on the headers.
        let verified = v.verify_token(&t).unwrap();
        let e = verified.for_wallet(&wallet("other")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied, "{e}");
        assert!(!e.to_string().contains(t.as_str()));
        let claims = verified.for_wallet(&w).unwrap();
        assert_eq!((claims.sub.as_str(), claims.aud.as_str(), claims.iss.as_str()), ("w", "aud-1", AGENT_ISSUER));
        // The first step consumed the jti, whichever wallet the request turns out to be about.
        assert_eq!(v.verify_token(&t).unwrap_err().kind(), ErrorKind::Unauthorized, "replay");
        let intruder = m.mint("aud-1", &wallet("other")).unwrap();
        assert_eq!(verify(&v, &intruder, &w).unwrap_err().kind(), ErrorKind::PolicyDenied);
        let e = v.verify_token(&intruder).unwrap_err();
        assert!(e.message().contains("already used"), "a refused token stays used: {e}");
        // Nothing in Debug output is the token itself.
        let fresh = m.mint("aud-1", &w).unwrap();
        assert!(!format!("{:?}", v.verify_token(&fresh).unwrap()).contains(fresh.as_str()));
    }

    #[test]
    fn a_full_replay_set_refuses_until_its_tokens_expire() {
        let m = TokenMinter::hs256(SECRET).unwrap();
        let mut v = TokenVerifier::hs256(SECRET, vec!["aud-1".into()]).unwrap();
        v.replay_capacity = 3;
        let w = wallet("w");
        for _ in 0..3 {
            verify(&v, &m.mint("aud-1", &w).unwrap(), &w).unwrap();
        }
        let e = v.verify_token(&m.mint("aud-1", &w).unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CosignerUnavailable, "{e}");
        // Once the remembered tokens have expired, the next token is accepted (the set is pruned
        // when full, not only every PRUNE_EVERY insertions).
        for exp in v.seen.lock().unwrap().values_mut() {
            *exp = now() - LEEWAY_SECS - 1;
        }
        verify(&v, &m.mint("aud-1", &w).unwrap(), &w).unwrap();
        assert_eq!(v.seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn every_bad_token_is_refused() {
        let m = TokenMinter::hs256(SECRET).unwrap();
        let v = TokenVerifier::hs256(SECRET, vec!["aud-1".into()]).unwrap();
        let other = TokenMinter::hs256(b"another-secret-another-secret-another").unwrap();
        let w = wallet("w");
        let expired = m.mint_with("aud-1", &w, now() - 600, Duration::from_secs(60)).unwrap();
        let long = m.mint_with("aud-1", &w, now(), Duration::from_secs(3600)).unwrap();
        let future = m.mint_with("aud-1", &w, now() + 600, Duration::from_secs(60)).unwrap();
        let bad = [
            ("empty", Zeroizing::new(String::new())),
            ("garbage", Zeroizing::new("not.a.jwt".to_string())),
            ("wrong key", other.mint("aud-1", &w).unwrap()),
            ("wrong aud", m.mint("aud-2", &w).unwrap()),
            ("expired", expired),
            ("too long", long),
            ("issued in the future", future),
        ];
        // All of it is found without knowing the wallet, and none of it consumes a jti.
        for (name, token) in &bad {
            let e = v.verify_token(token).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthorized, "{name}: {e}");
            assert!(token.is_empty() || !e.to_string().contains(token.as_str()), "{name}: no token in errors");
        }
        assert!(v.seen.lock().unwrap().is_empty());
        let e = verify(&v, &m.mint("aud-1", &wallet("other")).unwrap(), &w).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyDenied);
    }

    #[test]
    fn eddsa_tokens() {
        let agent = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let m = TokenMinter::ed25519_pem(agent.serialize_pem().as_bytes()).unwrap();
        let v = TokenVerifier::ed25519_pem(agent.public_key_pem().as_bytes(), vec!["aud-1".into()]).unwrap();
        let w = wallet("w");
        assert_eq!(verify(&v, &m.mint("aud-1", &w).unwrap(), &w).unwrap().aud, "aud-1");
        let forged = TokenMinter::ed25519_pem(other.serialize_pem().as_bytes()).unwrap();
        assert_eq!(v.verify_token(&forged.mint("aud-1", &w).unwrap()).unwrap_err().kind(), ErrorKind::Unauthorized);
        // An HS256 token signed with the public key bytes (algorithm confusion) is refused.
        let confused = TokenMinter::hs256(agent.public_key_pem().as_bytes()).unwrap();
        assert_eq!(v.verify_token(&confused.mint("aud-1", &w).unwrap()).unwrap_err().kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn short_secret_and_audiences() {
        assert_eq!(TokenMinter::hs256(b"short").unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(audience_of("HTTPS://user:pw@Host:8443/v1/x?y"), "https://host:8443");
        assert_eq!(audience_of("grpc://127.0.0.1:9001"), "grpc://127.0.0.1:9001");
    }
}

/// Option keys a network transport factory reads (the engine fills them from the environment).
pub mod option_keys {
    /// HS256 shared secret (from MPC_JWT_SECRET).
    pub const JWT_SECRET: &str = "jwt_secret";
    /// Path of an Ed25519 PKCS#8 PEM private key for EdDSA tokens (MPC_JWT_PRIVATE_KEY_FILE).
    pub const JWT_ED25519_PRIVATE_KEY_FILE: &str = "jwt_ed25519_private_key_file";
    /// Path of a PEM CA certificate to trust for https/grpcs (MPC_TLS_CA_FILE).
    pub const CA_CERT_FILE: &str = "ca_cert_file";
}

/// The token minter described by transport options: EdDSA when a private key file is given,
/// else HS256 from the shared secret.
pub fn minter_from_options(options: &wallet_traits::Options) -> Result<std::sync::Arc<TokenMinter>> {
    use option_keys::*;
    let minter = if let Some(path) = options.get(JWT_ED25519_PRIVATE_KEY_FILE) {
        let pem = Zeroizing::new(std::fs::read(path).map_err(|e| {
            config(format!("cannot read the JWT private key file (MPC_JWT_PRIVATE_KEY_FILE): {e}"))
                .with_context("path", path)
        })?);
        TokenMinter::ed25519_pem(&pem)?
    } else if let Some(secret) = options.get(JWT_SECRET) {
        TokenMinter::hs256(secret.as_bytes())?
    } else {
        return Err(config("cosigners over the network need MPC_JWT_SECRET (or MPC_JWT_PRIVATE_KEY_FILE)"));
    };
    Ok(std::sync::Arc::new(minter))
}

/// The extra CA certificate (PEM) to trust, if `ca_cert_file` is set.
pub fn ca_from_options(options: &wallet_traits::Options) -> Result<Option<Vec<u8>>> {
    options
        .get(option_keys::CA_CERT_FILE)
        .map(|path| {
            std::fs::read(path)
                .map_err(|e| config(format!("cannot read MPC_TLS_CA_FILE: {e}")).with_context("path", path))
        })
        .transpose()
}

/// What a cosigner server allows; beyond it requests are refused, never queued without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Concurrent sessions; one more is refused with 429 / RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// Largest request body or message, in bytes; larger is 413 / INVALID_ARGUMENT.
    pub max_message_bytes: usize,
    /// A session with no traffic for this long is ended and freed.
    pub session_idle_timeout: Duration,
    /// How long an HTTP exchange waits for the cosigner's next messages when none are ready.
    pub long_poll: Duration,
}

impl ServerLimits {
    /// Refuses limits no server can work with: no session, no message, or no idle time. Both
    /// servers check them before they serve (`Config`).
    pub fn check(&self) -> Result<()> {
        if self.max_sessions == 0 || self.max_message_bytes == 0 || self.session_idle_timeout.is_zero() {
            return Err(config(
                "server limits must allow at least one session, a non-empty message and a non-zero idle timeout",
            )
            .with_context("limits", format!("{self:?}")));
        }
        Ok(())
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_sessions: 64,
            max_message_bytes: 8 * 1024 * 1024,
            session_idle_timeout: Duration::from_secs(120),
            long_poll: Duration::from_secs(2),
        }
    }
}

/// A server certificate chain and private key, both PEM. The key is zeroized and never printed.
#[derive(Clone)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert_chain_pem: Vec<u8>,
    /// Private key, PEM.
    pub private_key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_chain_pem", &format_args!("<{} bytes>", self.cert_chain_pem.len()))
            .finish_non_exhaustive()
    }
}
