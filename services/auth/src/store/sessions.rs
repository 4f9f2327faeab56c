//! Sessions and their refresh tokens (stored by hash only).

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::{refresh_tokens, sessions};
use crate::domain::records::{RefreshToken, Session};

fn from_row(row: sessions::Model) -> Session {
    Session {
        id: row.id,
        user_id: row.user_id,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        client_ip: row.client_ip,
        user_agent: row.user_agent,
    }
}

/// Inserts `session`.
pub async fn insert(db: &impl ConnectionTrait, session: &Session) -> Result<(), DbErr> {
    sessions::ActiveModel {
        id: Set(session.id.clone()),
        user_id: Set(session.user_id.clone()),
        created_at: Set(session.created_at),
        last_used_at: Set(session.last_used_at),
        expires_at: Set(session.expires_at),
        revoked_at: Set(session.revoked_at),
        revoke_reason: Set(None),
        client_ip: Set(session.client_ip.clone()),
        user_agent: Set(session.user_agent.clone()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The session `id`.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<Session>, DbErr> {
    Ok(sessions::Entity::find_by_id(id.to_owned()).one(db).await?.map(from_row))
}

/// Ends the sessions `ids` that are still live, at `now`, for `why`.
pub async fn revoke(db: &impl ConnectionTrait, ids: &[String], now: i64, why: &str) -> Result<(), DbErr> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokeReason, Expr::value(why))
        .filter(sessions::Column::Id.is_in(ids.iter().cloned()))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ids of the live sessions of `user_id` at `now`, but `keep`.
pub async fn live_ids(
    db: &impl ConnectionTrait,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    let mut live = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now));
    if let Some(keep) = keep {
        live = live.filter(sessions::Column::Id.ne(keep));
    }
    live.select_only().column(sessions::Column::Id).into_tuple().all(db).await
}

/// The live sessions of `user_id` at `now`, newest first, before `before`.
pub async fn live_page(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: i64,
    before: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<Session>, DbErr> {
    let mut query = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .order_by_desc(sessions::Column::CreatedAt)
        .order_by_desc(sessions::Column::Id);
    if let Some((at, id)) = before {
        query = query.filter(
            sessions::Column::CreatedAt.lt(at).or(sessions::Column::CreatedAt.eq(at).and(sessions::Column::Id.lt(id))),
        );
    }
    Ok(query.limit(limit).all(db).await?.into_iter().map(from_row).collect())
}

/// Records that the session `id` refreshed at `now`.
pub async fn touch(db: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Stores a refresh token of `session` by its hash.
pub async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    token_hash: String,
    session: &Session,
    now: i64,
) -> Result<(), DbErr> {
    refresh_tokens::ActiveModel {
        token_hash: Set(token_hash),
        session_id: Set(session.id.clone()),
        created_at: Set(now),
        expires_at: Set(session.expires_at),
        spent_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The refresh token with this hash.
pub async fn refresh_token(db: &impl ConnectionTrait, token_hash: &str) -> Result<Option<RefreshToken>, DbErr> {
    let row = refresh_tokens::Entity::find_by_id(token_hash.to_owned()).one(db).await?;
    Ok(row.map(|row| RefreshToken { session_id: row.session_id, expires_at: row.expires_at }))
}

/// Spends the refresh token atomically: of two racing refreshes exactly
/// one gets `true`.
pub async fn spend_refresh_token(db: &impl ConnectionTrait, token_hash: &str, now: i64) -> Result<bool, DbErr> {
    let spent = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::SpentAt, Expr::value(now))
        .filter(refresh_tokens::Column::TokenHash.eq(token_hash))
        .filter(refresh_tokens::Column::SpentAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(spent == 1)
}
