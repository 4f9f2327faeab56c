//! What every event stream of one ledger instance shares: the log's bounds
//! (head and oldest retained event), polled once for all of them (an idle stream holds no connection and asks
//! nothing), a bound on how many streams read the log at once (so streams
//! never take the whole pool from unary calls), the stream caps, and
//! retention.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use folio_errors::{FolioError, Reason};
use sea_orm::DatabaseConnection;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::store::events::{self, Bounds};

/// Tuning of the event streams.
#[derive(Debug, Clone, Copy)]
pub struct EventSettings {
    /// How often the log's head is polled.
    pub poll_interval: Duration,
    /// A heartbeat after this long without a message.
    pub heartbeat: Duration,
    /// Streams reading the log at once.
    pub readers: usize,
    /// Open streams per principal.
    pub per_principal: usize,
    /// Open streams per instance.
    pub per_instance: usize,
    /// How often old events are deleted.
    pub prune_interval: Duration,
    /// Events kept this long.
    pub retention: Duration,
}

/// Shared by the streams of one instance.
#[derive(Clone)]
pub struct EventHub {
    bounds: watch::Receiver<Bounds>,
    streams: watch::Receiver<usize>,
    readers: Arc<Semaphore>,
    open: Arc<Mutex<OpenStreams>>,
    settings: EventSettings,
}

struct OpenStreams {
    total: usize,
    by_principal: HashMap<String, usize>,
    /// `total`, for whoever waits for the first stream (the tail).
    publish: watch::Sender<usize>,
}

impl OpenStreams {
    fn counted(&self) {
        metrics::gauge!("folio_ledger_event_streams").set(self.total as f64);
        self.publish.send_replace(self.total);
    }
}

/// One admitted stream; dropping it frees its place.
pub struct Admitted {
    open: Arc<Mutex<OpenStreams>>,
    principal: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_principal.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_principal.remove(&self.principal);
            }
        }
        open.counted();
    }
}

impl EventHub {
    /// Reads the log's bounds, then starts polling them and pruning the
    /// log until `shutdown`.
    pub async fn start(
        db: DatabaseConnection,
        settings: EventSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, sea_orm::DbErr> {
        let (publish, bounds) = watch::channel(events::bounds(&db).await?);
        let poll_db = db.clone();
        folio_runtime::tasks::spawn_every(settings.poll_interval, shutdown.clone(), move || {
            let (db, publish) = (poll_db.clone(), publish.clone());
            async move {
                match events::bounds(&db).await {
                    Ok(now) => {
                        publish.send_if_modified(|known| std::mem::replace(known, now) != now);
                    }
                    Err(error) => tracing::warn!(%error, "reading the event log's bounds failed"),
                }
            }
        });
        let retention = settings.retention;
        folio_runtime::tasks::spawn_every(settings.prune_interval, shutdown, move || {
            let db = db.clone();
            async move { prune(&db, retention).await }
        });
        let (publish, streams) = watch::channel(0);
        let open = Arc::new(Mutex::new(OpenStreams { total: 0, by_principal: HashMap::new(), publish }));
        Ok(Self { bounds, streams, readers: Arc::new(Semaphore::new(settings.readers.max(1))), open, settings })
    }

    /// The settings the streams follow.
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// A receiver of the log's bounds as last polled (its head, and the
    /// oldest event retention left).
    pub fn bounds(&self) -> watch::Receiver<Bounds> {
        self.bounds.clone()
    }

    /// A receiver of how many streams are open on this instance.
    pub fn streams(&self) -> watch::Receiver<usize> {
        self.streams.clone()
    }

    /// A turn to read the log.
    pub async fn read_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.readers.acquire().await.ok()
    }

    /// Admits one more stream of `principal`, or `RATE_LIMITED` past a cap.
    pub fn admit(&self, principal: &str) -> Result<Admitted, FolioError> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.total >= self.settings.per_instance {
            return Err(FolioError::new(
                Reason::RateLimited,
                "this ledger instance has as many event streams as it serves",
            )
            .with_metadata("limit", self.settings.per_instance.to_string()));
        }
        let mine = open.by_principal.get(principal).copied().unwrap_or(0);
        if mine >= self.settings.per_principal {
            return Err(FolioError::new(Reason::RateLimited, "too many event streams open for this caller")
                .with_metadata("limit", self.settings.per_principal.to_string()));
        }
        open.total += 1;
        *open.by_principal.entry(principal.to_owned()).or_default() += 1;
        open.counted();
        Ok(Admitted { open: Arc::clone(&self.open), principal: principal.to_owned() })
    }
}

/// Events deleted per statement.
const PRUNE_CHUNK: u64 = 10_000;

async fn prune(db: &DatabaseConnection, retention: Duration) {
    let now = match folio_storage::db::now(db).await {
        Ok(now) => now.timestamp_micros(),
        Err(error) => return tracing::warn!(%error, "event retention: reading the clock failed"),
    };
    let cutoff = now.saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
    loop {
        match events::prune(db, cutoff, PRUNE_CHUNK).await {
            Ok(deleted) => {
                metrics::counter!("folio_ledger_events_pruned_total").increment(deleted);
                if deleted < PRUNE_CHUNK {
                    return;
                }
            }
            Err(error) => return tracing::warn!(%error, "event retention: deleting old events failed"),
        }
    }
}
