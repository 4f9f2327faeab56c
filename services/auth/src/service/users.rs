//! Registration and user administration.

use folio_common::{
    auth::{Principal, roles},
    db::{RetryPolicy, run_in_tx},
    error::{Failure, FolioError, Reason},
};
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
    sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{AuthCore, known_subset, normalize_email, page_size, parse_id, require_operator};
use crate::domain::password_policy;
use crate::store::{
    audit::{self, Action},
    entities::{password_credentials, sessions, users},
    revocations::{self, Kind},
};

/// A user as stored, with roles split.
pub type User = users::Model;

/// The roles of a stored user.
pub fn roles_of(user: &User) -> Vec<String> {
    user.roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

fn validate_display_name(name: &str) -> Result<String, Failure> {
    Ok(folio_common::validate::text("display_name", name, 1, 100)?)
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
        let roles = user_roles.join(",");
        let user = run_in_tx(&self.db, "auth_register", RetryPolicy::default(), |tx| {
            let (id, email, display_name, roles, password_hash) =
                (id.clone(), email.clone(), display_name.clone(), roles.clone(), password_hash.clone());
            async move {
                let now = self.now(&*tx).await?;
                let user = users::ActiveModel {
                    id: Set(id.clone()),
                    email: Set(email),
                    display_name: Set(display_name),
                    roles: Set(roles),
                    disabled: Set(false),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|error| match error.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => {
                        Failure::from(FolioError::new(Reason::EmailTaken, "this email is already registered"))
                    }
                    _ => Failure::from(error),
                })?;
                password_credentials::ActiveModel {
                    user_id: Set(id.clone()),
                    password_hash: Set(password_hash),
                    updated_at: Set(now),
                }
                .insert(&*tx)
                .await?;
                audit::append(&*tx, now, actor, Action::Register, &id, json!({ "roles": user.roles })).await?;
                Ok(user)
            }
        })
        .await?;
        Ok(user)
    }

    /// Creates the configured bootstrap operator when no user has that email.
    pub async fn ensure_operator(&self, email: &str, password: &SecretString) -> anyhow::Result<()> {
        let normalized = normalize_email(email).map_err(|e| anyhow::anyhow!("bootstrap operator email: {e}"))?;
        if users::Entity::find().filter(users::Column::Email.eq(&normalized)).one(&self.db).await?.is_some() {
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

    pub(super) async fn find_user(&self, db: &impl ConnectionTrait, id: &str) -> Result<User, Failure> {
        users::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .ok_or_else(|| FolioError::new(Reason::UserNotFound, "no such user").into())
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
        let mut query = users::Entity::find().order_by_asc(users::Column::CreatedAt).order_by_asc(users::Column::Id);
        if let Some((at, id)) = self.page_tokens.decode(token)? {
            query = query.filter(
                users::Column::CreatedAt.gt(at).or(users::Column::CreatedAt.eq(at).and(users::Column::Id.gt(id))),
            );
        }
        let page = query.limit(limit + 1).all(&self.db).await?;
        Ok(folio_common::paging::finish_page(page, limit, |u| self.page_tokens.encode(u.created_at, &u.id)))
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
        folio_common::validate::free_text("reason", reason, 500)?;
        let operation = if disabled { "auth_disable_user" } else { "auth_enable_user" };
        let user = run_in_tx(&self.db, operation, RetryPolicy::default(), |tx| {
            let user_id = user_id.clone();
            async move {
                let user = self.find_user(&*tx, &user_id).await?;
                let now = self.now(&*tx).await?;
                let user = users::ActiveModel { disabled: Set(disabled), updated_at: Set(now), ..user.into() }
                    .update(&*tx)
                    .await?;
                let action = if disabled {
                    self.end_sessions_of(&*tx, &user_id, None, now, "user disabled").await?;
                    revocations::add(&*tx, Kind::User, &user_id, now).await?;
                    Action::UserDisabled
                } else {
                    revocations::lift(&*tx, Kind::User, &user_id).await?;
                    Action::UserEnabled
                };
                audit::append(&*tx, now, &principal.subject, action, &user_id, json!({ "reason": reason })).await?;
                Ok(user)
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
        let joined = wanted.join(",");
        let (user, removed) = run_in_tx(&self.db, "auth_set_roles", RetryPolicy::default(), |tx| {
            let (user_id, joined, wanted) = (user_id.clone(), joined.clone(), wanted.clone());
            async move {
                let user = self.find_user(&*tx, &user_id).await?;
                let removed = roles_of(&user).iter().any(|old| !wanted.contains(&old.as_str()));
                let now = self.now(&*tx).await?;
                let user = users::ActiveModel { roles: Set(joined.clone()), updated_at: Set(now), ..user.into() }
                    .update(&*tx)
                    .await?;
                if removed {
                    self.end_sessions_of(&*tx, &user_id, None, now, "roles reduced").await?;
                }
                audit::append(
                    &*tx,
                    now,
                    &principal.subject,
                    Action::RolesChanged,
                    &user_id,
                    json!({ "roles": joined }),
                )
                .await?;
                Ok((user, removed))
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
        let mut live = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(now));
        if let Some(keep) = keep {
            live = live.filter(sessions::Column::Id.ne(keep));
        }
        let ids: Vec<String> = live.select_only().column(sessions::Column::Id).into_tuple().all(db).await?;
        if ids.is_empty() {
            return Ok(());
        }
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(sessions::Column::RevokeReason, Expr::value(why))
            .filter(sessions::Column::Id.is_in(ids.clone()))
            .exec(db)
            .await?;
        for id in ids {
            revocations::add(db, Kind::Session, &id, now).await?;
        }
        Ok(())
    }
}
