//! Reads from a hot standby (DESIGN §6, "Reads from replicas"), against a
//! real streaming replica of a primary of the test's own: statements and
//! balances are served by the replica, yet a caller who hands back a
//! write's `x-folio-read-after` never sees a state older than that write,
//! even while the replica's replay is paused; a replica further behind
//! than `READ_MAX_LAG_MS`, or stopped, is not read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use folio_proto::ledger::{
    AccountKind, CreateTransfersRequest, GetBalanceRequest, ListTransfersRequest, NewTransfer, ReverseTransferRequest,
    TransferKind,
};
use folio_testkit::ReplicatedPostgres;
use support::{Suite, assert_reason, bearer, posted};
use tonic::{Code, Request};

const HEADER: &str = "x-folio-read-after";
/// Long beside a loaded runner's pauses, so a read right after a write is
/// within it; the test waits past it once.
const MAX_LAG: Duration = Duration::from_secs(3);

struct Replicated {
    suite: Suite,
    postgres: ReplicatedPostgres,
}

async fn replicated() -> Replicated {
    let postgres = ReplicatedPostgres::start().await;
    let (db, read_url) = postgres.database().await;
    let max_lag = MAX_LAG.as_millis().to_string();
    let settings = [("FOLIO__DATABASE__READ_URL", read_url.as_str()), ("FOLIO__DATABASE__READ_MAX_LAG_MS", &max_lag)];
    let suite = Suite::start_on(1, db, None, &settings).await;
    Replicated { suite, postgres }
}

impl Replicated {
    async fn replay(&self, on: bool) {
        self.postgres.replay(on).await;
    }

    /// Moves `amount` into `account`; the position its answer carries.
    async fn pay(&self, from: &str, account: &str, amount: i64) -> String {
        let request = bearer(posted(from, account, amount), &self.suite.writer);
        let answer = self.suite.ledger().create_transfer(request).await.expect("transfer");
        let position = answer.metadata().get(HEADER).expect("a write's answer carries x-folio-read-after");
        position.to_str().unwrap().to_owned()
    }

    /// The posted balance of `account`, read after `position` when given.
    async fn balance(&self, account: &str, position: Option<&str>) -> i64 {
        self.balance_as_of(account, position, None).await
    }

    async fn balance_as_of(&self, account: &str, position: Option<&str>, as_of: Option<prost_types::Timestamp>) -> i64 {
        let request = GetBalanceRequest { account_id: account.to_owned(), as_of };
        let answer = self.suite.ledger().get_balance(read_after(bearer(request, &self.suite.writer), position)).await;
        answer.expect("balance").into_inner().balance.unwrap().credits_posted
    }

    async fn statement_len(&self, account: &str, position: Option<&str>) -> usize {
        let request = ListTransfersRequest { account_id: account.to_owned(), ..Default::default() };
        let answer =
            self.suite.ledger().list_transfers(read_after(bearer(request, &self.suite.writer), position)).await;
        answer.expect("statement").into_inner().entries.len()
    }
}

fn read_after<T>(mut request: Request<T>, position: Option<&str>) -> Request<T> {
    if let Some(position) = position {
        request.metadata_mut().insert(HEADER, position.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn a_caller_never_reads_older_than_its_own_write_while_the_replica_trails() {
    let r = replicated().await;
    let source = r.suite.system_account("USD").await;
    let account = r.suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    let first = r.pay(&source, &account, 100).await;
    assert_eq!(r.balance(&account, Some(&first)).await, 100, "read after the first write");

    // The replica stops replaying: it keeps the state before the next write.
    r.replay(false).await;
    let second = r.pay(&source, &account, 20).await;
    let parse = |p: &str| folio_storage::db::ReadAfter::parse(p).expect("a position");
    assert!(parse(&second) > parse(&first), "positions grow: {first} then {second}");
    assert_eq!(r.balance(&account, None).await, 100, "without a position, the trailing replica answers");
    assert_eq!(r.statement_len(&account, None).await, 1);
    assert_eq!(r.balance(&account, Some(&second)).await, 120, "with the write's position, never older than it");
    assert_eq!(r.statement_len(&account, Some(&second)).await, 2);
    // (The primary would answer 120: this shows the replica serving reads.)
    assert_eq!(r.balance(&account, Some(&first)).await, 100, "an older position is served by the replica");
    let now = prost_types::Timestamp::from(std::time::SystemTime::now() + Duration::from_secs(1));
    assert_eq!(r.balance_as_of(&account, None, Some(now)).await, 120, "an as_of past the replica's replay goes on");

    // An account the replica has not seen is found on the primary.
    let late = r.suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    assert_eq!(r.balance(&late, None).await, 0, "a replica's NOT_FOUND is asked of the primary");

    // Past READ_MAX_LAG_MS behind, the replica is not read at all.
    tokio::time::sleep(MAX_LAG + Duration::from_millis(500)).await;
    assert_eq!(r.balance(&account, None).await, 120, "a replica too far behind is not read");

    r.replay(true).await;
    assert_eq!(r.balance(&account, Some(&second)).await, 120);
}

#[tokio::test]
async fn a_stopped_replica_sends_every_read_to_the_primary() {
    let mut r = replicated().await;
    let source = r.suite.system_account("USD").await;
    let account = r.suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    let position = r.pay(&source, &account, 70).await;
    assert_eq!(r.balance(&account, Some(&position)).await, 70);
    r.postgres.standby.stop();
    let position = r.pay(&source, &account, 5).await;
    for read_after in [None, Some(position.as_str())] {
        let started = Instant::now();
        assert_eq!(r.balance(&account, read_after).await, 75, "after the replica stopped ({read_after:?})");
        assert_eq!(r.statement_len(&account, read_after).await, 2);
        assert!(started.elapsed() < Duration::from_secs(5), "falling back took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_malformed_position_is_the_callers_mistake() {
    // Checked whether or not a replica is configured.
    let suite = Suite::start().await;
    let account = suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    for bad in ["", "yesterday", "1/2/3", "123456789/0"] {
        let request = GetBalanceRequest { account_id: account.clone(), as_of: None };
        let request = read_after(bearer(request, &suite.writer), Some(bad));
        assert_reason(suite.ledger().get_balance(request).await, Code::InvalidArgument, "INVALID_FIELD");
    }
}

#[tokio::test]
async fn every_write_answers_with_a_position_on_postgres_even_without_a_replica() {
    let suite = Suite::start().await;
    let source = suite.system_account("USD").await;
    let account = suite.open(&uuid::Uuid::new_v4().to_string(), AccountKind::Customer, 0, "USD").await;
    let mut ledger = suite.ledger();
    let one = ledger.create_transfer(bearer(posted(&source, &account, 5), &suite.writer)).await.unwrap();
    let transfer_id = one.get_ref().transfer.as_ref().unwrap().id.clone();
    let one_more = NewTransfer {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: source.clone(),
        credit_account_id: account.clone(),
        amount: 1,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        ..Default::default()
    };
    let batch = CreateTransfersRequest { transfers: vec![one_more], atomic: true };
    let many = ledger.create_transfers(bearer(batch, &suite.writer)).await.unwrap();
    let reverse =
        ReverseTransferRequest { transfer_id, id: uuid::Uuid::new_v4().to_string(), description: "returned".into() };
    let reversed = ledger.reverse_transfer(bearer(reverse, &suite.operator)).await.unwrap();
    let position = |metadata: &tonic::metadata::MetadataMap| {
        let value = metadata.get(HEADER).expect("x-folio-read-after").to_str().unwrap().to_owned();
        folio_storage::db::ReadAfter::parse(&value).expect("a position")
    };
    let (a, b, c) = (position(one.metadata()), position(many.metadata()), position(reversed.metadata()));
    assert!(a < b && b < c, "later writes, later positions: {a} {b} {c}");
    // Handed back with no replica configured, it is simply satisfied.
    let request = read_after(
        bearer(ListTransfersRequest { account_id: account.clone(), ..Default::default() }, &suite.writer),
        Some(&c.to_string()),
    );
    assert_eq!(ledger.list_transfers(request).await.unwrap().into_inner().entries.len(), 3);
}
