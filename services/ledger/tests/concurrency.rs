//! Conservation under load: 64 parallel clients issue a random mix of every
//! transfer kind, some invalid, against one or two ledger instances on one
//! database; afterwards every invariant holds, every OK reply is stored
//! exactly as answered, and no rejected transfer left a trace. A consumer of
//! the event stream beside the load rebuilds every balance from events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use folio_proto::ledger::{
    AccountKind, CreateTransferRequest, Event, EventType, GetBalanceRequest, StartPosition, StreamEventsRequest,
    Transfer, TransferKind, event,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, Statement};
use support::{Suite, bearer, invariants, pending, posted, reason, resolve};

#[derive(Default)]
struct Ledgerbook {
    accepted: HashMap<String, Transfer>,
    rejected: Vec<(String, String)>,
    holds: Vec<String>,
}

async fn run_mix(suite: &Suite, clients: usize, duration: Duration) -> Ledgerbook {
    let bank = suite.system_account("USD").await;
    let euro = suite.system_account("EUR").await;
    let mut accounts = Vec::new();
    for i in 0..24 {
        let owner = uuid::Uuid::new_v4().to_string();
        let overdraft = if i % 4 == 0 { 500 } else { 0 };
        let account = suite.open(&owner, AccountKind::Customer, overdraft, "USD").await;
        suite.fund(&bank, &account, 2_000).await;
        accounts.push(account);
    }
    let accounts = Arc::new(accounts);
    let book = Arc::new(Mutex::new(Ledgerbook::default()));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (accounts, book, token, euro) = (accounts.clone(), book.clone(), suite.writer.clone(), euro.clone());
            let mut client = suite.ledger_at(worker);
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(worker as u64);
                while Instant::now() < deadline {
                    let pick = |rng: &mut StdRng| accounts[rng.gen_range(0..accounts.len())].clone();
                    let (a, b) = (pick(&mut rng), pick(&mut rng));
                    let amount = rng.gen_range(1..400);
                    let known_hold = { book.lock().unwrap().holds.last().cloned() };
                    let request: CreateTransferRequest = match rng.gen_range(0..10) {
                        0..=3 => posted(&a, &b, amount),
                        4 | 5 => pending(&a, &b, amount, rng.gen_range(1..3)),
                        6 => resolve(&known_hold.unwrap_or_default(), TransferKind::PostPending, rng.gen_range(0..200)),
                        7 => resolve(&known_hold.unwrap_or_default(), TransferKind::VoidPending, 0),
                        8 => posted(&a, &euro, amount),
                        _ => match rng.gen_range(0..3) {
                            0 => posted(&a, &a, amount),
                            1 => posted(&a, &b, 0),
                            _ => posted(&a, &uuid::Uuid::new_v4().to_string(), amount),
                        },
                    };
                    let id = request.id.clone();
                    let kind = request.kind;
                    match client.create_transfer(bearer(request, &token)).await {
                        Ok(reply) => {
                            let transfer = reply.into_inner().transfer.unwrap();
                            let mut book = book.lock().unwrap();
                            if kind == TransferKind::Pending as i32 {
                                book.holds.push(transfer.id.clone());
                            }
                            book.accepted.insert(transfer.id.clone(), transfer);
                        }
                        Err(status) => {
                            assert_ne!(status.code(), tonic::Code::Internal, "{status:?}");
                            assert_ne!(status.code(), tonic::Code::Unknown, "{status:?}");
                            book.lock().unwrap().rejected.push((id, reason(&status)));
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    Arc::try_unwrap(book).ok().unwrap().into_inner().unwrap()
}

async fn verify(suite: &Suite, book: &Ledgerbook) {
    let db = suite.ledger_db().await;
    invariants::check(&db).await;
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id, amount, kind FROM transfers"))
        .await
        .unwrap();
    let stored: HashMap<String, (i64, i16)> = rows
        .iter()
        .map(|r| (r.try_get("", "id").unwrap(), (r.try_get("", "amount").unwrap(), r.try_get("", "kind").unwrap())))
        .collect();
    for (id, transfer) in &book.accepted {
        let (amount, kind) = stored.get(id).unwrap_or_else(|| panic!("accepted transfer {id} is not stored"));
        assert_eq!(
            (*amount, i32::from(*kind)),
            (transfer.amount, transfer.kind),
            "transfer {id} differs from its reply"
        );
    }
    for (id, why) in &book.rejected {
        assert!(!stored.contains_key(id), "rejected transfer {id} ({why}) is stored");
    }
    let reasons: std::collections::BTreeSet<&str> = book.rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert!(book.accepted.len() > 200, "only {} transfers were accepted", book.accepted.len());
    for expected in ["SAME_ACCOUNT", "INVALID_AMOUNT", "ACCOUNT_NOT_FOUND", "ASSET_MISMATCH"] {
        assert!(reasons.contains(expected), "the mix never produced {expected}: {reasons:?}");
    }
}

#[tokio::test]
async fn sixty_four_clients_conserve_money_on_one_ledger() {
    let suite = Suite::start().await;
    let book = run_mix(&suite, 64, Duration::from_secs(4)).await;
    verify(&suite, &book).await;
}

#[tokio::test]
async fn two_ledger_instances_on_one_database_keep_every_invariant() {
    let suite = Suite::start_with(2, false).await;
    let book = run_mix(&suite, 64, Duration::from_secs(4)).await;
    verify(&suite, &book).await;
}

#[tokio::test]
async fn the_same_mix_holds_on_sqlite() {
    let suite = Suite::start_with(1, true).await;
    let book = run_mix(&suite, 16, Duration::from_secs(2)).await;
    verify(&suite, &book).await;
}

/// Reads every event from the earliest, dropping the stream after a random
/// number of messages and resuming from the last cursor it got, on a random
/// instance, until it has `until()` events.
async fn consume_resuming(suite: &Suite, seed: u64, mut until: impl FnMut() -> Option<usize>) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut received, mut cursor) = (Vec::new(), String::new());
    loop {
        let request = StreamEventsRequest {
            cursor: cursor.clone(),
            start_position: StartPosition::Earliest as i32,
            ..Default::default()
        };
        let mut client = suite.ledger_at(rng.gen_range(0..suite.ledgers.len()));
        let mut stream = client.stream_events(bearer(request, &suite.writer)).await.unwrap().into_inner();
        for _ in 0..rng.gen_range(1..300) {
            let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("the consumer is fed")
                .expect("the stream keeps going")
                .expect("the stream does not end");
            cursor = message.cursor;
            received.extend(message.event);
            if until().is_some_and(|total| received.len() >= total) {
                return received;
            }
        }
    }
}

#[tokio::test]
async fn a_consumer_resuming_at_random_rebuilds_every_balance_while_two_instances_write() {
    let suite = Suite::start_with(2, false).await;
    let head = Arc::new(Mutex::new(None::<usize>));
    let consumer = {
        let head = head.clone();
        let suite = &suite;
        async move { consume_resuming(suite, 7, || *head.lock().unwrap()).await }
    };
    let load = async {
        let book = run_mix(&suite, 64, Duration::from_secs(4)).await;
        let db = suite.ledger_db().await;
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT last_position FROM event_log"))
            .await
            .unwrap();
        *head.lock().unwrap() = Some(usize::try_from(rows[0].try_get::<i64>("", "last_position").unwrap()).unwrap());
        book
    };
    let (received, book) = tokio::join!(consumer, load);
    assert!(book.accepted.len() > 200);
    // The sweeper may append expiries after the head was read: the events
    // received are exactly the log's first ones, in its order.
    let db = suite.ledger_db().await;
    let sql = "SELECT type, COALESCE(transfer_id, account_id) AS subject FROM events ORDER BY id";
    let stored: Vec<(i32, String)> = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| (i32::from(r.try_get::<i16>("", "type").unwrap()), r.try_get("", "subject").unwrap()))
        .collect();
    let got: Vec<(i32, String)> = received
        .iter()
        .map(|e| {
            let subject = match &e.change {
                Some(event::Change::Transfer(t)) => t.transfer.as_ref().unwrap().id.clone(),
                Some(event::Change::Account(a)) => a.account_id.clone(),
                None => panic!("an event without its change"),
            };
            (e.r#type, subject)
        })
        .collect();
    assert_eq!(got[..], stored[..got.len()], "every event exactly once, in the log's order");

    let mut posted: HashMap<String, i64> = HashMap::new();
    let mut sequences: HashMap<String, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for event in &received {
        let Some(event::Change::Transfer(change)) = &event.change else { continue };
        let transfer = change.transfer.as_ref().unwrap();
        assert!(seen.insert((event.r#type, transfer.id.clone())), "a duplicate: {event:?}");
        if event.r#type == EventType::TransferPosted as i32 {
            *posted.entry(transfer.debit_account_id.clone()).or_default() -= transfer.amount;
            *posted.entry(transfer.credit_account_id.clone()).or_default() += transfer.amount;
        }
        for side in [&change.debit, &change.credit] {
            let side = side.as_ref().unwrap();
            let last = sequences.entry(side.account_id.clone()).or_default();
            assert_eq!(side.account_sequence, *last + 1, "each account's entries in order, without a gap");
            *last = side.account_sequence;
            let after = side.balance_after.as_ref().unwrap().posted;
            assert_eq!(after, posted.get(&side.account_id).copied().unwrap_or_default(), "rebuilt posted balance");
        }
    }
    let mut ledger = suite.ledger();
    for (account, rebuilt) in &posted {
        let request = GetBalanceRequest { account_id: account.clone(), as_of: None };
        let balance = ledger.get_balance(bearer(request, &suite.writer)).await.unwrap().into_inner().balance.unwrap();
        assert_eq!(balance.posted, *rebuilt, "account {account} rebuilt from its events");
    }
    assert!(posted.len() > 20, "the events covered the accounts of the mix");
}
