//! The `accounts` table.

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::corrupt;
use super::entities::{accounts, outbox};
use crate::domain::{Account, AccountKind, AccountRequest, AccountStatus};

fn from_row(row: accounts::Model) -> Result<Account, DbErr> {
    Ok(Account {
        kind: AccountKind::from_number(i32::from(row.kind)).ok_or_else(|| corrupt("account kind", row.kind))?,
        status: AccountStatus::from_number(i32::from(row.status))
            .ok_or_else(|| corrupt("account status", row.status))?,
        metadata: serde_json::from_str(&row.metadata).map_err(|_| corrupt("metadata", &row.metadata))?,
        id: row.id,
        owner_id: row.owner_id,
        asset_code: row.asset_code,
        display_name: row.display_name,
        overdraft_limit: row.overdraft_limit,
        version: row.version,
        revision: row.revision,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn metadata_json(account: &Account) -> Result<String, DbErr> {
    serde_json::to_string(&account.metadata).map_err(|e| DbErr::Custom(e.to_string()))
}

/// The account `id`.
pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<Account>, DbErr> {
    accounts::Entity::find_by_id(id.to_owned()).one(db).await?.map(from_row).transpose()
}

/// The account `id`, locked for the rest of `tx` (SQLite: `tx` holds the
/// write lock from its BEGIN IMMEDIATE).
pub async fn lock(tx: &DatabaseTransaction, id: &str) -> Result<Option<Account>, DbErr> {
    if tx.get_database_backend() == DbBackend::Sqlite {
        return find(tx, id).await;
    }
    accounts::Entity::find_by_id(id.to_owned()).lock_exclusive().one(tx).await?.map(from_row).transpose()
}

/// The account `created_by` made with `request_id`, and the hash of that request.
pub async fn by_request(
    db: &impl ConnectionTrait,
    created_by: &str,
    request_id: &str,
) -> Result<Option<(Account, String)>, DbErr> {
    let found = accounts::Entity::find()
        .filter(accounts::Column::CreatedBy.eq(created_by))
        .filter(accounts::Column::RequestId.eq(request_id))
        .one(db)
        .await?;
    found
        .map(|row| {
            let hash = row.request_hash.clone();
            from_row(row).map(|account| (account, hash))
        })
        .transpose()
}

/// Inserts `request` as the PENDING account `id`, with its outbox job, at
/// `now`. A second insert of one (creator, request id) fails unique.
pub async fn insert_pending(
    tx: &impl ConnectionTrait,
    id: &str,
    request: &AccountRequest,
    created_by: &str,
    now: i64,
) -> Result<Account, DbErr> {
    let account = Account {
        id: id.to_owned(),
        owner_id: request.owner_id.clone(),
        asset_code: request.asset_code.clone(),
        display_name: request.display_name.clone(),
        metadata: request.metadata.clone(),
        kind: request.kind,
        status: AccountStatus::Pending,
        overdraft_limit: request.overdraft_limit,
        version: 0,
        revision: 1,
        created_by: created_by.to_owned(),
        created_at: now,
        updated_at: now,
    };
    accounts::ActiveModel {
        id: Set(account.id.clone()),
        owner_id: Set(account.owner_id.clone()),
        asset_code: Set(account.asset_code.clone()),
        display_name: Set(account.display_name.clone()),
        metadata: Set(metadata_json(&account)?),
        kind: Set(account.kind as i16),
        status: Set(account.status as i16),
        overdraft_limit: Set(account.overdraft_limit),
        version: Set(account.version),
        revision: Set(account.revision),
        created_by: Set(account.created_by.clone()),
        request_id: Set(request.request_id.clone()),
        request_hash: Set(request.request_hash.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        resync_due: Set(false),
    }
    .insert(tx)
    .await?;
    outbox::ActiveModel {
        account_id: Set(account.id.clone()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(String::new()),
        done: Set(false),
        created_at: Set(now),
    }
    .insert(tx)
    .await?;
    Ok(account)
}

/// What a list selects.
#[derive(Clone)]
pub struct PageQuery<'a> {
    /// One owner's, or everyone's.
    pub owner: Option<&'a str>,
    /// One status, or any.
    pub status: Option<AccountStatus>,
    /// After this (created_at, id), oldest first.
    pub after: Option<(i64, String)>,
    /// Rows at most.
    pub limit: u64,
}

/// Accounts in (created_at, id) order.
pub async fn page(db: &impl ConnectionTrait, query: PageQuery<'_>) -> Result<Vec<Account>, DbErr> {
    let mut select =
        accounts::Entity::find().order_by_asc(accounts::Column::CreatedAt).order_by_asc(accounts::Column::Id);
    if let Some(owner) = query.owner {
        select = select.filter(accounts::Column::OwnerId.eq(owner));
    }
    if let Some(status) = query.status {
        select = select.filter(accounts::Column::Status.eq(status as i16));
    }
    if let Some((at, id)) = query.after {
        select = select.filter(
            accounts::Column::CreatedAt.gt(at).or(accounts::Column::CreatedAt.eq(at).and(accounts::Column::Id.gt(id))),
        );
    }
    select.limit(query.limit).all(db).await?.into_iter().map(from_row).collect()
}

/// Writes `account`'s changeable fields over the stored row as its next
/// revision at `now`, only if the row is still at `account.revision`: the
/// etag holds under concurrent writers on any isolation level. Clears the
/// repair mark when `settled` (the state is the ledger's). `None` when
/// another write came first.
pub async fn save(
    db: &impl ConnectionTrait,
    account: &Account,
    now: i64,
    settled: bool,
) -> Result<Option<Account>, DbErr> {
    let saved = Account { revision: account.revision + 1, updated_at: now, ..account.clone() };
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::DisplayName, Expr::value(saved.display_name.clone()))
        .col_expr(accounts::Column::Metadata, Expr::value(metadata_json(&saved)?))
        .col_expr(accounts::Column::Status, Expr::value(saved.status as i16))
        .col_expr(accounts::Column::OverdraftLimit, Expr::value(saved.overdraft_limit))
        .col_expr(accounts::Column::Version, Expr::value(saved.version))
        .col_expr(accounts::Column::Revision, Expr::value(saved.revision))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(now));
    if settled {
        update = update.col_expr(accounts::Column::ResyncDue, Expr::value(false));
    }
    let written = update
        .filter(accounts::Column::Id.eq(&saved.id))
        .filter(accounts::Column::Revision.eq(account.revision))
        .exec(db)
        .await?
        .rows_affected;
    Ok((written == 1).then_some(saved))
}

/// Marks (or unmarks) the account for the repair pass.
pub async fn set_resync_due(db: &impl ConnectionTrait, id: &str, due: bool) -> Result<(), DbErr> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::ResyncDue, Expr::value(due))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Up to `limit` accounts marked for the repair pass.
pub async fn resync_due(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<String>, DbErr> {
    accounts::Entity::find()
        .select_only()
        .column(accounts::Column::Id)
        .filter(accounts::Column::ResyncDue.eq(true))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}
