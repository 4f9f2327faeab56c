//! `AuthService` and `AuthInternalService`: converts messages, reads the
//! caller and request context, calls [`AuthCore`], and maps failures to
//! statuses (domain `auth.folio`).

use folio_errors::Failure;
use folio_errors::time::timestamp;
use folio_proto::auth::{
    self as pb, auth_internal_service_server::AuthInternalService, auth_service_server::AuthService,
};
use folio_tokens::{Principal, principal};
use secrecy::SecretString;
use tonic::{Request, Response, Status};

use crate::app::{AuthCore, IssuedTokens, LoginContext};
use crate::domain::records::{ServiceAccount, Session, User};

/// The error domain of every auth answer.
pub const DOMAIN: &str = "auth.folio";

type Reply<T> = Result<Response<T>, Status>;

fn fail(failure: impl Into<Failure>) -> Status {
    failure.into().into_status(DOMAIN)
}

fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    principal(request).cloned().map_err(fail)
}

fn timestamp_secs(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn user_message(user: &User) -> pb::User {
    pb::User {
        id: user.id.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        roles: user.roles.clone(),
        disabled: user.disabled,
        created_at: Some(timestamp(user.created_at)),
    }
}

fn service_account_message(account: &ServiceAccount) -> pb::ServiceAccount {
    pb::ServiceAccount {
        client_id: account.client_id.clone(),
        name: account.name.clone(),
        scopes: account.scopes.clone(),
        disabled: account.disabled,
        created_at: Some(timestamp(account.created_at)),
    }
}

fn session_message(session: &Session, current: Option<&str>) -> pb::Session {
    pb::Session {
        id: session.id.clone(),
        created_at: Some(timestamp(session.created_at)),
        last_used_at: Some(timestamp(session.last_used_at)),
        expires_at: Some(timestamp(session.expires_at)),
        client_ip: session.client_ip.clone(),
        user_agent: session.user_agent.clone(),
        current: current == Some(session.id.as_str()),
    }
}

/// The client IP the gateway vouched for, else the TCP peer.
fn login_context<T>(request: &Request<T>) -> LoginContext {
    let header = |name: &str| request.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let client_ip = request
        .extensions()
        .get::<folio_tokens::ClientIp>()
        .map(|ip| ip.0.clone())
        .or_else(|| {
            let peer = request.extensions().get::<folio_tls::Peer>()?;
            peer.addr.map(|addr| addr.ip().to_string())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    LoginContext { client_ip, user_agent: header("user-agent").unwrap_or_default() }
}

/// Serves `AuthService` and `AuthInternalService`.
#[derive(Clone)]
pub struct AuthApi {
    core: AuthCore,
}

impl AuthApi {
    /// Serves `core`.
    pub fn new(core: AuthCore) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        let pb::RegisterRequest { email, password, display_name } = request.into_inner();
        let user = self.core.register(&email, &SecretString::from(password), &display_name).await.map_err(fail)?;
        Ok(Response::new(pb::RegisterResponse { user: Some(user_message(&user)) }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let context = login_context(&request);
        let pb::LoginRequest { email, password } = request.into_inner();
        let tokens = self.core.login(&email, &SecretString::from(password), &context).await.map_err(fail)?;
        let IssuedTokens {
            access_token,
            refresh_token,
            access_expires_at,
            refresh_expires_at_micros,
            session_id,
            user,
        } = tokens;
        Ok(Response::new(pb::LoginResponse {
            access_token,
            refresh_token,
            access_token_expires_at: Some(timestamp_secs(access_expires_at)),
            refresh_token_expires_at: Some(timestamp(refresh_expires_at_micros)),
            session_id,
            user: Some(user_message(&user)),
        }))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Reply<pb::RefreshResponse> {
        let pb::RefreshRequest { refresh_token } = request.into_inner();
        let tokens = self.core.refresh(&SecretString::from(refresh_token)).await.map_err(fail)?;
        Ok(Response::new(pb::RefreshResponse {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_token_expires_at: Some(timestamp_secs(tokens.access_expires_at)),
            refresh_token_expires_at: Some(timestamp(tokens.refresh_expires_at_micros)),
            session_id: tokens.session_id,
        }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let principal = caller(&request)?;
        self.core.logout(&principal).await.map_err(fail)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_current_user(&self, request: Request<pb::GetCurrentUserRequest>) -> Reply<pb::GetCurrentUserResponse> {
        let principal = caller(&request)?;
        let user = self.core.current_user(&principal).await.map_err(fail)?;
        Ok(Response::new(pb::GetCurrentUserResponse { user: Some(user_message(&user)) }))
    }

    async fn list_sessions(&self, request: Request<pb::ListSessionsRequest>) -> Reply<pb::ListSessionsResponse> {
        let principal = caller(&request)?;
        let pb::ListSessionsRequest { page_size, page_token } = request.into_inner();
        let (page, next_page_token) =
            self.core.list_sessions(&principal, page_size, &page_token).await.map_err(fail)?;
        let current = principal.session_id();
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: page.iter().map(|s| session_message(s, current)).collect(),
            next_page_token,
        }))
    }

    async fn revoke_session(&self, request: Request<pb::RevokeSessionRequest>) -> Reply<pb::RevokeSessionResponse> {
        let principal = caller(&request)?;
        self.core.revoke_session(&principal, &request.into_inner().session_id).await.map_err(fail)?;
        Ok(Response::new(pb::RevokeSessionResponse {}))
    }

    async fn change_password(&self, request: Request<pb::ChangePasswordRequest>) -> Reply<pb::ChangePasswordResponse> {
        let principal = caller(&request)?;
        let context = login_context(&request);
        let pb::ChangePasswordRequest { old_password, new_password } = request.into_inner();
        self.core
            .change_password(&principal, &SecretString::from(old_password), &SecretString::from(new_password), &context)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::ListUsersResponse> {
        let principal = caller(&request)?;
        let pb::ListUsersRequest { page_size, page_token } = request.into_inner();
        let (users, next_page_token) = self.core.list_users(&principal, page_size, &page_token).await.map_err(fail)?;
        Ok(Response::new(pb::ListUsersResponse { users: users.iter().map(user_message).collect(), next_page_token }))
    }

    async fn disable_user(&self, request: Request<pb::DisableUserRequest>) -> Reply<pb::DisableUserResponse> {
        let principal = caller(&request)?;
        let pb::DisableUserRequest { user_id, reason } = request.into_inner();
        let user = self.core.disable_user(&principal, &user_id, &reason).await.map_err(fail)?;
        Ok(Response::new(pb::DisableUserResponse { user: Some(user_message(&user)) }))
    }

    async fn enable_user(&self, request: Request<pb::EnableUserRequest>) -> Reply<pb::EnableUserResponse> {
        let principal = caller(&request)?;
        let pb::EnableUserRequest { user_id, reason } = request.into_inner();
        let user = self.core.enable_user(&principal, &user_id, &reason).await.map_err(fail)?;
        Ok(Response::new(pb::EnableUserResponse { user: Some(user_message(&user)) }))
    }

    async fn set_user_roles(&self, request: Request<pb::SetUserRolesRequest>) -> Reply<pb::SetUserRolesResponse> {
        let principal = caller(&request)?;
        let pb::SetUserRolesRequest { user_id, roles } = request.into_inner();
        let user = self.core.set_user_roles(&principal, &user_id, &roles).await.map_err(fail)?;
        Ok(Response::new(pb::SetUserRolesResponse { user: Some(user_message(&user)) }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::CreateServiceAccountResponse> {
        let principal = caller(&request)?;
        let pb::CreateServiceAccountRequest { name, scopes } = request.into_inner();
        let (account, client_secret) =
            self.core.create_service_account(&principal, &name, &scopes).await.map_err(fail)?;
        Ok(Response::new(pb::CreateServiceAccountResponse {
            client_id: account.client_id.clone(),
            service_account: Some(service_account_message(&account)),
            client_secret,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        let principal = caller(&request)?;
        let pb::ListServiceAccountsRequest { page_size, page_token } = request.into_inner();
        let (accounts, next_page_token) =
            self.core.list_service_accounts(&principal, page_size, &page_token).await.map_err(fail)?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: accounts.iter().map(service_account_message).collect(),
            next_page_token,
        }))
    }

    async fn rotate_service_account_secret(
        &self,
        request: Request<pb::RotateServiceAccountSecretRequest>,
    ) -> Reply<pb::RotateServiceAccountSecretResponse> {
        let principal = caller(&request)?;
        let client_id = request.into_inner().client_id;
        let client_secret = self.core.rotate_service_account_secret(&principal, &client_id).await.map_err(fail)?;
        Ok(Response::new(pb::RotateServiceAccountSecretResponse { client_id, client_secret }))
    }

    async fn disable_service_account(
        &self,
        request: Request<pb::DisableServiceAccountRequest>,
    ) -> Reply<pb::DisableServiceAccountResponse> {
        let principal = caller(&request)?;
        let account =
            self.core.disable_service_account(&principal, &request.into_inner().client_id).await.map_err(fail)?;
        Ok(Response::new(pb::DisableServiceAccountResponse {
            service_account: Some(service_account_message(&account)),
        }))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Reply<pb::IssueServiceTokenResponse> {
        let pb::IssueServiceTokenRequest { client_id, client_secret, scopes } = request.into_inner();
        let (token, scopes) = self
            .core
            .issue_service_token(&client_id, &SecretString::from(client_secret), &scopes)
            .await
            .map_err(fail)?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token.token,
            access_token_expires_at: Some(timestamp_secs(token.expires_at)),
            scopes,
        }))
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Reply<pb::GetJwksResponse> {
        let keys = self.core.keyring().published().await.map_err(|e| fail(Failure::Internal(e)))?;
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Reply<pb::RotateSigningKeyResponse> {
        let principal = caller(&request)?;
        let (kid, signs_from) = self.core.rotate_signing_key(&principal).await.map_err(fail)?;
        Ok(Response::new(pb::RotateSigningKeyResponse { kid, signs_from: Some(timestamp(signs_from)) }))
    }
}

#[tonic::async_trait]
impl AuthInternalService for AuthApi {
    async fn list_revocations(
        &self,
        request: Request<pb::ListRevocationsRequest>,
    ) -> Reply<pb::ListRevocationsResponse> {
        let principal = caller(&request)?;
        let since = request.into_inner().since_version;
        Ok(Response::new(self.core.list_revocations(&principal, since).await.map_err(fail)?))
    }
}
