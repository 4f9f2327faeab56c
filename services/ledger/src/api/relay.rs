//! The ledger's other outward face (DESIGN "Ledger events", relay): with
//! `FOLIO__LEDGER__EVENTS_NATS_URL` set, one relay among the ledger
//! instances publishes every event, in order, to the JetStream stream
//! `FOLIO_LEDGER_EVENTS`.
//!
//! Exactly once, in order, across broker outages and relay hand-overs: the
//! relay resumes after the last message the stream holds (its `Nats-Msg-Id`
//! is the event's cursor), and publishes each event with
//! `Nats-Expected-Last-Msg-Id` set to the previous event's cursor, so the
//! stream refuses anything that would not directly follow what it holds (a
//! second relay that still believes it leads, a publish retried after its
//! ack was lost). JetStream's duplicate window drops a repeat of a
//! `Nats-Msg-Id` too. The events stay in the database meanwhile: an outage
//! delays them and loses none (unless it outlasts the retention; then the
//! relay says so and goes on from the oldest event kept).
//!
//! Each read starts at the last event published and checks it is still
//! the log's event at that position: a database that went back to an
//! earlier point numbers new events from there again, and what follows the
//! stream's last event is then another history (`diverged`).
//!
//! Leadership is a lease row (`event_relay`) renewed while publishing, so it
//! works through a transaction pooler and on SQLite alike; the stream's own
//! checks keep a stale leader harmless.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{HeaderMap, HeaderValue};
use folio_proto::ledger as pb;
use prost::Message;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::convert;
use super::events::EventCursors;
use crate::app::events::EventHub;
use crate::domain::EventKind;
use crate::store::events::{self, EventFilter};

/// The JetStream stream the relay publishes to.
pub const STREAM: &str = "FOLIO_LEDGER_EVENTS";
/// Events per window read and published before acknowledgements are awaited.
const WINDOW: u64 = 256;
/// How long a relay's lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(10);

/// The subject of each event type.
pub fn subject(kind: EventKind) -> &'static str {
    match kind {
        EventKind::TransferPosted => "folio.ledger.events.transfer_posted",
        EventKind::TransferPending => "folio.ledger.events.transfer_pending",
        EventKind::PendingVoided => "folio.ledger.events.pending_voided",
        EventKind::PendingExpired => "folio.ledger.events.pending_expired",
        EventKind::AccountOpened => "folio.ledger.events.account_opened",
        EventKind::AccountStatusChanged => "folio.ledger.events.account_status_changed",
        EventKind::AccountLimitChanged => "folio.ledger.events.account_limit_changed",
    }
}

/// The relay of one ledger instance.
pub struct Relay {
    db: DatabaseConnection,
    cursors: EventCursors,
    hub: EventHub,
    url: String,
    holder: String,
}

impl Relay {
    /// Starts relaying to `url` until `shutdown`, whenever this instance
    /// holds the lease.
    pub fn spawn(
        db: DatabaseConnection,
        cursors: EventCursors,
        hub: EventHub,
        url: String,
        shutdown: CancellationToken,
    ) {
        let relay = Self { db, cursors, hub, url, holder: uuid::Uuid::new_v4().to_string() };
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let outcome = tokio::select! {
                    outcome = relay.lead() => outcome,
                    () = shutdown.cancelled() => return,
                };
                match outcome {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(error) => {
                        metrics::counter!("folio_ledger_relay_failures_total").increment(1);
                        tracing::warn!(error = %format!("{error:#}"), "the events relay stopped; it resumes from the stream's last message");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Takes or renews the lease; whether this instance leads.
    async fn hold_lease(&self) -> anyhow::Result<bool> {
        let now = folio_storage::db::now(&self.db).await?.timestamp_micros();
        let until = now.saturating_add(i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX));
        Ok(events::take_relay_lease(&self.db, &self.holder, now, until).await?)
    }

    /// While this instance holds the lease: connect, find where the stream
    /// ends, and publish what follows. Returns when the lease is lost.
    async fn lead(&self) -> anyhow::Result<()> {
        if !self.hold_lease().await? {
            return Ok(());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(self.url.as_str())
            .await?;
        let js = jetstream::new(client);
        let mut stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.to_owned(),
                subjects: vec!["folio.ledger.events.>".to_owned()],
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the stream: {e}"))?;
        let state = stream.info().await.map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?.state.clone();
        // Empty: new, or purged by an operator (its last sequence stays).
        let (mut position, mut last) = if state.messages == 0 {
            (self.earliest().await?, None)
        } else {
            let message = stream
                .get_raw_message(state.last_sequence)
                .await
                .map_err(|e| anyhow::anyhow!("reading its last message: {e}"))?;
            let cursor = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| anyhow::anyhow!("the stream's last message has no Nats-Msg-Id"))?;
            let position = self
                .cursors
                .position(&cursor)
                .map_err(|_| diverged("its last Nats-Msg-Id is not a cursor of this ledger".to_owned()))?;
            let event = pb::Event::decode(message.payload)
                .map_err(|e| anyhow::anyhow!("the stream's last message is not an Event: {e}"))?;
            (position, Some(Published { cursor, identity: Identity::of(&event) }))
        };
        let mut head = self.hub.bounds();
        loop {
            if !self.hold_lease().await? {
                return Ok(());
            }
            // From the last event published on, to check it is still the
            // log's before publishing what follows it.
            let from = if last.is_some() { position - 1 } else { position };
            let window = events::read(&self.db, from, WINDOW as i64 + 1, WINDOW + 1, &EventFilter::default()).await?;
            if window.expired_after(position) {
                metrics::counter!("folio_ledger_relay_events_lost_total").increment(1);
                tracing::error!(
                    position,
                    "events the relay had not published were deleted by retention; going on from the oldest kept"
                );
                position = self.earliest().await?;
                continue;
            }
            let mut fresh = window.events.as_slice();
            if let Some(published) = &last {
                match fresh.first() {
                    Some(first) if first.position == position => {
                        if Identity::of(&convert::event(first)) != published.identity {
                            return Err(diverged(format!("it holds another event at position {position}")));
                        }
                        fresh = &fresh[1..];
                    }
                    _ if window.head < position => {
                        return Err(diverged(format!(
                            "it holds position {position}, past the log's head {}",
                            window.head
                        )));
                    }
                    // Retention deleted it since: nothing to compare with.
                    _ => {}
                }
            }
            metrics::gauge!("folio_ledger_relay_diverged").set(0.0);
            let mut acks = Vec::with_capacity(fresh.len());
            for event in fresh {
                let cursor = self.cursors.cursor(event.position);
                let message = convert::event(event);
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", HeaderValue::from_lossy(&cursor));
                headers.insert("Folio-Schema", HeaderValue::from_lossy("folio.ledger.v1.Event"));
                if let Some(previous) = &last {
                    headers.insert("Nats-Expected-Last-Msg-Id", HeaderValue::from_lossy(&previous.cursor));
                }
                let identity = Identity::of(&message);
                acks.push(js.publish_with_headers(subject(event.kind), headers, message.encode_to_vec().into()).await?);
                last = Some(Published { cursor, identity });
            }
            for ack in acks {
                ack.await.map_err(|e| anyhow::anyhow!("publishing: {e}"))?;
            }
            metrics::counter!("folio_ledger_relay_published_total").increment(fresh.len() as u64);
            // Unfiltered and dense: the window is every id after `position`
            // up to the head, or the first WINDOW of them.
            position = fresh.last().map_or(position, |e| e.position);
            if position >= window.head {
                let _ = tokio::time::timeout(LEASE / 4, head.changed()).await;
            }
        }
    }

    /// Just before the oldest event kept.
    async fn earliest(&self) -> anyhow::Result<i64> {
        let bounds = events::bounds(&self.db).await?;
        Ok(bounds.first_retained.map_or(bounds.head, |first| first - 1))
    }
}

/// The last event the stream holds, as the relay published it.
struct Published {
    cursor: String,
    identity: Identity,
}

/// What tells one event from another at the same position: its type, time
/// and the record it is about.
#[derive(PartialEq)]
struct Identity {
    kind: i32,
    occurred_at: Option<prost_types::Timestamp>,
    record: String,
}

impl Identity {
    fn of(event: &pb::Event) -> Self {
        let record = match &event.change {
            Some(pb::event::Change::Transfer(change)) => {
                change.transfer.as_ref().map(|t| t.id.clone()).unwrap_or_default()
            }
            Some(pb::event::Change::Account(change)) => format!("{}@{}", change.account_id, change.version),
            None => String::new(),
        };
        Self { kind: event.r#type, occurred_at: event.occurred_at, record }
    }
}

/// The stream holds an event this database does not have at that position
/// (or has none there yet): the database went back to an earlier point
/// (restored from a backup, or failed over before its last commits reached
/// the standby), or the stream was filled from another database. Publishing
/// would skip the events that now take those positions, or give new events
/// the ids of ones consumers already hold; the relay publishes nothing until
/// an operator deletes the stream (consumers then start again from the
/// earliest event and reconcile).
fn diverged(how: String) -> anyhow::Error {
    metrics::gauge!("folio_ledger_relay_diverged").set(1.0);
    tracing::error!(
        stream = STREAM,
        how,
        "the JetStream stream's last event is not this event log's: the database went back to an earlier point \
         or the stream holds another database's events; publishing nothing until the stream is deleted"
    );
    anyhow::anyhow!("the stream and the event log disagree: {how}")
}
