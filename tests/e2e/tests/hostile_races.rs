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

/// A customer who gives up on its calls at every moment (each call dropped
/// mid-flight: the gateway drops it upstream too, and the service's query is
/// cut wherever it was) hurts no one who
/// shares a connection with it: not the gateway's one HTTP/2 connection to
/// each service (every abandoned call is a stream reset on it; at h2's
/// default "rapid reset" cap of 20 the ledger closed it under everyone's
/// calls: 10-12 of 57-75 well-behaved calls failed), and not the pooler's two
/// server connections per role. Abandoned calls are counted CANCELLED, not as
/// the services' faults (1,250 INTERNAL on the ledger before).
#[tokio::test]
async fn a_caller_abandoning_its_calls_breaks_no_shared_connection_through_the_pooler() {
    let db = TestDatabase::postgres().await;
    let redis = OwnRedis::start();
    let (stack, _bouncer) = support::pooler::pooled_stack(&db, Some(redis.url()), 2).await;
    let operator = stack.operator().await;
    let (_, hostile) = stack.customer().await;
    let from = stack.funded(&hostile, &operator, 1_000_000).await;
    let to = stack.open(&hostile, AccountKind::Customer).await;
    let bystander = Bystander::start_paced(&stack, &operator, 2, Duration::from_millis(20)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let hostiles: Vec<_> = (0..8u64)
        .map(|worker| {
            let (mut ledger, mut accounts) = (stack.ledger(), stack.accounts());
            let (hostile, from, to, stop) = (hostile.clone(), from.clone(), to.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut abandoned, mut answered, mut cut_off) = (0, 0, 0);
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    // Given up after 0 to 4 ms (half the clients: a flood of
                    // resets) or 0 to 150 ms (the others: some calls are answered
                    // in time, so others are cut late, in the database).
                    let spread = if worker % 2 == 0 { 4_000 } else { 150_000 };
                    let patience = Duration::from_micros((round * 7919 + worker * 104_729) % spread);
                    let call = async {
                        match round % 3 {
                            0 => ledger.create_transfer(bearer(posted(&from, &to, 1), &hostile)).await.map(|_| ()),
                            1 => {
                                let request = folio_proto::ledger::ListTransfersRequest {
                                    account_id: from.clone(),
                                    page_size: 1000,
                                    ..Default::default()
                                };
                                ledger.list_transfers(bearer(request, &hostile)).await.map(|_| ())
                            }
                            _ => {
                                let request = GetAccountRequest { account_id: from.clone() };
                                accounts.get_account(bearer(request, &hostile)).await.map(|_| ())
                            }
                        }
                    };
                    match tokio::time::timeout(patience, call).await {
                        Err(_) => abandoned += 1,
                        Ok(Ok(())) => answered += 1,
                        // The front door closing this caller's own connection
                        // (h2 caps the streams a client may reset) is the client
                        // library's UNKNOWN, not an answer.
                        Ok(Err(status)) if status.code() == Code::Unknown && status.message() == "transport error" => {
                            if cut_off == 0 {
                                eprintln!("abandoning caller cut off: {status:?}");
                            }
                            cut_off += 1;
                        }
                        Ok(Err(status)) => {
                            assert_never_internal(&status, "an abandoning caller's call");
                            answered += 1;
                        }
                    }
                }
                (abandoned, answered, cut_off)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut abandoned, mut answered, mut cut_off) = (0, 0, 0);
    for hostile in hostiles {
        let (a, b, c) = hostile.await.unwrap();
        (abandoned, answered, cut_off) = (abandoned + a, answered + b, cut_off + c);
    }
    eprintln!("abandoning caller: {abandoned} calls given up, {answered} answered, {cut_off} cut off");
    assert!(abandoned > 100, "the hostile caller must give up on calls mid-flight ({abandoned})");
    assert!(answered > 0, "some of the hostile caller's calls must get far enough to be answered");

    // The well-behaved customer keeps going after the hostile one stopped:
    // a connection left mid-statement would hold its server from the rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tally =
        tokio::time::timeout(Duration::from_secs(60), bystander.finish()).await.expect("the bystander finished");
    tally.assert_no_collateral("abandoned calls through the pooler");
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let read = GetAccountRequest { account_id: from.clone() };
        stack.accounts().get_account(bearer(read, &hostile)).await.expect("a read after the hostile stopped");
        assert!(started.elapsed() < Duration::from_secs(2), "a read took {:?}", started.elapsed());
    }
    // Calls the client cut off are CANCELLED, not server faults: one customer
    // must not raise the error rate the operators are paged on.
    for (service, admin) in
        [("ledger", stack.ledger_admin), ("account", stack.account_admin), ("gateway", stack.gateway_admin)]
    {
        let faults: Vec<_> = Stack::metrics(admin)
            .await
            .lines()
            .filter(|line| line.starts_with("folio_grpc_requests_total") && line.contains("code=\"Internal\""))
            .map(str::to_owned)
            .collect();
        assert!(faults.is_empty(), "{service} counted abandoned calls as its own faults: {faults:?}");
    }
    assert_money_conserved(&db).await;
}
