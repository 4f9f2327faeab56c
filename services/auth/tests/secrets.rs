//! Secrets never reach logs, nor any answer after the one that created them:
//! the real binary runs with debug logs while passwords, refresh tokens,
//! access tokens and client secrets pass through it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use folio_proto::auth::{
    CreateServiceAccountRequest, GetCurrentUserRequest, IssueServiceTokenRequest, ListServiceAccountsRequest,
    LoginRequest, RefreshRequest, RegisterRequest, auth_service_client::AuthServiceClient,
};
use folio_testkit::{TestDatabase, probe::SpawnedBinary, unique};
use tonic::Request;

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn secrets_never_appear_in_logs_or_later_answers() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let operator_email = format!("{}@folio.test", unique("op"));
    let operator_password = format!("Operator {} passphrase", unique(""));
    let mut auth = SpawnedBinary::start(
        env!("CARGO_BIN_EXE_folio-auth"),
        dir.path(),
        &[
            ("FOLIO__DATABASE__URL", &db.url),
            ("FOLIO__TELEMETRY__LOG_FILTER", "debug"),
            ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", folio_testkit::KEY_ENCRYPTION_KEY),
            ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL", &operator_email),
            ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_PASSWORD", &operator_password),
        ],
    )
    .await;
    let mut client = AuthServiceClient::connect(format!("http://{}", auth.grpc_addr)).await.unwrap();

    let email = format!("{}@example.com", unique("dave"));
    let password = format!("Dave's own {} phrase", unique(""));
    client
        .register(RegisterRequest { email: email.clone(), password: password.clone(), display_name: "Dave".into() })
        .await
        .unwrap();
    // A failed login logs too; its (wrong) password must not appear either.
    let wrong = format!("not it {}", unique(""));
    let _ = client.login(LoginRequest { email: email.clone(), password: wrong.clone() }).await;
    let tokens =
        client.login(LoginRequest { email: email.clone(), password: password.clone() }).await.unwrap().into_inner();
    let refreshed =
        client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await.unwrap().into_inner();
    client.get_current_user(bearer(GetCurrentUserRequest {}, &refreshed.access_token)).await.unwrap();
    // A replayed refresh token is logged as a security event; the token itself must not be.
    let _ = client.refresh(RefreshRequest { refresh_token: tokens.refresh_token.clone() }).await;

    let operator = client
        .login(LoginRequest { email: operator_email, password: operator_password.clone() })
        .await
        .unwrap()
        .into_inner();
    let created = client
        .create_service_account(bearer(
            CreateServiceAccountRequest { name: unique("svc"), scopes: vec!["ledger:read".into()] },
            &operator.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let service_token = client
        .issue_service_token(IssueServiceTokenRequest {
            client_id: created.client_id.clone(),
            client_secret: created.client_secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let listed = client
        .list_service_accounts(bearer(ListServiceAccountsRequest::default(), &operator.access_token))
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{listed:?}").contains(&created.client_secret), "a listing repeats the client secret");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lines = Vec::new();
    while let Ok(line) = auth.logs.try_recv() {
        lines.push(line);
    }
    assert!(lines.len() > 10, "debug logging produced only {} lines", lines.len());
    let logs = lines.join("\n");
    for (what, secret) in [
        ("password", password.as_str()),
        ("wrong password", wrong.as_str()),
        ("operator password", operator_password.as_str()),
        ("refresh token", tokens.refresh_token.as_str()),
        ("rotated refresh token", refreshed.refresh_token.as_str()),
        ("access token", refreshed.access_token.as_str()),
        ("client secret", created.client_secret.as_str()),
        ("service token", service_token.access_token.as_str()),
        ("key-encryption key", folio_testkit::KEY_ENCRYPTION_KEY),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
    auth.terminate();
    let _ = auth.child.wait().await;
}
