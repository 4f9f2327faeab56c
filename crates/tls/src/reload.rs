//! A TLS configuration rebuilt when its PEM files change.
//!
//! A task rereads the files every [`RELOAD_INTERVAL`] and compares their
//! bytes with what the current configuration was built from (not their
//! mtimes: a Kubernetes secret volume swaps a symlink, and a copy may keep
//! the old time). A set of files that does not build (a certificate written
//! before its key, a key that does not match) keeps the configuration in use
//! and is tried again on the next tick, so a renewal in two writes never
//! leaves the port without a certificate. The task ends with its owner.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::Duration,
};

/// How often certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

type Build<C> = dyn Fn(&[Vec<u8>]) -> anyhow::Result<C> + Send + Sync;

/// The configuration built from the files' latest good contents.
pub struct Reloading<C> {
    current: RwLock<Arc<C>>,
}

impl<C: Send + Sync + 'static> Reloading<C> {
    /// Builds the configuration from `files` now (failing when it does not
    /// build) and keeps it current while the result lives (`what` names it
    /// in logs and metrics).
    pub fn start(
        what: &'static str,
        files: Vec<PathBuf>,
        build: impl Fn(&[Vec<u8>]) -> anyhow::Result<C> + Send + Sync + 'static,
    ) -> anyhow::Result<Arc<Self>> {
        let contents = read_all(&files)?;
        let config = build(&contents)?;
        let this = Arc::new(Self { current: RwLock::new(Arc::new(config)) });
        // Without a runtime (a synchronous caller) the files are read once.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(what, Arc::downgrade(&this), files, contents, Box::new(build)));
        }
        Ok(this)
    }

    /// The configuration in use.
    pub fn current(&self) -> Arc<C> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

async fn watch<C>(
    what: &'static str,
    owner: Weak<Reloading<C>>,
    files: Vec<PathBuf>,
    mut built_from: Vec<Vec<u8>>,
    build: Box<Build<C>>,
) {
    let mut refused: Option<Vec<Vec<u8>>> = None;
    let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the files were read a moment ago.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(owner) = owner.upgrade() else { return };
        let paths = files.clone();
        let Ok(Ok(contents)) = tokio::task::spawn_blocking(move || read_all(&paths)).await else {
            continue;
        };
        if contents == built_from || refused.as_ref() == Some(&contents) {
            continue;
        }
        match build(&contents) {
            Ok(config) => {
                *owner.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
                built_from = contents;
                refused = None;
                metrics::counter!("folio_tls_reloads_total", "config" => what, "outcome" => "loaded").increment(1);
                tracing::info!(config = what, "TLS files changed; new connections use them");
            }
            Err(error) => {
                metrics::counter!("folio_tls_reloads_total", "config" => what, "outcome" => "refused").increment(1);
                tracing::warn!(config = what, %error, "changed TLS files do not build; keeping the ones in use");
                refused = Some(contents);
            }
        }
    }
}

fn read_all(files: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    files
        .iter()
        .map(|path| std::fs::read(path).map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display())))
        .collect()
}
