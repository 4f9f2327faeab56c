//! Reads from a hot standby that never go back in time for a caller
//! (DESIGN §6, "Reads from replicas").
//!
//! A write's answer carries [`ReadAfter`] (on PostgreSQL, with or without a
//! replica), the primary's WAL position once the write committed; a read that hands it back is served by the replica
//! only once the replica has replayed past it (waiting up to
//! [`MAX_READ_WAIT`]), else by the primary. A read without it goes to the
//! replica only while the replica trails by at most `read_max_lag_ms`.
//!
//! How far the replica trails is measured, not trusted: a monitor samples
//! the primary's WAL position with the time it took it, and the replica's
//! replayed position; the replica holds everything the primary had at the
//! newest sample at or below its replayed position, so its staleness is at
//! most the age of that sample (plus one sampling interval). A replica that
//! cannot be asked, or whose answers are older than a few intervals, is not
//! read at all: every read goes to the primary until it answers again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the monitor samples the primary and the replica.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// The longest a read with a position waits for the replica to replay past
/// it before it goes to the primary.
pub const MAX_READ_WAIT: Duration = Duration::from_millis(250);
/// Samples older than this are no longer kept: a replica further behind
/// than every kept sample counts as too far behind.
const HISTORY: Duration = Duration::from_secs(30);
/// A replica state older than this many intervals is not believed.
const STALE_AFTER_INTERVALS: u32 = 10;

/// The header and trailer of a write's answer, and the header of a read
/// that must see at least that state.
pub const READ_AFTER_HEADER: &str = "x-folio-read-after";

/// A position in the primary's write-ahead log (PostgreSQL's `pg_lsn`),
/// written as PostgreSQL writes it (`16/B374D848`). Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadAfter(u64);

impl ReadAfter {
    /// Parses `hi/lo` (each at most 8 hex digits); `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (hi, lo) = text.split_once('/')?;
        let part = |s: &str| {
            (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(Self((part(hi)? << 32) | part(lo)?))
    }

    /// The later of two positions.
    pub fn max(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        a.into_iter().chain(b).max()
    }
}

impl std::fmt::Display for ReadAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Where a read runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The primary: always current.
    Primary,
    /// The hot standby: "now" there is its last replayed commit.
    Replica,
}

/// What the monitor last learned of the replica.
#[derive(Debug, Clone, Copy)]
struct ReplicaState {
    /// When it was learned.
    at: Instant,
    /// The replica's replayed position.
    replayed: ReadAfter,
    /// At most this far behind the primary; `None`: further than we know.
    lag: Option<Duration>,
}

/// The primary and, when configured, a replica for reads that may trail.
#[derive(Clone)]
pub struct Reads {
    primary: DatabaseConnection,
    replica: Option<Replica>,
    /// The newest primary position learned, with when it was asked for.
    latest: Arc<Mutex<Option<(Instant, ReadAfter)>>>,
    /// One position question in flight at a time: every write that
    /// committed before it was asked shares its answer.
    asking: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone)]
struct Replica {
    db: DatabaseConnection,
    max_lag: Duration,
    state: watch::Receiver<Option<ReplicaState>>,
}

impl Reads {
    /// Every read on the primary.
    pub fn primary_only(primary: DatabaseConnection) -> Self {
        Self { primary, replica: None, latest: Arc::default(), asking: Arc::default() }
    }

    /// Reads on `replica` where they may be, watched until `shutdown`.
    pub fn with_replica(
        primary: DatabaseConnection,
        replica: DatabaseConnection,
        max_lag: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, state) = watch::channel(None);
        let latest = Arc::default();
        tokio::spawn(monitor(primary.clone(), replica.clone(), tx, Arc::clone(&latest), shutdown));
        let replica = Some(Replica { db: replica, max_lag, state });
        Self { primary, replica, latest, asking: Arc::default() }
    }

    /// The primary (writes, and reads that must never trail).
    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    /// Where a read that must see at least `after` runs now: the replica
    /// when it has replayed past `after` (waiting up to [`MAX_READ_WAIT`])
    /// or, without `after`, when it trails by at most the configured lag.
    pub async fn route(&self, after: Option<ReadAfter>) -> (&DatabaseConnection, Source) {
        let Some(replica) = &self.replica else {
            return (&self.primary, Source::Primary);
        };
        let (source, why) = replica.choose(after).await;
        metrics::counter!("folio_db_reads_total", "source" => source_label(source), "why" => why).increment(1);
        match source {
            Source::Replica => (&replica.db, Source::Replica),
            Source::Primary => (&self.primary, Source::Primary),
        }
    }

    /// Runs `read` where [`Reads::route`] says; a replica answer that
    /// `retry_on_primary` rejects (a `NOT_FOUND` the replica may not have
    /// caught up with, a query cancelled by a recovery conflict, a lost
    /// connection) is asked again of the primary.
    pub async fn run<T, E, F, Fut>(
        &self,
        after: Option<ReadAfter>,
        retry_on_primary: impl Fn(&E) -> bool,
        read: F,
    ) -> Result<T, E>
    where
        F: Fn(DatabaseConnection, Source) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let (db, source) = self.route(after).await;
        let result = read(db.clone(), source).await;
        match result {
            Err(error) if source == Source::Replica && retry_on_primary(&error) => {
                metrics::counter!("folio_db_reads_total", "source" => "primary", "why" => "replica_answer_retried")
                    .increment(1);
                read(self.primary.clone(), Source::Primary).await
            }
            other => other,
        }
    }

    /// The position to answer a write that committed at `committed` with
    /// (PostgreSQL; SQLite has no replicas and no positions): a primary
    /// position asked for after that moment, so at or past the commit.
    /// One question is in flight at a time and its answer serves every
    /// write that committed before it was asked (and the monitor's samples
    /// serve many), so a busy ledger asks about once per round trip, not
    /// once per write.
    pub async fn position_after(&self, committed: Instant) -> Result<Option<ReadAfter>, DbErr> {
        if self.primary.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
            return Ok(None);
        }
        let known_since = |latest: &Mutex<Option<(Instant, ReadAfter)>>| {
            latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .filter(|(asked, _)| *asked >= committed)
                .map(|(_, position)| position)
        };
        if let Some(position) = known_since(&self.latest) {
            return Ok(Some(position));
        }
        let _turn = self.asking.lock().await;
        // The question before ours may have been asked after our commit.
        if let Some(position) = known_since(&self.latest) {
            return Ok(Some(position));
        }
        let asked = Instant::now();
        let position = primary_position(&self.primary).await?;
        remember(&self.latest, asked, position);
        Ok(Some(position))
    }
}

impl Replica {
    async fn choose(&self, after: Option<ReadAfter>) -> (Source, &'static str) {
        let mut state = self.state.clone();
        let fresh = |s: &Option<ReplicaState>| s.filter(|s| s.at.elapsed() < SAMPLE_INTERVAL * STALE_AFTER_INTERVALS);
        let Some(now) = fresh(&state.borrow()) else {
            return (Source::Primary, "replica_unknown");
        };
        if now.lag.is_none_or(|lag| lag > self.max_lag) {
            return (Source::Primary, "replica_behind");
        }
        let Some(after) = after else {
            return (Source::Replica, "within_lag");
        };
        if now.replayed >= after {
            return (Source::Replica, "replayed");
        }
        let caught_up =
            tokio::time::timeout(MAX_READ_WAIT, state.wait_for(|s| fresh(s).is_some_and(|s| s.replayed >= after)))
                .await;
        match caught_up {
            Ok(Ok(_)) => (Source::Replica, "waited"),
            _ => (Source::Primary, "replay_wait_timed_out"),
        }
    }
}

fn source_label(source: Source) -> &'static str {
    match source {
        Source::Primary => "primary",
        Source::Replica => "replica",
    }
}

/// Samples both sides every [`SAMPLE_INTERVAL`] until `shutdown`.
async fn monitor(
    primary: DatabaseConnection,
    replica: DatabaseConnection,
    state: watch::Sender<Option<ReplicaState>>,
    latest: Arc<Mutex<Option<(Instant, ReadAfter)>>>,
    shutdown: CancellationToken,
) {
    let mut history: VecDeque<(Instant, ReadAfter)> = VecDeque::new();
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let asked = Instant::now();
        match primary_position(&primary).await {
            Ok(position) => {
                history.push_back((asked, position));
                remember(&latest, asked, position);
            }
            Err(error) => warn_throttled(&mut warned, "sampling the primary's WAL position failed", &error),
        }
        while history.front().is_some_and(|(at, _)| at.elapsed() > HISTORY) {
            history.pop_front();
        }
        match lsn(&replica, "SELECT pg_last_wal_replay_lsn()::text AS lsn").await {
            Ok(replayed) => {
                // The newest sample the replica has reached: everything the
                // primary had then, the replica has now.
                let reached = history.iter().rev().find(|(_, position)| *position <= replayed);
                let lag = reached.map(|(at, _)| at.elapsed());
                match lag {
                    Some(lag) => metrics::gauge!("folio_db_replica_lag_seconds").set(lag.as_secs_f64()),
                    None => metrics::gauge!("folio_db_replica_lag_seconds").set(HISTORY.as_secs_f64()),
                }
                state.send_replace(Some(ReplicaState { at: Instant::now(), replayed, lag }));
            }
            Err(error) => {
                state.send_replace(None);
                warn_throttled(
                    &mut warned,
                    "asking the replica how far it replayed failed; reading from the primary",
                    &error,
                );
            }
        }
    }
}

/// The primary's WAL position now: at or past every commit already
/// acknowledged, so a replica that replayed past it shows them all.
async fn primary_position(db: &impl ConnectionTrait) -> Result<ReadAfter, DbErr> {
    lsn(db, "SELECT pg_current_wal_lsn()::text AS lsn").await
}

/// Keeps the newest answer (answers may arrive out of order).
fn remember(latest: &Mutex<Option<(Instant, ReadAfter)>>, asked: Instant, position: ReadAfter) {
    let mut latest = latest.lock().unwrap_or_else(PoisonError::into_inner);
    if latest.is_none_or(|(at, _)| at < asked) {
        *latest = Some((asked, position));
    }
}

fn warn_throttled(last: &mut Option<Instant>, what: &str, error: &DbErr) {
    if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
        *last = Some(Instant::now());
        tracing::warn!(%error, "{what}");
    }
}

async fn lsn(db: &impl ConnectionTrait, sql: &str) -> Result<ReadAfter, DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("WAL position".to_owned()))?;
    let text: Option<String> = row.try_get("", "lsn")?;
    // NULL from pg_last_wal_replay_lsn(): not a standby (or not replaying).
    let text = text.ok_or_else(|| DbErr::Custom("no WAL position (is it a standby?)".to_owned()))?;
    ReadAfter::parse(&text).ok_or_else(|| DbErr::Custom(format!("unreadable WAL position {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::ReadAfter;

    #[test]
    fn positions_read_and_print_as_postgres_writes_them() {
        let position = ReadAfter::parse("16/B374D848").unwrap();
        assert_eq!(position.to_string(), "16/B374D848");
        assert!(ReadAfter::parse("0/1").unwrap() < ReadAfter::parse("0/2").unwrap());
        assert!(ReadAfter::parse("0/FFFFFFFF").unwrap() < ReadAfter::parse("1/0").unwrap());
        for bad in ["", "/", "16", "16/", "/1", "g/1", "123456789/0", "1/2/3", "-1/0", " 1/0"] {
            assert!(ReadAfter::parse(bad).is_none(), "{bad:?}");
        }
    }
}
