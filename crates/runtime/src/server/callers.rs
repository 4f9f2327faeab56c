//! Which services may call an internal API (DESIGN §6): with mutual TLS, a
//! caller's certificate says who it is, and an internal service answers only
//! the identities that need it, on top of the scope its token must carry. A
//! stolen service token is then useless from any other pod.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use folio_errors::{FolioError, Reason};
use futures::future::{Either, Ready, ready};
use tower::{Layer, Service};

/// The identities allowed on each restricted path prefix.
pub type Allowed = &'static [(&'static str, &'static [&'static str])];

/// Refuses calls under a restricted prefix from a mutual-TLS peer whose
/// identity is not allowed there. Without mutual TLS (a port with no client
/// CA) nothing is proven about the caller, and its token's scopes decide.
#[derive(Clone)]
pub struct CallersLayer {
    allowed: Allowed,
    domain: &'static str,
}

impl CallersLayer {
    /// Restricts the prefixes of `allowed` for a service of error domain `domain`.
    pub fn new(allowed: Allowed, domain: &'static str) -> Self {
        Self { allowed, domain }
    }
}

impl<S> Layer<S> for CallersLayer {
    type Service = Callers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Callers { inner, allowed: self.allowed, domain: self.domain }
    }
}

/// See [`CallersLayer`].
#[derive(Clone)]
pub struct Callers<S> {
    inner: S,
    allowed: Allowed,
    domain: &'static str,
}

impl<S, B> Service<http::Request<B>> for Callers<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<S::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let restricted = self.allowed.iter().find(|(prefix, _)| path.starts_with(prefix));
        let peer = folio_tls::Peer::of(request.extensions()).filter(|peer| peer.is_mutual());
        if let (Some((_, identities)), Some(peer)) = (restricted, peer) {
            let identity = peer.identity();
            if !identity.is_some_and(|identity| identities.contains(&identity)) {
                metrics::counter!("folio_grpc_identity_refused_total").increment(1);
                let shown = identity.unwrap_or("no Folio identity");
                let error = FolioError::new(
                    Reason::IdentityNotAllowed,
                    format!("this API is not for {}", folio_errors::echo(shown)),
                )
                .with_metadata("identity", folio_errors::echo(shown));
                return Either::Right(ready(Ok(error.into_status(self.domain).into_http())));
            }
        }
        Either::Left(self.inner.call(request))
    }
}
