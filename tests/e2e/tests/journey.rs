//! The customer journey through the gateway only, with auth, account, ledger
//! and gateway running as real processes: on PostgreSQL with Redis, and on
//! the embedded defaults (a SQLite file per service, in-process cache).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    account::{CreateAccountRequest, GetAccountRequest, account_service_client::AccountServiceClient},
    auth::{
        GetCurrentUserRequest, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
        auth_service_client::AuthServiceClient,
    },
    ledger::{
        AccountKind, CreateTransferRequest, ListTransfersRequest, TransferKind, TransferStatus,
        ledger_service_client::LedgerServiceClient,
    },
};
use folio_testkit::{TestDatabase, unique};
use support::{OPERATOR_EMAIL, OPERATOR_PASSWORD, PASSWORD, Stack, bearer};
use tonic::transport::Channel;

/// Retries while the services finish their first revocation poll.
async fn eventually<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut last = None;
    for _ in 0..100 {
        match call().await {
            Ok(value) => return value,
            Err(status) if status.code() == tonic::Code::Unavailable => last = Some(status),
            Err(status) => panic!("{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still unavailable: {last:?}");
}

async fn journey(suite: &Stack) {
    let channel: Channel = lazy_channel(&suite.gateway.to_string()).unwrap();
    let mut auth = AuthServiceClient::new(channel.clone());
    let mut accounts = AccountServiceClient::new(channel.clone());
    let mut ledger = LedgerServiceClient::new(channel.clone());

    let email = format!("{}@example.com", unique("alice"));
    eventually(|| {
        let mut auth = auth.clone();
        let request = RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "Alice".into() };
        async move { auth.register(request).await }
    })
    .await;
    let alice =
        auth.login(LoginRequest { email: email.clone(), password: PASSWORD.into() }).await.unwrap().into_inner();
    let operator = auth
        .login(LoginRequest { email: OPERATOR_EMAIL.into(), password: OPERATOR_PASSWORD.into() })
        .await
        .unwrap()
        .into_inner();

    let create = |name: &str| CreateAccountRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        asset_code: "USD".into(),
        display_name: name.into(),
        ..Default::default()
    };
    let checking = eventually(|| {
        let mut accounts = accounts.clone();
        let request = bearer(create("Checking"), &alice.access_token);
        async move { accounts.create_account(request).await }
    })
    .await
    .into_inner()
    .account
    .unwrap();
    let savings = accounts
        .create_account(bearer(create("Savings"), &alice.access_token))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let funding = CreateAccountRequest {
        owner_id: operator.user.clone().unwrap().id,
        kind: AccountKind::System as i32,
        ..create("Bank funding")
    };
    let bank =
        accounts.create_account(bearer(funding, &operator.access_token)).await.unwrap().into_inner().account.unwrap();

    let transfer = |debit: &str, credit: &str, amount: i64, kind: TransferKind| CreateTransferRequest {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: debit.into(),
        credit_account_id: credit.into(),
        amount,
        asset_code: "USD".into(),
        kind: kind as i32,
        timeout_seconds: if kind == TransferKind::Pending { 600 } else { 0 },
        ..Default::default()
    };
    ledger
        .create_transfer(bearer(transfer(&bank.id, &checking.id, 10_000, TransferKind::Posted), &operator.access_token))
        .await
        .unwrap();
    ledger
        .create_transfer(bearer(transfer(&checking.id, &savings.id, 2_500, TransferKind::Posted), &alice.access_token))
        .await
        .unwrap();
    let hold = ledger
        .create_transfer(bearer(transfer(&checking.id, &bank.id, 1_000, TransferKind::Pending), &alice.access_token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let post = CreateTransferRequest {
        id: uuid::Uuid::new_v4().to_string(),
        pending_id: hold.id.clone(),
        kind: TransferKind::PostPending as i32,
        amount: 600,
        ..Default::default()
    };
    ledger.create_transfer(bearer(post, &alice.access_token)).await.unwrap();

    let statement = ledger
        .list_transfers(bearer(
            ListTransfersRequest { account_id: checking.id.clone(), ..Default::default() },
            &alice.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(statement.len(), 4, "funding, transfer, hold, post");
    assert_eq!(statement[2].transfer.as_ref().unwrap().status, TransferStatus::PostedFromPending as i32);
    assert_eq!(statement.last().unwrap().balance_after.as_ref().unwrap().posted, 10_000 - 2_500 - 600);

    let balance = |id: String, token: String| {
        let mut accounts = accounts.clone();
        async move {
            accounts
                .get_account(bearer(GetAccountRequest { account_id: id }, &token))
                .await
                .unwrap()
                .into_inner()
                .balance
                .unwrap()
        }
    };
    assert_eq!(balance(checking.id.clone(), alice.access_token.clone()).await.available, 6_900);
    assert_eq!(balance(savings.id.clone(), alice.access_token.clone()).await.posted, 2_500);
    assert_eq!(balance(bank.id.clone(), operator.access_token.clone()).await.posted, -10_000 + 600);

    let refreshed =
        auth.refresh(RefreshRequest { refresh_token: alice.refresh_token.clone() }).await.unwrap().into_inner();
    auth.get_current_user(bearer(GetCurrentUserRequest {}, &refreshed.access_token)).await.unwrap();
    auth.logout(bearer(LogoutRequest {}, &refreshed.access_token)).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        match ledger
            .list_transfers(bearer(
                ListTransfersRequest { account_id: checking.id.clone(), ..Default::default() },
                &refreshed.access_token,
            ))
            .await
        {
            Err(status) if reason_of(&status).as_deref() == Some("TOKEN_REVOKED") => break,
            other => assert!(started.elapsed() < Duration::from_secs(5), "the revoked token still works: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_journey_on_postgres_and_redis() {
    let db = TestDatabase::postgres().await;
    let suite = Stack::start(Some(&db), Some(format!("{}/5", folio_testkit::redis_url())), &[]).await;
    journey(&suite).await;
}

#[tokio::test]
async fn the_journey_on_the_embedded_defaults() {
    let suite = Stack::start(None, None, &[]).await;
    journey(&suite).await;
}

/// The suite through a transaction pooler ([`support::pooler`]) with two
/// server connections per role. Then money moves from many callers at once,
/// and every total adds up.
#[tokio::test]
async fn the_journey_and_concurrent_transfers_through_a_transaction_pooler() {
    let db = TestDatabase::postgres().await;
    let redis = Some(format!("{}/5", folio_testkit::redis_url()));
    let (suite, _bouncer) = support::pooler::pooled_stack(&db, redis, 2).await;
    journey(&suite).await;

    let operator = suite.operator().await;
    let (_, token) = suite.customer().await;
    let from = suite.funded(&token, &operator, 10_000).await;
    let to = suite.open(&token, AccountKind::Customer).await;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (mut ledger, mut accounts) = (suite.ledger(), suite.accounts());
            let (token, from, to) = (token.clone(), from.clone(), to.clone());
            tokio::spawn(async move {
                for _ in 0..20 {
                    let request = support::posted(&from, &to, 7);
                    ledger.create_transfer(bearer(request, &token)).await.expect("a transfer through the pooler");
                    let read = GetAccountRequest { account_id: to.clone() };
                    accounts.get_account(bearer(read, &token)).await.expect("a read through the pooler");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let mut accounts = suite.accounts();
    let balance = |id: &str| GetAccountRequest { account_id: id.to_owned() };
    let got_to = accounts.get_account(bearer(balance(&to), &token)).await.unwrap().into_inner().balance.unwrap();
    let got_from = accounts.get_account(bearer(balance(&from), &token)).await.unwrap().into_inner().balance.unwrap();
    assert_eq!(got_to.posted, 8 * 20 * 7);
    assert_eq!(got_from.posted, 10_000 - 8 * 20 * 7);
    let statement = ListTransfersRequest { account_id: to, page_size: 1000, ..Default::default() };
    let entries = suite.ledger().list_transfers(bearer(statement, &token)).await.unwrap().into_inner().entries;
    assert_eq!(entries.len(), 160);
}
