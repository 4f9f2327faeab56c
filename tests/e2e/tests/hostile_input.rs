//! The standing guard of DESIGN §4 and §5a, part one: hostile input. Each
//! test runs the four services as processes on PostgreSQL and a Redis of its
//! own, sends one kind of hostile input through the gateway while a
//! well-behaved customer works beside it, and asserts that the hostile calls
//! get the caller error the contract names, that none of the well-behaved
//! calls fails, that nothing answers INTERNAL or UNKNOWN, and that money is
//! conserved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use folio_proto::{
    account::{
        CreateAccountRequest, FreezeAccountRequest, GetAccountRequest, ListAccountsRequest, UpdateAccountRequest,
    },
    auth::{IssueServiceTokenRequest, LoginRequest, RegisterRequest},
    ledger::{
        AccountKind, AccountStatus, CreateTransfersRequest, GetBalanceRequest, ListAssetsRequest, NewTransfer,
        TransferKind, transfer_result,
    },
};
use folio_testkit::{OwnRedis, TestDatabase, unique};
use sea_orm::{ConnectionTrait, Statement};
use support::{
    PASSWORD, Stack, assert_money_conserved, bearer,
    hostile::{Bystander, assert_never_internal, describe},
    posted,
};
use tonic::Code;

async fn stack(db: &TestDatabase, redis: &OwnRedis, extra: &[(&str, &str)]) -> Stack {
    Stack::start(Some(db), Some(redis.url()), extra).await
}

/// Refuses `description = 'poison'` inside the ledger's batch statement: a
/// value the database refuses that no validator foresaw.
async fn poison_the_ledger_store(db: &TestDatabase) {
    let ledger = folio_storage::db::connect_url(&db.url, "ledger", 1).await.unwrap();
    for sql in [
        "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.description = 'poison' THEN RAISE EXCEPTION 'poisoned value' USING ERRCODE = '22023'; END IF; \
         RETURN NEW; END $$",
        "CREATE TRIGGER poison BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION poison()",
    ] {
        ledger.execute_raw(Statement::from_string(ledger.get_database_backend(), sql.to_owned())).await.unwrap();
    }
}

fn new_transfer(debit: &str, credit: &str, description: &str) -> NewTransfer {
    NewTransfer {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: debit.into(),
        credit_account_id: credit.into(),
        amount: 1,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        description: description.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn poison_transfers_fail_alone() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[]).await;
    poison_the_ledger_store(&db).await;
    let operator = stack.operator().await;
    let (_, hostile) = stack.customer().await;
    let from = stack.funded(&hostile, &operator, 1_000_000).await;
    let to = stack.open(&hostile, AccountKind::Customer).await;
    let bystander = Bystander::start(&stack, &operator, 8).await;
    // The hostile customer's answers are kept and judged after the
    // bystander's tally, so a run against a broken build reports both.
    let mut singles: HashMap<String, usize> = HashMap::new();
    let mut batches: Vec<Result<Vec<Option<i32>>, String>> = Vec::new();
    for round in 0..40 {
        let mut ledger = stack.ledger();
        let description = if round % 2 == 0 { "bad\u{0}" } else { "poison" };
        let mut single = posted(&from, &to, 1);
        single.description = description.into();
        let answer = ledger.create_transfer(bearer(single, &hostile)).await;
        *singles.entry(answer.map_or_else(|status| describe(&status), |_| "OK".to_owned())).or_default() += 1;
        let batch =
            vec![new_transfer(&from, &to, "ok"), new_transfer(&from, &to, description), new_transfer(&from, &to, "ok")];
        let reply =
            ledger.create_transfers(bearer(CreateTransfersRequest { transfers: batch, atomic: false }, &hostile));
        batches.push(reply.await.map_err(|status| describe(&status)).map(|reply| {
            reply
                .into_inner()
                .results
                .iter()
                .map(|r| match &r.result {
                    Some(transfer_result::Result::Error(status)) => Some(status.code),
                    _ => None,
                })
                .collect()
        }));
    }
    let tally = bystander.finish().await;
    tally.report("poison transfers");
    assert_eq!(singles.keys().collect::<Vec<_>>(), ["InvalidArgument INVALID_FIELD"], "{singles:?}");
    for shape in batches {
        assert_eq!(shape, Ok(vec![None, Some(Code::InvalidArgument as i32), None]), "a [good, poison, good] batch");
    }
    tally.assert_no_collateral("poison transfers");
    assert_money_conserved(&db).await;
}

#[tokio::test]
async fn nul_and_invisible_text_anywhere_is_a_callers_mistake() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[]).await;
    let operator = stack.operator().await;
    let bystander = Bystander::start(&stack, &operator, 4).await;
    let (mut auth, mut accounts, mut ledger) = (stack.auth(), stack.accounts(), stack.ledger());
    let expect = |result: Result<(), tonic::Status>, code: Code, what: &str| {
        let status = result.expect_err(what);
        assert_never_internal(&status, what);
        assert_eq!(status.code(), code, "{what}: {}", describe(&status));
    };
    for email in ["nul\u{0}@example.com", "ops@example.test\u{200b}"] {
        let register = RegisterRequest { email: email.into(), password: PASSWORD.into(), display_name: "X".into() };
        expect(auth.register(register).await.map(|_| ()), Code::InvalidArgument, "Register");
        let login = LoginRequest { email: email.into(), password: PASSWORD.into() };
        expect(auth.login(login).await.map(|_| ()), Code::Unauthenticated, "Login");
    }
    let issue = IssueServiceTokenRequest { client_id: "c\u{0}".into(), client_secret: "s".into(), scopes: vec![] };
    expect(auth.issue_service_token(issue).await.map(|_| ()), Code::InvalidArgument, "IssueServiceToken");
    let (_, customer) = stack.customer().await;
    let forged = base64_url("0:\u{0}");
    let list = ListAccountsRequest { page_token: forged, ..Default::default() };
    expect(accounts.list_accounts(bearer(list, &customer)).await.map(|_| ()), Code::InvalidArgument, "ListAccounts");
    let assets = ListAssetsRequest { page_token: "\u{0}".into(), page_size: 10 };
    expect(ledger.list_assets(bearer(assets, &customer)).await.map(|_| ()), Code::InvalidArgument, "ListAssets");
    let create = CreateAccountRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        asset_code: "USD".into(),
        display_name: "Meta".into(),
        metadata: [("k".to_owned(), "v\u{0}".to_owned())].into(),
        ..Default::default()
    };
    expect(accounts.create_account(bearer(create, &customer)).await.map(|_| ()), Code::InvalidArgument, "metadata");
    let account = stack.open(&customer, AccountKind::Customer).await;
    let freeze = FreezeAccountRequest { account_id: account.clone(), reason: "r\u{0}".into() };
    expect(accounts.freeze_account(bearer(freeze, &operator)).await.map(|_| ()), Code::InvalidArgument, "Freeze");
    let got = accounts.get_account(bearer(GetAccountRequest { account_id: account.clone() }, &customer)).await;
    assert_eq!(got.unwrap().into_inner().account.unwrap().status, AccountStatus::Active as i32);
    let other = stack.open(&customer, AccountKind::Customer).await;
    ledger.create_transfer(bearer(posted(&account, &other, 0), &customer)).await.expect_err("amount 0");
    let moved = stack.funded(&customer, &operator, 10).await;
    ledger
        .create_transfer(bearer(posted(&moved, &account, 1), &customer))
        .await
        .expect("the account still moves money");
    let bad_time = GetBalanceRequest {
        account_id: account.clone(),
        as_of: Some(prost_types::Timestamp { seconds: 1, nanos: 1_000_000_000 }),
    };
    expect(ledger.get_balance(bearer(bad_time, &customer)).await.map(|_| ()), Code::InvalidArgument, "as_of nanos");
    bystander.finish().await.assert_no_collateral("NUL and invisible text");
    assert_money_conserved(&db).await;
}

fn base64_url(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text)
}

#[tokio::test]
async fn an_error_echoing_a_huge_field_breaks_no_shared_connection() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[]).await;
    let operator = stack.operator().await;
    let (_, hostile) = stack.customer().await;
    let account = stack.open(&hostile, AccountKind::Customer).await;
    let bystander = Bystander::start(&stack, &operator, 8).await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (mut accounts, token, account) = (stack.accounts(), hostile.clone(), account.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..40 {
                    let update = UpdateAccountRequest {
                        account_id: account.clone(),
                        etag: "\"1\"".into(),
                        update_mask: Some(prost_types::FieldMask { paths: vec!["p".repeat(12_000)] }),
                        ..Default::default()
                    };
                    answers.push(accounts.update_account(bearer(update, &token)).await.expect_err("no such field"));
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.extend(call.await.unwrap());
    }
    let tally = bystander.finish().await;
    tally.report("error echo");
    for status in answers {
        assert_never_internal(&status, "a huge update_mask path");
        assert_eq!(status.code(), Code::InvalidArgument, "{}", describe(&status));
        assert!(status.message().len() < 600, "the echo is bounded: {} bytes", status.message().len());
        assert!(status.details().len() <= 2048, "the details are bounded: {} bytes", status.details().len());
    }
    tally.assert_no_collateral("error echo");
}

#[tokio::test]
async fn bodies_that_never_arrive_cannot_take_the_front_door() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[("FOLIO__GATEWAY__MAX_DEADLINE_MS", "3000")]).await;
    let (_, hostile) = stack.customer().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::StreamBody<
        futures::stream::Pending<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>>,
    >>();
    let gateway = stack.gateway;
    let stalled: Vec<_> = (0..1024)
        .map(|_| {
            let (client, token) = (client.clone(), hostile.clone());
            tokio::spawn(async move {
                let request =
                    http::Request::post(format!("http://{gateway}/folio.ledger.v1.LedgerService/CreateTransfer"))
                        .header("content-type", "application/grpc")
                        .header("te", "trailers")
                        .header("authorization", format!("Bearer {token}"))
                        .body(http_body_util::StreamBody::new(futures::stream::pending()))
                        .unwrap();
                let started = Instant::now();
                let response = client.request(request).await.unwrap();
                let code =
                    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                (code, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The well-behaved customer calls from another address.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{gateway}"))
        .unwrap()
        .local_address(Some(IpAddr::from([127, 0, 0, 2])))
        .connect()
        .await
        .unwrap();
    let operator = stack.operator().await;
    let (_, token) = stack.customer().await;
    let account = stack.funded(&token, &operator, 1_000).await;
    let mut accounts = folio_proto::account::account_service_client::AccountServiceClient::new(channel);
    let mut tally = support::hostile::Tally::default();
    for _ in 0..100 {
        match accounts.get_account(bearer(GetAccountRequest { account_id: account.clone() }, &token)).await {
            Ok(_) => tally.ok += 1,
            Err(status) => tally.failed.push(describe(&status)),
        }
    }
    tally.assert_no_collateral("stalled bodies");
    for call in stalled {
        let (code, took) = tokio::time::timeout(Duration::from_secs(10), call).await.expect("answered").unwrap();
        assert!(matches!(code.as_str(), "4" | "14"), "a stalled call answered grpc-status {code}");
        assert!(took < Duration::from_secs(5), "a stalled call held on for {took:?}");
    }
}

fn series(metrics: &str) -> usize {
    metrics.lines().filter(|line| line.starts_with("folio_grpc_requests_total{")).count()
}

#[tokio::test]
async fn made_up_paths_add_no_metric_series() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[]).await;
    let (_, token) = stack.customer().await;
    let before =
        (series(&Stack::metrics(stack.gateway_admin).await), series(&Stack::metrics(stack.ledger_admin).await));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for i in 0..300 {
        let path = if i % 2 == 0 { format!("/folio.ledger.v1.LedgerService/Made{i}") } else { format!("/x{i}/y") };
        let request = http::Request::post(format!("http://{}{path}", stack.gateway))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(&[0, 0, 0, 0, 0])))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.headers().get("grpc-status").and_then(|v| v.to_str().ok()), Some("12"), "{path}");
        assert!(response.headers().contains_key("grpc-status-details-bin"), "{path}: UNIMPLEMENTED without ErrorInfo");
    }
    let after = (series(&Stack::metrics(stack.gateway_admin).await), series(&Stack::metrics(stack.ledger_admin).await));
    eprintln!("series before {before:?}, after 300 made-up paths {after:?}");
    assert!(after.0 <= before.0 + 2, "the gateway grew from {} to {} series", before.0, after.0);
    assert!(after.1 <= before.1 + 2, "the ledger grew from {} to {} series", before.1, after.1);
}

#[tokio::test]
async fn a_request_id_is_a_bounded_token_or_replaced() {
    let (db, redis) = (TestDatabase::postgres().await, OwnRedis::start());
    let stack = stack(&db, &redis, &[]).await;
    let mut auth = stack.auth();
    for sent in ["x".repeat(5_000), "evil id with spaces".to_owned()] {
        let mut request = tonic::Request::new(folio_proto::auth::GetJwksRequest {});
        request.metadata_mut().insert("x-request-id", sent.parse().unwrap());
        let reply = auth.get_jwks(request).await.unwrap();
        let echoed = reply.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_ne!(echoed, sent);
        assert!(echoed.len() <= 128 && !echoed.is_empty(), "{echoed:?}");
    }
    let kept = unique("req-");
    let mut request = tonic::Request::new(folio_proto::auth::GetJwksRequest {});
    request.metadata_mut().insert("x-request-id", kept.parse().unwrap());
    let reply = auth.get_jwks(request).await.unwrap();
    assert_eq!(reply.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some(kept.as_str()));
}
