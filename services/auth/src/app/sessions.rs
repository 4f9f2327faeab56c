//! Sign-in, token refresh with reuse detection, sign-out, and the caller's sessions.

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, TxError, run_in_tx};
use folio_tokens::Principal;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{AuthCore, page_size, require_user};
use crate::domain::{
    fields::{normalize_email, parse_id},
    password_hasher::Verified,
    password_policy,
    records::{Session, User},
    tokens::{Subject, new_refresh_token, secret_hash},
};
use crate::store::{
    self,
    audit::{self, Action},
    revocations::{self, Kind},
};

/// Where a sign-in comes from.
#[derive(Debug, Clone, Default)]
pub struct LoginContext {
    /// The client IP (set by the gateway from the connection).
    pub client_ip: String,
    /// The client's user agent, when it sent one.
    pub user_agent: String,
}

/// A session's token pair.
pub struct IssuedTokens {
    /// The access token (JWT).
    pub access_token: String,
    /// The refresh token, shown once.
    pub refresh_token: String,
    /// Access-token expiry, seconds since the epoch.
    pub access_expires_at: i64,
    /// Refresh-token expiry (the session's end), µs since the epoch.
    pub refresh_expires_at_micros: i64,
    /// The session.
    pub session_id: String,
    /// The signed-in user.
    pub user: User,
}

/// How a refresh attempt ended, decided inside its transaction.
enum RefreshOutcome {
    /// The next refresh token, the session and its user.
    Rotated(Box<(String, Session, User)>),
    /// A spent token came back: the session was revoked (and that commits).
    Reused,
}

impl AuthCore {
    /// Login. Unknown emails and wrong passwords get the same answer after
    /// the same work; lock-outs are checked before the password.
    pub async fn login(
        &self,
        email: &str,
        password: &SecretString,
        context: &LoginContext,
    ) -> Result<IssuedTokens, Failure> {
        let email = normalize_email(email).map_err(|_| invalid_credentials())?;
        let attempt = match self.lockout.reserve(&email, &context.client_ip).await {
            Ok(attempt) => attempt,
            Err(locked) => {
                let now = self.now(&self.db).await?;
                audit::append(
                    &self.db,
                    now,
                    &email,
                    Action::LoginLocked,
                    "",
                    json!({ "client_ip": context.client_ip }),
                )
                .await?;
                return Err(locked);
            }
        };
        let user = store::users::by_email(&self.db, &email).await?;
        let stored = match &user {
            Some(user) => store::users::password_hash(&self.db, &user.id).await?,
            None => None,
        };
        let verified = self.hasher.verify(password, stored).await?;
        let now = self.now(&self.db).await?;
        let (Some(user), true) = (user, verified != Verified::No) else {
            self.lockout.record_failure(&email, &context.client_ip, attempt).await?;
            audit::append(&self.db, now, &email, Action::LoginFailed, "", json!({ "client_ip": context.client_ip }))
                .await?;
            return Err(invalid_credentials());
        };
        if user.disabled {
            audit::append(&self.db, now, &email, Action::LoginFailed, &user.id, json!({ "why": "disabled" })).await?;
            return Err(FolioError::new(Reason::UserDisabled, "this user is disabled").into());
        }
        self.lockout.record_success(&email, &context.client_ip).await?;
        if let Verified::YesRehashed(hash) = verified {
            // Parameters were raised since this hash was made: upgrade it now.
            store::users::set_password_hash(&self.db, &user.id, hash, now).await?;
        }
        self.start_session(user, context).await
    }

    async fn start_session(&self, user: User, context: &LoginContext) -> Result<IssuedTokens, Failure> {
        let refresh_token = new_refresh_token();
        let session_id = uuid::Uuid::now_v7().to_string();
        let lifetime =
            i64::try_from(self.settings.refresh_token_ttl_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
        let session = run_in_tx(&self.db, "auth_login", RetryPolicy::default(), |tx| {
            let (session_id, hash, user_id) = (session_id.clone(), secret_hash(&refresh_token), user.id.clone());
            async move {
                let now = self.now(&*tx).await?;
                let session = Session {
                    id: session_id.clone(),
                    user_id: user_id.clone(),
                    created_at: now,
                    last_used_at: now,
                    expires_at: now.saturating_add(lifetime),
                    revoked_at: None,
                    client_ip: context.client_ip.clone(),
                    user_agent: context.user_agent.chars().take(200).collect(),
                };
                store::sessions::insert(&*tx, &session).await?;
                store::sessions::insert_refresh_token(&*tx, hash, &session, now).await?;
                audit::append(
                    &*tx,
                    now,
                    &user_id,
                    Action::LoginSucceeded,
                    &session_id,
                    json!({ "client_ip": context.client_ip }),
                )
                .await?;
                Ok::<_, TxError<Failure>>(session)
            }
        })
        .await?;
        self.issue(user, session, refresh_token).await
    }

    async fn issue(&self, user: User, session: Session, refresh_token: String) -> Result<IssuedTokens, Failure> {
        let subject = Subject::User { id: &user.id, session_id: &session.id, roles: &user.roles };
        let access = self.issuer.access_token(subject).await?;
        Ok(IssuedTokens {
            access_token: access.token,
            refresh_token,
            access_expires_at: access.expires_at,
            refresh_expires_at_micros: session.expires_at,
            session_id: session.id,
            user,
        })
    }

    /// Refresh: rotates the pair. A spent token presented again (a replay,
    /// or the loser of two parallel refreshes) revokes the whole session.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<IssuedTokens, Failure> {
        let presented = secret_hash(refresh_token.expose_secret());
        let outcome = run_in_tx(&self.db, "auth_refresh", RetryPolicy::default(), |tx| {
            let presented = presented.clone();
            async move {
                let now = self.now(&*tx).await?;
                let Some(token) = store::sessions::refresh_token(&*tx, &presented).await? else {
                    return Err(FolioError::new(Reason::TokenInvalid, "unknown refresh token").into());
                };
                let session = store::sessions::find(&*tx, &token.session_id)
                    .await?
                    .ok_or_else(|| Failure::from(FolioError::new(Reason::TokenInvalid, "unknown refresh token")))?;
                // Spend it atomically: of two racing refreshes exactly one updates the row.
                if !store::sessions::spend_refresh_token(&*tx, &presented, now).await? {
                    if session.revoked_at.is_none() {
                        self.revoke_session_row(&*tx, &session.id, now, "refresh token reused").await?;
                    }
                    audit::append(&*tx, now, &session.user_id, Action::RefreshTokenReused, &session.id, json!({}))
                        .await?;
                    return Ok(RefreshOutcome::Reused);
                }
                if session.revoked_at.is_some() {
                    return Err(FolioError::new(Reason::TokenRevoked, "the session has ended").into());
                }
                if session.expires_at <= now || token.expires_at <= now {
                    return Err(FolioError::new(Reason::TokenExpired, "the session has expired; sign in again").into());
                }
                let user = self.find_user(&*tx, &session.user_id).await?;
                if user.disabled {
                    return Err(FolioError::new(Reason::UserDisabled, "this user is disabled").into());
                }
                let next = new_refresh_token();
                store::sessions::insert_refresh_token(&*tx, secret_hash(&next), &session, now).await?;
                store::sessions::touch(&*tx, &session.id, now).await?;
                let session = Session { last_used_at: now, ..session };
                Ok(RefreshOutcome::Rotated(Box::new((next, session, user))))
            }
        })
        .await?;
        match outcome {
            RefreshOutcome::Rotated(rotated) => {
                let (refresh_token, session, user) = *rotated;
                self.issue(user, session, refresh_token).await
            }
            RefreshOutcome::Reused => {
                self.nudge_verifiers().await;
                Err(FolioError::new(
                    Reason::RefreshTokenReused,
                    "this refresh token was already used; the session has ended",
                )
                .into())
            }
        }
    }

    async fn revoke_session_row(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        id: &str,
        now: i64,
        why: &str,
    ) -> Result<(), Failure> {
        store::sessions::revoke(db, &[id.to_owned()], now, why).await?;
        revocations::add(db, Kind::Session, id, now).await?;
        Ok(())
    }

    /// Logout: ends the caller's session.
    pub async fn logout(&self, principal: &Principal) -> Result<(), Failure> {
        let (user_id, session_id) = require_user(principal)?;
        self.end_session(user_id, session_id, Action::Logout, "logout").await
    }

    /// RevokeSession: ends one of the caller's own sessions.
    pub async fn revoke_session(&self, principal: &Principal, session_id: &str) -> Result<(), Failure> {
        let (user_id, _) = require_user(principal)?;
        let session_id = parse_id("session_id", session_id)?;
        self.end_session(user_id, &session_id, Action::SessionRevoked, "revoked by its user").await
    }

    async fn end_session(&self, user_id: &str, session_id: &str, action: Action, why: &str) -> Result<(), Failure> {
        run_in_tx(&self.db, "auth_end_session", RetryPolicy::default(), |tx| async move {
            let session = store::sessions::find(&*tx, session_id).await?;
            // Someone else's session answers exactly like a missing one.
            let Some(session) = session.filter(|s| s.user_id == user_id) else {
                return Err(FolioError::new(Reason::SessionNotFound, "no such session").into());
            };
            let now = self.now(&*tx).await?;
            if session.revoked_at.is_none() {
                self.revoke_session_row(&*tx, session_id, now, why).await?;
                audit::append(&*tx, now, user_id, action, session_id, json!({})).await?;
            }
            Ok::<_, TxError<Failure>>(())
        })
        .await?;
        self.nudge_verifiers().await;
        Ok(())
    }

    /// ListSessions: the caller's live sessions, newest first.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Session>, String), Failure> {
        let (user_id, _) = require_user(principal)?;
        let limit = page_size(size, 50, 200)?;
        let now = self.now(&self.db).await?;
        let before = self.page_tokens.decode(token)?;
        let page = store::sessions::live_page(&self.db, user_id, now, before, limit + 1).await?;
        Ok(folio_storage::paging::finish_page(page, limit, |s| self.page_tokens.encode(s.created_at, &s.id)))
    }

    /// ChangePassword: checks the old password (counted by the lock-out like
    /// a sign-in), applies the policy to the new one, ends the other sessions.
    pub async fn change_password(
        &self,
        principal: &Principal,
        old: &SecretString,
        new: &SecretString,
        context: &LoginContext,
    ) -> Result<(), Failure> {
        let (user_id, session_id) = require_user(principal)?;
        let user = self.find_user(&self.db, user_id).await?;
        let attempt = self.lockout.reserve(&user.email, &context.client_ip).await?;
        let stored = store::users::password_hash(&self.db, &user.id).await?;
        if self.hasher.verify(old, stored).await? == Verified::No {
            self.lockout.record_failure(&user.email, &context.client_ip, attempt).await?;
            return Err(invalid_credentials());
        }
        self.lockout.record_success(&user.email, &context.client_ip).await?;
        password_policy::check(new.expose_secret(), &user.email)?;
        let hash = self.hasher.hash(new).await?;
        run_in_tx(&self.db, "auth_change_password", RetryPolicy::default(), |tx| {
            let hash = hash.clone();
            async move {
                let now = self.now(&*tx).await?;
                store::users::set_password_hash(&*tx, user_id, hash, now).await?;
                self.end_sessions_of(&*tx, user_id, Some(session_id), now, "password changed").await?;
                audit::append(&*tx, now, user_id, Action::PasswordChanged, user_id, json!({})).await?;
                Ok::<_, TxError<Failure>>(())
            }
        })
        .await?;
        self.nudge_verifiers().await;
        Ok(())
    }
}

fn invalid_credentials() -> Failure {
    FolioError::new(Reason::InvalidCredentials, "email or password is wrong").into()
}
