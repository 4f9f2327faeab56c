//! The event log (DESIGN "Ledger events"): appending a transaction's events
//! and reading them back in order.
//!
//! Why a reader never hands out a cursor past an event that has not
//! committed yet: an event's id is not taken from a sequence (sequence
//! values are taken in one order and committed in another, so a reader
//! could see id 7 committed while id 6 is still in flight, hand out "after
//! 7", and never see 6). Instead the writing transaction, as its LAST
//! statement, moves `event_log.last_position` forward by its number of
//! events and numbers them from the old value. The row lock that update
//! takes is held until the transaction ends, so the next writer numbers
//! its events only after this one committed (or rolled back, taking its
//! numbers with it). Ids are therefore dense and committed in id order:
//! in any one snapshot that shows `last_position = H`, every event up to
//! H is visible and none above it is, on PostgreSQL with any number of
//! ledger instances as on SQLite. A reader reads the window and H in one
//! statement, so it may hand out any position up to H.
//!
//! The order is consistent with each account's `account_sequence`: a
//! transaction writing an account's next entry holds that account's row
//! lock, which the previous writer of the account released only by
//! committing, after it had numbered its events.
//!
//! The cost is that the last statement and the commit of event-writing
//! transactions take turns (each batch of transfers, not each transfer;
//! everything before the last statement still overlaps). Every writer takes
//! this lock after all its row locks, so it adds no deadlock.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use super::{TRANSFER_COLUMNS, execute, query_all, query_native, totals_from_row, transfer_from_row};
use crate::domain::{
    AccountStatus, Change, EventKind, EventSide, NewEvent, RecordedBody, RecordedEvent, Status, Transfer,
};

/// Appends `events` to the log, numbered after its head. Call it as the
/// last statement of the transaction that made the changes.
pub async fn append(db: &impl ConnectionTrait, events: &[NewEvent]) -> Result<(), DbErr> {
    // The benchmark's comparison build (see the crate's features) only.
    if events.is_empty() || cfg!(feature = "bench-without-events") {
        return Ok(());
    }
    let rows: Vec<Row<'_>> = events.iter().map(Row::from).collect();
    match db.get_database_backend() {
        DbBackend::Postgres => append_postgres(db, &rows).await,
        _ => append_sqlite(db, &rows).await,
    }
}

/// An event as stored; account fields are zero for transfer events and
/// transfer fields zero or empty for account events.
struct Row<'a> {
    kind: i16,
    occurred_at: i64,
    transfer_id: &'a str,
    transfer_status: i16,
    debit: (&'a str, i64),
    credit: (&'a str, i64),
    account_id: &'a str,
    account_status: i16,
    overdraft_limit: i64,
    version: i64,
}

impl<'a> From<&'a NewEvent> for Row<'a> {
    fn from(event: &'a NewEvent) -> Self {
        let blank = Row {
            kind: event.kind as i16,
            occurred_at: event.occurred_at,
            transfer_id: "",
            transfer_status: 0,
            debit: ("", 0),
            credit: ("", 0),
            account_id: "",
            account_status: 0,
            overdraft_limit: 0,
            version: 0,
        };
        match &event.change {
            Change::Transfer { id, status, debit, credit } => Row {
                transfer_id: id,
                transfer_status: *status as i16,
                debit: (&debit.account_id, debit.account_sequence),
                credit: (&credit.account_id, credit.account_sequence),
                ..blank
            },
            Change::Account { id, status, overdraft_limit, version } => Row {
                account_id: id,
                account_status: *status as i16,
                overdraft_limit: *overdraft_limit,
                version: *version,
                ..blank
            },
        }
    }
}

const INSERT_COLUMNS: &str = "id, type, occurred_at, transfer_id, transfer_status, debit_account_id, debit_sequence, \
     credit_account_id, credit_sequence, account_id, account_status, overdraft_limit, version";

/// One statement: the head moves and the events are numbered from its old
/// value (`''` travels for NULL ids, as in `postgres.rs`).
async fn append_postgres(db: &impl ConnectionTrait, rows: &[Row<'_>]) -> Result<(), DbErr> {
    let sql = format!(
        "WITH head AS ( \
           UPDATE event_log SET last_position = last_position + $1::int8 WHERE id = 1 \
           RETURNING last_position - $1::int8 AS base) \
         INSERT INTO events ({INSERT_COLUMNS}) \
         SELECT head.base + e.n, e.kind, e.at, NULLIF(e.transfer, ''), e.tstatus, NULLIF(e.debit, ''), e.dseq, \
                NULLIF(e.credit, ''), e.cseq, NULLIF(e.account, ''), e.astatus, e.lim, e.version \
         FROM head, unnest($2::int2[], $3::int8[], $4::text[], $5::int2[], $6::text[], $7::int8[], $8::text[], \
                           $9::int8[], $10::text[], $11::int2[], $12::int8[], $13::int8[]) WITH ORDINALITY \
              AS e(kind, at, transfer, tstatus, debit, dseq, credit, cseq, account, astatus, lim, version, n)"
    );
    let text = |f: fn(&Row<'_>) -> String| Value::from(rows.iter().map(f).collect::<Vec<String>>());
    let bigint = |f: fn(&Row<'_>) -> i64| Value::from(rows.iter().map(f).collect::<Vec<i64>>());
    let smallint = |f: fn(&Row<'_>) -> i16| Value::from(rows.iter().map(f).collect::<Vec<i16>>());
    let values = vec![
        i64::try_from(rows.len()).unwrap_or(i64::MAX).into(),
        smallint(|r| r.kind),
        bigint(|r| r.occurred_at),
        text(|r| r.transfer_id.to_owned()),
        smallint(|r| r.transfer_status),
        text(|r| r.debit.0.to_owned()),
        bigint(|r| r.debit.1),
        text(|r| r.credit.0.to_owned()),
        bigint(|r| r.credit.1),
        text(|r| r.account_id.to_owned()),
        smallint(|r| r.account_status),
        bigint(|r| r.overdraft_limit),
        bigint(|r| r.version),
    ];
    query_native(db, sql, values).await.map(drop)
}

/// Rows per multi-row insert on SQLite (13 parameters each, under its limit).
const SQLITE_CHUNK: usize = 500;

async fn append_sqlite(db: &impl ConnectionTrait, rows: &[Row<'_>]) -> Result<(), DbErr> {
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let moved = query_all(
        db,
        "UPDATE event_log SET last_position = last_position + $1 WHERE id = 1 RETURNING last_position",
        vec![count.into()],
    )
    .await?;
    let head: i64 = moved
        .first()
        .ok_or_else(|| DbErr::Custom("the event log has no head row".to_owned()))?
        .try_get("", "last_position")?;
    let optional = |id: &str| -> Value { if id.is_empty() { Option::<String>::None.into() } else { id.into() } };
    let mut next = head - count;
    for chunk in rows.chunks(SQLITE_CHUNK) {
        let marks = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 13);
        for row in chunk {
            next += 1;
            values.extend([
                next.into(),
                row.kind.into(),
                row.occurred_at.into(),
                optional(row.transfer_id),
                row.transfer_status.into(),
                optional(row.debit.0),
                row.debit.1.into(),
                optional(row.credit.0),
                row.credit.1.into(),
                optional(row.account_id),
                row.account_status.into(),
                row.overdraft_limit.into(),
                row.version.into(),
            ]);
        }
        let sql = format!("INSERT INTO events ({INSERT_COLUMNS}) VALUES {marks}");
        query_native(db, sql, values).await?;
    }
    Ok(())
}

/// Where the log begins and ends, read in one snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bounds {
    /// The newest event's position (0 when none was ever written).
    pub head: i64,
    /// The oldest event retained, if any is.
    pub first_retained: Option<i64>,
}

impl Bounds {
    /// Whether an event after `position` has been deleted by retention
    /// (ids are dense, so a missing id below the head was deleted).
    pub fn expired_after(&self, position: i64) -> bool {
        position < self.head && self.first_retained.is_none_or(|first| first > position + 1)
    }
}

/// The log's bounds now.
pub async fn bounds(db: &impl ConnectionTrait) -> Result<Bounds, DbErr> {
    let sql = "SELECT last_position, (SELECT MIN(id) FROM events) AS first_retained FROM event_log WHERE id = 1";
    let rows = query_all(db, sql, Vec::new()).await?;
    let row = rows.first().ok_or_else(|| DbErr::Custom("the event log has no head row".to_owned()))?;
    Ok(Bounds { head: row.try_get("", "last_position")?, first_retained: row.try_get("", "first_retained")? })
}

/// Which events a stream wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events touching this account.
    pub account_id: Option<String>,
    /// Only these kinds; empty: all.
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    /// Whether an event of `kind` touching `accounts` passes (the SQL of
    /// `read` says the same).
    pub fn matches(&self, kind: EventKind, accounts: &[String]) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && self.account_id.as_ref().is_none_or(|account| accounts.contains(account))
    }
}

/// What one read of the log saw, all in one snapshot.
#[derive(Debug)]
pub struct Window {
    /// The newest position: every event up to it is committed and visible.
    pub head: i64,
    /// The oldest retained event, if any is.
    pub first_retained: Option<i64>,
    /// The matching events after the position asked for, oldest first.
    pub events: Vec<RecordedEvent>,
}

impl Window {
    /// Whether an event after `position` has been deleted by retention.
    pub fn expired_after(&self, position: i64) -> bool {
        Bounds { head: self.head, first_retained: self.first_retained }.expired_after(position)
    }
}

/// Events after `after`, among positions up to `after + scan` (so a filter
/// that matches little reads a bounded range), at most `limit` of them.
pub async fn read(
    db: &impl ConnectionTrait,
    after: i64,
    scan: i64,
    limit: u64,
    filter: &EventFilter,
) -> Result<Window, DbErr> {
    let transfer_columns: Vec<String> = TRANSFER_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    let totals = |alias: &str| {
        ["debits_posted", "credits_posted", "debits_pending", "credits_pending"]
            .iter()
            .map(|c| format!("{alias}.{c} AS {alias}_{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut values: Vec<Value> = vec![after.into(), after.saturating_add(scan).into(), limit.into()];
    let mut conditions = String::new();
    if let Some(account) = &filter.account_id {
        values.push(account.clone().into());
        conditions.push_str(" AND (e.debit_account_id = $4 OR e.credit_account_id = $4 OR e.account_id = $4)");
    }
    if !filter.kinds.is_empty() {
        // Numbers from our own enum, not caller text.
        let kinds: Vec<String> = filter.kinds.iter().map(|k| (*k as i16).to_string()).collect();
        conditions.push_str(&format!(" AND e.type IN ({})", kinds.join(", ")));
    }
    let sql = format!(
        "SELECT b.first_retained, b.head, w.* FROM \
           (SELECT (SELECT MIN(id) FROM events) AS first_retained, last_position AS head \
            FROM event_log WHERE id = 1) b \
         LEFT JOIN ( \
           SELECT e.id AS event_id, e.type AS event_type, e.occurred_at AS event_at, \
                  e.transfer_status AS event_transfer_status, e.account_id AS event_account_id, \
                  e.account_status AS event_account_status, e.overdraft_limit AS event_overdraft_limit, \
                  e.version AS event_version, e.debit_account_id AS d_account, e.debit_sequence AS d_sequence, \
                  e.credit_account_id AS c_account, e.credit_sequence AS c_sequence, {transfer}, {d}, {c} \
           FROM events e \
           LEFT JOIN transfers t ON t.id = e.transfer_id \
           LEFT JOIN entries d ON d.account_id = e.debit_account_id AND d.account_sequence = e.debit_sequence \
           LEFT JOIN entries c ON c.account_id = e.credit_account_id AND c.account_sequence = e.credit_sequence \
           WHERE e.id > $1 AND e.id <= $2{conditions} \
           ORDER BY e.id LIMIT $3) w ON 1 = 1 \
         ORDER BY w.event_id",
        transfer = transfer_columns.join(", "),
        d = totals("d"),
        c = totals("c"),
    );
    let rows = query_all(db, &sql, values).await?;
    let first = rows.first().ok_or_else(|| DbErr::Custom("the event log has no head row".to_owned()))?;
    let mut window = Window {
        head: first.try_get("", "head")?,
        first_retained: first.try_get("", "first_retained")?,
        events: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        if row.try_get::<Option<i64>>("", "event_id")?.is_some() {
            window.events.push(recorded(row)?);
        }
    }
    Ok(window)
}

fn corrupt(what: &str) -> DbErr {
    DbErr::Custom(format!("unexpected stored event: {what}"))
}

fn recorded(row: &QueryResult) -> Result<RecordedEvent, DbErr> {
    let kind = EventKind::from_i16(row.try_get("", "event_type")?).ok_or_else(|| corrupt("type"))?;
    let body = if kind.is_transfer() {
        let mut transfer: Transfer = transfer_from_row(row)?;
        transfer.status =
            Status::from_i16(row.try_get("", "event_transfer_status")?).ok_or_else(|| corrupt("transfer status"))?;
        let side = |prefix: &str| -> Result<(EventSide, crate::domain::Totals), DbErr> {
            Ok((
                EventSide {
                    account_id: row.try_get("", &format!("{prefix}_account"))?,
                    account_sequence: row.try_get("", &format!("{prefix}_sequence"))?,
                },
                totals_from_row(row, &format!("{prefix}_"))?,
            ))
        };
        RecordedBody::Transfer { transfer: Box::new(transfer), debit: side("d")?, credit: side("c")? }
    } else {
        RecordedBody::Account {
            id: row.try_get("", "event_account_id")?,
            status: AccountStatus::from_i16(row.try_get("", "event_account_status")?)
                .ok_or_else(|| corrupt("account status"))?,
            overdraft_limit: row.try_get("", "event_overdraft_limit")?,
            version: row.try_get("", "event_version")?,
        }
    };
    Ok(RecordedEvent { position: row.try_get("", "event_id")?, kind, occurred_at: row.try_get("", "event_at")?, body })
}

/// Deletes, oldest first, the events that occurred before `cutoff` (µs), at
/// most `chunk` of them; returns how many. Only a prefix of the order goes
/// (the first event at or after the cutoff stops it), so what remains is
/// always every event after some position.
pub async fn prune(db: &impl ConnectionTrait, cutoff: i64, chunk: u64) -> Result<u64, DbErr> {
    let rows = query_all(
        db,
        "SELECT id, occurred_at FROM events ORDER BY id LIMIT $1",
        vec![i64::try_from(chunk).unwrap_or(i64::MAX).into()],
    )
    .await?;
    let mut last_old = None;
    for row in &rows {
        if row.try_get::<i64>("", "occurred_at")? >= cutoff {
            break;
        }
        last_old = Some(row.try_get::<i64>("", "id")?);
    }
    match last_old {
        Some(last) => execute(db, "DELETE FROM events WHERE id <= $1", vec![last.into()]).await,
        None => Ok(0),
    }
}

/// Takes the relay's lease for `holder` when it is free, lapsed (before
/// `now`) or already `holder`'s, until `until` (µs); whether it did.
pub async fn take_relay_lease(db: &impl ConnectionTrait, holder: &str, now: i64, until: i64) -> Result<bool, DbErr> {
    let taken = execute(
        db,
        "UPDATE event_relay SET holder = $1, expires_at = $3 WHERE id = 1 AND (holder = $1 OR expires_at < $2)",
        vec![holder.into(), now.into(), until.into()],
    )
    .await?;
    Ok(taken == 1)
}
