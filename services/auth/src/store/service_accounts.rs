//! Service accounts.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::service_accounts;
use crate::domain::records::ServiceAccount;

fn from_row(row: service_accounts::Model) -> ServiceAccount {
    ServiceAccount {
        scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
        client_id: row.client_id,
        name: row.name,
        secret_hash: row.secret_hash,
        disabled: row.disabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Inserts `account`; fails unique on a taken name or id.
pub async fn insert(db: &impl ConnectionTrait, account: &ServiceAccount) -> Result<(), DbErr> {
    service_accounts::ActiveModel {
        client_id: Set(account.client_id.clone()),
        name: Set(account.name.clone()),
        scopes: Set(account.scopes.join(" ")),
        secret_hash: Set(account.secret_hash.clone()),
        disabled: Set(account.disabled),
        created_at: Set(account.created_at),
        updated_at: Set(account.updated_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The account `client_id`.
pub async fn find(db: &impl ConnectionTrait, client_id: &str) -> Result<Option<ServiceAccount>, DbErr> {
    Ok(service_accounts::Entity::find_by_id(client_id.to_owned()).one(db).await?.map(from_row))
}

/// Accounts in (created_at, client_id) order after `after`, at most `limit`.
pub async fn page(
    db: &impl ConnectionTrait,
    after: Option<(i64, String)>,
    limit: u64,
) -> Result<Vec<ServiceAccount>, DbErr> {
    let mut query = service_accounts::Entity::find()
        .order_by_asc(service_accounts::Column::CreatedAt)
        .order_by_asc(service_accounts::Column::ClientId);
    if let Some((at, id)) = after {
        query = query.filter(
            service_accounts::Column::CreatedAt
                .gt(at)
                .or(service_accounts::Column::CreatedAt.eq(at).and(service_accounts::Column::ClientId.gt(id))),
        );
    }
    Ok(query.limit(limit).all(db).await?.into_iter().map(from_row).collect())
}

/// Replaces the secret hash (and, when given, the scopes) of `client_id`.
pub async fn set_secret(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret_hash: String,
    scopes: Option<&[String]>,
    now: i64,
) -> Result<(), DbErr> {
    let mut update = service_accounts::Entity::update_many()
        .col_expr(service_accounts::Column::SecretHash, Expr::value(secret_hash))
        .col_expr(service_accounts::Column::UpdatedAt, Expr::value(now));
    if let Some(scopes) = scopes {
        update = update.col_expr(service_accounts::Column::Scopes, Expr::value(scopes.join(" ")));
    }
    update.filter(service_accounts::Column::ClientId.eq(client_id)).exec(db).await?;
    Ok(())
}

/// Disables `client_id` at `now`.
pub async fn disable(db: &impl ConnectionTrait, client_id: &str, now: i64) -> Result<(), DbErr> {
    service_accounts::Entity::update_many()
        .col_expr(service_accounts::Column::Disabled, Expr::value(true))
        .col_expr(service_accounts::Column::UpdatedAt, Expr::value(now))
        .filter(service_accounts::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(())
}
