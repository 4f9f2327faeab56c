//! Every reason the ledger answers with, by code and reason, and malformed
//! input answered as INVALID_ARGUMENT, never a panic or INTERNAL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::ledger::{
    AccountKind, AccountStatus, CreateAssetRequest, CreateTransferRequest, CreateTransfersRequest, GetBalanceRequest,
    GetTransferRequest, ListTransfersRequest, OpenAccountRequest, ReverseTransferRequest, SetAccountStatusRequest,
    SetOverdraftLimitRequest, TransferKind,
};
use support::{Suite, assert_reason, bearer, pending, posted, resolve};
use tonic::Code;

on_postgres_and_sqlite!(
    every_ledger_reason_by_code_and_reason,
    an_overdraft_limit_lets_a_customer_go_that_far_below_zero,
);

async fn every_ledger_reason_by_code_and_reason(suite: Suite) {
    let customer = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&customer.id, AccountKind::Customer, 0, "USD").await;
    let other = suite.system_account("USD").await;
    let euros = suite.system_account("EUR").await;
    suite.fund(&bank, &account, 100).await;
    let mut ledger = suite.ledger();
    let mut admin = suite.admin_client();
    let create = |r: CreateTransferRequest| bearer(r, &suite.writer);

    // Input.
    let bad_id = CreateTransferRequest { id: "not-a-uuid".into(), ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(bad_id)).await, Code::InvalidArgument, "INVALID_FIELD");
    let bad_account = CreateTransferRequest { debit_account_id: "x".into(), ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(bad_account)).await, Code::InvalidArgument, "INVALID_FIELD");
    let bad_kind = CreateTransferRequest { kind: 42, ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(bad_kind)).await, Code::InvalidArgument, "INVALID_FIELD");
    let no_kind = CreateTransferRequest { kind: 0, ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(no_kind)).await, Code::InvalidArgument, "INVALID_FIELD");
    assert_reason(ledger.create_transfer(create(posted(&bank, &bank, 1))).await, Code::InvalidArgument, "SAME_ACCOUNT");
    assert_reason(
        ledger.create_transfer(create(posted(&bank, &other, 0))).await,
        Code::InvalidArgument,
        "INVALID_AMOUNT",
    );
    assert_reason(
        ledger.create_transfer(create(posted(&bank, &other, -5))).await,
        Code::InvalidArgument,
        "INVALID_AMOUNT",
    );
    let bad_asset = CreateTransferRequest { asset_code: "us dollars".into(), ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(bad_asset)).await, Code::InvalidArgument, "INVALID_FIELD");
    assert_reason(
        ledger.create_transfer(create(pending(&bank, &other, 1, 0))).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_reason(
        ledger.create_transfer(create(pending(&bank, &other, 1, 2_592_001))).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    let metadata = (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let too_much = CreateTransferRequest { metadata, ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(too_much)).await, Code::InvalidArgument, "INVALID_FIELD");
    let empty = CreateTransfersRequest { transfers: vec![], atomic: true };
    assert_reason(ledger.create_transfers(bearer(empty, &suite.writer)).await, Code::InvalidArgument, "INVALID_FIELD");
    let list = ListTransfersRequest { account_id: bank.clone(), page_token: "garbage!".into(), ..Default::default() };
    assert_reason(ledger.list_transfers(bearer(list, &suite.writer)).await, Code::InvalidArgument, "INVALID_FIELD");

    // Overflow is an error, never a wrap.
    let (big_a, big_b) = (suite.system_account("USD").await, suite.system_account("USD").await);
    ledger.create_transfer(create(posted(&big_a, &big_b, i64::MAX))).await.expect("the largest amount once");
    assert_reason(
        ledger.create_transfer(create(posted(&big_a, &big_b, 1))).await,
        Code::InvalidArgument,
        "INVALID_AMOUNT",
    );

    // Who may act.
    assert_reason(ledger.create_transfer(posted(&bank, &other, 1)).await, Code::Unauthenticated, "TOKEN_MISSING");
    assert_reason(
        ledger.create_transfer(bearer(posted(&bank, &other, 1), &customer.token)).await,
        Code::PermissionDenied,
        "NOT_ACCOUNT_OWNER",
    );
    let asset = CreateAssetRequest { code: "GBP".into(), scale: 2, description: "pound".into() };
    assert_reason(
        ledger.create_asset(bearer(asset.clone(), &customer.token)).await,
        Code::PermissionDenied,
        "MISSING_ROLE",
    );
    let open = OpenAccountRequest {
        account_id: uuid::Uuid::new_v4().to_string(),
        owner_id: customer.id.clone(),
        asset_code: "USD".into(),
        kind: AccountKind::Customer as i32,
        overdraft_limit: 0,
    };
    assert_reason(
        admin.open_account(bearer(open.clone(), &suite.writer)).await,
        Code::PermissionDenied,
        "MISSING_SCOPE",
    );

    // Assets.
    ledger.create_asset(bearer(asset.clone(), &suite.operator)).await.expect("operator registers GBP");
    assert_reason(ledger.create_asset(bearer(asset, &suite.operator)).await, Code::AlreadyExists, "ASSET_EXISTS");
    let unknown_asset = OpenAccountRequest { asset_code: "XYZ".into(), ..open.clone() };
    assert_reason(admin.open_account(bearer(unknown_asset, &suite.admin)).await, Code::NotFound, "ASSET_NOT_FOUND");
    admin.open_account(bearer(open.clone(), &suite.admin)).await.expect("open");
    admin.open_account(bearer(open.clone(), &suite.admin)).await.expect("opening again is idempotent");
    let conflicting = OpenAccountRequest { asset_code: "EUR".into(), ..open };
    assert_reason(admin.open_account(bearer(conflicting, &suite.admin)).await, Code::AlreadyExists, "ACCOUNT_EXISTS");

    // Not found.
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_reason(ledger.create_transfer(create(posted(&bank, &ghost, 1))).await, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let get = GetTransferRequest { transfer_id: ghost.clone() };
    assert_reason(ledger.get_transfer(bearer(get, &suite.writer)).await, Code::NotFound, "TRANSFER_NOT_FOUND");
    assert_reason(
        ledger.create_transfer(create(resolve(&ghost, TransferKind::PostPending, 0))).await,
        Code::NotFound,
        "PENDING_TRANSFER_NOT_FOUND",
    );
    let balance = GetBalanceRequest { account_id: ghost.clone(), as_of: None };
    assert_reason(ledger.get_balance(bearer(balance, &suite.writer)).await, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let reverse = ReverseTransferRequest {
        transfer_id: ghost.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    assert_reason(ledger.reverse_transfer(bearer(reverse, &suite.writer)).await, Code::NotFound, "TRANSFER_NOT_FOUND");
    let unknown = CreateTransferRequest { asset_code: "JPY".into(), ..posted(&bank, &other, 1) };
    assert_reason(ledger.create_transfer(create(unknown)).await, Code::NotFound, "ASSET_NOT_FOUND");

    // Business rules.
    let t = posted(&bank, &other, 5);
    ledger.create_transfer(create(t.clone())).await.unwrap();
    assert_reason(
        ledger.create_transfer(create(CreateTransferRequest { amount: 6, ..t })).await,
        Code::AlreadyExists,
        "TRANSFER_ID_REUSED",
    );
    assert_reason(
        ledger.create_transfer(bearer(posted(&account, &other, 101), &customer.token)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    let mismatch = CreateTransferRequest { asset_code: "EUR".into(), ..posted(&bank, &euros, 1) };
    assert_reason(ledger.create_transfer(create(mismatch)).await, Code::FailedPrecondition, "ASSET_MISMATCH");
    let hold =
        ledger.create_transfer(create(pending(&bank, &other, 50, 600))).await.unwrap().into_inner().transfer.unwrap();
    assert_reason(
        ledger.create_transfer(create(resolve(&hold.id, TransferKind::PostPending, 51))).await,
        Code::FailedPrecondition,
        "AMOUNT_EXCEEDS_PENDING",
    );
    let wrong_asset =
        CreateTransferRequest { asset_code: "EUR".into(), ..resolve(&hold.id, TransferKind::VoidPending, 0) };
    assert_reason(ledger.create_transfer(create(wrong_asset)).await, Code::FailedPrecondition, "ASSET_MISMATCH");
    ledger.create_transfer(create(resolve(&hold.id, TransferKind::VoidPending, 0))).await.unwrap();
    assert_reason(
        ledger.create_transfer(create(resolve(&hold.id, TransferKind::PostPending, 0))).await,
        Code::FailedPrecondition,
        "PENDING_TRANSFER_ALREADY_RESOLVED",
    );
    let short =
        ledger.create_transfer(create(pending(&bank, &other, 5, 1))).await.unwrap().into_inner().transfer.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_reason(
        ledger.create_transfer(create(resolve(&short.id, TransferKind::VoidPending, 0))).await,
        Code::FailedPrecondition,
        "PENDING_TRANSFER_EXPIRED",
    );
    let void_record =
        ledger.create_transfer(create(pending(&bank, &other, 5, 60))).await.unwrap().into_inner().transfer.unwrap();
    let reverse_hold = ReverseTransferRequest {
        transfer_id: void_record.id,
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    assert_reason(
        ledger.reverse_transfer(bearer(reverse_hold, &suite.writer)).await,
        Code::FailedPrecondition,
        "NOT_REVERSIBLE",
    );
    let funded = suite.fund(&bank, &other, 7).await;
    let once = ReverseTransferRequest {
        transfer_id: funded.id.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    ledger.reverse_transfer(bearer(once, &suite.writer)).await.unwrap();
    let twice = ReverseTransferRequest {
        transfer_id: funded.id,
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    assert_reason(
        ledger.reverse_transfer(bearer(twice, &suite.writer)).await,
        Code::FailedPrecondition,
        "ALREADY_REVERSED",
    );

    // Account lifecycle.
    let status = |status: AccountStatus, version: i64| SetAccountStatusRequest {
        account_id: account.clone(),
        status: status as i32,
        version,
    };
    admin.set_account_status(bearer(status(AccountStatus::Frozen, 1), &suite.admin)).await.unwrap();
    assert_reason(
        ledger.create_transfer(create(posted(&bank, &account, 1))).await,
        Code::FailedPrecondition,
        "ACCOUNT_FROZEN",
    );
    let stale =
        admin.set_account_status(bearer(status(AccountStatus::Active, 1), &suite.admin)).await.unwrap().into_inner();
    assert!(!stale.applied, "a stale version must not undo the freeze");
    assert_eq!(stale.account.unwrap().status, AccountStatus::Frozen as i32);
    admin.set_account_status(bearer(status(AccountStatus::Active, 2), &suite.admin)).await.unwrap();
    assert_reason(
        admin.set_account_status(bearer(status(AccountStatus::Closed, 3), &suite.admin)).await,
        Code::FailedPrecondition,
        "BALANCE_NOT_ZERO",
    );
    ledger.create_transfer(bearer(posted(&account, &bank, 100), &customer.token)).await.unwrap();
    admin.set_account_status(bearer(status(AccountStatus::Closed, 4), &suite.admin)).await.expect("closes at zero");
    assert_reason(
        ledger.create_transfer(create(posted(&bank, &account, 1))).await,
        Code::FailedPrecondition,
        "ACCOUNT_CLOSED",
    );
    assert_reason(
        admin.set_account_status(bearer(status(AccountStatus::Active, 5), &suite.admin)).await,
        Code::FailedPrecondition,
        "ACCOUNT_CLOSED",
    );
    let limit = SetOverdraftLimitRequest { account_id: bank.clone(), overdraft_limit: -1, version: 1 };
    assert_reason(admin.set_overdraft_limit(bearer(limit, &suite.admin)).await, Code::InvalidArgument, "INVALID_FIELD");
}

async fn an_overdraft_limit_lets_a_customer_go_that_far_below_zero(suite: Suite) {
    let customer = suite.customer().await;
    let sink = suite.system_account("USD").await;
    let account = suite.open(&customer.id, AccountKind::Customer, 0, "USD").await;
    let mut ledger = suite.ledger();
    assert_reason(
        ledger.create_transfer(bearer(posted(&account, &sink, 1), &customer.token)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    let limit = SetOverdraftLimitRequest { account_id: account.clone(), overdraft_limit: 300, version: 1 };
    suite.admin_client().set_overdraft_limit(bearer(limit, &suite.admin)).await.unwrap();
    ledger.create_transfer(bearer(posted(&account, &sink, 300), &customer.token)).await.expect("down to -300");
    assert_reason(
        ledger.create_transfer(bearer(posted(&account, &sink, 1), &customer.token)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
}
