//! The standing guard of DESIGN §5a, part two: races and lost dependencies.
//! The four services run as processes on PostgreSQL and a Redis of each
//! test's own; every answer must be true, counters that guard security must
//! hold under concurrency, and losing Redis must not stop anyone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use folio_proto::{
    account::{CloseAccountRequest, FreezeAccountRequest, GetAccountRequest, UpdateAccountRequest},
    auth::{
        DisableServiceAccountRequest, GetJwksRequest, LoginRequest, LogoutRequest, RefreshRequest,
        RotateSigningKeyRequest,
    },
    ledger::AccountKind,
};
use folio_testkit::{OwnRedis, TestDatabase};
use sea_orm::{ConnectionTrait, Statement};
use support::{
    PASSWORD, Stack, assert_money_conserved, bearer,
    hostile::{Bystander, Tally, assert_never_internal, describe},
    posted,
};
use tonic::Code;

fn mask(path: &str) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: vec![path.to_owned()] })
}

#[tokio::test]
async fn an_operators_answers_are_true_while_the_owner_races_them() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = Stack::start(Some(&db), Some(redis.url()), &[]).await;
    let operator = stack.operator().await;
    let (_, owner) = stack.customer().await;
    let account = stack.open(&owner, AccountKind::Customer).await;
    let other = stack.open(&owner, AccountKind::Customer).await;
    let stop = Arc::new(AtomicBool::new(false));
    let renamers: Vec<_> = (0..4)
        .map(|n| {
            let (mut accounts, owner, account, stop) = (stack.accounts(), owner.clone(), account.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let got = accounts.get_account(bearer(GetAccountRequest { account_id: account.clone() }, &owner));
                    let etag = got.await.unwrap().into_inner().account.unwrap().etag;
                    let rename = UpdateAccountRequest {
                        account_id: account.clone(),
                        etag,
                        update_mask: mask("display_name"),
                        display_name: format!("Renamed {n}"),
                        ..Default::default()
                    };
                    if let Err(status) = accounts.update_account(bearer(rename, &owner)).await {
                        assert_eq!(status.code(), Code::Aborted, "{}", describe(&status));
                    }
                }
            })
        })
        .collect();
    let mut accounts = stack.accounts();
    let (mut applied, mut aborted) = (0, 0);
    for attempt in 1..=30 {
        let got = accounts.get_account(bearer(GetAccountRequest { account_id: account.clone() }, &operator)).await;
        let etag = got.unwrap().into_inner().account.unwrap().etag;
        let update = UpdateAccountRequest {
            account_id: account.clone(),
            etag,
            update_mask: mask("overdraft_limit"),
            overdraft_limit: 1_000 * attempt,
            ..Default::default()
        };
        match accounts.update_account(bearer(update, &operator)).await {
            Ok(_) => applied = 1_000 * attempt,
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{}", describe(&status));
                aborted += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for renamer in renamers {
        renamer.await.unwrap();
    }
    eprintln!("operator limit changes: {aborted} of 30 lost their etag to the owner");
    // Only what was answered OK was applied: one more than that is refused.
    let overdraw = stack.ledger().create_transfer(bearer(posted(&account, &other, applied + 1), &owner)).await;
    assert_eq!(describe(&overdraw.expect_err("past the applied limit")), "FailedPrecondition INSUFFICIENT_FUNDS");
    // A freeze answered OK holds, and the owner cannot close around it.
    let freeze = FreezeAccountRequest { account_id: account.clone(), reason: "review".into() };
    accounts.freeze_account(bearer(freeze, &operator)).await.expect("freeze");
    let moved = stack.ledger().create_transfer(bearer(posted(&account, &other, 1), &owner)).await;
    assert_eq!(describe(&moved.expect_err("frozen")), "FailedPrecondition ACCOUNT_FROZEN");
    let close = CloseAccountRequest { account_id: account.clone(), reason: String::new() };
    let closed = accounts.close_account(bearer(close, &owner)).await;
    assert_eq!(describe(&closed.expect_err("frozen by an operator")), "FailedPrecondition ACCOUNT_FROZEN");
    assert_money_conserved(&db).await;
}

#[tokio::test]
async fn sign_in_attempts_sent_at_once_are_checked_at_most_five_times() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = Stack::start(Some(&db), Some(redis.url()), &[]).await;
    let (email, _) = stack.customer().await;
    let calls: Vec<_> = (0..41)
        .map(|i| {
            let mut auth = stack.auth();
            let password = if i == 20 { PASSWORD.to_owned() } else { format!("wrong password {i:04}") };
            let email = email.clone();
            tokio::spawn(async move { auth.login(LoginRequest { email, password }).await })
        })
        .collect();
    let mut checked = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => checked += 1,
            Err(status) => {
                assert_never_internal(&status, "a raced sign-in");
                match status.code() {
                    Code::Unauthenticated => checked += 1,
                    code => assert_eq!(code, Code::ResourceExhausted, "{}", describe(&status)),
                }
            }
        }
    }
    eprintln!("41 sign-ins at once: {checked} checked against the password");
    assert!(checked <= 5, "{checked} attempts were checked; the cap is 5");
}

#[tokio::test]
async fn operators_rotating_at_once_leave_exactly_one_signer() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = Stack::start(Some(&db), Some(redis.url()), &[("FOLIO__AUTH__KEY_ACTIVATION_DELAY_SECS", "1")]).await;
    let operator = stack.operator().await;
    let rotations: Vec<_> = (0..8)
        .map(|_| {
            let (mut auth, token) = (stack.auth(), operator.clone());
            tokio::spawn(async move { auth.rotate_signing_key(bearer(RotateSigningKeyRequest {}, &token)).await })
        })
        .collect();
    for rotation in rotations {
        rotation.await.unwrap().expect("rotation");
    }
    let auth_db = folio_storage::db::connect_url(&db.url, "auth", 1).await.unwrap();
    let sql = "SELECT COUNT(*) AS n FROM signing_keys WHERE retired_at IS NULL";
    let row = auth_db
        .query_one_raw(Statement::from_string(auth_db.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 1, "exactly one key is left to sign");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stack.customer().await;
    // The suite's own service accounts stay under configuration's control.
    let disable = DisableServiceAccountRequest { client_id: "folio-ledger".into() };
    let refused = stack.auth().disable_service_account(bearer(disable, &operator)).await;
    assert_eq!(describe(&refused.expect_err("provisioned")), "FailedPrecondition SERVICE_ACCOUNT_PROVISIONED");
}

#[tokio::test]
async fn public_rpcs_ignore_the_bearer_a_client_always_attaches() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = Stack::start(Some(&db), Some(redis.url()), &[]).await;
    let (email, token) = stack.customer().await;
    let mut auth = stack.auth();
    auth.logout(bearer(LogoutRequest {}, &token)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let login = LoginRequest { email, password: PASSWORD.into() };
    let fresh = auth.login(bearer(login, &token)).await.expect("Login ignores a stale bearer").into_inner();
    auth.get_jwks(bearer(GetJwksRequest {}, &token)).await.expect("GetJwks ignores a stale bearer");
    let refresh = RefreshRequest { refresh_token: fresh.refresh_token };
    auth.refresh(bearer(refresh, &token)).await.expect("Refresh ignores a stale bearer");
}

#[tokio::test]
async fn losing_redis_under_load_stops_nobody_and_loses_nothing() {
    let (db, mut redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let budget = [
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_RPS", "20"),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_BURST", "40"),
    ];
    let stack = Stack::start(Some(&db), Some(redis.url()), &budget).await;
    let operator = stack.operator().await;
    // Two workers at five calls a second each stay inside the budget.
    let bystander = Bystander::start_paced(&stack, &operator, 2, Duration::from_millis(200)).await;
    let (email, _) = stack.customer().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop();
    let mut signins = Tally::default();
    for _ in 0..5 {
        match stack.auth().login(LoginRequest { email: email.clone(), password: PASSWORD.into() }).await {
            Ok(_) => signins.ok += 1,
            Err(status) => signins.failed.push(describe(&status)),
        }
    }
    // A hostile principal still meets its budget while Redis is away.
    let (_, hostile) = stack.customer().await;
    let hammers: Vec<_> = (0..16)
        .map(|_| {
            let (mut ledger, hostile) = (stack.ledger(), hostile.clone());
            tokio::spawn(async move {
                let mut limited = 0;
                for _ in 0..60 {
                    let request = folio_proto::ledger::ListAssetsRequest { page_size: 1, page_token: String::new() };
                    if let Err(status) = ledger.list_assets(bearer(request, &hostile)).await {
                        assert_eq!(describe(&status), "ResourceExhausted RATE_LIMITED");
                        limited += 1;
                    }
                }
                limited
            })
        })
        .collect();
    let mut limited = 0;
    for hammer in hammers {
        limited += hammer.await.unwrap();
    }
    redis.resume();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for _ in 0..5 {
        match stack.auth().login(LoginRequest { email: email.clone(), password: PASSWORD.into() }).await {
            Ok(_) => signins.ok += 1,
            Err(status) => signins.failed.push(describe(&status)),
        }
    }
    signins.assert_no_collateral("sign-in across a Redis outage");
    bystander.finish().await.assert_no_collateral("traffic across a Redis outage");
    assert!(limited > 0, "no rate limit held while Redis was down");
    assert_money_conserved(&db).await;
}
