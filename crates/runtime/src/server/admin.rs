//! The admin HTTP listener: `/metrics` (Prometheus text), `/healthz`, and any
//! routes a service adds (auth: `/.well-known/jwks.json`).

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, http::StatusCode, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; several
/// services in one test process share it).
pub fn prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// The name of the thread that does it (tests look for it).
pub const UPKEEP_THREAD: &str = "metrics-upkeep";

/// `install_recorder` (unlike `install`) runs no upkeep: every histogram
/// sample is kept until the next scrape drains it, so a process nobody
/// scrapes grows by every sample it records (tens of bytes a call). A thread
/// of its own (no runtime needed) drains them on a timer.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name(UPKEEP_THREAD.to_owned()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread not started; histograms grow until scraped");
    }
}

/// `true` while the service serves; `false` once draining.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the service ready or draining.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The admin router: the built-in routes merged with `extra`.
pub fn router(readiness: Readiness, extra: Router) -> Router {
    let handle = prometheus();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    match handle {
                        Some(handle) => (StatusCode::OK, handle.render()),
                        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable\n".to_owned()),
                    }
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    if readiness.get() {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                    }
                }
            }),
        )
        .merge(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without upkeep every histogram sample stays in memory until a scrape:
    /// the recorder must come with the thread that drains them.
    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        assert!(prometheus().is_some(), "the recorder installs");
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .map(|tasks| {
                    tasks
                        .filter_map(Result::ok)
                        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                        .map(|name| name.trim().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        // A new thread names itself once it runs: give it a moment.
        for _ in 0..100 {
            if names().iter().any(|name| name == UPKEEP_THREAD) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no {UPKEEP_THREAD} thread among {:?}", names());
    }
}
