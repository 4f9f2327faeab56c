//! DESIGN §4 and §5a at auth: text a database refuses is a caller's mistake,
//! counters that guard security hold under concurrency, operators acting at
//! once leave exactly one signing key, public RPCs ignore a stale bearer,
//! and the suite's own service accounts cannot be switched off by API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::auth::{
    DisableServiceAccountRequest, GetJwksRequest, IssueServiceTokenRequest, ListSessionsRequest, LoginRequest,
    LogoutRequest, RefreshRequest, RegisterRequest, RotateServiceAccountSecretRequest, RotateSigningKeyRequest,
};
use folio_testkit::unique;
use sea_orm::{ConnectionTrait, Statement};
use support::{Auth, Options, PASSWORD, VERIFIER_ID, assert_reason, bearer};
use tonic::Code;

fn register(email: &str) -> RegisterRequest {
    RegisterRequest { email: email.into(), password: PASSWORD.into(), display_name: "Test User".into() }
}

#[tokio::test]
async fn text_a_database_refuses_is_a_callers_mistake() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    for email in ["bad\u{0}@example.com", "ops@example.test\u{200b}", "a\u{202e}b@example.com", "x\u{2028}@example.com"]
    {
        assert_reason(client.register(register(email)).await, Code::InvalidArgument, "INVALID_FIELD");
        let login = LoginRequest { email: email.into(), password: PASSWORD.into() };
        assert_reason(client.login(login).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    let email = format!("{}@example.com", unique("named"));
    let bad_name = RegisterRequest { display_name: "Zero\u{200b}Width".into(), ..register(&email) };
    assert_reason(client.register(bad_name).await, Code::InvalidArgument, "INVALID_FIELD");
    let issue = IssueServiceTokenRequest { client_id: "x\u{0}".into(), client_secret: "s".into(), scopes: vec![] };
    assert_reason(client.issue_service_token(issue).await, Code::InvalidArgument, "INVALID_FIELD");

    let (_, tokens) = auth.customer().await;
    let forged = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, "0:\u{0}");
    let list = ListSessionsRequest { page_size: 10, page_token: forged };
    assert_reason(
        client.list_sessions(bearer(list, &tokens.access_token)).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
}

async fn attempts_at_once_are_checked_at_most_as_often_as_the_cap_allows(options: Options) {
    let auth = Auth::start_with(options).await;
    let email = format!("{}@example.com", unique("raced"));
    auth.register(&email).await;
    let calls: Vec<_> = (0..41)
        .map(|i| {
            let mut client = auth.client();
            let password = if i == 40 { PASSWORD.to_owned() } else { format!("wrong password {i:04}") };
            let email = email.clone();
            tokio::spawn(async move { client.login(LoginRequest { email, password }).await })
        })
        .collect();
    let (mut checked, mut locked) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => checked += 1,
            Err(status) if status.code() == Code::Unauthenticated => checked += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                locked += 1;
            }
        }
    }
    assert!(checked <= 5, "{checked} attempts were checked against the password; the cap is 5");
    assert_eq!(checked + locked, 41);
}

#[tokio::test]
async fn attempts_at_once_are_checked_at_most_as_often_as_the_cap_allows_in_process() {
    attempts_at_once_are_checked_at_most_as_often_as_the_cap_allows(Options::default()).await;
}

#[tokio::test]
async fn attempts_at_once_are_checked_at_most_as_often_as_the_cap_allows_on_redis() {
    let options = Options { redis_url: Some(format!("{}/6", folio_testkit::redis_url())), ..Default::default() };
    attempts_at_once_are_checked_at_most_as_often_as_the_cap_allows(options).await;
}

#[tokio::test]
async fn rotations_at_once_leave_exactly_one_signing_key() {
    let auth = Auth::start().await;
    let operator = auth.operator().await.access_token;
    let db = folio_storage::db::connect_url(&auth.db.url, "auth", 1).await.unwrap();
    for round in 0..5 {
        let rotations: Vec<_> = (0..8)
            .map(|_| {
                let (mut client, token) = (auth.client(), operator.clone());
                tokio::spawn(async move { client.rotate_signing_key(bearer(RotateSigningKeyRequest {}, &token)).await })
            })
            .collect();
        for rotation in rotations {
            rotation.await.unwrap().expect("each rotation answers OK");
        }
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM signing_keys WHERE retired_at IS NULL".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        let unretired: i64 = row.try_get("", "n").unwrap();
        assert_eq!(unretired, 1, "round {round}: exactly one key must be left to sign once the others retire");
    }
    // Once the new key activates, auth signs with it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    auth.customer().await;
}

#[tokio::test]
async fn public_rpcs_ignore_a_stale_or_broken_bearer() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    let (email, tokens) = auth.customer().await;
    client.logout(bearer(LogoutRequest {}, &tokens.access_token)).await.unwrap();
    // The revoked token reaches auth's verifier within its poll.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for stale in [tokens.access_token.as_str(), "not-a-jwt"] {
        let login = LoginRequest { email: email.clone(), password: PASSWORD.into() };
        let fresh = client.login(bearer(login, stale)).await.expect("Login ignores the bearer").into_inner();
        client.get_jwks(bearer(GetJwksRequest {}, stale)).await.expect("GetJwks ignores the bearer");
        let refresh = RefreshRequest { refresh_token: fresh.refresh_token };
        client.refresh(bearer(refresh, stale)).await.expect("Refresh ignores the bearer");
        let other = format!("{}@example.com", unique("again"));
        client.register(bearer(register(&other), stale)).await.expect("Register ignores the bearer");
    }
}

#[tokio::test]
async fn the_suites_own_service_accounts_cannot_be_switched_off_by_api() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    let operator = auth.operator().await.access_token;
    let disable = DisableServiceAccountRequest { client_id: VERIFIER_ID.into() };
    assert_reason(
        client.disable_service_account(bearer(disable, &operator)).await,
        Code::FailedPrecondition,
        "SERVICE_ACCOUNT_PROVISIONED",
    );
    let rotate = RotateServiceAccountSecretRequest { client_id: VERIFIER_ID.into() };
    assert_reason(
        client.rotate_service_account_secret(bearer(rotate, &operator)).await,
        Code::FailedPrecondition,
        "SERVICE_ACCOUNT_PROVISIONED",
    );
}

#[tokio::test]
async fn sign_in_keeps_working_while_redis_is_down_and_after_it_returns() {
    let mut redis = folio_testkit::OwnRedis::start();
    let auth = Auth::start_with(Options { redis_url: Some(redis.url()), ..Default::default() }).await;
    let (email, _) = auth.customer().await;
    redis.stop();
    for _ in 0..3 {
        auth.login(&email, PASSWORD).await.expect("sign-in without Redis");
    }
    auth.customer().await;
    // Lock-outs still count, on this replica's own cache.
    let victim = format!("{}@example.com", unique("locked"));
    auth.register(&victim).await;
    for _ in 0..5 {
        assert_reason(auth.login(&victim, "wrong password 12345").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    assert_reason(auth.login(&victim, PASSWORD).await, Code::ResourceExhausted, "TOO_MANY_ATTEMPTS");
    redis.resume();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    auth.login(&email, PASSWORD).await.expect("sign-in after Redis returns");
}

#[tokio::test]
async fn a_client_ip_claimed_without_the_gateways_token_is_ignored() {
    let auth = Auth::start().await;
    let email = format!("{}@example.com", unique("spoofed"));
    auth.register(&email).await;
    let mut client = auth.client();
    let login_from = |ip: &str, password: &str| {
        let mut request = tonic::Request::new(LoginRequest { email: email.clone(), password: password.into() });
        request.metadata_mut().insert("x-folio-client-ip", ip.parse().unwrap());
        request
    };
    // Five failures, each claiming another address: all are the caller's own.
    for i in 0..5 {
        let request = login_from(&format!("203.0.113.{i}"), "wrong password 12345");
        assert_reason(client.login(request).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    let request = login_from("198.51.100.7", "wrong password 12345");
    assert_reason(client.login(request).await, Code::ResourceExhausted, "TOO_MANY_ATTEMPTS");
}
