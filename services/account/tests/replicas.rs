//! GetAccount and ListAccounts from a hot standby (DESIGN §6), against a
//! real streaming replica: a caller who hands back a write's
//! `x-folio-read-after` sees that write (the account's status here, and its
//! balance at the ledger, to which the position is passed on), even while
//! the replica's replay is paused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use folio_proto::account::{
    Account, CreateAccountRequest, FreezeAccountRequest, GetAccountRequest, GetAccountResponse, ListAccountsRequest,
};
use folio_proto::ledger::{AccountKind, AccountStatus};
use folio_testkit::ReplicatedPostgres;
use support::{Suite, bearer, create, posted};
use tonic::{Request, metadata::MetadataMap};

const HEADER: &str = "x-folio-read-after";

fn position(metadata: &MetadataMap) -> String {
    metadata.get(HEADER).expect("a write's answer carries x-folio-read-after").to_str().unwrap().to_owned()
}

fn read_after<T>(mut request: Request<T>, position: Option<&str>) -> Request<T> {
    if let Some(position) = position {
        request.metadata_mut().insert(HEADER, position.parse().unwrap());
    }
    request
}

async fn get(suite: &Suite, id: &str, token: &str, after: Option<&str>) -> GetAccountResponse {
    let request = read_after(bearer(GetAccountRequest { account_id: id.to_owned() }, token), after);
    suite.client().get_account(request).await.expect("get account").into_inner()
}

async fn listed(suite: &Suite, token: &str, after: Option<&str>) -> Vec<Account> {
    let request = read_after(bearer(ListAccountsRequest::default(), token), after);
    suite.client().list_accounts(request).await.expect("list accounts").into_inner().accounts
}

#[tokio::test]
async fn account_reads_are_never_older_than_the_callers_write_while_the_replica_trails() {
    let postgres = ReplicatedPostgres::start().await;
    let (db, read_url) = postgres.database().await;
    let extra = vec![
        ("FOLIO__DATABASE__READ_URL".to_owned(), read_url),
        ("FOLIO__DATABASE__READ_MAX_LAG_MS".to_owned(), "3000".to_owned()),
    ];
    let suite = Suite::start_on(db, extra, true).await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let created = client.create_account(bearer(create("USD", "Everyday"), &token)).await.unwrap();
    let opened = position(created.metadata());
    let account = created.into_inner().account.unwrap();
    let system = CreateAccountRequest {
        owner_id: uuid::Uuid::new_v4().to_string(),
        kind: AccountKind::System as i32,
        ..create("USD", "Funding")
    };
    let bank = client.create_account(bearer(system, &suite.operator)).await.unwrap().into_inner().account.unwrap();
    let seen = get(&suite, &account.id, &token, Some(&opened)).await;
    assert_eq!(seen.account.unwrap().status, AccountStatus::Active as i32);

    postgres.replay(false).await;
    // The position passes on to the ledger: the balance is as new as the transfer.
    let paid = suite.ledger_client().create_transfer(bearer(posted(&bank.id, &account.id, 300), &suite.writer)).await;
    let paid = position(paid.unwrap().metadata());
    let without = get(&suite, &account.id, &token, None).await.balance.unwrap();
    assert_eq!(without.credits_posted, 0, "the ledger's trailing replica answers without a position");
    let with = get(&suite, &account.id, &token, Some(&paid)).await.balance.unwrap();
    assert_eq!(with.credits_posted, 300, "with the transfer's position, its balance");

    let freeze = FreezeAccountRequest { account_id: account.id.clone(), reason: "fraud check".into() };
    let frozen = position(client.freeze_account(bearer(freeze, &suite.operator)).await.unwrap().metadata());
    let stale = get(&suite, &account.id, &token, None).await.account.unwrap();
    assert_eq!(stale.status, AccountStatus::Active as i32, "without a position, the trailing replica answers");
    let fresh = get(&suite, &account.id, &token, Some(&frozen)).await.account.unwrap();
    assert_eq!(fresh.status, AccountStatus::Frozen as i32, "with the freeze's position, never older than it");
    let mine = listed(&suite, &token, Some(&frozen)).await;
    assert_eq!(mine.iter().map(|a| a.status).collect::<Vec<_>>(), [AccountStatus::Frozen as i32]);

    // An account the replica has not replayed is found on the primary.
    let late = client.create_account(bearer(create("USD", "Late"), &token)).await.unwrap();
    let late_at = position(late.metadata());
    let late = late.into_inner().account.unwrap();
    assert_eq!(get(&suite, &late.id, &token, None).await.account.unwrap().id, late.id);

    // A page token carries the position: the next page, asked without the
    // header, is never older than the first (the replica lacks "Late").
    let first = ListAccountsRequest { page_size: 1, ..Default::default() };
    let first = client.list_accounts(read_after(bearer(first, &token), Some(&late_at))).await.unwrap().into_inner();
    assert_eq!(first.accounts.iter().map(|a| &a.id).collect::<Vec<_>>(), [&account.id]);
    let next = ListAccountsRequest { page_size: 1, page_token: first.next_page_token, ..Default::default() };
    let second = client.list_accounts(bearer(next, &token)).await.unwrap().into_inner();
    assert_eq!(second.accounts.iter().map(|a| &a.id).collect::<Vec<_>>(), [&late.id], "the second page is as new");
    postgres.replay(true).await;
}
