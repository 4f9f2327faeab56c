//! Concurrency limit with load shedding: past the limit a call is answered at
//! once with `UNAVAILABLE` / `OVERLOADED` and a `RetryInfo`, instead of
//! queueing until every caller times out.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::error::{FolioError, Reason};

/// How long a shed caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// See the module docs.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    domain: &'static str,
}

impl ShedLayer {
    /// At most `max_concurrent` calls in flight.
    pub fn new(max_concurrent: usize, domain: &'static str) -> Self {
        Self { permits: Arc::new(Semaphore::new(max_concurrent)), domain }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed { inner, permits: Arc::clone(&self.permits), domain: self.domain }
    }
}

/// See [`ShedLayer`].
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
    domain: &'static str,
}

impl<S, B> Service<http::Request<B>> for Shed<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Health checks are never shed: an overloaded pod is still alive.
        let exempt = request.uri().path().starts_with("/grpc.health.");
        let permit = if exempt { None } else { Some(Arc::clone(&self.permits).try_acquire_owned()) };
        let domain = self.domain;
        Box::pin(async move {
            let _permit = match permit {
                Some(Ok(permit)) => Some(permit),
                Some(Err(_)) => {
                    metrics::counter!("folio_grpc_shed_total").increment(1);
                    let status = FolioError::new(Reason::Overloaded, "the service is overloaded; retry shortly")
                        .with_retry_after(RETRY_AFTER)
                        .into_status(domain);
                    return Ok(status.into_http());
                }
                None => None,
            };
            inner.call(request).await
        })
    }
}
