//! Registration and user administration.

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, run_in_tx};
use folio_tokens::{Principal, roles};
use sea_orm::{ConnectionTrait, SqlErr};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{AuthCore, page_size, require_operator};
use crate::domain::{
    fields::{known_subset, normalize_email, parse_id},
    password_policy,
    records::User,
};
use crate::store::{
    self,
    audit::{self, Action},
    revocations::{self, Kind},
};

fn validate_display_name(name: &str) -> Result<String, Failure> {
    Ok(folio_errors::validate::text("display_name", name, 1, 100)?)
}

impl AuthCore {
    /// Register: a new customer.
    pub async fn register(&self, email: &str, password: &SecretString, display_name: &str) -> Result<User, Failure> {
        self.create_user(email, password, display_name, &[roles::CUSTOMER], "self").await
    }

    /// Creates a user with `user_roles` (Register, the bootstrap operator, `create-operator`).
    pub async fn create_user(
        &self,
        email: &str,
        password: &SecretString,
        display_name: &str,
        user_roles: &[&str],
        actor: &str,
    ) -> Result<User, Failure> {
        let email = normalize_email(email)?;
        let display_name = validate_display_name(display_name)?;
        password_policy::check(password.expose_secret(), &email)?;
        // Hash outside the transaction: it is slow and needs no lock.
        let password_hash = self.hasher.hash(password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let user = run_in_tx(&self.db, "auth_register", RetryPolicy::default(), |tx| {
            let (id, email, display_name, password_hash) =
                (id.clone(), email.clone(), display_name.clone(), password_hash.clone());
            async move {
                let now = self.now(&*tx).await?;
                let roles = user_roles.iter().map(|role| (*role).to_owned()).collect();
                let user = User { id, email, display_name, roles, disabled: false, created_at: now, updated_at: now };
                store::users::insert(&*tx, &user, password_hash).await.map_err(|error| match error.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => {
                        Failure::from(FolioError::new(Reason::EmailTaken, "this email is already registered"))
                    }
                    _ => Failure::from(error),
                })?;
                let detail = json!({ "roles": user_roles.join(",") });
                audit::append(&*tx, now, actor, Action::Register, &user.id, detail).await?;
                Ok(user)
            }
        })
        .await?;
        Ok(user)
    }

    /// Creates the configured bootstrap operator when no user has that email.
    pub async fn ensure_operator(&self, email: &str, password: &SecretString) -> anyhow::Result<()> {
        let normalized = normalize_email(email).map_err(|e| anyhow::anyhow!("bootstrap operator email: {e}"))?;
        if store::users::by_email(&self.db, &normalized).await?.is_some() {
            return Ok(());
        }
        match self.create_user(&normalized, password, "Operator", &[roles::OPERATOR], "bootstrap").await {
            Ok(_) => {
                tracing::info!(email = %normalized, "bootstrap operator created");
                Ok(())
            }
            // Another replica created it first.
            Err(Failure::Caller(error)) if error.reason() == Reason::EmailTaken => Ok(()),
            Err(Failure::Caller(error)) => anyhow::bail!("bootstrap operator: {error}"),
            Err(Failure::Internal(error)) => Err(error.context("creating the bootstrap operator")),
        }
    }

    /// GetCurrentUser.
    pub async fn current_user(&self, principal: &Principal) -> Result<User, Failure> {
        let (user_id, _) = super::require_user(principal)?;
        self.find_user(&self.db, user_id).await
    }

    /// ListUsers (operator): creation order, keyset pages.
    pub async fn list_users(
        &self,
        principal: &Principal,
        size: i32,
        token: &str,
    ) -> Result<(Vec<User>, String), Failure> {
        require_operator(principal)?;
        let limit = page_size(size, 50, 200)?;
        let page = store::users::page(&self.db, self.page_tokens.decode(token)?, limit + 1).await?;
        Ok(folio_storage::paging::finish_page(page, limit, |u| self.page_tokens.encode(u.created_at, &u.id)))
    }

    /// DisableUser (operator): the user's sessions end and their tokens are refused.
    pub async fn disable_user(&self, principal: &Principal, user_id: &str, reason: &str) -> Result<User, Failure> {
        self.set_disabled(principal, user_id, true, reason).await
    }

    /// EnableUser (operator): new sign-ins work again; old sessions stay ended.
    pub async fn enable_user(&self, principal: &Principal, user_id: &str, reason: &str) -> Result<User, Failure> {
        self.set_disabled(principal, user_id, false, reason).await
    }

    async fn set_disabled(
        &self,
        principal: &Principal,
        user_id: &str,
        disabled: bool,
        reason: &str,
    ) -> Result<User, Failure> {
        require_operator(principal)?;
        let user_id = parse_id("user_id", user_id)?;
        folio_errors::validate::free_text("reason", reason, 500)?;
        let operation = if disabled { "auth_disable_user" } else { "auth_enable_user" };
        let user = run_in_tx(&self.db, operation, RetryPolicy::default(), |tx| {
            let user_id = user_id.clone();
            async move {
                let user = self.find_user(&*tx, &user_id).await?;
                let now = self.now(&*tx).await?;
                store::users::set_disabled(&*tx, &user_id, disabled, now).await?;
                let action = if disabled {
                    self.end_sessions_of(&*tx, &user_id, None, now, "user disabled").await?;
                    revocations::add(&*tx, Kind::User, &user_id, now).await?;
                    Action::UserDisabled
                } else {
                    revocations::lift(&*tx, Kind::User, &user_id).await?;
                    Action::UserEnabled
                };
                audit::append(&*tx, now, &principal.subject, action, &user_id, json!({ "reason": reason })).await?;
                Ok(User { disabled, updated_at: now, ..user })
            }
        })
        .await?;
        self.nudge_verifiers().await;
        Ok(user)
    }

    /// SetUserRoles (operator). Taking a role away ends the user's sessions,
    /// so no token keeps a right its holder lost.
    pub async fn set_user_roles(
        &self,
        principal: &Principal,
        user_id: &str,
        new_roles: &[String],
    ) -> Result<User, Failure> {
        require_operator(principal)?;
        let user_id = parse_id("user_id", user_id)?;
        let wanted = known_subset("roles", new_roles, roles::ALL)?;
        let (user, removed) = run_in_tx(&self.db, "auth_set_roles", RetryPolicy::default(), |tx| {
            let (user_id, wanted) = (user_id.clone(), wanted.clone());
            async move {
                let user = self.find_user(&*tx, &user_id).await?;
                let removed = user.roles.iter().any(|old| !wanted.contains(&old.as_str()));
                let now = self.now(&*tx).await?;
                store::users::set_roles(&*tx, &user_id, &wanted, now).await?;
                if removed {
                    self.end_sessions_of(&*tx, &user_id, None, now, "roles reduced").await?;
                }
                let detail = json!({ "roles": wanted.join(",") });
                audit::append(&*tx, now, &principal.subject, Action::RolesChanged, &user_id, detail).await?;
                let roles = wanted.iter().map(|role| (*role).to_owned()).collect();
                Ok((User { roles, updated_at: now, ..user }, removed))
            }
        })
        .await?;
        if removed {
            self.nudge_verifiers().await;
        }
        Ok(user)
    }

    /// Ends every live session of `user_id` except `keep`, revoking their tokens.
    pub(super) async fn end_sessions_of(
        &self,
        db: &impl ConnectionTrait,
        user_id: &str,
        keep: Option<&str>,
        now: i64,
        why: &str,
    ) -> Result<(), Failure> {
        let ids = store::sessions::live_ids(db, user_id, keep, now).await?;
        if ids.is_empty() {
            return Ok(());
        }
        store::sessions::revoke(db, &ids, now, why).await?;
        for id in ids {
            revocations::add(db, Kind::Session, &id, now).await?;
        }
        Ok(())
    }
}
