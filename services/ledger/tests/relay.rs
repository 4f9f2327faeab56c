//! The events relay (DESIGN "Ledger events"): two ledger instances, one
//! NATS server of the test's own that dies mid-stream and comes back; in
//! the end JetStream holds every event once, in the log's order, under its
//! type's subject, with the event's cursor as `Nats-Msg-Id`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use folio_proto::ledger::{AccountKind, Event, StartPosition, StreamEventsRequest};
use folio_testkit::{OwnNats, TestDatabase};
use prost::Message;
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
