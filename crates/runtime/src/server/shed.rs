//! Concurrency limit with load shedding: past the limit a call is answered at
//! once with `UNAVAILABLE` / `OVERLOADED` and a `RetryInfo`, instead of
//! queueing until every caller times out. At a public port one client
//! connection may hold at most a quarter of the permits and one client IP at
//! most half (DESIGN §5a), so a client that opens calls and never finishes
//! them cannot take the service from everyone else.

use std::{
    collections::HashMap,
    hash::Hash,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use folio_errors::{FolioError, Reason};

/// How long a shed caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Calls in flight per key (a connection, an IP), each capped.
struct Holders<K> {
    cap: usize,
    held: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Holders<K> {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap: cap.max(1), held: Mutex::new(HashMap::new()) })
    }

    /// One more call for `key`, or `None` past its cap.
    fn take(self: &Arc<Self>, key: K) -> Option<Held<K>> {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Held { holders: Arc::clone(self), key })
    }
}

/// A call counted against its key until dropped.
struct Held<K: Hash + Eq> {
    holders: Arc<Holders<K>>,
    key: K,
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        let mut held = self.holders.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// Caps for each client at a public port.
#[derive(Clone)]
struct ClientCaps {
    per_connection: Arc<Holders<SocketAddr>>,
    per_ip: Arc<Holders<IpAddr>>,
}

/// See the module docs.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    clients: Option<ClientCaps>,
    domain: &'static str,
}

impl ShedLayer {
    /// At most `max_concurrent` calls in flight.
    pub fn new(max_concurrent: usize, domain: &'static str) -> Self {
        Self { permits: Arc::new(Semaphore::new(max_concurrent)), clients: None, domain }
    }

    /// Also caps each client connection (a quarter of the permits) and each
    /// client IP (half): for a port that faces the public.
    pub fn per_client(mut self) -> Self {
        let total = self.permits.available_permits();
        self.clients = Some(ClientCaps { per_connection: Holders::new(total / 4), per_ip: Holders::new(total / 2) });
        self
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed { inner, permits: Arc::clone(&self.permits), clients: self.clients.clone(), domain: self.domain }
    }
}

/// See [`ShedLayer`].
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
    clients: Option<ClientCaps>,
    domain: &'static str,
}

/// The caps a call from `peer` holds, or `None` when one of them is full.
fn client_share(caps: &ClientCaps, peer: SocketAddr) -> Option<(Held<SocketAddr>, Held<IpAddr>)> {
    let connection = caps.per_connection.take(peer)?;
    let ip = caps.per_ip.take(peer.ip())?;
    Some((connection, ip))
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
        let peer = folio_tls::Peer::of(request.extensions()).and_then(|peer| peer.addr);
        let share = match (&self.clients, exempt, peer) {
            (Some(caps), false, Some(peer)) => Some(client_share(caps, peer)),
            _ => None,
        };
        let permit = if exempt { None } else { Some(Arc::clone(&self.permits).try_acquire_owned()) };
        let domain = self.domain;
        Box::pin(async move {
            let _share = match share {
                Some(None) => {
                    metrics::counter!("folio_grpc_shed_total", "why" => "client_cap").increment(1);
                    let status =
                        FolioError::new(Reason::Overloaded, "this client has too many calls in flight; retry shortly")
                            .with_retry_after(RETRY_AFTER)
                            .into_status(domain);
                    return Ok(status.into_http());
                }
                other => other,
            };
            let _permit = match permit {
                Some(Ok(permit)) => Some(permit),
                Some(Err(_)) => {
                    metrics::counter!("folio_grpc_shed_total", "why" => "capacity").increment(1);
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
