//! The outbox: openings the ledger has yet to confirm. A job is claimed by
//! moving its next attempt forward; only the replica whose update matched
//! the time it read works that attempt.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::outbox;

/// A job that is due.
pub struct Job {
    /// The account to open.
    pub account_id: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When this attempt was due (µs); the claim matches on it.
    pub next_attempt_at: i64,
}

/// Up to `limit` unfinished jobs due at `now`, the longest waiting first.
pub async fn due(db: &impl ConnectionTrait, now: i64, limit: u64) -> Result<Vec<Job>, DbErr> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::Done.eq(false))
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Job { account_id: row.account_id, attempts: row.attempts, next_attempt_at: row.next_attempt_at })
        .collect())
}

/// Claims `job` until `until`; false when another replica claimed it first.
pub async fn claim(db: &impl ConnectionTrait, job: &Job, until: i64) -> Result<bool, DbErr> {
    let claimed = outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(until))
        .filter(outbox::Column::AccountId.eq(&job.account_id))
        .filter(outbox::Column::NextAttemptAt.eq(job.next_attempt_at))
        .exec(db)
        .await?
        .rows_affected;
    Ok(claimed > 0)
}

/// A failed attempt: its count, the next try (or none when `give_up`), and why.
pub struct Retry<'a> {
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When to try again (µs).
    pub next_attempt_at: i64,
    /// What went wrong.
    pub error: &'a str,
    /// The ledger refused for good: no further attempt.
    pub give_up: bool,
}

/// Records a failed attempt of the job for `account_id`.
pub async fn reschedule(db: &impl ConnectionTrait, account_id: &str, retry: Retry<'_>) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Attempts, Expr::value(retry.attempts))
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(retry.next_attempt_at))
        .col_expr(outbox::Column::LastError, Expr::value(retry.error.chars().take(500).collect::<String>()))
        .col_expr(outbox::Column::Done, Expr::value(retry.give_up))
        .filter(outbox::Column::AccountId.eq(account_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The account is open in the ledger: its job is done.
pub async fn finish(db: &impl ConnectionTrait, account_id: &str) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Done, Expr::value(true))
        .filter(outbox::Column::AccountId.eq(account_id))
        .exec(db)
        .await?;
    Ok(())
}
