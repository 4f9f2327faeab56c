//! Token verification against keys and revocations served over real gRPC by
//! a stand-in of the auth service's key and revocation RPCs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use folio_errors::Reason;
use folio_proto::client::lazy_channel;
use folio_testkit::{StubAuth, TestClaims, TestKeys};
use folio_tokens::{
    GrpcKeySource, GrpcRevocationSource, PrincipalKind, ServiceTokenProvider, TokenVerifier, VerifierSettings,
};
use tokio_util::sync::CancellationToken;

struct Fixture {
    keys: TestKeys,
    stub: StubAuth,
    verifier: TokenVerifier,
}

async fn fixture(settings: VerifierSettings) -> Fixture {
    let keys = TestKeys::generate();
    let service_keys = Arc::new(TestKeys::generate());
    let stub = StubAuth::start(vec![keys.jwk(), service_keys.jwk()], service_keys).await;
    let channel = lazy_channel(&stub.url()).expect("channel");
    let tokens = Arc::new(ServiceTokenProvider::new(
        channel.clone(),
        "test-service".to_owned(),
        "test-secret".to_owned().into(),
        vec!["auth:internal".to_owned()],
    ));
    let verifier = TokenVerifier::new(
        Arc::new(GrpcKeySource::new(channel.clone())),
        Arc::new(GrpcRevocationSource::new(channel, tokens)),
        settings,
    );
    verifier.refresh_revocations().await.expect("first revocation poll");
    Fixture { keys, stub, verifier }
}

async fn refused_with(verifier: &TokenVerifier, token: &str) -> Reason {
    match verifier.verify(token).await {
        Ok(principal) => panic!("token accepted: {principal:?}"),
        Err(error) => error.reason(),
    }
}

#[tokio::test]
async fn a_valid_token_gives_its_principal() {
    let f = fixture(VerifierSettings::default()).await;
    let claims = TestClaims::user("user-1", &["customer"]);
    let principal = f.verifier.verify(&f.keys.sign(&claims)).await.expect("valid token");
    assert_eq!(principal.subject, "user-1");
    assert_eq!(principal.kind, PrincipalKind::User { session_id: claims.sid.clone().expect("sid") });
    assert!(principal.has_role("customer"));
    assert!(!principal.is_operator());

    let service = f.verifier.verify(&f.keys.sign(&TestClaims::service("svc", &["ledger:read"]))).await.expect("valid");
    assert_eq!(service.kind, PrincipalKind::Service);
    assert!(service.has_scope("ledger:read"));
    assert_eq!(service.require_scope("ledger:write").map_err(|e| e.reason()), Err(Reason::MissingScope));
}

#[tokio::test]
async fn each_defect_is_refused_with_its_reason() {
    let f = fixture(VerifierSettings::default()).await;
    let now = chrono::Utc::now().timestamp();
    let valid = TestClaims::user("user-1", &["customer"]);

    let expired = TestClaims { iat: now - 400, nbf: now - 400, exp: now - 60, ..valid.clone() };
    assert_eq!(refused_with(&f.verifier, &f.keys.sign(&expired)).await, Reason::TokenExpired);

    let not_yet = TestClaims { nbf: now + 120, ..valid.clone() };
    assert_eq!(refused_with(&f.verifier, &f.keys.sign(&not_yet)).await, Reason::TokenInvalid);

    let wrong_aud = TestClaims { aud: "someone-else".to_owned(), ..valid.clone() };
    assert_eq!(refused_with(&f.verifier, &f.keys.sign(&wrong_aud)).await, Reason::TokenInvalid);

    let wrong_iss = TestClaims { iss: "evil-auth".to_owned(), ..valid.clone() };
    assert_eq!(refused_with(&f.verifier, &f.keys.sign(&wrong_iss)).await, Reason::TokenInvalid);

    let wrong_typ = f.keys.sign_with(&valid, Some("JWT"), Some(&f.keys.kid));
    assert_eq!(refused_with(&f.verifier, &wrong_typ).await, Reason::TokenInvalid);
    let no_typ = f.keys.sign_with(&valid, None, Some(&f.keys.kid));
    assert_eq!(refused_with(&f.verifier, &no_typ).await, Reason::TokenInvalid);

    assert_eq!(refused_with(&f.verifier, &f.keys.unsigned(&valid)).await, Reason::TokenInvalid);
    assert_eq!(refused_with(&f.verifier, &f.keys.sign_hs256_with_public_key(&valid)).await, Reason::TokenInvalid);

    let stranger = TestKeys::generate();
    assert_eq!(refused_with(&f.verifier, &stranger.sign(&valid)).await, Reason::TokenInvalid, "unknown kid");
    let forged = stranger.sign_with(&valid, Some("at+jwt"), Some(&f.keys.kid));
    assert_eq!(refused_with(&f.verifier, &forged).await, Reason::TokenInvalid, "bad signature");

    let token = f.keys.sign(&valid);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let escalated = TestClaims { roles: vec!["operator".to_owned()], ..valid.clone() };
    let escalated_payload = f.keys.sign(&escalated);
    parts[1] = escalated_payload.split('.').nth(1).expect("payload").to_owned();
    assert_eq!(refused_with(&f.verifier, &parts.join(".")).await, Reason::TokenInvalid, "tampered payload");

    let too_long = TestClaims { exp: now + 3600, ..valid.clone() };
    assert_eq!(refused_with(&f.verifier, &f.keys.sign(&too_long)).await, Reason::TokenInvalid, "1 h lifetime");

    assert_eq!(refused_with(&f.verifier, "not-a-jwt").await, Reason::TokenInvalid);
    assert!(f.verifier.verify(&token).await.is_ok(), "the untampered token still verifies");
}

#[tokio::test]
async fn a_new_kid_refetches_the_key_set_but_unknown_kids_do_not_flood_auth() {
    let f = fixture(VerifierSettings { jwks_refetch_interval: Duration::from_millis(300), ..Default::default() }).await;
    let claims = TestClaims::user("user-1", &["customer"]);
    f.verifier.verify(&f.keys.sign(&claims)).await.expect("first key");
    let fetched = f.stub.jwks_fetches();

    let rotated = TestKeys::generate();
    f.stub.set_keys(vec![f.keys.jwk(), rotated.jwk()]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    f.verifier.verify(&rotated.sign(&claims)).await.expect("a token of the newly published key");
    assert_eq!(f.stub.jwks_fetches(), fetched + 1, "one fetch for the new kid");
    f.verifier.verify(&f.keys.sign(&claims)).await.expect("old key still published");

    let stranger = TestKeys::generate();
    for _ in 0..20 {
        assert_eq!(refused_with(&f.verifier, &stranger.sign(&claims)).await, Reason::TokenInvalid);
    }
    assert!(f.stub.jwks_fetches() <= fetched + 2, "unknown kids fetched {} times", f.stub.jwks_fetches() - fetched);
}

#[tokio::test]
async fn a_revoked_session_is_refused_within_five_seconds() {
    let f = fixture(VerifierSettings::default()).await;
    let shutdown = CancellationToken::new();
    let _refresh = f.verifier.spawn_refresh(None, shutdown.clone());
    let claims = TestClaims::user("user-1", &["customer"]);
    let token = f.keys.sign(&claims);
    f.verifier.verify(&token).await.expect("valid before revocation");
    let other_session = f.keys.sign(&TestClaims::user("user-1", &["customer"]));

    f.stub.revoke_session(claims.sid.as_deref().expect("sid"));
    let revoked_at = Instant::now();
    loop {
        match f.verifier.verify(&token).await {
            Ok(_) => assert!(revoked_at.elapsed() < Duration::from_secs(5), "still accepted after 5 s"),
            Err(error) => {
                assert_eq!(error.reason(), Reason::TokenRevoked);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(f.verifier.verify(&other_session).await.is_ok(), "another session of the user is unaffected");
    shutdown.cancel();
}

#[tokio::test]
async fn tokens_are_refused_when_revocations_cannot_be_refreshed() {
    let f =
        fixture(VerifierSettings { revocation_max_staleness: Duration::from_millis(500), ..Default::default() }).await;
    let token = f.keys.sign(&TestClaims::user("user-1", &["customer"]));
    f.verifier.verify(&token).await.expect("fresh revocations");
    drop(f.stub);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(f.verifier.refresh_revocations().await.is_err(), "the stand-in is gone");
    assert_eq!(refused_with(&f.verifier, &token).await, Reason::DependencyUnavailable);
}

#[tokio::test]
async fn a_token_verified_once_still_expires_and_is_still_revocable() {
    let f = fixture(VerifierSettings { leeway: Duration::ZERO, ..Default::default() }).await;
    let now = chrono::Utc::now().timestamp();
    let claims = TestClaims { exp: now + 1, ..TestClaims::user("user-1", &["customer"]) };
    let token = f.keys.sign(&claims);
    f.verifier.verify(&token).await.expect("valid now");
    f.verifier.verify(&token).await.expect("valid again (from the verified cache)");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(refused_with(&f.verifier, &token).await, Reason::TokenExpired);

    let second = TestClaims::user("user-2", &["customer"]);
    let token = f.keys.sign(&second);
    f.verifier.verify(&token).await.expect("valid");
    f.stub.revoke_session(second.sid.as_deref().expect("sid"));
    f.verifier.refresh_revocations().await.expect("poll");
    assert_eq!(refused_with(&f.verifier, &token).await, Reason::TokenRevoked, "the cache never skips revocation");
}
