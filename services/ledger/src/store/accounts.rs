//! Accounts as the ledger keeps them: reads of one account, opening, and
//! versioned changes (the account service drives them through
//! `LedgerAdminService`).

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, TxError, run_in_tx};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use super::{ACCOUNT_COLUMNS, account_from_row, events, execute, query_all};
use crate::domain::{Account, AccountChange, AccountKind, AccountStatus, Change, EventKind, NewEvent};

/// One account (not locked) and its version.
pub async fn account(db: &impl ConnectionTrait, id: &str) -> Result<(Account, i64), Failure> {
    account_and(db, id, "version").await
}

/// One account (not locked) and "now" for a read served by `source`, in one round trip.
pub async fn account_and_read_clock(
    db: &impl ConnectionTrait,
    id: &str,
    source: folio_storage::db::Source,
) -> Result<(Account, i64), Failure> {
    account_and(db, id, folio_storage::db::read_clock_micros_sql(db.get_database_backend(), source)).await
}

/// One account and the value of the SQL expression `extra` read with it.
async fn account_and(db: &impl ConnectionTrait, id: &str, extra: &str) -> Result<(Account, i64), Failure> {
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
) -> Result<(Account, i64), Failure> {
    let now = folio_storage::db::now(db).await?.timestamp_micros();
    let known = query_all(db, "SELECT code FROM assets WHERE code = $1", vec![asset_code.into()]).await?;
    if known.is_empty() {
        return Err(FolioError::new(Reason::AssetNotFound, "no such asset").into());
    }
    let limit = if kind == AccountKind::Customer { overdraft_limit } else { 0 };
    let inserted = run_in_tx(db, "ledger_open_account", RetryPolicy::default(), |tx| async move {
        let inserted = execute(
            &*tx,
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
        if inserted > 0 {
            let change = Change::Account {
                id: id.to_owned(),
                status: AccountStatus::Active,
                overdraft_limit: limit,
                version: 0,
            };
            events::append(&*tx, &[NewEvent { kind: EventKind::AccountOpened, occurred_at: now, change }]).await?;
        }
        Ok::<_, TxError<Failure>>(inserted)
    })
    .await?;
    let (row, version) = account(db, id).await?;
    if inserted == 0 && (row.owner_id != owner_id || row.asset_code != asset_code || row.kind != kind) {
        return Err(FolioError::new(Reason::AccountExists, "an account with this id exists with other fields").into());
    }
    Ok((row, version))
}

/// Applies `change` if `version` is newer than the last applied one; closing
/// checks, in the same transaction, that the balances are zero.
pub async fn change_account(
    db: &DatabaseConnection,
    id: &str,
    change: AccountChange,
    version: i64,
) -> Result<(Account, i64, bool), Failure> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let now = folio_storage::db::now(db).await?.timestamp_micros();
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
                AccountChange::Status(status) => {
                    if *status == AccountStatus::Closed {
                        account.may_close().map_err(|error| TxError::Abort(error.into()))?;
                    }
                    execute(
                        &*tx,
                        "UPDATE accounts SET status = $1, version = $2 WHERE id = $3",
                        vec![(*status as i16).into(), version.into(), id.into()],
                    )
                    .await?;
                    account.status = *status;
                }
                AccountChange::OverdraftLimit(limit) => {
                    execute(
                        &*tx,
                        "UPDATE accounts SET overdraft_limit = $1, version = $2 WHERE id = $3",
                        vec![(*limit).into(), version.into(), id.into()],
                    )
                    .await?;
                    account.overdraft_limit = *limit;
                }
            }
            let kind = match change {
                AccountChange::Status(_) => EventKind::AccountStatusChanged,
                AccountChange::OverdraftLimit(_) => EventKind::AccountLimitChanged,
            };
            let change = Change::Account {
                id: id.to_owned(),
                status: account.status,
                overdraft_limit: account.overdraft_limit,
                version,
            };
            // An account's events never go back before its last entry.
            let occurred_at = now.max(account.last_entry_at);
            events::append(&*tx, &[NewEvent { kind, occurred_at, change }]).await?;
            Ok::<_, TxError<Failure>>((account, version, true))
        }
    })
    .await?;
    Ok(result)
}
