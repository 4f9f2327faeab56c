//! Helpers of the `StreamEvents` suites: requests, opening a stream as a
//! principal, and reading its messages with a bound on the wait.

use std::time::Duration;

use folio_proto::ledger::{
    Event, StartPosition, StreamEventsRequest, StreamEventsResponse, TransferEvent, event::Change,
};
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
