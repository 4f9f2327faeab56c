//! Assets and the account lifecycle as the ledger keeps it (the account
//! service drives it through `LedgerAdminService`).

use folio_common::{
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, SqlErr};

use crate::model::{AccountKind, AccountStatus};
use crate::rules::AccountRow;
use crate::store::{ACCOUNT_COLUMNS, account_from_row, execute, query_all};

/// A registered asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Code.
    pub code: String,
    /// Minor-unit digits.
    pub scale: i32,
    /// Description.
    pub description: String,
    /// When registered (µs).
    pub created_at: i64,
}

/// Registers an asset (`ASSET_EXISTS` when the code is taken).
pub async fn create_asset(
    db: &DatabaseConnection,
    code: &str,
    scale: u32,
    description: &str,
) -> Result<Asset, Failure> {
    let now = folio_common::db::now(db).await?.timestamp_micros();
    let scale = i32::try_from(scale).unwrap_or(i32::MAX);
    execute(
        db,
        "INSERT INTO assets (code, scale, description, created_at) VALUES ($1, $2, $3, $4)",
        vec![code.into(), scale.into(), description.into(), now.into()],
    )
    .await
    .map_err(|error| match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Failure::from(FolioError::new(Reason::AssetExists, "this asset is registered already"))
        }
        _ => Failure::from(error),
    })?;
    Ok(Asset { code: code.to_owned(), scale, description: description.to_owned(), created_at: now })
}

/// Assets by code, after `after`, at most `limit`.
pub async fn list_assets(db: &DatabaseConnection, after: &str, limit: u64) -> Result<Vec<Asset>, Failure> {
    let rows = query_all(
        db,
        "SELECT code, scale, description, created_at FROM assets WHERE code > $1 ORDER BY code LIMIT $2",
        vec![after.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(Asset {
                code: row.try_get("", "code")?,
                scale: row.try_get("", "scale")?,
                description: row.try_get("", "description")?,
                created_at: row.try_get("", "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?)
}

/// Registers `USD:2,EUR:2`-style assets that are missing.
pub async fn bootstrap_assets(db: &DatabaseConnection, spec: &str) -> anyhow::Result<()> {
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (code, scale) = entry.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("invalid configuration: `ledger.bootstrap_assets` entries are CODE:SCALE, got {entry:?}")
        })?;
        let code = crate::validate::asset_code("ledger.bootstrap_assets", code).map_err(|e| anyhow::anyhow!("{e}"))?;
        let scale: u32 = scale.parse().ok().filter(|s| *s <= 18).ok_or_else(|| {
            anyhow::anyhow!("invalid configuration: `ledger.bootstrap_assets` scale of {code} must be 0..18")
        })?;
        match create_asset(db, &code, scale, &code).await {
            Ok(_) => tracing::info!(%code, scale, "asset registered"),
            Err(Failure::Caller(error)) if error.reason() == Reason::AssetExists => {}
            Err(failure) => anyhow::bail!("registering asset {code}: {failure}"),
        }
    }
    Ok(())
}

/// One account (not locked) and its version.
pub async fn account(db: &impl ConnectionTrait, id: &str) -> Result<(AccountRow, i64), Failure> {
    account_and(db, id, "version").await
}

/// One account (not locked) and the database clock, in one round trip.
pub async fn account_and_clock(db: &impl ConnectionTrait, id: &str) -> Result<(AccountRow, i64), Failure> {
    account_and(db, id, folio_common::db::clock_micros_sql(db.get_database_backend())).await
}

/// One account and the value of the SQL expression `extra` read with it.
async fn account_and(db: &impl ConnectionTrait, id: &str, extra: &str) -> Result<(AccountRow, i64), Failure> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS}, {extra} AS extra FROM accounts WHERE id = $1");
    let rows = query_all(db, &sql, vec![id.into()]).await?;
    let row = rows.first().ok_or_else(|| FolioError::new(Reason::AccountNotFound, "no such account"))?;
    Ok((account_from_row(row)?, row.try_get("", "extra")?))
}

/// OpenAccount: idempotent for the same owner, asset and kind.
pub async fn open_account(
    db: &DatabaseConnection,
    id: &str,
    owner_id: &str,
    asset_code: &str,
    kind: AccountKind,
    overdraft_limit: i64,
) -> Result<(AccountRow, i64), Failure> {
    let now = folio_common::db::now(db).await?.timestamp_micros();
    let known = query_all(db, "SELECT code FROM assets WHERE code = $1", vec![asset_code.into()]).await?;
    if known.is_empty() {
        return Err(FolioError::new(Reason::AssetNotFound, "no such asset").into());
    }
    let limit = if kind == AccountKind::Customer { overdraft_limit } else { 0 };
    let inserted = execute(
        db,
        "INSERT INTO accounts (id, owner_id, asset_code, kind, status, overdraft_limit, version, debits_posted, \
         credits_posted, debits_pending, credits_pending, entry_count, last_entry_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, 0, 0, 0, $7) ON CONFLICT (id) DO NOTHING",
        vec![
            id.into(),
            owner_id.into(),
            asset_code.into(),
            (kind as i16).into(),
            (AccountStatus::Active as i16).into(),
            limit.into(),
            now.into(),
        ],
    )
    .await?;
    let (row, version) = account(db, id).await?;
    if inserted == 0 && (row.owner_id != owner_id || row.asset_code != asset_code || row.kind != kind) {
        return Err(FolioError::new(Reason::AccountExists, "an account with this id exists with other fields").into());
    }
    Ok((row, version))
}

/// A versioned change to an account.
pub enum Change {
    /// New status.
    Status(AccountStatus),
    /// New overdraft limit.
    OverdraftLimit(i64),
}

/// Applies `change` if `version` is newer than the last applied one; closing
/// checks, in the same transaction, that the balances are zero.
pub async fn change_account(
    db: &DatabaseConnection,
    id: &str,
    change: Change,
    version: i64,
) -> Result<(AccountRow, i64, bool), Failure> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let result = run_in_tx(db, "ledger_change_account", RetryPolicy::default(), |tx| {
        let change = &change;
        async move {
            let rows = query_all(
                &*tx,
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1{lock}"),
                vec![id.into()],
            )
            .await?;
            let row = rows
                .first()
                .ok_or_else(|| Failure::from(FolioError::new(Reason::AccountNotFound, "no such account")))?;
            let (mut account, current) = (account_from_row(row)?, row.try_get::<i64>("", "version")?);
            if version <= current {
                return Ok((account, current, false));
            }
            if account.status == AccountStatus::Closed {
                return Err(TxError::Abort(FolioError::new(Reason::AccountClosed, "the account is closed").into()));
            }
            match change {
                Change::Status(status) => {
                    if *status == AccountStatus::Closed {
                        let t = account.totals;
                        if t.posted() != Some(0) || t.debits_pending != 0 || t.credits_pending != 0 {
                            return Err(TxError::Abort(
                                FolioError::new(
                                    Reason::BalanceNotZero,
                                    "only an account with zero posted and pending balance can close",
                                )
                                .into(),
                            ));
                        }
                    }
                    execute(
                        &*tx,
                        "UPDATE accounts SET status = $1, version = $2 WHERE id = $3",
                        vec![(*status as i16).into(), version.into(), id.into()],
                    )
                    .await?;
                    account.status = *status;
                }
                Change::OverdraftLimit(limit) => {
                    execute(
                        &*tx,
                        "UPDATE accounts SET overdraft_limit = $1, version = $2 WHERE id = $3",
                        vec![(*limit).into(), version.into(), id.into()],
                    )
                    .await?;
                    account.overdraft_limit = *limit;
                }
            }
            Ok::<_, TxError<Failure>>((account, version, true))
        }
    })
    .await?;
    Ok(result)
}
