//! `StreamEvents` (DESIGN "Ledger events") over real gRPC: what each change
//! reports, resuming strictly after a cursor, filters, who may watch,
//! heartbeats, and the same on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use folio_proto::ledger::{
    AccountKind, AccountStatus, Event, EventType, ListAssetsRequest, SetAccountStatusRequest, SetOverdraftLimitRequest,
    StreamEventsRequest, TransferKind, TransferStatus, event::Change,
};
use folio_testkit::TestDatabase;
use support::events::{earliest, events, from, next, open, someone, transfer_of};
use support::{Suite, assert_reason, bearer, pending, resolve};
use tonic::Code;

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
