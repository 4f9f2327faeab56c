//! Signing keys, their private halves sealed by the key-encryption key.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::entities::signing_keys;

/// A key as stored.
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// PKCS#8 private key sealed with the key-encryption key.
    pub sealed_private_key: String,
    /// When it starts signing (µs).
    pub signs_from: i64,
}

/// Whether any key exists.
pub async fn any(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    Ok(signing_keys::Entity::find().one(db).await?.is_some())
}

/// Inserts `key`, created at `now`.
pub async fn insert(db: &impl ConnectionTrait, key: StoredKey, now: i64) -> Result<(), DbErr> {
    signing_keys::ActiveModel {
        kid: Set(key.kid),
        public_key: Set(key.public_key),
        encrypted_private_key: Set(key.sealed_private_key),
        created_at: Set(now),
        signs_from: Set(key.signs_from),
        retired_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Keys not retired, or retired after `horizon`, the latest to sign first.
pub async fn published(db: &impl ConnectionTrait, horizon: i64) -> Result<Vec<StoredKey>, DbErr> {
    let rows = signing_keys::Entity::find()
        .filter(signing_keys::Column::RetiredAt.is_null().or(signing_keys::Column::RetiredAt.gt(horizon)))
        .order_by_desc(signing_keys::Column::SignsFrom)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| StoredKey {
            kid: row.kid,
            public_key: row.public_key,
            sealed_private_key: row.encrypted_private_key,
            signs_from: row.signs_from,
        })
        .collect())
}

/// Serialises rotations for the rest of the transaction: a table lock on
/// PostgreSQL; SQLite's write transaction already holds the database.
pub async fn lock_for_rotation(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").await?;
    }
    Ok(())
}

/// Retires at `at` every unretired key but `kid`.
pub async fn retire_all_but(db: &impl ConnectionTrait, kid: &str, at: i64) -> Result<(), DbErr> {
    signing_keys::Entity::update_many()
        .col_expr(signing_keys::Column::RetiredAt, Expr::value(at))
        .filter(signing_keys::Column::Kid.ne(kid))
        .filter(signing_keys::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
