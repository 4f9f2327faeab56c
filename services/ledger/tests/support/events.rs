//! Helpers of the `StreamEvents` suites: requests, opening a stream as a
//! principal, and reading its messages with a bound on the wait.

use std::time::Duration;

use folio_proto::ledger::{
    Event, StartPosition, StreamEventsRequest, StreamEventsResponse, TransferEvent, event::Change,
};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Streaming;

use super::{Suite, bearer};

pub const WAIT: Duration = Duration::from_secs(10);

/// A new owner id.
pub fn someone() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A stream resumed after `cursor`.
pub fn from(cursor: &str) -> StreamEventsRequest {
    StreamEventsRequest { cursor: cursor.to_owned(), ..Default::default() }
}

/// A stream from the oldest event kept.
pub fn earliest() -> StreamEventsRequest {
    StreamEventsRequest { start_position: StartPosition::Earliest as i32, ..Default::default() }
}

/// Opens a stream with `token`.
pub async fn open(
    suite: &Suite,
    request: StreamEventsRequest,
    token: &str,
) -> Result<Streaming<StreamEventsResponse>, tonic::Status> {
    suite.ledger().stream_events(bearer(request, token)).await.map(tonic::Response::into_inner)
}

/// The next message, failing the test after `WAIT`.
pub async fn next(stream: &mut Streaming<StreamEventsResponse>) -> Result<StreamEventsResponse, tonic::Status> {
    match tokio::time::timeout(WAIT, stream.message()).await.expect("a message within the wait") {
        Ok(Some(message)) => Ok(message),
        Ok(None) => panic!("the stream ended with OK"),
        Err(status) => Err(status),
    }
}

/// The next `count` events (heartbeats skipped) and the cursor after the last.
pub async fn events(stream: &mut Streaming<StreamEventsResponse>, count: usize) -> (Vec<Event>, String) {
    let (mut found, mut cursor) = (Vec::new(), String::new());
    while found.len() < count {
        let message = next(stream).await.unwrap();
        cursor = message.cursor;
        found.extend(message.event);
    }
    (found, cursor)
}

/// The transfer change of `event`.
pub fn transfer_of(event: &Event) -> &TransferEvent {
    match &event.change {
        Some(Change::Transfer(transfer)) => transfer,
        other => panic!("not a transfer event: {other:?}"),
    }
}

/// The amounts of the transfers among the first `count` events of the log,
/// read with a stream from the earliest.
pub async fn transfer_amounts(suite: &Suite, count: usize) -> Vec<i64> {
    let mut stream = open(suite, earliest(), &suite.writer).await.unwrap();
    let (found, _) = events(&mut stream, count).await;
    found
        .iter()
        .filter(|e| matches!(e.change, Some(Change::Transfer(_))))
        .map(|e| transfer_of(e).transfer.as_ref().unwrap().amount)
        .collect()
}

/// What restoring the database to an earlier point does to the event log
/// (as does a failover that lost the last commits): the events after
/// `keep` are gone and the next change is numbered `keep + 1` again.
pub async fn rewind_log(suite: &Suite, keep: i64) {
    let db = suite.ledger_db().await;
    for sql in [
        format!("DELETE FROM events WHERE id > {keep}"),
        format!("UPDATE event_log SET last_position = {keep} WHERE id = 1"),
    ] {
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    }
}

/// The position of the newest event.
pub async fn log_head(suite: &Suite) -> i64 {
    let db = suite.ledger_db().await;
    let sql = "SELECT last_position FROM event_log WHERE id = 1";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows[0].try_get("", "last_position").unwrap()
}
