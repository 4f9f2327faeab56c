//! The events relay (DESIGN "Ledger events"): two ledger instances, one
//! NATS server of the test's own that dies mid-stream and comes back; in
//! the end JetStream holds every event once, in the log's order, under its
//! type's subject, with the event's cursor as `Nats-Msg-Id`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use folio_proto::ledger::{AccountKind, Event, StartPosition, StreamEventsRequest, event::Change};
use folio_testkit::{OwnNats, TestDatabase};
use prost::Message;
use support::events::{log_head, rewind_log, transfer_amounts};
use support::{Suite, bearer};

/// How many messages the stream holds.
async fn stored(js: &jetstream::Context) -> u64 {
    match js.get_stream("FOLIO_LEDGER_EVENTS").await {
        Ok(mut stream) => stream.info().await.map_or(0, |info| info.state.messages),
        Err(_) => 0,
    }
}

async fn wait_for(js: &jetstream::Context, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(js).await < count {
        assert!(Instant::now() < deadline, "JetStream holds {} of {count} events", stored(js).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event's cursor, from StreamEvents, in order.
async fn cursors(suite: &Suite, count: usize) -> Vec<(String, Event)> {
    let request = StreamEventsRequest { start_position: StartPosition::Earliest as i32, ..Default::default() };
    let mut stream = suite.ledger().stream_events(bearer(request, &suite.writer)).await.unwrap().into_inner();
    let mut found = Vec::new();
    while found.len() < count {
        let message = stream.message().await.unwrap().unwrap();
        if let Some(event) = message.event {
            found.push((message.cursor, event));
        }
    }
    found
}

#[tokio::test]
async fn jetstream_ends_with_every_event_once_in_order_across_a_broker_outage() {
    let mut nats = OwnNats::start();
    let url = nats.url();
    let settings = [("FOLIO__LEDGER__EVENTS_NATS_URL", url.as_str())];
    let suite = Suite::start_on(2, TestDatabase::postgres().await, None, &settings).await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    for _ in 0..20 {
        suite.fund(&bank, &account, 1).await;
    }
    wait_for(&js, 22).await;

    nats.stop();
    for _ in 0..20 {
        suite.fund(&bank, &account, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.resume();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    for _ in 0..10 {
        suite.fund(&bank, &account, 1).await;
    }
    wait_for(&js, 52).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&js).await, 52, "nothing published twice");

    let expected = cursors(&suite, 52).await;
    let stream = js.get_stream("FOLIO_LEDGER_EVENTS").await.unwrap();
    for (index, (cursor, event)) in expected.iter().enumerate() {
        let message = stream.get_raw_message(index as u64 + 1).await.unwrap();
        assert_eq!(message.headers.get("Nats-Msg-Id").map(|v| v.as_str()), Some(cursor.as_str()), "message {index}");
        assert_eq!(message.headers.get("Folio-Schema").map(|v| v.as_str()), Some("folio.ledger.v1.Event"));
        assert_eq!(&Event::decode(message.payload).unwrap(), event, "message {index} is the event");
        let suffix = if event.r#type == 5 { "account_opened" } else { "transfer_posted" };
        assert_eq!(message.subject.as_str(), format!("folio.ledger.events.{suffix}"));
    }
}

/// A database that went back to an earlier point (restored, or failed over
/// before its last commits replicated) numbers new events from positions
/// the stream already holds. The relay publishes none of them, neither
/// skipping them nor giving them ids consumers already hold, and says so;
/// once an operator deletes the stream, it publishes the log as it is.
#[tokio::test]
async fn a_relay_whose_database_went_back_publishes_no_other_history() {
    let nats = OwnNats::start();
    let url = nats.url();
    let settings = [("FOLIO__LEDGER__EVENTS_NATS_URL", url.as_str())];
    let suite = Suite::start_on(1, TestDatabase::postgres().await, None, &settings).await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    for amount in [1, 2, 3] {
        suite.fund(&bank, &account, amount).await;
    }
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    wait_for(&js, 5).await;
    let head = log_head(&suite).await;
    rewind_log(&suite, head - 2).await;
    for amount in [4, 5, 6, 7] {
        suite.fund(&bank, &account, amount).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&js).await, 5, "nothing of the log's new history published");
    assert_eq!(suite.ledger_counter(0, "folio_ledger_relay_diverged", "").await, 1.0, "the relay says why");

    js.delete_stream("FOLIO_LEDGER_EVENTS").await.unwrap();
    wait_for(&js, 7).await;
    assert_eq!(transfer_amounts(&suite, 7).await, [1, 4, 5, 6, 7]);
    let stream = js.get_stream("FOLIO_LEDGER_EVENTS").await.unwrap();
    let last = Event::decode(stream.get_raw_message(7).await.unwrap().payload).unwrap();
    assert!(matches!(last.change, Some(Change::Transfer(ref c)) if c.transfer.as_ref().unwrap().amount == 7));
    assert_eq!(suite.ledger_counter(0, "folio_ledger_relay_diverged", "").await, 0.0);
}
