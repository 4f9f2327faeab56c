//! Transfers of every kind over real gRPC, on PostgreSQL and SQLite:
//! balances, holds, idempotency, batches, reversals, and races between real
//! parallel clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::ledger::{
    AccountKind, AccountStatus, CreateTransfersRequest, GetBalanceRequest, GetTransferRequest, NewTransfer,
    ReverseTransferRequest, SetAccountStatusRequest, TransferKind, TransferStatus, transfer_result,
};
use support::{Suite, assert_reason, bearer, invariants, pending, posted, reason, resolve};
use tonic::Code;

on_postgres_and_sqlite!(
    a_customer_moves_money_and_both_balances_follow,
    fifty_concurrent_debits_of_ten_from_a_hundred_let_exactly_ten_through,
    thirty_two_concurrent_calls_with_one_id_make_one_transfer,
    holds_reduce_available_resolve_once_and_expire,
    a_retry_returns_the_original_even_after_freeze_or_resolution,
    an_invalid_transfer_in_an_atomic_batch_of_a_thousand_writes_nothing,
    reversals_swap_the_sides_once,
);

async fn balance(suite: &Suite, account: &str) -> folio_proto::ledger::Balance {
    let request = GetBalanceRequest { account_id: account.to_owned(), as_of: None };
    suite.ledger().get_balance(bearer(request, &suite.writer)).await.unwrap().into_inner().balance.unwrap()
}

async fn a_customer_moves_money_and_both_balances_follow(suite: Suite) {
    let alice = suite.customer().await;
    let bob = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let a = suite.open(&alice.id, AccountKind::Customer, 0, "USD").await;
    let b = suite.open(&bob.id, AccountKind::Customer, 0, "USD").await;
    suite.fund(&bank, &a, 10_000).await;

    let sent = suite
        .ledger()
        .create_transfer(bearer(posted(&a, &b, 2_500), &alice.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(sent.status, TransferStatus::Posted as i32);
    assert_eq!(sent.initiated_by, alice.id);
    assert!(sent.sequence > 0);
    assert_eq!(balance(&suite, &a).await.posted, 7_500);
    assert_eq!(balance(&suite, &b).await.posted, 2_500);
    assert_eq!(balance(&suite, &bank).await.posted, -10_000, "a system account may go negative");

    // Bob cannot spend Alice's money; Alice cannot overdraw.
    assert_reason(
        suite.ledger().create_transfer(bearer(posted(&a, &b, 1), &bob.token)).await,
        Code::PermissionDenied,
        "NOT_ACCOUNT_OWNER",
    );
    assert_reason(
        suite.ledger().create_transfer(bearer(posted(&a, &b, 7_501), &alice.token)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );
    // Reads are the owner's too.
    let request = GetBalanceRequest { account_id: a.clone(), as_of: None };
    assert_reason(
        suite.ledger().get_balance(bearer(request, &bob.token)).await,
        Code::PermissionDenied,
        "NOT_ACCOUNT_OWNER",
    );
    let request = GetTransferRequest { transfer_id: sent.id.clone() };
    suite
        .ledger()
        .get_transfer(bearer(request.clone(), &bob.token))
        .await
        .expect("the credited owner reads the transfer");
    invariants::check(&suite.ledger_db().await).await;
}

async fn fifty_concurrent_debits_of_ten_from_a_hundred_let_exactly_ten_through(suite: Suite) {
    let owner = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&owner.id, AccountKind::Customer, 0, "USD").await;
    let sink = suite.system_account("USD").await;
    suite.fund(&bank, &account, 100).await;
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let mut client = suite.ledger();
            let request = bearer(posted(&account, &sink, 10), &owner.token);
            tokio::spawn(async move { client.create_transfer(request).await })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(reason(&status), "INSUFFICIENT_FUNDS", "{status:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (10, 40));
    assert_eq!(balance(&suite, &account).await.posted, 0);
    invariants::check(&suite.ledger_db().await).await;
}

async fn thirty_two_concurrent_calls_with_one_id_make_one_transfer(suite: Suite) {
    let bank = suite.system_account("USD").await;
    let target = suite.system_account("USD").await;
    let request = posted(&bank, &target, 777);
    let attempts: Vec<_> = (0..32)
        .map(|_| {
            let mut client = suite.ledger();
            let request = bearer(request.clone(), &suite.writer);
            tokio::spawn(async move { client.create_transfer(request).await })
        })
        .collect();
    let mut replies = Vec::new();
    for attempt in attempts {
        replies.push(attempt.await.unwrap().expect("every retry succeeds").into_inner().transfer.unwrap());
    }
    assert!(replies.iter().all(|r| *r == replies[0]), "replies differ");
    assert_eq!(balance(&suite, &target).await.posted, 777, "exactly one transfer");
    let reused = folio_proto::ledger::CreateTransferRequest { amount: 778, ..request };
    assert_reason(
        suite.ledger().create_transfer(bearer(reused, &suite.writer)).await,
        Code::AlreadyExists,
        "TRANSFER_ID_REUSED",
    );
}

async fn holds_reduce_available_resolve_once_and_expire(suite: Suite) {
    let owner = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let shop = suite.system_account("USD").await;
    let account = suite.open(&owner.id, AccountKind::Customer, 0, "USD").await;
    suite.fund(&bank, &account, 1_000).await;

    let hold = suite
        .ledger()
        .create_transfer(bearer(pending(&account, &shop, 600, 60), &owner.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let b = balance(&suite, &account).await;
    assert_eq!((b.posted, b.debits_pending, b.available), (1_000, 600, 400));
    assert_reason(
        suite.ledger().create_transfer(bearer(posted(&account, &shop, 401), &owner.token)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_FUNDS",
    );

    // Post and void race: exactly one wins.
    let post = resolve(&hold.id, TransferKind::PostPending, 250);
    let void = resolve(&hold.id, TransferKind::VoidPending, 0);
    let (mut a, mut b) = (suite.ledger(), suite.ledger());
    let (post_request, void_request) = (bearer(post, &owner.token), bearer(void, &owner.token));
    let (posted_result, voided_result) = tokio::join!(a.create_transfer(post_request), b.create_transfer(void_request));
    let winners = [posted_result.is_ok(), voided_result.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(winners, 1, "post {posted_result:?} / void {voided_result:?}");
    let loser = posted_result.err().or(voided_result.err()).unwrap();
    assert_eq!(reason(&loser), "PENDING_TRANSFER_ALREADY_RESOLVED");
    let after = balance(&suite, &account).await;
    assert_eq!(after.debits_pending, 0);
    assert!(after.posted == 750 || after.posted == 1_000, "partial post releases the rest: {after:?}");

    // An expired hold is released by the sweeper and cannot be posted.
    let short = suite
        .ledger()
        .create_transfer(bearer(pending(&account, &shop, 100, 1), &owner.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(balance(&suite, &account).await.debits_pending, 100);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_reason(
        suite.ledger().create_transfer(bearer(resolve(&short.id, TransferKind::PostPending, 0), &owner.token)).await,
        Code::FailedPrecondition,
        "PENDING_TRANSFER_EXPIRED",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = suite
            .ledger()
            .get_transfer(bearer(GetTransferRequest { transfer_id: short.id.clone() }, &owner.token))
            .await
            .unwrap()
            .into_inner()
            .transfer
            .unwrap()
            .status;
        if status == TransferStatus::Expired as i32 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sweeper did not release the hold within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(balance(&suite, &account).await.debits_pending, 0, "an expired hold releases its amount");
    invariants::check(&suite.ledger_db().await).await;
}

async fn a_retry_returns_the_original_even_after_freeze_or_resolution(suite: Suite) {
    let owner = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&owner.id, AccountKind::Customer, 0, "USD").await;
    suite.fund(&bank, &account, 500).await;
    let hold_request = pending(&account, &bank, 100, 600);
    let hold = suite
        .ledger()
        .create_transfer(bearer(hold_request.clone(), &owner.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let post_request = resolve(&hold.id, TransferKind::PostPending, 0);
    let post = suite
        .ledger()
        .create_transfer(bearer(post_request.clone(), &owner.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let payment = posted(&account, &bank, 50);
    let paid = suite
        .ledger()
        .create_transfer(bearer(payment.clone(), &owner.token))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();

    let freeze =
        SetAccountStatusRequest { account_id: account.clone(), status: AccountStatus::Frozen as i32, version: 1 };
    suite.admin_client().set_account_status(bearer(freeze, &suite.admin)).await.unwrap();
    assert_reason(
        suite.ledger().create_transfer(bearer(posted(&account, &bank, 1), &owner.token)).await,
        Code::FailedPrecondition,
        "ACCOUNT_FROZEN",
    );

    let again = |r| async {
        suite.ledger().create_transfer(bearer(r, &owner.token)).await.unwrap().into_inner().transfer.unwrap()
    };
    assert_eq!(again(payment).await, paid, "the retried payment answers the original");
    assert_eq!(again(post_request).await, post, "the retried post answers the original");
    let original_hold = again(hold_request).await;
    assert_eq!(original_hold.id, hold.id);
    assert_eq!(original_hold.status, TransferStatus::PostedFromPending as i32, "the hold shows its resolution");
}

async fn an_invalid_transfer_in_an_atomic_batch_of_a_thousand_writes_nothing(suite: Suite) {
    let bank = suite.system_account("USD").await;
    let target = suite.system_account("USD").await;
    let euros = suite.system_account("EUR").await;
    let transfer = |credit: &str| NewTransfer {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: bank.clone(),
        credit_account_id: credit.to_owned(),
        amount: 1,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        ..Default::default()
    };
    let mut transfers: Vec<NewTransfer> = (0..1000).map(|_| transfer(&target)).collect();
    transfers[500] = transfer(&euros);
    let status = suite
        .ledger()
        .create_transfers(bearer(CreateTransfersRequest { transfers: transfers.clone(), atomic: true }, &suite.writer))
        .await
        .expect_err("atomic batch with a bad transfer");
    assert_eq!(reason(&status), "ASSET_MISMATCH");
    let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
    assert_eq!(info.metadata.get("index").map(String::as_str), Some("500"));
    assert_eq!(balance(&suite, &target).await.posted, 0, "nothing of the atomic batch was written");

    let results = suite
        .ledger()
        .create_transfers(bearer(CreateTransfersRequest { transfers, atomic: false }, &suite.writer))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 1000);
    for (index, result) in results.iter().enumerate() {
        match (&result.result, index) {
            (Some(transfer_result::Result::Error(error)), 500) => {
                assert_eq!(error.code, Code::FailedPrecondition as i32)
            }
            (Some(transfer_result::Result::Transfer(_)), i) if i != 500 => {}
            other => panic!("unexpected result at {index}: {other:?}"),
        }
    }
    assert_eq!(balance(&suite, &target).await.posted, 999);
    invariants::check(&suite.ledger_db().await).await;
}

async fn reversals_swap_the_sides_once(suite: Suite) {
    let customer = suite.customer().await;
    let bank = suite.system_account("USD").await;
    let account = suite.open(&customer.id, AccountKind::Customer, 0, "USD").await;
    let original = suite.fund(&bank, &account, 300).await;
    let reverse = ReverseTransferRequest {
        transfer_id: original.id.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        description: "refund".into(),
    };
    assert_reason(
        suite.ledger().reverse_transfer(bearer(reverse.clone(), &customer.token)).await,
        Code::PermissionDenied,
        "MISSING_ROLE",
    );
    let reversal = suite
        .ledger()
        .reverse_transfer(bearer(reverse.clone(), &suite.operator))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    assert_eq!(
        (reversal.debit_account_id.as_str(), reversal.credit_account_id.as_str()),
        (account.as_str(), bank.as_str())
    );
    assert_eq!(reversal.reverses_transfer_id, original.id);
    assert_eq!(balance(&suite, &account).await.posted, 0);
    let again =
        suite.ledger().reverse_transfer(bearer(reverse, &suite.operator)).await.unwrap().into_inner().transfer.unwrap();
    assert_eq!(again, reversal, "a retried reversal answers the original");
    let second = ReverseTransferRequest {
        transfer_id: original.id.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    assert_reason(
        suite.ledger().reverse_transfer(bearer(second, &suite.operator)).await,
        Code::FailedPrecondition,
        "ALREADY_REVERSED",
    );
    let hold = suite
        .ledger()
        .create_transfer(bearer(pending(&bank, &account, 5, 60), &suite.writer))
        .await
        .unwrap()
        .into_inner()
        .transfer
        .unwrap();
    let of_hold = ReverseTransferRequest {
        transfer_id: hold.id,
        id: uuid::Uuid::new_v4().to_string(),
        description: String::new(),
    };
    assert_reason(
        suite.ledger().reverse_transfer(bearer(of_hold, &suite.operator)).await,
        Code::FailedPrecondition,
        "NOT_REVERSIBLE",
    );
    invariants::check(&suite.ledger_db().await).await;
}
