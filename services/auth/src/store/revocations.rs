//! Revocations in force, versioned so verifiers can ask "anything new since
//! version N?" every second at almost no cost.

use folio_proto::auth::ListRevocationsResponse;
use folio_tokens::MAX_ACCESS_TOKEN_LIFETIME;
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
    sea_query::Expr,
};

use super::entities::{revocation_version, revocations};

/// What a revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every access token of a session (`sid`).
    Session,
    /// Every token of a disabled user (`sub`), until enabled.
    User,
    /// Every token of a disabled service account (`sub`), until enabled.
    ServiceAccount,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::User => "user",
            Kind::ServiceAccount => "service_account",
        }
    }
}

/// Microseconds an access token issued before a revocation may still be valid after it.
fn token_horizon_micros() -> i64 {
    i64::try_from(MAX_ACCESS_TOKEN_LIFETIME.as_micros()).unwrap_or(i64::MAX) + 60_000_000
}

async fn bump_version(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    revocation_version::Entity::update_many()
        .col_expr(revocation_version::Column::Version, Expr::col(revocation_version::Column::Version).add(1))
        .filter(revocation_version::Column::Id.eq(1))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a revocation (inside the caller's transaction). Session and token
/// revocations lapse once no token they cover can still be valid.
pub async fn add(db: &impl ConnectionTrait, kind: Kind, subject: &str, now: i64) -> Result<(), DbErr> {
    let expires_at = match kind {
        Kind::Session => Some(now.saturating_add(token_horizon_micros())),
        Kind::User | Kind::ServiceAccount => None,
    };
    revocations::ActiveModel {
        kind: Set(kind.as_str().to_owned()),
        subject: Set(subject.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    bump_version(db).await
}

/// Lifts a user or service-account revocation (re-enabling).
pub async fn lift(db: &impl ConnectionTrait, kind: Kind, subject: &str) -> Result<(), DbErr> {
    revocations::Entity::delete_many()
        .filter(revocations::Column::Kind.eq(kind.as_str()))
        .filter(revocations::Column::Subject.eq(subject))
        .exec(db)
        .await?;
    bump_version(db).await
}

/// The revocations in force, or `unchanged` when the version is `since`.
pub async fn in_force(db: &sea_orm::DatabaseConnection, since: i64) -> Result<ListRevocationsResponse, DbErr> {
    // One snapshot for the version and the rows, so they agree.
    let isolation =
        (db.get_database_backend() == sea_orm::DbBackend::Postgres).then_some(sea_orm::IsolationLevel::RepeatableRead);
    let tx = db.begin_with_config(isolation, None).await?;
    let version = revocation_version::Entity::find_by_id(1).one(&tx).await?.map_or(0, |row| row.version);
    if version == since {
        tx.commit().await?;
        return Ok(ListRevocationsResponse { version, unchanged: true, ..Default::default() });
    }
    let now = folio_storage::db::now(&tx).await?.timestamp_micros();
    let rows = revocations::Entity::find()
        .filter(revocations::Column::ExpiresAt.is_null().or(revocations::Column::ExpiresAt.gt(now)))
        .all(&tx)
        .await?;
    tx.commit().await?;
    let mut response = ListRevocationsResponse { version, unchanged: false, ..Default::default() };
    for row in rows {
        let list = match row.kind.as_str() {
            "session" => &mut response.revoked_session_ids,
            "token" => &mut response.revoked_token_ids,
            "user" => &mut response.disabled_user_ids,
            "service_account" => &mut response.disabled_service_account_ids,
            _ => continue,
        };
        list.push(row.subject);
    }
    Ok(response)
}

/// Deletes lapsed session and token revocations (housekeeping; the answer
/// of [`in_force`] does not depend on it).
pub async fn purge_lapsed(db: &impl ConnectionTrait, now: i64) -> Result<u64, DbErr> {
    Ok(revocations::Entity::delete_many().filter(revocations::Column::ExpiresAt.lte(now)).exec(db).await?.rows_affected)
}
