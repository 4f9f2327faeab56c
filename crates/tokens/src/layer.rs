//! The server-side authentication layer: verifies a bearer token when one is
//! sent and puts the [`Principal`] in the request's extensions. A call
//! without a token passes through; handlers that need a caller ask for it
//! with [`super::principal`], which answers `TOKEN_MISSING`.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::verifier::TokenVerifier;
use folio_errors::{FolioError, Reason};

/// Adds authentication to a service stack.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    domain: &'static str,
}

impl AuthLayer {
    /// Verifies with `verifier`; errors carry `domain` (e.g. `ledger.folio`).
    pub fn new(verifier: TokenVerifier, domain: &'static str) -> Self {
        Self { verifier, domain }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, verifier: self.verifier.clone(), domain: self.domain }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: TokenVerifier,
    domain: &'static str,
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let domain = self.domain;
        Box::pin(async move {
            trust_client_ip(&verifier, &mut request).await;
            if is_public(request.uri().path()) {
                // DESIGN §5: public RPCs ignore any bearer token, so a client
                // that always attaches its last token can still sign in.
                request.headers_mut().remove(http::header::AUTHORIZATION);
                return inner.call(request).await;
            }
            match bearer_token(request.headers()) {
                Ok(None) => {}
                Ok(Some(token)) => match verifier.verify(&token).await {
                    Ok(principal) => {
                        request.extensions_mut().insert(principal);
                    }
                    Err(error) => return Ok(error.into_status(domain).into_http()),
                },
                Err(error) => return Ok(error.into_status(domain).into_http()),
            }
            inner.call(request).await
        })
    }
}

/// Where the gateway puts the client's IP (DESIGN §3, §6).
pub const CLIENT_IP_HEADER: &str = "x-folio-client-ip";
/// Where the gateway puts its own service token, vouching for the client IP.
pub const GATEWAY_TOKEN_HEADER: &str = "x-folio-gateway";
/// The gateway's client id: with TLS off, only its token makes the client
/// IP believed.
pub const GATEWAY_CLIENT_ID: &str = "folio-gateway";
/// The gateway's identity: with mutual TLS, only a connection proving it
/// makes the client IP believed.
pub const GATEWAY_IDENTITY: &str = "spiffe://folio/gateway";

/// The client IP the gateway vouched for, in a request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

/// Takes both headers off the request and, when the gateway vouches for it,
/// keeps the client IP as a [`ClientIp`] extension: any other caller of a
/// service's port could otherwise claim any IP and spread its lock-outs over
/// addresses that are not its own. Over mutual TLS the gateway vouches with
/// its certificate (DESIGN §6: a token seen on the wire could be replayed,
/// a certificate's key never travels); without it, with its service token.
async fn trust_client_ip<B>(verifier: &TokenVerifier, request: &mut http::Request<B>) {
    let claimed = request.headers_mut().remove(CLIENT_IP_HEADER);
    let voucher = request.headers_mut().remove(GATEWAY_TOKEN_HEADER);
    let Some(ip) = claimed.as_ref().and_then(|claimed| claimed.to_str().ok()) else { return };
    if let Some(peer) = folio_tls::Peer::of(request.extensions())
        && peer.is_mutual()
    {
        if peer.identity() == Some(GATEWAY_IDENTITY) {
            let ip = ClientIp(ip.to_owned());
            request.extensions_mut().insert(ip);
        } else {
            tracing::debug!(identity = ?peer.identity(), "a client IP came from a caller that is not the gateway; ignored");
        }
        return;
    }
    let Some(voucher) = voucher else { return };
    let Some(token) = voucher.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) else { return };
    match verifier.verify(token).await {
        Ok(principal) if principal.subject == GATEWAY_CLIENT_ID && principal.kind == super::PrincipalKind::Service => {
            request.extensions_mut().insert(ClientIp(ip.to_owned()));
        }
        _ => tracing::debug!("a client IP came without the gateway's token; ignored"),
    }
}

/// RPCs anyone may call (DESIGN §5): they need no token and ignore one.
pub const PUBLIC_RPCS: &[&str] = &[
    "/folio.auth.v1.AuthService/Register",
    "/folio.auth.v1.AuthService/Login",
    "/folio.auth.v1.AuthService/Refresh",
    "/folio.auth.v1.AuthService/IssueServiceToken",
    "/folio.auth.v1.AuthService/GetJwks",
];

/// Whether `path` is a public RPC, health or reflection.
pub fn is_public(path: &str) -> bool {
    PUBLIC_RPCS.contains(&path) || path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// The bearer token of an `authorization` header: `None` when there is no
/// header, `TOKEN_INVALID` when it is not `Bearer <token>`.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<Option<String>, FolioError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.trim().to_owned()))
}

fn malformed() -> FolioError {
    FolioError::new(Reason::TokenInvalid, "the authorization header must be `Bearer <access token>`")
}
