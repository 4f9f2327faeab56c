//! Every reason auth answers with, each provoked over real gRPC with its
//! code, reason and metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::auth::{
    ChangePasswordRequest, CreateServiceAccountRequest, DisableServiceAccountRequest, DisableUserRequest,
    EnableUserRequest, GetCurrentUserRequest, IssueServiceTokenRequest, ListRevocationsRequest,
    ListServiceAccountsRequest, ListUsersRequest, LogoutRequest, RefreshRequest, RegisterRequest, RevokeSessionRequest,
    RotateServiceAccountSecretRequest, SetUserRolesRequest, auth_internal_service_client::AuthInternalServiceClient,
};
use folio_testkit::unique;
use support::{Auth, Options, PASSWORD, assert_reason, bearer, me};
use tonic::Code;

#[tokio::test]
async fn every_reason_auth_answers_with() {
    let auth = Auth::start_with(Options {
        extra: vec![("FOLIO__AUTH__REFRESH_TOKEN_TTL_SECS".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let mut client = auth.client();
    let operator = auth.operator().await;
    let (email, customer) = auth.customer().await;

    let bad_email =
        RegisterRequest { email: "not-an-email".into(), password: PASSWORD.into(), display_name: "X".into() };
    assert_reason(client.register(bad_email).await, Code::InvalidArgument, "INVALID_FIELD");
    let taken = RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "X".into() };
    assert_reason(client.register(taken).await, Code::AlreadyExists, "EMAIL_TAKEN");
    assert_reason(client.get_current_user(GetCurrentUserRequest {}).await, Code::Unauthenticated, "TOKEN_MISSING");
    assert_reason(
        client.get_current_user(bearer(GetCurrentUserRequest {}, "not.a.token")).await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_reason(auth.login(&email, "Wrong password 123").await, Code::Unauthenticated, "INVALID_CREDENTIALS");
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: "never-issued".into() }).await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    assert_reason(
        client.list_users(bearer(ListUsersRequest::default(), &customer.access_token)).await,
        Code::PermissionDenied,
        "MISSING_ROLE",
    );
    assert_reason(
        client
            .disable_user(bearer(
                DisableUserRequest { user_id: uuid::Uuid::new_v4().to_string(), reason: String::new() },
                &operator.access_token,
            ))
            .await,
        Code::NotFound,
        "USER_NOT_FOUND",
    );
    assert_reason(
        client
            .disable_user(bearer(
                DisableUserRequest { user_id: "nope".into(), reason: String::new() },
                &operator.access_token,
            ))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_reason(
        client
            .revoke_session(bearer(
                RevokeSessionRequest { session_id: operator.session_id.clone() },
                &customer.access_token,
            ))
            .await,
        Code::NotFound,
        "SESSION_NOT_FOUND",
    );
    assert_reason(
        client
            .set_user_roles(bearer(
                SetUserRolesRequest { user_id: me(&auth, &customer.access_token).await.id, roles: vec!["king".into()] },
                &operator.access_token,
            ))
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_reason(
        client
            .change_password(bearer(
                ChangePasswordRequest { old_password: PASSWORD.into(), new_password: "1234567890123".into() },
                &customer.access_token,
            ))
            .await,
        Code::InvalidArgument,
        "WEAK_PASSWORD",
    );

    // Service accounts.
    let created = client
        .create_service_account(bearer(
            CreateServiceAccountRequest { name: unique("svc"), scopes: vec!["ledger:read".into()] },
            &operator.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let duplicate = CreateServiceAccountRequest {
        name: created.service_account.clone().unwrap().name,
        scopes: vec!["ledger:read".into()],
    };
    assert_reason(
        client.create_service_account(bearer(duplicate, &operator.access_token)).await,
        Code::AlreadyExists,
        "SERVICE_ACCOUNT_EXISTS",
    );
    let issue = |scopes: Vec<String>, secret: &str| IssueServiceTokenRequest {
        client_id: created.client_id.clone(),
        client_secret: secret.to_owned(),
        scopes,
    };
    assert_reason(
        client.issue_service_token(issue(vec![], "wrong")).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_reason(
        client.issue_service_token(issue(vec!["ledger:write".into()], &created.client_secret)).await,
        Code::PermissionDenied,
        "MISSING_SCOPE",
    );
    let service_token = client.issue_service_token(issue(vec![], &created.client_secret)).await.unwrap().into_inner();
    assert_eq!(service_token.scopes, ["ledger:read"]);
    let mut internal = AuthInternalServiceClient::new(auth.channel());
    assert_reason(
        internal
            .list_revocations(bearer(ListRevocationsRequest { since_version: 0 }, &service_token.access_token))
            .await,
        Code::PermissionDenied,
        "MISSING_SCOPE",
    );
    assert_reason(
        client.logout(bearer(LogoutRequest {}, &service_token.access_token)).await,
        Code::PermissionDenied,
        "MISSING_ROLE",
    );
    let listed = client
        .list_service_accounts(bearer(ListServiceAccountsRequest::default(), &operator.access_token))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.service_accounts.iter().any(|a| a.client_id == created.client_id));
    let rotated = client
        .rotate_service_account_secret(bearer(
            RotateServiceAccountSecretRequest { client_id: created.client_id.clone() },
            &operator.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_reason(
        client.issue_service_token(issue(vec![], &created.client_secret)).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    client.issue_service_token(issue(vec![], &rotated.client_secret)).await.expect("the new secret works");
    assert_reason(
        client
            .disable_service_account(bearer(
                DisableServiceAccountRequest { client_id: "missing".into() },
                &operator.access_token,
            ))
            .await,
        Code::NotFound,
        "SERVICE_ACCOUNT_NOT_FOUND",
    );
    client
        .disable_service_account(bearer(
            DisableServiceAccountRequest { client_id: created.client_id.clone() },
            &operator.access_token,
        ))
        .await
        .unwrap();
    assert_reason(
        client.issue_service_token(issue(vec![], &rotated.client_secret)).await,
        Code::PermissionDenied,
        "USER_DISABLED",
    );

    // Disabled users cannot sign in; enabled again, they can.
    let user_id = me(&auth, &customer.access_token).await.id;
    client
        .disable_user(bearer(
            DisableUserRequest { user_id: user_id.clone(), reason: "fraud check".into() },
            &operator.access_token,
        ))
        .await
        .unwrap();
    assert_reason(auth.login(&email, PASSWORD).await, Code::PermissionDenied, "USER_DISABLED");
    client
        .enable_user(bearer(
            EnableUserRequest { user_id: user_id.clone(), reason: "cleared".into() },
            &operator.access_token,
        ))
        .await
        .unwrap();
    let fresh = auth.login(&email, PASSWORD).await.expect("enabled again");

    // Refresh tokens expire with their session (2 s here).
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_reason(
        client.refresh(RefreshRequest { refresh_token: fresh.refresh_token }).await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
}
