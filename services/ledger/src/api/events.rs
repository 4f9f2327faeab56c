//! `LedgerService.StreamEvents` (DESIGN "Ledger events"): who may watch,
//! where a stream starts, and the loop that feeds one stream: read the log
//! when its head moves, heartbeat when idle, end on its token's revocation
//! or expiry, on drain, or when retention overtook it.

use std::time::Duration;

use folio_errors::{Failure, FolioError, Reason};
use folio_proto::ledger as pb;
use folio_storage::paging::PageTokens;
use folio_tokens::{TokenVerifier, principal};
use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

use super::tail::{Slice, Tail};
use super::{convert, ledger::fail, parse};
use crate::app::events::{Admitted, EventHub};
use crate::domain::{Actor, EventKind};
use crate::store::events::EventFilter;
use crate::store::{accounts, events};

/// The stream `StreamEvents` answers with.
pub type EventStream = ReceiverStream<Result<pb::StreamEventsResponse, Status>>;

/// Events per read of the log at most.
const READ_LIMIT: u64 = 500;
/// Positions one read looks through at most (bounds a filtered read).
const READ_SCAN: i64 = 10_000;
/// How often a stream checks that its token still holds (DESIGN: ended
/// within 5 s of revocation, with the verifier's 1 s revocation poll).
const TOKEN_CHECK: Duration = Duration::from_secs(1);

/// Event cursors: a position sealed with the key every instance shares,
/// so a consumer may resume on any instance, and the relay's `Nats-Msg-Id`.
#[derive(Clone)]
pub struct EventCursors {
    tokens: PageTokens,
}

impl EventCursors {
    /// Cursors sealed with `tokens`' key.
    pub fn new(tokens: PageTokens) -> Self {
        Self { tokens }
    }

    /// The cursor of the position after event `position`.
    pub fn cursor(&self, position: i64) -> String {
        self.tokens.seal(&format!("ev:{position}"))
    }

    /// The position `cursor` names; `INVALID_FIELD` for anything else.
    pub fn position(&self, cursor: &str) -> Result<i64, FolioError> {
        let invalid = || FolioError::invalid_field("cursor", "is not a cursor this service issued");
        let text = self.tokens.open("cursor", cursor)?;
        text.strip_prefix("ev:").and_then(|p| p.parse::<i64>().ok()).filter(|p| *p >= 0).ok_or_else(invalid)
    }
}

/// Serves event streams.
#[derive(Clone)]
pub struct EventStreams {
    db: DatabaseConnection,
    cursors: EventCursors,
    hub: EventHub,
    tail: Tail,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
}

/// One stream's fixed inputs.
struct Watch {
    filter: EventFilter,
    token: String,
    /// When the token expires (Unix seconds).
    expires_at: i64,
    position: i64,
    _admitted: Admitted,
}

impl EventStreams {
    /// Streams from the primary `db` (never a replica: a stream must not go
    /// back in time), sealing cursors with `cursors`.
    pub fn new(
        db: DatabaseConnection,
        cursors: EventCursors,
        hub: EventHub,
        tail: Tail,
        verifier: TokenVerifier,
        shutdown: CancellationToken,
    ) -> Self {
        Self { db, cursors, hub, tail, verifier, shutdown }
    }

    /// Checks the request and starts its stream.
    pub async fn open(&self, actor: &Actor, request: Request<pb::StreamEventsRequest>) -> Result<EventStream, Status> {
        let token = bearer(&request).ok_or_else(|| fail(FolioError::new(Reason::TokenMissing, "no bearer token")))?;
        let expires_at = principal(&request).map_err(fail)?.expires_at;
        let pb::StreamEventsRequest { cursor, start_position, account_id, event_types } = request.into_inner();
        let filter = self.filter(actor, &account_id, &event_types).await.map_err(fail)?;
        let admitted = self.hub.admit(&actor.subject).map_err(fail)?;
        let position = match cursor.as_str() {
            "" => self.start(start_position).await?,
            cursor => self.resume(cursor).await?,
        };
        let (sender, receiver) = mpsc::channel(2);
        let watch = Watch { filter, token, expires_at, position, _admitted: admitted };
        tokio::spawn(self.clone().feed(watch, sender));
        Ok(ReceiverStream::new(receiver))
    }

    async fn filter(&self, actor: &Actor, account_id: &str, types: &[i32]) -> Result<EventFilter, Failure> {
        let kinds = types.iter().map(|t| event_kind(*t)).collect::<Result<Vec<_>, _>>()?;
        let account_id = if account_id.is_empty() { None } else { Some(parse::uuid("account_id", account_id)?) };
        if !actor.may_read_all() {
            let Some(account) = &account_id else {
                return Err(FolioError::new(
                    Reason::MissingRole,
                    "watching every account needs the operator role or the ledger:read scope; set account_id",
                )
                .into());
            };
            // Ownership on the primary (DESIGN §6: never on a replica).
            let (account, _) = accounts::account(&self.db, account).await?;
            actor.may_read(&account.owner_id)?;
        }
        Ok(EventFilter { account_id, kinds })
    }

    async fn start(&self, start: i32) -> Result<i64, Status> {
        let start = pb::StartPosition::try_from(start)
            .map_err(|_| fail(FolioError::invalid_field("start_position", "is not a StartPosition")))?;
        let bounds = events::bounds(&self.db).await.map_err(db_failure)?;
        Ok(match start {
            pb::StartPosition::Earliest => bounds.first_retained.map_or(bounds.head, |first| first - 1),
            pb::StartPosition::Latest | pb::StartPosition::Unspecified => bounds.head,
        })
    }

    /// The position `cursor` names, unless retention overtook it or the
    /// log no longer reaches it.
    async fn resume(&self, cursor: &str) -> Result<i64, Status> {
        let position = self.position(cursor).map_err(fail)?;
        let bounds = events::bounds(&self.db).await.map_err(db_failure)?;
        if bounds.expired_after(position) {
            return Err(expired());
        }
        // The head only grows and every cursor handed out was at most the
        // head then (read from the primary), so a cursor past it was issued
        // by a history this database lost: restored to an earlier point, or
        // failed over before its last commits reached the standby. The
        // events that take those positions now are not the ones the
        // consumer saw; waiting for them would skip them silently.
        if position > bounds.head {
            return Err(fail(FolioError::invalid_field(
                "cursor",
                "is past the newest event this ledger holds (its database went back to an earlier point); \
                 start again from START_POSITION_EARLIEST and reconcile with ListTransfers",
            )));
        }
        Ok(position)
    }

    fn cursor(&self, position: i64) -> String {
        self.cursors.cursor(position)
    }

    fn position(&self, cursor: &str) -> Result<i64, FolioError> {
        self.cursors.position(cursor)
    }

    /// Feeds one stream until it ends; its last message says why.
    async fn feed(self, mut watch: Watch, sender: mpsc::Sender<Result<pb::StreamEventsResponse, Status>>) {
        let token = std::mem::take(&mut watch.token);
        let expires_at = watch.expires_at;
        let ended = tokio::select! {
            ended = self.deliver(&mut watch, &sender) => ended,
            ended = self.guard(&token, expires_at) => ended,
            () = sender.closed() => return,
        };
        if let Err(status) = ended {
            // The consumer may not be reading; it does not hold this task up for long.
            let _ = tokio::time::timeout(Duration::from_secs(5), sender.send(Err(status))).await;
        }
    }

    /// Ends with the token's failure (revoked; expired, at its `exp`) or on drain.
    async fn guard(&self, token: &str, expires_at: i64) -> Result<(), Status> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let left = expires_at.saturating_sub(i64::try_from(now).unwrap_or(i64::MAX));
        let expiry = Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0));
        loop {
            tokio::select! {
                () = tokio::time::sleep(TOKEN_CHECK) => {}
                () = sleep_until(expiry) => {
                    return Err(fail(FolioError::new(Reason::TokenExpired, "the access token has expired; reconnect with a fresh one and your cursor")));
                }
                () = self.shutdown.cancelled() => return Err(draining()),
            }
            self.verifier.verify(token).await.map_err(fail)?;
        }
    }

    async fn deliver(
        &self,
        watch: &mut Watch,
        sender: &mpsc::Sender<Result<pb::StreamEventsResponse, Status>>,
    ) -> Result<(), Status> {
        let heartbeat = self.hub.settings().heartbeat;
        let mut changes = self.tail.changes();
        let mut rewinds = self.tail.rewinds();
        rewinds.mark_unchanged();
        let send = |position: i64, event: Option<pb::Event>| {
            sender.send(Ok(pb::StreamEventsResponse { cursor: self.cursor(position), event }))
        };
        send(watch.position, None).await.map_err(|_| gone())?;
        let mut quiet_until = Instant::now() + heartbeat;
        loop {
            // What this stream handed out may be a history the log no
            // longer has; the consumer reconnects, and a cursor past the
            // head is then refused.
            if rewinds.has_changed().unwrap_or(false) {
                return Err(rewound());
            }
            let end = *changes.borrow_and_update();
            let more = match self.tail.after(watch.position, &watch.filter, READ_LIMIT as usize) {
                Slice::Expired => return Err(expired()),
                Slice::Events { events, upto } => {
                    for event in &events {
                        watch.position = event.position;
                        send(event.position, Some(event.message.clone())).await.map_err(|_| gone())?;
                        quiet_until = Instant::now() + heartbeat;
                    }
                    // Past what the filter left out; the next heartbeat hands it out.
                    watch.position = watch.position.max(upto);
                    watch.position < end
                }
                Slice::Behind => {
                    let (sent, more) = self.catch_up(watch, &send).await?;
                    if sent {
                        quiet_until = Instant::now() + heartbeat;
                    }
                    more
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                changed = changes.changed() => changed.map_err(|_| draining())?,
                changed = rewinds.changed() => return Err(if changed.is_ok() { rewound() } else { draining() }),
                () = sleep_until(quiet_until) => {
                    send(watch.position, None).await.map_err(|_| gone())?;
                    quiet_until = Instant::now() + heartbeat;
                }
            }
        }
    }

    /// One read of the log for a stream older than the tail's buffer:
    /// whether it sent anything, and whether there is more to read.
    async fn catch_up<F, Fut>(&self, watch: &mut Watch, send: &F) -> Result<(bool, bool), Status>
    where
        F: Fn(i64, Option<pb::Event>) -> Fut,
        Fut: std::future::Future<Output = Result<(), mpsc::error::SendError<Result<pb::StreamEventsResponse, Status>>>>,
    {
        let after = watch.position;
        metrics::counter!("folio_ledger_event_log_reads_total", "by" => "catch_up").increment(1);
        let window = {
            let _turn = self.hub.read_turn().await;
            events::read(&self.db, after, READ_SCAN, READ_LIMIT, &watch.filter).await.map_err(db_failure)?
        };
        if window.expired_after(after) {
            return Err(expired());
        }
        for event in &window.events {
            watch.position = event.position;
            send(event.position, Some(convert::event(event))).await.map_err(|_| gone())?;
        }
        if (window.events.len() as u64) < READ_LIMIT {
            // Everything up to here was looked at (the filter kept the rest back).
            watch.position = watch.position.max(window.head.min(after.saturating_add(READ_SCAN)));
        }
        Ok((!window.events.is_empty(), watch.position < window.head))
    }
}

/// The bearer token of the call (the stream re-checks it while it lasts).
fn bearer<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
}

fn event_kind(value: i32) -> Result<EventKind, FolioError> {
    let invalid = || FolioError::invalid_field("event_types", "holds a value that is not an EventType");
    let kind = match pb::EventType::try_from(value).map_err(|_| invalid())? {
        pb::EventType::Unspecified => return Err(invalid()),
        pb::EventType::TransferPosted => EventKind::TransferPosted,
        pb::EventType::TransferPending => EventKind::TransferPending,
        pb::EventType::PendingVoided => EventKind::PendingVoided,
        pb::EventType::PendingExpired => EventKind::PendingExpired,
        pb::EventType::AccountOpened => EventKind::AccountOpened,
        pb::EventType::AccountStatusChanged => EventKind::AccountStatusChanged,
        pb::EventType::AccountLimitChanged => EventKind::AccountLimitChanged,
    };
    Ok(kind)
}

fn db_failure(error: sea_orm::DbErr) -> Status {
    fail(Failure::from(error))
}

fn expired() -> Status {
    fail(FolioError::new(
        Reason::CursorExpired,
        "events after this cursor were deleted by retention; start again from the earliest",
    ))
}

/// The consumer went away (nothing left to tell it).
fn gone() -> Status {
    Status::cancelled("the consumer went away")
}

fn rewound() -> Status {
    fail(FolioError::new(
        Reason::DependencyUnavailable,
        "the event log went back to an earlier point (its database was restored or failed over); \
         reconnect with your cursor, or start again from the earliest if it is refused",
    ))
}

fn draining() -> Status {
    fail(FolioError::new(Reason::Overloaded, "the ledger is draining; reconnect with your cursor"))
}
