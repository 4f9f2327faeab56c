//! The status audit trail (`status_changes`): who changed a status, when, why.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

use super::entities::status_changes;
use crate::domain::AccountStatus;

/// Longest reason kept.
const MAX_REASON_CHARS: usize = 500;

/// One entry of the trail.
pub struct StatusChange<'a> {
    /// The account.
    pub account_id: &'a str,
    /// Status before.
    pub from: AccountStatus,
    /// Status after.
    pub to: AccountStatus,
    /// Who changed it.
    pub actor: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// Appends `change`, made at `at`.
pub async fn append(db: &impl ConnectionTrait, change: StatusChange<'_>, at: i64) -> Result<(), DbErr> {
    status_changes::ActiveModel {
        account_id: Set(change.account_id.to_owned()),
        from_status: Set(change.from as i16),
        to_status: Set(change.to as i16),
        actor: Set(change.actor.to_owned()),
        reason: Set(change.reason.chars().take(MAX_REASON_CHARS).collect()),
        at: Set(at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
