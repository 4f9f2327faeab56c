//! `StreamEvents` (DESIGN "Ledger events") as long-lived calls: retention
//! overtaking a cursor (at open and mid-stream), the caps, revocation and
//! expiry of the token, drain, and one read of the log for many streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use folio_cluster::wait_until;
use folio_proto::auth::LogoutRequest;
use folio_proto::ledger::{AccountKind, StreamEventsRequest};
use folio_testkit::TestDatabase;
use sea_orm::{ConnectionTrait, Statement};
use support::events::{
    WAIT, earliest, events, from, log_head, next, open, rewind_log, someone, transfer_amounts, transfer_of,
};
use support::{Suite, assert_reason, bearer};
use tonic::Code;

#[tokio::test]
async fn a_cursor_overtaken_by_retention_has_expired_and_a_current_one_has_not() {
    let db = TestDatabase::postgres().await;
    let settings = [("FOLIO__LEDGER__EVENT_RETENTION_HOURS", "0"), ("FOLIO__LEDGER__EVENT_PRUNE_INTERVAL_MS", "100")];
    let suite = Suite::start_on(1, db, None, &settings).await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    let old = next(&mut stream).await.unwrap().cursor;
    drop(stream);
    suite.fund(&bank, &account, 5).await;
    let ledger_db = suite.ledger_db().await;
    wait_until("retention deleting every event", || {
        let db = &ledger_db;
        async move {
            let rows = db
                .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id FROM events"))
                .await
                .unwrap();
            rows.is_empty()
        }
    })
    .await;
    assert_reason(open(&suite, from(&old), &suite.writer).await, Code::FailedPrecondition, "CURSOR_EXPIRED");
    // From the oldest retained (none: the head) nothing was lost.
    let mut fresh = open(&suite, earliest(), &suite.writer).await.unwrap();
    let current = next(&mut fresh).await.unwrap().cursor;
    let mut resumed = open(&suite, from(&current), &suite.writer).await.unwrap();
    assert!(next(&mut resumed).await.unwrap().event.is_none(), "a current cursor is not expired");
}

/// A database restored to an earlier point, or failed over before its last
/// events reached the standby, numbers new events from an earlier position
/// again: a cursor handed out before lies past its log, and a stream resumed
/// there would skip the events that now take those positions.
#[tokio::test]
async fn a_cursor_past_the_log_is_refused_rather_than_waited_on() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    for amount in [1, 2, 3] {
        suite.fund(&bank, &account, amount).await;
    }
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    let handed_out = next(&mut stream).await.unwrap().cursor;
    drop(stream);
    let head = log_head(&suite).await;
    rewind_log(&suite, head - 2).await;
    suite.fund(&bank, &account, 4).await;
    let refused = open(&suite, from(&handed_out), &suite.writer).await;
    assert_reason(refused, Code::InvalidArgument, "INVALID_FIELD");
    // The log as it is now (two accounts opened, the first and the last
    // transfer) is there to start again from.
    let amounts = transfer_amounts(&suite, 4).await;
    assert_eq!(amounts, [1, 4], "the events of the rewound transfers are gone");
}

/// The database goes back while a stream is open (failed over before its
/// last commits replicated): the stream ends, as on drain, reconnecting past
/// the new head is refused, and a new stream reads the log as it is now,
/// not what the instance had read before.
#[tokio::test]
async fn an_open_stream_ends_when_the_log_goes_back() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    next(&mut stream).await.unwrap();
    for amount in [1, 2, 3] {
        suite.fund(&bank, &account, amount).await;
    }
    let (_, cursor) = events(&mut stream, 3).await;
    let head = log_head(&suite).await;
    rewind_log(&suite, head - 2).await;
    let ended = loop {
        if let Err(status) = next(&mut stream).await {
            break status;
        }
    };
    assert_reason(Err::<(), _>(ended), Code::Unavailable, "DEPENDENCY_UNAVAILABLE");
    assert_reason(open(&suite, from(&cursor), &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
    suite.fund(&bank, &account, 4).await;
    let amounts = transfer_amounts(&suite, 4).await;
    assert_eq!(amounts, [1, 4], "the log as it is now");
}

#[tokio::test]
async fn streams_are_capped_per_caller_and_end_when_the_token_is_revoked() {
    let suite = Suite::start().await;
    let dave = suite.customer().await;
    let account = suite.open(&dave.id, AccountKind::Customer, 0, "USD").await;
    let request = StreamEventsRequest { account_id: account.clone(), ..Default::default() };
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut stream = open(&suite, request.clone(), &dave.token).await.unwrap();
        next(&mut stream).await.unwrap();
        streams.push(stream);
    }
    assert_reason(open(&suite, request.clone(), &dave.token).await, Code::ResourceExhausted, "RATE_LIMITED");
    let other = suite.customer().await;
    let theirs = suite.open(&other.id, AccountKind::Customer, 0, "USD").await;
    let bystander = StreamEventsRequest { account_id: theirs, ..Default::default() };
    let mut bystander = open(&suite, bystander, &other.token).await.expect("another caller is not capped by dave");
    next(&mut bystander).await.unwrap();
    streams.pop();
    wait_until("a closed stream freeing its place", || {
        let (suite, request, token) = (&suite, request.clone(), dave.token.clone());
        async move { open(suite, request, &token).await.is_ok() }
    })
    .await;

    suite.auth.client().logout(bearer(LogoutRequest {}, &dave.token)).await.unwrap();
    let revoked = Instant::now();
    let ended = next(&mut streams[0]).await;
    assert!(revoked.elapsed() < Duration::from_secs(5), "ended {:?} after the revocation", revoked.elapsed());
    let status = ended.expect_err("the stream ends with an error");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(support::reason(&status), "TOKEN_REVOKED");
}

#[tokio::test]
async fn a_reader_too_slow_for_retention_learns_it_mid_stream() {
    let db = TestDatabase::postgres().await;
    let settings = [("FOLIO__LEDGER__EVENT_RETENTION_HOURS", "0"), ("FOLIO__LEDGER__EVENT_PRUNE_INTERVAL_MS", "500")];
    let suite = Suite::start_on(1, db, None, &settings).await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    next(&mut stream).await.unwrap();
    // Far more events than HTTP/2's windows and buffers hold (about 2 MB of
    // messages), so the stream task is held up by its reader; the stream
    // is not read while retention deletes them.
    const WRITTEN: usize = 5_000;
    suite.fund_many(&bank, &account, WRITTEN).await;
    let ledger_db = suite.ledger_db().await;
    wait_until("retention deleting every event", || {
        let db = &ledger_db;
        async move {
            let sql = "SELECT id FROM events";
            db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().is_empty()
        }
    })
    .await;
    let mut delivered = 0;
    let ended = loop {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Ok(Ok(Some(message))) => delivered += usize::from(message.event.is_some()),
            Ok(Ok(None)) => panic!("the stream ended with OK after {delivered} events"),
            Ok(Err(status)) => break status,
            Err(_) => panic!("the stream went quiet after {delivered} events"),
        }
    };
    assert!(delivered < WRITTEN, "it could not have read them all: {delivered}");
    assert_eq!(
        (ended.code(), support::reason(&ended).as_str()),
        (Code::FailedPrecondition, "CURSOR_EXPIRED"),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_draining_instance_ends_its_streams_with_unavailable() {
    let mut suite = Suite::start().await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    next(&mut stream).await.unwrap();
    let stopping = Instant::now();
    let (_, ended) = tokio::join!(suite.stop_ledger(0), next(&mut stream));
    assert!(stopping.elapsed() < Duration::from_secs(5), "drained in {:?}", stopping.elapsed());
    let status = ended.expect_err("the stream ends with an error, not OK");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn many_streams_near_the_head_read_the_log_no_more_than_one() {
    let db = TestDatabase::postgres().await;
    let settings = [("FOLIO__LEDGER__EVENT_STREAMS_PER_PRINCIPAL", "100")];
    let suite = Suite::start_on(1, db, None, &settings).await;
    let bank = suite.system_account("USD").await;
    let mut accounts = Vec::new();
    for _ in 0..40 {
        accounts.push(suite.open(&someone(), AccountKind::Customer, 0, "USD").await);
    }
    let reads = |by: &'static str| suite.ledger_counter(0, "folio_ledger_event_log_reads_total", by);
    assert_eq!(reads("tail").await, 0.0, "41 accounts opened, and nobody watching: nothing read");
    let mut streams = Vec::new();
    for account in &accounts {
        let request = StreamEventsRequest { account_id: account.clone(), ..Default::default() };
        let mut stream = open(&suite, request, &suite.writer).await.unwrap();
        next(&mut stream).await.unwrap();
        streams.push(stream);
    }
    let (tail_before, catch_up_before) = (reads("tail").await, reads("catch_up").await);
    for round in 0..5 {
        for account in &accounts {
            suite.fund(&bank, account, round + 1).await;
        }
    }
    for stream in &mut streams {
        let (found, _) = events(stream, 5).await;
        let amounts: Vec<i64> = found.iter().map(|e| transfer_of(e).transfer.as_ref().unwrap().amount).collect();
        assert_eq!(amounts, [1, 2, 3, 4, 5], "each stream gets its own account's events, in order");
    }
    let (tail, catch_up) = (reads("tail").await - tail_before, reads("catch_up").await - catch_up_before);
    assert_eq!(catch_up, 0.0, "no stream near the head read the log itself");
    assert!(tail <= 200.0, "the log was read {tail} times for 200 events and 40 streams");
    assert!(tail >= 1.0, "the tail read the log");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let db = TestDatabase::postgres().await;
    let suite = Suite::start_on(1, db, None, &[("FOLIO__AUTH__ACCESS_TOKEN_TTL_SECS", "3")]).await;
    let erin = suite.customer().await;
    let account = suite.open(&erin.id, AccountKind::Customer, 0, "USD").await;
    let request = StreamEventsRequest { account_id: account, ..Default::default() };
    let mut stream = open(&suite, request, &erin.token).await.unwrap();
    let opened = Instant::now();
    next(&mut stream).await.unwrap();
    let status = next(&mut stream).await.expect_err("the stream ends with an error");
    assert_eq!(
        (status.code(), support::reason(&status).as_str()),
        (Code::Unauthenticated, "TOKEN_EXPIRED"),
        "{status:?}"
    );
    assert!(opened.elapsed() <= Duration::from_secs(4), "ended {:?} after opening with a 3 s token", opened.elapsed());
}

#[tokio::test]
async fn a_stream_opened_after_a_quiet_while_does_not_make_the_tail_read_what_passed_meanwhile() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let reads = || suite.ledger_counter(0, "folio_ledger_event_log_reads_total", "by=\"tail\"");
    let mut first = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    next(&mut first).await.unwrap();
    drop(first);
    // 2,000 events (two of the tail's reads) while nobody watches.
    suite.fund_many(&bank, &account, 2000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = reads().await;
    let mut second = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    next(&mut second).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reads().await - before, 0.0, "the tail started at the head, not where the last stream left off");
    let moved = suite.fund(&bank, &account, 3).await;
    let (found, _) = events(&mut second, 1).await;
    assert_eq!(transfer_of(&found[0]).transfer.as_ref().unwrap().id, moved.id);
}
