//! An upstream service reached through several endpoints: a comma-separated
//! list or a DNS name resolving to many pods (re-resolved periodically),
//! balanced round-robin, with endpoints that refuse connections ejected for a while.

use std::{
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

struct Endpoint {
    addr: SocketAddr,
    /// The host it was resolved from: the name its TLS certificate must bear.
    host: Arc<str>,
    ejected_until: Option<Instant>,
}

/// An endpoint to call: its address and the host name its certificate names.
pub type Target = (SocketAddr, Arc<str>);

/// One upstream's endpoints.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    targets: Arc<Vec<String>>,
    endpoints: Arc<RwLock<Vec<Endpoint>>>,
    next: Arc<AtomicUsize>,
    eject_for: Duration,
}

impl Upstream {
    /// Endpoints of `spec` (`host:port[,host:port...]`), resolved now and every `interval`.
    pub async fn start(
        name: &'static str,
        spec: &str,
        interval: Duration,
        eject_for: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let targets: Vec<String> =
            spec.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let upstream = Self {
            name,
            targets: Arc::new(targets),
            endpoints: Arc::new(RwLock::new(Vec::new())),
            next: Arc::new(AtomicUsize::new(0)),
            eject_for,
        };
        upstream.resolve().await;
        let refresher = upstream.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(interval);
            every.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = every.tick() => refresher.resolve().await,
                }
            }
        });
        upstream
    }

    /// The upstream's name (`auth`, `account`, `ledger`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    async fn resolve(&self) {
        let mut addrs: Vec<Target> = Vec::new();
        for target in self.targets.iter() {
            let host: Arc<str> = Arc::from(target.rsplit_once(':').map_or(target.as_str(), |(host, _)| host));
            match tokio::net::lookup_host(target.as_str()).await {
                Ok(found) => addrs.extend(found.map(|addr| (addr, Arc::clone(&host)))),
                Err(error) => tracing::warn!(upstream = self.name, %target, %error, "resolving upstream failed"),
            }
        }
        if addrs.is_empty() {
            return; // keep the last known endpoints
        }
        addrs.sort();
        addrs.dedup_by_key(|(addr, _)| *addr);
        let mut endpoints = self.endpoints.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ejected: Vec<(SocketAddr, Option<Instant>)> = endpoints.iter().map(|e| (e.addr, e.ejected_until)).collect();
        *endpoints = addrs
            .into_iter()
            .map(|(addr, host)| Endpoint {
                addr,
                host,
                ejected_until: ejected.iter().find(|(a, _)| *a == addr).and_then(|(_, e)| *e),
            })
            .collect();
    }

    /// Endpoints to try, in order: the next in rotation first, ejected ones last.
    pub fn candidates(&self) -> Vec<Target> {
        let endpoints = self.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if endpoints.is_empty() {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % endpoints.len();
        let now = Instant::now();
        let rotated: Vec<&Endpoint> = endpoints.iter().cycle().skip(start).take(endpoints.len()).collect();
        let (healthy, ejected): (Vec<&Endpoint>, Vec<&Endpoint>) =
            rotated.into_iter().partition(|e| e.ejected_until.is_none_or(|until| until <= now));
        healthy.into_iter().chain(ejected).map(|e| (e.addr, Arc::clone(&e.host))).collect()
    }

    /// Every endpoint it resolves to now.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let endpoints = self.endpoints.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        endpoints.iter().map(|e| e.addr).collect()
    }

    /// Skips `addr` for a while (it refused a connection).
    pub fn eject(&self, addr: SocketAddr) {
        let mut endpoints = self.endpoints.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(endpoint) = endpoints.iter_mut().find(|e| e.addr == addr) {
            endpoint.ejected_until = Some(Instant::now() + self.eject_for);
            tracing::warn!(upstream = self.name, %addr, "endpoint ejected");
        }
    }
}
