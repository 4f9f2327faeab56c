//! The account service over real gRPC with a real auth and a real ledger on
//! PostgreSQL: the lifecycle, ledger outages (with and without a restart of
//! the account service), idempotent creation under concurrency, ownership,
//! and every reason the service answers with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_errors::reason_of;
use folio_proto::{
    account::{
        CloseAccountRequest, CreateAccountRequest, FreezeAccountRequest, GetAccountRequest, ListAccountsRequest,
        UnfreezeAccountRequest, UpdateAccountRequest,
    },
    ledger::{AccountKind, AccountStatus},
};
use support::{Suite, assert_reason, bearer, create, posted};
use tonic::Code;

#[tokio::test]
async fn the_lifecycle_of_an_account() {
    let suite = Suite::start(true).await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let account =
        client.create_account(bearer(create("USD", "Everyday"), &token)).await.unwrap().into_inner().account.unwrap();
    assert_eq!(account.status, AccountStatus::Active as i32, "opened inline");
    assert_eq!(suite.ledger_accounts_with_id(&account.id).await, 1);

    let system = CreateAccountRequest {
        owner_id: uuid::Uuid::new_v4().to_string(),
        kind: AccountKind::System as i32,
        ..create("USD", "Funding")
    };
    let bank = client.create_account(bearer(system, &suite.operator)).await.unwrap().into_inner().account.unwrap();
    suite.ledger_client().create_transfer(bearer(posted(&bank.id, &account.id, 500), &suite.writer)).await.unwrap();
    let got = client
        .get_account(bearer(GetAccountRequest { account_id: account.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.balance.expect("balance from the ledger").posted, 500);

    for name in ["Second", "Third"] {
        client.create_account(bearer(create("USD", name), &token)).await.unwrap();
    }
    let first = client
        .list_accounts(bearer(ListAccountsRequest { page_size: 2, ..Default::default() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accounts.len(), 2);
    let second = client
        .list_accounts(bearer(
            ListAccountsRequest { page_size: 2, page_token: first.next_page_token.clone(), ..Default::default() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.accounts.len(), 1);
    assert!(second.next_page_token.is_empty());

    let update = |etag: &str| UpdateAccountRequest {
        account_id: account.id.clone(),
        etag: etag.to_owned(),
        update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
        display_name: "Renamed".into(),
        ..Default::default()
    };
    let renamed = client
        .update_account(bearer(update(&got.account.unwrap().etag), &token))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(renamed.display_name, "Renamed");
    assert_reason(client.update_account(bearer(update(&account.etag), &token)).await, Code::Aborted, "ETAG_MISMATCH");

    let freeze = FreezeAccountRequest { account_id: account.id.clone(), reason: "fraud check".into() };
    assert_reason(client.freeze_account(bearer(freeze.clone(), &token)).await, Code::PermissionDenied, "MISSING_ROLE");
    let frozen = client.freeze_account(bearer(freeze, &suite.operator)).await.unwrap().into_inner().account.unwrap();
    assert_eq!(frozen.status, AccountStatus::Frozen as i32);
    let refused = suite.ledger_client().create_transfer(bearer(posted(&account.id, &bank.id, 1), &token)).await;
    assert_eq!(reason_of(&refused.expect_err("frozen")).as_deref(), Some("ACCOUNT_FROZEN"));
    let unfreeze = UnfreezeAccountRequest { account_id: account.id.clone(), reason: "cleared".into() };
    client.unfreeze_account(bearer(unfreeze, &suite.operator)).await.unwrap();
    suite
        .ledger_client()
        .create_transfer(bearer(posted(&account.id, &bank.id, 100), &token))
        .await
        .expect("active again");

    let close = CloseAccountRequest { account_id: account.id.clone(), reason: "moving".into() };
    assert_reason(
        client.close_account(bearer(close.clone(), &token)).await,
        Code::FailedPrecondition,
        "BALANCE_NOT_ZERO",
    );
    suite.ledger_client().create_transfer(bearer(posted(&account.id, &bank.id, 400), &token)).await.unwrap();
    let closed = client.close_account(bearer(close.clone(), &token)).await.unwrap().into_inner().account.unwrap();
    assert_eq!(closed.status, AccountStatus::Closed as i32);
    assert_reason(client.close_account(bearer(close, &token)).await, Code::FailedPrecondition, "ACCOUNT_CLOSED");
    assert_reason(
        client.update_account(bearer(update(&closed.etag), &token)).await,
        Code::FailedPrecondition,
        "ACCOUNT_CLOSED",
    );
}

#[tokio::test]
async fn a_ledger_outage_leaves_accounts_pending_until_the_outbox_opens_them_once() {
    let mut suite = Suite::start(true).await;
    let (_, token) = suite.customer().await;
    // Warm the asset registry, then take the ledger away.
    suite.client().create_account(bearer(create("USD", "Warm-up"), &token)).await.unwrap();
    suite.stop_ledger().await;
    let pending = suite
        .client()
        .create_account(bearer(create("USD", "During outage"), &token))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(pending.status, AccountStatus::Pending as i32);
    let got = suite
        .client()
        .get_account(bearer(GetAccountRequest { account_id: pending.id.clone() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(got.balance.is_none(), "no balance for an account the ledger does not have");
    let freeze = FreezeAccountRequest { account_id: pending.id.clone(), reason: String::new() };
    assert_reason(
        suite.client().freeze_account(bearer(freeze, &suite.operator)).await,
        Code::FailedPrecondition,
        "ACCOUNT_PENDING",
    );

    // Restart the account service while the ledger is still down: the job is in the database.
    suite.stop_account().await;
    suite.start_ledger().await;
    suite.start_account().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let account = suite
            .client()
            .get_account(bearer(GetAccountRequest { account_id: pending.id.clone() }, &token))
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        if account.status == AccountStatus::Active as i32 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still pending 15 s after the ledger came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(suite.ledger_accounts_with_id(&pending.id).await, 1, "exactly one ledger account");

    // Without a restart too. (The restarted service learns the asset registry
    // from its first creation; with a cold registry and no ledger it would
    // answer DEPENDENCY_UNAVAILABLE rather than accept an unverified asset.)
    suite.client().create_account(bearer(create("USD", "Warm-up again"), &token)).await.unwrap();
    suite.stop_ledger().await;
    let second = suite
        .client()
        .create_account(bearer(create("USD", "Second outage"), &token))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(second.status, AccountStatus::Pending as i32);
    suite.start_ledger().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let account = suite
            .client()
            .get_account(bearer(GetAccountRequest { account_id: second.id.clone() }, &token))
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        if account.status == AccountStatus::Active as i32 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still pending 15 s after the ledger came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(suite.ledger_accounts_with_id(&second.id).await, 1);
}

#[tokio::test]
async fn twenty_concurrent_creates_with_one_request_id_make_one_account() {
    let suite = Suite::start(true).await;
    let (owner, token) = suite.customer().await;
    let request = create("USD", "Once");
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let mut client = suite.client();
            let request = bearer(request.clone(), &token);
            tokio::spawn(async move { client.create_account(request).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for attempt in attempts {
        ids.insert(attempt.await.unwrap().expect("every retry succeeds").into_inner().account.unwrap().id);
    }
    assert_eq!(ids.len(), 1, "one account for one request id");
    let listed = suite
        .client()
        .list_accounts(bearer(ListAccountsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].owner_id, owner);
    let id = ids.into_iter().next().unwrap();
    assert_eq!(suite.ledger_accounts_with_id(&id).await, 1);
    let reused = CreateAccountRequest { display_name: "Other".into(), ..request };
    assert_reason(
        suite.client().create_account(bearer(reused, &token)).await,
        Code::AlreadyExists,
        "REQUEST_ID_REUSED",
    );
}

#[tokio::test]
async fn customers_see_and_change_only_their_own_accounts() {
    let suite = Suite::start(true).await;
    let (alice_id, alice) = suite.customer().await;
    let (_, bob) = suite.customer().await;
    let mut client = suite.client();
    let account =
        client.create_account(bearer(create("USD", "Alice's"), &alice)).await.unwrap().into_inner().account.unwrap();
    let get = GetAccountRequest { account_id: account.id.clone() };
    assert_reason(client.get_account(bearer(get.clone(), &bob)).await, Code::PermissionDenied, "NOT_ACCOUNT_OWNER");
    let others = ListAccountsRequest { owner_id: alice_id.clone(), ..Default::default() };
    assert_reason(
        client.list_accounts(bearer(others.clone(), &bob)).await,
        Code::PermissionDenied,
        "NOT_ACCOUNT_OWNER",
    );
    let update = UpdateAccountRequest {
        account_id: account.id.clone(),
        etag: account.etag.clone(),
        update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
        display_name: "Bob's now".into(),
        ..Default::default()
    };
    assert_reason(client.update_account(bearer(update, &bob)).await, Code::PermissionDenied, "NOT_ACCOUNT_OWNER");
    let close = CloseAccountRequest { account_id: account.id.clone(), reason: String::new() };
    assert_reason(client.close_account(bearer(close, &bob)).await, Code::PermissionDenied, "NOT_ACCOUNT_OWNER");
    assert!(
        client
            .list_accounts(bearer(ListAccountsRequest::default(), &bob))
            .await
            .unwrap()
            .into_inner()
            .accounts
            .is_empty()
    );
    client.get_account(bearer(get, &suite.operator)).await.expect("an operator reads any account");
    let listed = client.list_accounts(bearer(others, &suite.operator)).await.unwrap().into_inner().accounts;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn every_account_reason_by_code_and_reason() {
    let suite = Suite::start(true).await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    assert_reason(client.create_account(create("USD", "x")).await, Code::Unauthenticated, "TOKEN_MISSING");
    for bad in [
        create("usd", "Lowercase asset"),
        create("USD", ""),
        create("USD", &"x".repeat(101)),
        CreateAccountRequest { request_id: "nope".into(), ..create("USD", "Bad id") },
        CreateAccountRequest {
            metadata: (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
            ..create("USD", "Meta")
        },
        CreateAccountRequest { metadata: [("k".to_owned(), "v".repeat(5000))].into(), ..create("USD", "Meta") },
    ] {
        assert_reason(client.create_account(bearer(bad, &token)).await, Code::InvalidArgument, "INVALID_FIELD");
    }
    for operator_only in [
        CreateAccountRequest { owner_id: uuid::Uuid::new_v4().to_string(), ..create("USD", "x") },
        CreateAccountRequest { kind: AccountKind::System as i32, ..create("USD", "x") },
        CreateAccountRequest { overdraft_limit: 100, ..create("USD", "x") },
    ] {
        assert_reason(
            client.create_account(bearer(operator_only, &token)).await,
            Code::PermissionDenied,
            "MISSING_ROLE",
        );
    }
    assert_reason(
        client.create_account(bearer(create("XYZ", "Unknown"), &token)).await,
        Code::NotFound,
        "ASSET_NOT_FOUND",
    );
    let missing = GetAccountRequest { account_id: uuid::Uuid::new_v4().to_string() };
    assert_reason(client.get_account(bearer(missing, &token)).await, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let account =
        client.create_account(bearer(create("USD", "Limits"), &token)).await.unwrap().into_inner().account.unwrap();
    let limit = UpdateAccountRequest {
        account_id: account.id.clone(),
        etag: account.etag.clone(),
        update_mask: Some(prost_types::FieldMask { paths: vec!["overdraft_limit".into()] }),
        overdraft_limit: 1000,
        ..Default::default()
    };
    assert_reason(client.update_account(bearer(limit.clone(), &token)).await, Code::PermissionDenied, "MISSING_ROLE");
    let raised = client.update_account(bearer(limit, &suite.operator)).await.unwrap().into_inner().account.unwrap();
    assert_eq!(raised.overdraft_limit, 1000);
    let no_mask =
        UpdateAccountRequest { account_id: account.id.clone(), etag: raised.etag.clone(), ..Default::default() };
    assert_reason(client.update_account(bearer(no_mask, &token)).await, Code::InvalidArgument, "INVALID_FIELD");
}
