//! The newest events of the log, read once per instance for every stream
//! that has caught up with them.
//!
//! Without it each stream would read the log on its own whenever the head
//! moves: the database's work would grow with the number of streams times
//! the events written (a thousand filtered streams re-scanning the same
//! rows twenty times a second), and many watchers would take the database
//! from everyone else. With it, one task per instance reads each event
//! once, converts it once, and keeps the newest few thousand in memory;
//! a stream near the head filters them there, and only a stream further
//! behind than the buffer reads the log itself (its own catch-up, through
//! the bounded read turns of `EventHub`). With no stream open, it reads
//! nothing: writing events costs the write path alone.

use std::{
    collections::VecDeque,
    sync::{Arc, RwLock},
    time::Duration,
};

use folio_proto::ledger as pb;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::convert;
use crate::app::events::EventHub;
use crate::domain::EventKind;
use crate::store::events::{self, Bounds, EventFilter};

/// Events kept in memory per instance.
const CAPACITY: usize = 8192;
/// Events per read of the log.
const CHUNK: u64 = 1000;

/// One event as every stream sends it.
pub struct TailEvent {
    /// Its place in the order.
    pub position: i64,
    kind: EventKind,
    /// The message, converted once.
    pub message: pb::Event,
}

/// The buffer: every event after `start` up to `end`, in order (ids are
/// dense, so the event at `position` is at index `position - start - 1`).
struct Buffer {
    events: VecDeque<Arc<TailEvent>>,
    start: i64,
    end: i64,
}

/// What a stream at some position gets from the tail.
pub enum Slice {
    /// The position is older than the buffer: read the log.
    Behind,
    /// Retention deleted an event after the position.
    Expired,
    /// The matching events after the position, and the position they take
    /// the stream to (past events the filter left out).
    Events { events: Vec<Arc<TailEvent>>, upto: i64 },
}

/// Shared by the streams of one instance.
#[derive(Clone)]
pub struct Tail {
    buffer: Arc<RwLock<Buffer>>,
    end: watch::Receiver<i64>,
    /// The log's bounds as last polled: retention is checked against them,
    /// not against what the buffer still holds.
    bounds: watch::Receiver<Bounds>,
    /// How many times the log was seen going back to an earlier head.
    rewinds: watch::Receiver<u64>,
}

impl Tail {
    /// Starts following the log from its head now (older events are read
    /// by the streams that want them) until `shutdown`.
    pub fn start(db: DatabaseConnection, hub: EventHub, shutdown: CancellationToken) -> Self {
        let bounds = hub.bounds();
        let start = bounds.borrow().head;
        let buffer = Buffer { events: VecDeque::new(), start, end: start };
        let buffer = Arc::new(RwLock::new(buffer));
        let (publish, end) = watch::channel(start);
        let (rewound, rewinds) = watch::channel(0);
        let outputs = Outputs { publish, rewound };
        tokio::spawn(follow(db, hub, Arc::clone(&buffer), outputs, shutdown));
        Self { buffer, end, bounds, rewinds }
    }

    /// Changes when the log went back to an earlier head (its database was
    /// restored or failed over and lost its last commits): what streams
    /// were handed out past it is another history.
    pub fn rewinds(&self) -> watch::Receiver<u64> {
        self.rewinds.clone()
    }

    /// Wakes when new events are in the buffer.
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.end.clone()
    }

    /// Up to `limit` events after `position` that `filter` keeps.
    pub fn after(&self, position: i64, filter: &EventFilter, limit: usize) -> Slice {
        // An event the buffer still holds may be gone from the log: the
        // stream learns it as a reader of the log would (within a poll).
        if self.bounds.borrow().expired_after(position) {
            return Slice::Expired;
        }
        let buffer = self.buffer.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if position < buffer.start {
            return Slice::Behind;
        }
        let skip = usize::try_from(position - buffer.start).unwrap_or(usize::MAX);
        let mut events = Vec::new();
        let mut upto = buffer.end.max(position);
        for event in buffer.events.iter().skip(skip) {
            if events.len() == limit {
                upto = events.last().map_or(position, |e: &Arc<TailEvent>| e.position);
                break;
            }
            if filter.matches(event.kind, &event.message.account_ids) {
                events.push(Arc::clone(event));
            }
        }
        Slice::Events { events, upto }
    }
}

/// What the follower tells the streams.
struct Outputs {
    /// The buffer's new end.
    publish: watch::Sender<i64>,
    /// The log went back.
    rewound: watch::Sender<u64>,
}

async fn follow(
    db: DatabaseConnection,
    hub: EventHub,
    buffer: Arc<RwLock<Buffer>>,
    outputs: Outputs,
    shutdown: CancellationToken,
) {
    let Outputs { publish, rewound } = outputs;
    let (mut bounds, mut streams) = (hub.bounds(), hub.streams());
    let mut idle = false;
    loop {
        let watched = *streams.borrow_and_update() > 0;
        if !watched || idle {
            // Nobody watches: read nothing and keep nothing. When a stream
            // opens, start at the head as it is then (older events are that
            // stream's catch-up), not where the last stream left off.
            let head = bounds.borrow_and_update().head;
            {
                let mut buffer = buffer.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                buffer.events.clear();
                (buffer.start, buffer.end) = (head, head);
            }
            publish.send_replace(head);
            idle = !watched;
            if watched {
                continue;
            }
            tokio::select! {
                changed = streams.changed() => if changed.is_err() { return },
                () = shutdown.cancelled() => return,
            }
            continue;
        }
        let end = buffer.read().unwrap_or_else(std::sync::PoisonError::into_inner).end;
        let polled = bounds.borrow_and_update().head;
        if polled < end {
            // The head only grows on one database, but a poll may have
            // started before the read that took the buffer to `end`: ask
            // again before believing the log went back.
            match events::bounds(&db).await {
                Ok(now) if now.head < end => {
                    metrics::counter!("folio_ledger_event_log_rewound_total").increment(1);
                    tracing::error!(
                        head = now.head,
                        seen = end,
                        "the event log went back to an earlier head (database restored or failed over); \
                         ending the streams open here"
                    );
                    {
                        let mut buffer = buffer.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                        buffer.events.clear();
                        (buffer.start, buffer.end) = (now.head, now.head);
                    }
                    rewound.send_modify(|count| *count += 1);
                    publish.send_replace(now.head);
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "reading the log's bounds failed"),
            }
        }
        if polled > end {
            metrics::counter!("folio_ledger_event_log_reads_total", "by" => "tail").increment(1);
            let window = {
                let _turn = hub.read_turn().await;
                events::read(&db, end, CHUNK as i64, CHUNK, &EventFilter::default()).await
            };
            match window {
                Ok(window) => {
                    let new_end = take(&buffer, end, window);
                    publish.send_replace(new_end);
                }
                Err(error) => {
                    tracing::warn!(%error, "reading new events failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
            continue;
        }
        tokio::select! {
            changed = bounds.changed() => if changed.is_err() { return },
            changed = streams.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// Adds what a read after `end` found; the new end.
fn take(buffer: &RwLock<Buffer>, end: i64, window: events::Window) -> i64 {
    let converted: Vec<Arc<TailEvent>> = window
        .events
        .iter()
        .map(|e| Arc::new(TailEvent { position: e.position, kind: e.kind, message: convert::event(e) }))
        .collect();
    let mut buffer = buffer.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if window.expired_after(end) {
        // Retention passed what the buffer had (an outage longer than it):
        // start again from the oldest event kept.
        let restart = window.first_retained.map_or(window.head, |first| first - 1);
        buffer.events.clear();
        (buffer.start, buffer.end) = (restart, restart);
        return restart;
    }
    for event in converted {
        buffer.end = event.position;
        buffer.events.push_back(event);
    }
    while buffer.events.len() > CAPACITY {
        if let Some(oldest) = buffer.events.pop_front() {
            buffer.start = oldest.position;
        }
    }
    buffer.end
}
