//! Auth over real gRPC with a real PostgreSQL database: the happy path,
//! refresh rotation and reuse, revocation reaching other verifiers, key
//! rotation, lock-out, password policy, and SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::auth::{
    ChangePasswordRequest, DisableUserRequest, GetCurrentUserRequest, GetJwksRequest, ListSessionsRequest,
    ListUsersRequest, LogoutRequest, RefreshRequest, RegisterRequest, RevokeSessionRequest, RotateSigningKeyRequest,
};
use folio_testkit::unique;
use support::{Auth, Options, PASSWORD, assert_reason, bearer, me, refused_within_five_seconds};
use tokio_util::sync::CancellationToken;
use tonic::Code;

#[tokio::test]
async fn the_happy_path() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    let email = format!("{}@Example.COM", unique("Alice"));
    let user = auth.register(&email).await;
    assert_eq!(user.email, email.to_lowercase(), "emails are stored normalised");
    assert_eq!(user.roles, ["customer"]);

    let tokens = auth.login(&email.to_uppercase(), PASSWORD).await.expect("login is case-insensitive on email");
    assert!(!tokens.access_token.is_empty() && tokens.refresh_token.len() >= 43, "256-bit refresh token");
    let me =
        client.get_current_user(bearer(GetCurrentUserRequest {}, &tokens.access_token)).await.unwrap().into_inner();
    assert_eq!(me.user.unwrap().id, user.id);

    let sessions = client
        .list_sessions(bearer(ListSessionsRequest::default(), &tokens.access_token))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);

    let refreshed =
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await.unwrap().into_inner();
    assert_eq!(refreshed.session_id, tokens.session_id);
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    client.get_current_user(bearer(GetCurrentUserRequest {}, &refreshed.access_token)).await.expect("new access token");

    client.logout(bearer(LogoutRequest {}, &refreshed.access_token)).await.expect("logout");
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: refreshed.refresh_token.clone() }).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let started = std::time::Instant::now();
    loop {
        let result = client.get_current_user(bearer(GetCurrentUserRequest {}, &refreshed.access_token)).await;
        if result.is_err() {
            assert_reason(result, Code::Unauthenticated, "TOKEN_REVOKED");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "access token still honoured 5 s after logout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_session() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    let (_, tokens) = auth.customer().await;
    let rotated =
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await.unwrap().into_inner();
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: rotated.refresh_token.clone() }).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_let_at_most_one_through_and_end_the_session() {
    let auth = Auth::start().await;
    let (_, tokens) = auth.customer().await;
    let attempts: Vec<_> = (0..2)
        .map(|_| {
            let mut client = auth.client();
            let refresh_token = tokens.refresh_token.clone();
            tokio::spawn(async move { client.refresh(RefreshRequest { refresh_token }).await })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(response) => winners.push(response.into_inner()),
            Err(status) => assert_eq!(support_reason(&status), "REFRESH_TOKEN_REUSED"),
        }
    }
    assert!(winners.len() <= 1, "{} parallel refreshes succeeded", winners.len());
    for winner in winners {
        let result = auth.client().refresh(RefreshRequest { refresh_token: winner.refresh_token }).await;
        assert_reason(result, Code::Unauthenticated, "TOKEN_REVOKED");
    }
}

fn support_reason(status: &tonic::Status) -> String {
    folio_errors::reason_of(status).unwrap_or_default()
}

async fn revocations_reach_another_verifier(options: Options, flush_redis: bool) {
    let auth = Auth::start_with(options.clone()).await;
    let shutdown = CancellationToken::new();
    let verifier = auth.remote_verifier(&shutdown).await;
    let mut client = auth.client();
    if flush_redis {
        let url = options.redis_url.clone().expect("redis");
        let mut connection = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("FLUSHDB").query_async(&mut connection).await.unwrap();
    }

    let (_, logged_out) = auth.customer().await;
    verifier.verify(&logged_out.access_token).await.expect("valid before logout");
    client.logout(bearer(LogoutRequest {}, &logged_out.access_token)).await.unwrap();
    refused_within_five_seconds(&verifier, &logged_out.access_token).await;

    let (email, first) = auth.customer().await;
    let second = auth.login(&email, PASSWORD).await.unwrap();
    verifier.verify(&second.access_token).await.expect("valid before revocation");
    client
        .revoke_session(bearer(RevokeSessionRequest { session_id: second.session_id.clone() }, &first.access_token))
        .await
        .unwrap();
    refused_within_five_seconds(&verifier, &second.access_token).await;
    verifier.verify(&first.access_token).await.expect("the revoking session lives on");

    let operator = auth.operator().await;
    let (_, victim) = auth.customer().await;
    let victim_id = me(&auth, &victim.access_token).await.id;
    client
        .disable_user(bearer(DisableUserRequest { user_id: victim_id, reason: "test".into() }, &operator.access_token))
        .await
        .unwrap();
    refused_within_five_seconds(&verifier, &victim.access_token).await;
    shutdown.cancel();
}

#[tokio::test]
async fn revocations_reach_another_verifier_without_redis() {
    revocations_reach_another_verifier(Options::default(), false).await;
}

#[tokio::test]
async fn revocations_reach_another_verifier_with_redis() {
    let options = Options { redis_url: Some(format!("{}/7", folio_testkit::redis_url())), ..Default::default() };
    revocations_reach_another_verifier(options, false).await;
}

#[tokio::test]
async fn revocations_reach_another_verifier_after_a_redis_flush() {
    let options = Options { redis_url: Some(format!("{}/8", folio_testkit::redis_url())), ..Default::default() };
    revocations_reach_another_verifier(options, true).await;
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key() {
    let auth = Auth::start().await;
    let shutdown = CancellationToken::new();
    let verifier = auth.remote_verifier(&shutdown).await;
    let mut client = auth.client();
    let operator = auth.operator().await;
    let (email, before) = auth.customer().await;
    let old_kid = jsonwebtoken::decode_header(&before.access_token).unwrap().kid.unwrap();

    let rotated = client
        .rotate_signing_key(bearer(RotateSigningKeyRequest {}, &operator.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.kid, old_kid);
    let kids: Vec<String> =
        client.get_jwks(GetJwksRequest {}).await.unwrap().into_inner().keys.into_iter().map(|k| k.kid).collect();
    assert!(kids.contains(&old_kid) && kids.contains(&rotated.kid), "JWKS lists both keys: {kids:?}");
    let (status, body) = folio_testkit::probe::http_get(auth.admin_addr, "/.well-known/jwks.json").await;
    assert_eq!(status, 200);
    assert!(body.contains(&old_kid) && body.contains(&rotated.kid), "{body}");

    // The new key signs only after its activation delay (1 s in tests).
    tokio::time::sleep(Duration::from_millis(6_100)).await;
    let after = auth.login(&email, PASSWORD).await.unwrap();
    let new_kid = jsonwebtoken::decode_header(&after.access_token).unwrap().kid.unwrap();
    assert_eq!(new_kid, rotated.kid);
    verifier.verify(&before.access_token).await.expect("a token signed before the rotation still verifies");
    verifier.verify(&after.access_token).await.expect("a token of the new key verifies");
    shutdown.cancel();
}

#[tokio::test]
async fn wrong_passwords_lock_out_with_a_growing_delay_then_the_right_one_works() {
    // A lock's remaining delay shrinks by however long the machine took
    // between setting it and the next check (seen at 400 ms on a loaded CI
    // runner), so the base delay is long beside that: a second lock that did
    // not grow can never have more than one base delay left.
    const BASE: Duration = Duration::from_millis(1_000);
    let extra = vec![("FOLIO__AUTH__LOCKOUT_BASE_DELAY_MS".to_owned(), BASE.as_millis().to_string())];
    let auth = Auth::start_with(Options { extra, ..Options::default() }).await;
    let email = format!("{}@example.com", unique("locked"));
    auth.register(&email).await;
    for _ in 0..5 {
        assert_reason(auth.login(&email, "wrong password 12345").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    let first_delay = retry_delay(auth.login(&email, PASSWORD).await.expect_err("locked"));
    assert!(first_delay > Duration::ZERO && first_delay <= BASE, "{first_delay:?}");
    tokio::time::sleep(first_delay + Duration::from_millis(20)).await;
    assert_reason(auth.login(&email, "wrong password 12345").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    let second_delay = retry_delay(auth.login(&email, PASSWORD).await.expect_err("locked again"));
    assert!(
        second_delay > BASE && second_delay <= 2 * BASE,
        "the delay must double: {first_delay:?} left of the first lock, then {second_delay:?} of the second"
    );
    tokio::time::sleep(second_delay + Duration::from_millis(20)).await;
    auth.login(&email, PASSWORD).await.expect("the right password works once the delay has passed");

    // Unknown emails are counted the same way.
    let ghost = format!("{}@example.com", unique("ghost"));
    for _ in 0..5 {
        assert_reason(auth.login(&ghost, "whatever password 1").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    assert_reason(auth.login(&ghost, "whatever password 1").await, Code::ResourceExhausted, "TOO_MANY_ATTEMPTS");
}

fn retry_delay(status: tonic::Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(support_reason(&status), "TOO_MANY_ATTEMPTS");
    tonic_types::StatusExt::get_details_retry_info(&status).and_then(|r| r.retry_delay).expect("RetryInfo")
}

#[tokio::test]
async fn the_password_policy_and_unique_normalised_emails() {
    let auth = Auth::start().await;
    let mut client = auth.client();
    let email = format!("{}@example.com", unique("carol"));
    let local = email.split('@').next().unwrap().to_owned();
    for weak in [
        "short-pass1".to_owned(),
        "x".repeat(129),
        "password123456".to_owned(),
        "aaaaaaaaaaaaaaa".to_owned(),
        "123456789012".to_owned(),
        format!("my {local} password"),
    ] {
        let request = RegisterRequest { email: email.clone(), password: weak.clone(), display_name: "Carol".into() };
        assert_reason(client.register(request).await, Code::InvalidArgument, "WEAK_PASSWORD");
    }

    let shared = unique("dup");
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let mut client = auth.client();
            let email = if i % 2 == 0 {
                format!("{shared}@example.com")
            } else {
                format!("{}@EXAMPLE.com", shared.to_uppercase())
            };
            tokio::spawn(async move {
                client.register(RegisterRequest { email, password: PASSWORD.into(), display_name: "Dup".into() }).await
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(support_reason(&status), "EMAIL_TAKEN", "{status:?}"),
        }
    }
    assert_eq!(created, 1, "one account per normalised email");
}

#[tokio::test]
async fn change_password_ends_the_other_sessions() {
    let auth = Auth::start().await;
    let shutdown = CancellationToken::new();
    let verifier = auth.remote_verifier(&shutdown).await;
    let mut client = auth.client();
    let (email, here) = auth.customer().await;
    let elsewhere = auth.login(&email, PASSWORD).await.unwrap();
    let new_password = "A whole new passphrase 77";
    client
        .change_password(bearer(
            ChangePasswordRequest { old_password: PASSWORD.into(), new_password: new_password.into() },
            &here.access_token,
        ))
        .await
        .unwrap();
    refused_within_five_seconds(&verifier, &elsewhere.access_token).await;
    verifier.verify(&here.access_token).await.expect("the changing session lives on");
    assert_reason(auth.login(&email, PASSWORD).await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    auth.login(&email, new_password).await.expect("the new password works");
    shutdown.cancel();
}

#[tokio::test]
async fn the_whole_flow_runs_on_sqlite_too() {
    let auth = Auth::start_with(Options { sqlite: true, ..Default::default() }).await;
    let (_, tokens) = auth.customer().await;
    let mut client = auth.client();
    client.get_current_user(bearer(GetCurrentUserRequest {}, &tokens.access_token)).await.unwrap();
    let refreshed =
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await.unwrap().into_inner();
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token }).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: refreshed.refresh_token }).await,
        Code::Unauthenticated,
        "TOKEN_REVOKED",
    );
    let operator = auth.operator().await;
    let users = client
        .list_users(bearer(ListUsersRequest { page_size: 1, page_token: String::new() }, &operator.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(users.users.len(), 1);
    assert!(!users.next_page_token.is_empty(), "two users, pages of one");
    let second = client
        .list_users(bearer(
            ListUsersRequest { page_size: 1, page_token: users.next_page_token },
            &operator.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.users.len(), 1);
    assert_ne!(second.users[0].id, users.users[0].id);
}
