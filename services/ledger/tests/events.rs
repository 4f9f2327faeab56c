//! `StreamEvents` (DESIGN "Ledger events") over real gRPC: what each change
//! reports, resuming strictly after a cursor, filters, who may watch,
//! heartbeats, retention, the stream caps and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use folio_cluster::wait_until;
use folio_proto::auth::LogoutRequest;
use folio_proto::ledger::{
    AccountKind, AccountStatus, Event, EventType, ListAssetsRequest, SetAccountStatusRequest, SetOverdraftLimitRequest,
    StartPosition, StreamEventsRequest, StreamEventsResponse, TransferKind, TransferStatus, event::Change,
};
use folio_testkit::TestDatabase;
use sea_orm::{ConnectionTrait, Statement};
use support::{Suite, assert_reason, bearer, pending, resolve};
use tonic::{Code, Streaming};

const WAIT: Duration = Duration::from_secs(10);

/// A new owner id.
fn someone() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn from(cursor: &str) -> StreamEventsRequest {
    StreamEventsRequest { cursor: cursor.to_owned(), ..Default::default() }
}

fn earliest() -> StreamEventsRequest {
    StreamEventsRequest { start_position: StartPosition::Earliest as i32, ..Default::default() }
}

async fn open(
    suite: &Suite,
    request: StreamEventsRequest,
    token: &str,
) -> Result<Streaming<StreamEventsResponse>, tonic::Status> {
    suite.ledger().stream_events(bearer(request, token)).await.map(tonic::Response::into_inner)
}

/// The next message, failing the test after `WAIT`.
async fn next(stream: &mut Streaming<StreamEventsResponse>) -> Result<StreamEventsResponse, tonic::Status> {
    match tokio::time::timeout(WAIT, stream.message()).await.expect("a message within the wait") {
        Ok(Some(message)) => Ok(message),
        Ok(None) => panic!("the stream ended with OK"),
        Err(status) => Err(status),
    }
}

/// The next `count` events (heartbeats skipped) and the cursor after the last.
async fn events(stream: &mut Streaming<StreamEventsResponse>, count: usize) -> (Vec<Event>, String) {
    let (mut found, mut cursor) = (Vec::new(), String::new());
    while found.len() < count {
        let message = next(stream).await.unwrap();
        cursor = message.cursor;
        found.extend(message.event);
    }
    (found, cursor)
}

fn transfer_of(event: &Event) -> &folio_proto::ledger::TransferEvent {
    match &event.change {
        Some(Change::Transfer(transfer)) => transfer,
        other => panic!("not a transfer event: {other:?}"),
    }
}

#[tokio::test]
async fn each_change_reports_its_record_and_both_entries_in_commit_order() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let alice = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.writer).await.unwrap();
    let opened = next(&mut stream).await.unwrap();
    assert!(opened.event.is_none() && !opened.cursor.is_empty(), "a heartbeat with a cursor at open: {opened:?}");

    let funded = suite.fund(&bank, &alice, 1_000).await;
    let mut ledger = suite.ledger();
    let hold = ledger.create_transfer(bearer(pending(&alice, &bank, 300, 3600), &suite.writer)).await.unwrap();
    let hold = hold.into_inner().transfer.unwrap();
    ledger.create_transfer(bearer(resolve(&hold.id, TransferKind::PostPending, 100), &suite.writer)).await.unwrap();
    let short = ledger.create_transfer(bearer(pending(&alice, &bank, 50, 1), &suite.writer)).await.unwrap();
    let short = short.into_inner().transfer.unwrap();

    let (found, _) = events(&mut stream, 4).await;
    let kinds: Vec<i32> = found.iter().map(|e| e.r#type).collect();
    assert_eq!(
        kinds,
        [EventType::TransferPosted, EventType::TransferPending, EventType::TransferPosted, EventType::TransferPending]
            .map(|k| k as i32)
    );
    let first = transfer_of(&found[0]);
    assert_eq!(first.transfer.as_ref().unwrap().id, funded.id);
    assert_eq!(found[0].account_ids, [bank.clone(), alice.clone()]);
    let credit = first.credit.as_ref().unwrap();
    assert_eq!((credit.account_id.as_str(), credit.account_sequence), (alice.as_str(), 1));
    assert_eq!(credit.balance_after.as_ref().unwrap().posted, 1_000);
    let placed = transfer_of(&found[1]).transfer.as_ref().unwrap();
    assert_eq!(
        (placed.id.as_str(), placed.status),
        (hold.id.as_str(), TransferStatus::Pending as i32),
        "the hold as it was then"
    );
    let post = transfer_of(&found[2]);
    assert_eq!(post.transfer.as_ref().unwrap().pending_id, hold.id);
    let debit = post.debit.as_ref().unwrap();
    assert_eq!(debit.account_sequence, 3, "funding, hold, post: alice's third entry");
    assert_eq!(debit.balance_after.as_ref().unwrap().posted, 900);
    assert_eq!(debit.balance_after.as_ref().unwrap().debits_pending, 0, "the remainder of the hold is released");

    // The sweeper releases the one-second hold: the event carries the hold itself.
    let (expired, _) = events(&mut stream, 1).await;
    assert_eq!(expired[0].r#type, EventType::PendingExpired as i32);
    let released = transfer_of(&expired[0]).transfer.as_ref().unwrap();
    assert_eq!((released.id.as_str(), released.status), (short.id.as_str(), TransferStatus::Expired as i32));
    let times: Vec<_> = found.iter().chain(&expired).map(|e| e.occurred_at.unwrap().seconds).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "alice's events never go back in time: {times:?}");
}

#[tokio::test]
async fn account_changes_are_events_too() {
    let suite = Suite::start().await;
    let mut stream = open(&suite, StreamEventsRequest::default(), &suite.operator).await.unwrap();
    next(&mut stream).await.unwrap();
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let mut admin = suite.admin_client();
    let freeze =
        SetAccountStatusRequest { account_id: account.clone(), status: AccountStatus::Frozen as i32, version: 1 };
    admin.set_account_status(bearer(freeze, &suite.admin)).await.unwrap();
    let limit = SetOverdraftLimitRequest { account_id: account.clone(), overdraft_limit: 700, version: 2 };
    admin.set_overdraft_limit(bearer(limit.clone(), &suite.admin)).await.unwrap();
    // A repeat of an applied version changes nothing and reports nothing.
    admin.set_overdraft_limit(bearer(limit, &suite.admin)).await.unwrap();
    suite.open(&someone(), AccountKind::Customer, 0, "USD").await;

    let (found, _) = events(&mut stream, 4).await;
    let states: Vec<(i32, i32, i64, i64)> = found
        .iter()
        .map(|e| match &e.change {
            Some(Change::Account(a)) => (e.r#type, a.status, a.overdraft_limit, a.version),
            other => panic!("not an account event: {other:?}"),
        })
        .collect();
    let (active, frozen) = (AccountStatus::Active as i32, AccountStatus::Frozen as i32);
    assert_eq!(
        states[..3],
        [
            (EventType::AccountOpened as i32, active, 0, 0),
            (EventType::AccountStatusChanged as i32, frozen, 0, 1),
            (EventType::AccountLimitChanged as i32, frozen, 700, 2),
        ]
    );
    assert_eq!(states[3].0, EventType::AccountOpened as i32, "the next event is the next account, not a repeat");
    assert_eq!(found[0].account_ids, [account]);
}

#[tokio::test]
async fn a_stream_resumes_strictly_after_its_cursor_and_filters_what_it_sends() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let (a, b) = (
        suite.open(&someone(), AccountKind::Customer, 0, "USD").await,
        suite.open(&someone(), AccountKind::Customer, 0, "USD").await,
    );
    let t1 = suite.fund(&bank, &a, 10).await;
    let t2 = suite.fund(&bank, &b, 20).await;
    let t3 = suite.fund(&bank, &a, 30).await;
    let ids = |found: &[Event]| -> Vec<String> {
        found.iter().map(|e| transfer_of(e).transfer.as_ref().unwrap().id.clone()).collect()
    };

    let only_transfers = StreamEventsRequest { event_types: vec![EventType::TransferPosted as i32], ..earliest() };
    let mut stream = open(&suite, only_transfers.clone(), &suite.writer).await.unwrap();
    let (found, after_first) = events(&mut stream, 1).await;
    assert_eq!(ids(&found), std::slice::from_ref(&t1.id));
    drop(stream);
    let mut resumed =
        open(&suite, StreamEventsRequest { cursor: after_first, ..only_transfers }, &suite.writer).await.unwrap();
    let (found, _) = events(&mut resumed, 2).await;
    assert_eq!(ids(&found), [t2.id.clone(), t3.id.clone()], "strictly after the cursor, nothing twice");

    let only_a = StreamEventsRequest { account_id: a.clone(), ..earliest() };
    let mut stream = open(&suite, only_a, &suite.writer).await.unwrap();
    let (found, _) = events(&mut stream, 3).await;
    assert_eq!(found[0].r#type, EventType::AccountOpened as i32);
    assert_eq!(ids(&found[1..]), [t1.id, t3.id], "only the account's events");
}

#[tokio::test]
async fn malformed_requests_are_the_callers_mistake() {
    let suite = Suite::start().await;
    let tokens = [
        "not-a-cursor".to_owned(),
        "eyJ9.AAAA".to_owned(),
        // A token this service sealed, but for a list, not a stream.
        {
            let request = ListAssetsRequest { page_size: 1, page_token: String::new() };
            suite.ledger().list_assets(bearer(request, &suite.writer)).await.unwrap().into_inner().next_page_token
        },
    ];
    for cursor in tokens {
        assert_reason(open(&suite, from(&cursor), &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
    }
    let unknown_type = StreamEventsRequest { event_types: vec![99], ..Default::default() };
    assert_reason(open(&suite, unknown_type, &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
    let unspecified = StreamEventsRequest { event_types: vec![0], ..Default::default() };
    assert_reason(open(&suite, unspecified, &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
    let bad_start = StreamEventsRequest { start_position: 7, ..Default::default() };
    assert_reason(open(&suite, bad_start, &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
    let bad_account = StreamEventsRequest { account_id: "x\u{0}y".into(), ..Default::default() };
    assert_reason(open(&suite, bad_account, &suite.writer).await, Code::InvalidArgument, "INVALID_FIELD");
}

#[tokio::test]
async fn a_customer_watches_its_own_account_only() {
    let suite = Suite::start().await;
    let (carol, mallory) = (suite.customer().await, suite.customer().await);
    let bank = suite.system_account("USD").await;
    let mine = suite.open(&carol.id, AccountKind::Customer, 0, "USD").await;
    let theirs = suite.open(&mallory.id, AccountKind::Customer, 0, "USD").await;

    assert_reason(open(&suite, earliest(), &carol.token).await, Code::PermissionDenied, "MISSING_ROLE");
    let spying = StreamEventsRequest { account_id: theirs.clone(), ..earliest() };
    assert_reason(open(&suite, spying, &carol.token).await, Code::PermissionDenied, "NOT_ACCOUNT_OWNER");

    let watching = StreamEventsRequest { account_id: mine.clone(), ..Default::default() };
    let mut stream = open(&suite, watching, &carol.token).await.unwrap();
    next(&mut stream).await.unwrap();
    suite.fund(&bank, &theirs, 5).await;
    let to_me = suite.fund(&bank, &mine, 7).await;
    let (found, _) = events(&mut stream, 1).await;
    assert_eq!(transfer_of(&found[0]).transfer.as_ref().unwrap().id, to_me.id, "nothing of the other account");
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats_that_carry_its_position() {
    let db = TestDatabase::postgres().await;
    let suite = Suite::start_on(1, db, None, &[("FOLIO__LEDGER__EVENT_HEARTBEAT_MS", "300")]).await;
    let bank = suite.system_account("USD").await;
    let watched = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let other = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let request = StreamEventsRequest { account_id: watched.clone(), ..Default::default() };
    let mut stream = open(&suite, request.clone(), &suite.writer).await.unwrap();
    let at_open = next(&mut stream).await.unwrap();
    // Events the filter keeps back still move the position on.
    suite.fund(&bank, &other, 5).await;
    let started = Instant::now();
    let beat = next(&mut stream).await.unwrap();
    assert!(beat.event.is_none(), "{beat:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "a heartbeat within its interval: {:?}", started.elapsed());
    assert_ne!(beat.cursor, at_open.cursor, "the heartbeat's position passed the filtered event");
    drop(stream);
    let to_watched = suite.fund(&bank, &watched, 9).await;
    let mut resumed =
        open(&suite, StreamEventsRequest { cursor: beat.cursor, ..request }, &suite.writer).await.unwrap();
    let (found, _) = events(&mut resumed, 1).await;
    assert_eq!(transfer_of(&found[0]).transfer.as_ref().unwrap().id, to_watched.id);
}

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
async fn events_work_the_same_on_sqlite() {
    let suite = Suite::start_with(1, true).await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&someone(), AccountKind::Customer, 0, "USD").await;
    let moved = suite.fund(&bank, &account, 40).await;
    let mut stream = open(&suite, earliest(), &suite.writer).await.unwrap();
    let (found, cursor) = events(&mut stream, 3).await;
    assert_eq!(found.iter().map(|e| e.r#type).collect::<Vec<_>>(), [5, 5, 1]);
    assert_eq!(transfer_of(&found[2]).transfer.as_ref().unwrap().id, moved.id);
    drop(stream);
    let again = suite.fund(&account, &bank, 15).await;
    let mut resumed = open(&suite, from(&cursor), &suite.writer).await.unwrap();
    let (found, _) = events(&mut resumed, 1).await;
    let change = transfer_of(&found[0]);
    assert_eq!(change.transfer.as_ref().unwrap().id, again.id);
    assert_eq!(change.debit.as_ref().unwrap().balance_after.as_ref().unwrap().posted, 25);
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
    for _ in 0..WRITTEN / 1000 {
        let transfers =
            (0..1000).map(|_| support::posted(&bank, &account, 1)).map(|t| folio_proto::ledger::NewTransfer {
                id: t.id,
                debit_account_id: t.debit_account_id,
                credit_account_id: t.credit_account_id,
                amount: t.amount,
                asset_code: t.asset_code,
                kind: t.kind,
                ..Default::default()
            });
        let request = folio_proto::ledger::CreateTransfersRequest { transfers: transfers.collect(), atomic: true };
        suite.ledger().create_transfers(bearer(request, &suite.writer)).await.unwrap();
    }
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
