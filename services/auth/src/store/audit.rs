//! The append-only audit log (the database refuses updates and deletes).

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

use super::entities::audit_log;

/// Audited actions.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// A user registered.
    Register,
    /// A sign-in succeeded.
    LoginSucceeded,
    /// A sign-in failed (wrong password, unknown email, disabled user).
    LoginFailed,
    /// A sign-in was refused by the lock-out.
    LoginLocked,
    /// A spent refresh token was presented again; the session was revoked.
    RefreshTokenReused,
    /// A session ended by Logout.
    Logout,
    /// A session ended by RevokeSession.
    SessionRevoked,
    /// A password changed.
    PasswordChanged,
    /// An operator disabled a user.
    UserDisabled,
    /// An operator enabled a user.
    UserEnabled,
    /// An operator changed a user's roles.
    RolesChanged,
    /// A service account was created (or provisioned from configuration).
    ServiceAccountCreated,
    /// A service account's secret was replaced.
    ServiceAccountSecretRotated,
    /// A service account was disabled.
    ServiceAccountDisabled,
    /// A signing-key rotation began.
    SigningKeyRotated,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::LoginSucceeded => "login_succeeded",
            Action::LoginFailed => "login_failed",
            Action::LoginLocked => "login_locked",
            Action::RefreshTokenReused => "refresh_token_reused",
            Action::Logout => "logout",
            Action::SessionRevoked => "session_revoked",
            Action::PasswordChanged => "password_changed",
            Action::UserDisabled => "user_disabled",
            Action::UserEnabled => "user_enabled",
            Action::RolesChanged => "roles_changed",
            Action::ServiceAccountCreated => "service_account_created",
            Action::ServiceAccountSecretRotated => "service_account_secret_rotated",
            Action::ServiceAccountDisabled => "service_account_disabled",
            Action::SigningKeyRotated => "signing_key_rotated",
        }
    }
}

/// Appends one entry. `detail` must never hold a secret.
pub async fn append(
    db: &impl ConnectionTrait,
    now: i64,
    actor: &str,
    action: Action,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        at: Set(now),
        actor: Set(actor.to_owned()),
        action: Set(action.as_str().to_owned()),
        subject: Set(subject.to_owned()),
        detail: Set(detail.to_string()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
