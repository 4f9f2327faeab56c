//! Users and their password credentials.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::{password_credentials, users};
use crate::domain::records::User;

fn from_row(row: users::Model) -> User {
    User {
        roles: row.roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect(),
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        disabled: row.disabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The user `id`.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<User>, DbErr> {
    Ok(users::Entity::find_by_id(id.to_owned()).one(db).await?.map(from_row))
}

/// The user with this (normalised) email.
pub async fn by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<User>, DbErr> {
    Ok(users::Entity::find().filter(users::Column::Email.eq(email)).one(db).await?.map(from_row))
}

/// Inserts `user` with its password hash; fails unique on a taken email.
pub async fn insert(db: &impl ConnectionTrait, user: &User, password_hash: String) -> Result<(), DbErr> {
    users::ActiveModel {
        id: Set(user.id.clone()),
        email: Set(user.email.clone()),
        display_name: Set(user.display_name.clone()),
        roles: Set(user.roles.join(",")),
        disabled: Set(user.disabled),
        created_at: Set(user.created_at),
        updated_at: Set(user.updated_at),
    }
    .insert(db)
    .await?;
    password_credentials::ActiveModel {
        user_id: Set(user.id.clone()),
        password_hash: Set(password_hash),
        updated_at: Set(user.created_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Users in (created_at, id) order after `after`, at most `limit`.
pub async fn page(db: &impl ConnectionTrait, after: Option<(i64, String)>, limit: u64) -> Result<Vec<User>, DbErr> {
    let mut query = users::Entity::find().order_by_asc(users::Column::CreatedAt).order_by_asc(users::Column::Id);
    if let Some((at, id)) = after {
        query = query
            .filter(users::Column::CreatedAt.gt(at).or(users::Column::CreatedAt.eq(at).and(users::Column::Id.gt(id))));
    }
    Ok(query.limit(limit).all(db).await?.into_iter().map(from_row).collect())
}

/// Sets the roles of `id` at `now`.
pub async fn set_roles(db: &impl ConnectionTrait, id: &str, roles: &[&str], now: i64) -> Result<(), DbErr> {
    update(db, id, users::Column::Roles, Expr::value(roles.join(",")), now).await
}

/// Disables or enables `id` at `now`.
pub async fn set_disabled(db: &impl ConnectionTrait, id: &str, disabled: bool, now: i64) -> Result<(), DbErr> {
    update(db, id, users::Column::Disabled, Expr::value(disabled), now).await
}

async fn update(
    db: &impl ConnectionTrait,
    id: &str,
    column: users::Column,
    value: Expr,
    now: i64,
) -> Result<(), DbErr> {
    users::Entity::update_many()
        .col_expr(column, value)
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The stored password hash (PHC string) of `user_id`.
pub async fn password_hash(db: &impl ConnectionTrait, user_id: &str) -> Result<Option<String>, DbErr> {
    Ok(password_credentials::Entity::find_by_id(user_id.to_owned()).one(db).await?.map(|c| c.password_hash))
}

/// Replaces the password hash of `user_id`.
pub async fn set_password_hash(db: &impl ConnectionTrait, user_id: &str, hash: String, now: i64) -> Result<(), DbErr> {
    password_credentials::ActiveModel {
        user_id: Set(user_id.to_owned()),
        password_hash: Set(hash),
        updated_at: Set(now),
    }
    .update(db)
    .await?;
    Ok(())
}
