//! Authentication as one tower layer, in front of the HTTP (axum) and the gRPC (tonic) server.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{header, request::Parts, HeaderMap, Request, Response, Uri};
use http_body::Body;
use tower::{Layer, Service};
use wallet_traits::{Error, ErrorKind};

use crate::TokenVerifier;

/// How one server answers a request [`Authenticate`] refuses, and which requests need no token.
pub trait Refusal: Clone + Send + Sync + 'static {
    /// The server's response body.
    type Body;

    /// Whether the request for `uri` is served without a token. None is, unless the server says.
    fn exempt(&self, _uri: &Uri) -> bool {
        false
    }

    /// The answer to a request whose token is missing or refused (`error`, `Unauthorized` or
    /// `CosignerUnavailable`). Its body was dropped unread; `body_announced` says it had one.
    fn refuse(&self, request: &Parts, body_announced: bool, error: Error) -> Response<Self::Body>;
}

/// Verifies the bearer token of every request on its headers alone (signature, issuer, audience,
/// lifetime, replay) before the inner service sees the request: before a handler runs, a body is
/// read or a message decoded, so an unauthenticated request costs the server its headers only.
/// An accepted request carries its [`crate::VerifiedToken`] in its extensions, where the handler
/// binds it to the request's wallet ([`crate::VerifiedToken::for_wallet`]). A refused request's
/// body is dropped unread and the server's [`Refusal`] answers it.
///
/// The HTTP server puts it in front of every `/v1` route, the gRPC server in front of every call
/// but Health.
#[derive(Clone)]
pub struct AuthLayer<R> {
    verifier: Arc<TokenVerifier>,
    refusal: R,
}

impl<R> fmt::Debug for AuthLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").field("verifier", &self.verifier).finish_non_exhaustive()
    }
}

impl<R: Refusal> AuthLayer<R> {
    /// A layer that verifies tokens with `verifier` and refuses as `refusal` says.
    pub fn new(verifier: Arc<TokenVerifier>, refusal: R) -> Self {
        Self { verifier, refusal }
    }
}

impl<S, R: Clone> Layer<S> for AuthLayer<R> {
    type Service = Authenticate<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, verifier: self.verifier.clone(), refusal: self.refusal.clone() }
    }
}

/// The service [`AuthLayer`] wraps around a server's routes.
#[derive(Clone)]
pub struct Authenticate<S, R> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    refusal: R,
}

impl<S, R> fmt::Debug for Authenticate<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticate").field("verifier", &self.verifier).finish_non_exhaustive()
    }
}

/// The bearer token of a request's headers; never logged.
pub fn bearer(headers: &HeaderMap) -> wallet_traits::Result<&str> {
    let missing = || {
        Error::new(
            ErrorKind::Unauthorized,
            "the request carries no 'Authorization: Bearer <token>'; the agent mints one per request from \
             MPC_JWT_SECRET",
        )
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?.to_str().map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(missing()),
    }
}

type Answer<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R, B> Service<Request<B>> for Authenticate<S, R>
where
    S: Service<Request<B>, Response = Response<R::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: Refusal,
    R::Body: Send + 'static,
    S::Error: Send + 'static,
    B: Body + Send + 'static,
{
    type Response = Response<R::Body>;
    type Error = S::Error;
    type Future = Answer<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.refusal.exempt(request.uri()) {
            return Box::pin(self.inner.call(request));
        }
        let refuse = |refusal: &R, request: Request<B>, error| {
            let body_announced = !request.body().is_end_stream();
            let (parts, body) = request.into_parts();
            drop(body);
            refusal.refuse(&parts, body_announced, error)
        };
        match bearer(request.headers()).and_then(|token| self.verifier.verify_token(token)) {
            Ok(token) if self.verifier.remembers() => {
                // The store's check is async: the inner service is called once it answered, on a
                // clone taken now (the one polled ready stays for the next request).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let (verifier, refusal) = (self.verifier.clone(), self.refusal.clone());
                Box::pin(async move {
                    match verifier.first_use(&token).await {
                        Ok(()) => {
                            request.extensions_mut().insert(token);
                            inner.call(request).await
                        }
                        Err(error) => Ok(refuse(&refusal, request, error)),
                    }
                })
            }
            Ok(token) => {
                request.extensions_mut().insert(token);
                Box::pin(self.inner.call(request))
            }
            Err(error) => Box::pin(std::future::ready(Ok(refuse(&self.refusal, request, error)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{convert::Infallible, task::Waker};

    use wallet_traits::WalletId;

    use super::*;
    use crate::{TokenMinter, VerifiedToken};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    /// Answers 200 with the wallet of the token it was handed, or 500 without one.
    #[derive(Clone)]
    struct Inner;

    impl Service<Request<String>> for Inner {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<String>) -> Self::Future {
            let wallet = WalletId::new("w").unwrap();
            let body = match request.extensions().get::<VerifiedToken>() {
                Some(token) => token.for_wallet(&wallet).map(|c| c.sub).unwrap_or_else(|e| e.to_string()),
                None => "no token".into(),
            };
            std::future::ready(Ok(Response::new(body)))
        }
    }

    #[derive(Clone)]
    struct Refuse;

    impl Refusal for Refuse {
        type Body = String;

        fn exempt(&self, uri: &Uri) -> bool {
            uri.path() == "/open"
        }

        fn refuse(&self, request: &Parts, body_announced: bool, error: Error) -> Response<String> {
            let mut r = Response::new(format!("{} {} {body_announced}", request.uri.path(), error.kind()));
            *r.status_mut() = http::StatusCode::UNAUTHORIZED;
            r
        }
    }

    fn answer(service: &mut Authenticate<Inner, Refuse>, request: Request<String>) -> Response<String> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut future = service.call(request);
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(r)) => r,
            _ => unreachable!("both answers are ready at once"),
        }
    }

    fn request(path: &str, token: Option<&str>, body: &str) -> Request<String> {
        let mut r = Request::builder().uri(path);
        if let Some(t) = token {
            r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        r.body(body.to_string()).unwrap()
    }

    #[test]
    fn the_token_is_verified_before_the_inner_service_runs() {
        let verifier = Arc::new(TokenVerifier::hs256(SECRET, vec!["aud".into()]).unwrap());
        let minter = TokenMinter::hs256(SECRET).unwrap();
        let mut service = AuthLayer::new(verifier, Refuse).layer(Inner);
        let token = minter.mint("aud", &WalletId::new("w").unwrap()).unwrap();

        let ok = answer(&mut service, request("/v1/x", Some(&token), ""));
        assert_eq!((ok.status(), ok.body().as_str()), (http::StatusCode::OK, "w"));
        // The same token again is a replay; without a token, or with garbage, nothing reaches Inner.
        for (token, body) in [(Some(token.as_str()), "{}"), (None, ""), (Some("not.a.jwt"), "")] {
            let refused = answer(&mut service, request("/v1/x", token, body));
            assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
            assert_eq!(refused.body(), &format!("/v1/x unauthorized {}", !body.is_empty()));
        }
        // An exempt path needs no token, and gets none.
        assert_eq!(answer(&mut service, request("/open", None, "")).body(), "no token");
    }

    #[test]
    fn bearer_needs_the_scheme_and_a_token() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).unwrap_err().to_string().contains("MPC_JWT_SECRET"));
        for (value, ok) in
            [("Bearer abc", Some("abc")), ("bearer  abc ", Some("abc")), ("Basic abc", None), ("Bearer ", None)]
        {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&h).ok(), ok, "{value}");
        }
    }
}
