//! SQL of the ledger: loading and locking a batch's rows in a fixed order,
//! and writing its results set-wise. The same operations exist twice, with
//! one meaning: PostgreSQL gets each batch as arrays bound to one fixed
//! statement text (prepared once per connection, planned as a small index
//! lookup whatever the batch size), SQLite gets multi-row `VALUES` lists.

pub mod accounts;
pub mod assets;
pub mod events;
mod postgres;
mod sqlite;
pub mod statements;
mod timeline;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::domain::{Account, AccountKind, AccountStatus, BatchState, Kind, Status, Totals, Transfer};

/// `$n` placeholders become SQLite's numbered `?n` (same meaning, so a
/// statement may use a parameter twice or out of order).
fn portable_sql(backend: DbBackend, postgres: &str) -> String {
    if backend == DbBackend::Postgres {
        return postgres.to_owned();
    }
    let mut out = String::with_capacity(postgres.len());
    let mut chars = postgres.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a query written with `$n` placeholders on either backend.
pub async fn query_all(
    db: &impl ConnectionTrait,
    postgres_sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, portable_sql(backend, postgres_sql), values)).await
}

/// Runs a query already written in the backend's own placeholder syntax
/// (the backend-specific batch statements of `postgres.rs` and `sqlite.rs`).
async fn query_native(db: &impl ConnectionTrait, sql: String, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await
}

/// Runs a statement written with `$n` placeholders on either backend.
pub async fn execute(db: &impl ConnectionTrait, postgres_sql: &str, values: Vec<Value>) -> Result<u64, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, portable_sql(backend, postgres_sql), values))
        .await?
        .rows_affected())
}

const TRANSFER_COLUMNS: &str = "id, sequence, debit_account_id, credit_account_id, amount, asset_code, kind, pending_id, \
     timeout_seconds, expires_at, description, metadata, status, created_at, initiated_by, reverses_transfer_id, request_hash";

fn corrupt(what: &str) -> DbErr {
    DbErr::Custom(format!("unexpected stored value: {what}"))
}

/// Decodes a `transfers` row.
pub fn transfer_from_row(row: &QueryResult) -> Result<Transfer, DbErr> {
    let metadata: String = row.try_get("", "metadata")?;
    Ok(Transfer {
        id: row.try_get("", "id")?,
        sequence: row.try_get("", "sequence")?,
        debit_account_id: row.try_get("", "debit_account_id")?,
        credit_account_id: row.try_get("", "credit_account_id")?,
        amount: row.try_get("", "amount")?,
        asset_code: row.try_get("", "asset_code")?,
        kind: Kind::from_i16(row.try_get("", "kind")?).ok_or_else(|| corrupt("transfer kind"))?,
        pending_id: row.try_get("", "pending_id")?,
        timeout_seconds: row.try_get("", "timeout_seconds")?,
        expires_at: row.try_get("", "expires_at")?,
        description: row.try_get("", "description")?,
        metadata: serde_json::from_str::<BTreeMap<String, String>>(&metadata).map_err(|_| corrupt("metadata"))?,
        status: Status::from_i16(row.try_get("", "status")?).ok_or_else(|| corrupt("transfer status"))?,
        created_at: row.try_get("", "created_at")?,
        initiated_by: row.try_get("", "initiated_by")?,
        reverses_transfer_id: row.try_get("", "reverses_transfer_id")?,
        request_hash: row.try_get("", "request_hash")?,
    })
}

/// Decodes the four running totals, named as in `accounts` and `entries`
/// after `prefix` (for columns renamed in a join).
pub fn totals_from_row(row: &QueryResult, prefix: &str) -> Result<Totals, DbErr> {
    let column = |name: &str| row.try_get::<i64>("", &format!("{prefix}{name}"));
    Ok(Totals {
        debits_posted: column("debits_posted")?,
        credits_posted: column("credits_posted")?,
        debits_pending: column("debits_pending")?,
        credits_pending: column("credits_pending")?,
    })
}

/// Decodes an `accounts` row.
pub fn account_from_row(row: &QueryResult) -> Result<Account, DbErr> {
    Ok(Account {
        id: row.try_get("", "id")?,
        owner_id: row.try_get("", "owner_id")?,
        asset_code: row.try_get("", "asset_code")?,
        kind: AccountKind::from_i16(row.try_get("", "kind")?).ok_or_else(|| corrupt("account kind"))?,
        status: AccountStatus::from_i16(row.try_get("", "status")?).ok_or_else(|| corrupt("account status"))?,
        overdraft_limit: row.try_get("", "overdraft_limit")?,
        totals: totals_from_row(row, "")?,
        entry_count: row.try_get("", "entry_count")?,
        last_entry_at: row.try_get("", "last_entry_at")?,
    })
}

/// Account columns in `SELECT`s.
pub const ACCOUNT_COLUMNS: &str = "id, owner_id, asset_code, kind, status, overdraft_limit, version, debits_posted, \
     credits_posted, debits_pending, credits_pending, entry_count, last_entry_at, created_at";

/// Transfers with these ids; `lock` takes row locks in id order.
pub async fn transfers_by_id(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<String>,
    lock: bool,
) -> Result<Vec<Transfer>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match db.get_database_backend() {
        DbBackend::Postgres => postgres::transfers_by_id(db, ids, lock).await,
        _ => sqlite::transfers_by_id(db, ids).await,
    }
}

/// Which of `originals` already have a reversal.
pub async fn reversed_among(db: &impl ConnectionTrait, originals: &BTreeSet<String>) -> Result<Vec<String>, DbErr> {
    if originals.is_empty() {
        return Ok(Vec::new());
    }
    match db.get_database_backend() {
        DbBackend::Postgres => postgres::reversed_among(db, originals).await,
        _ => sqlite::reversed_among(db, originals).await,
    }
}

/// Accounts with these ids, locked in id order (the fixed order that keeps
/// concurrent writers, of this replica or another, free of deadlocks).
pub async fn lock_accounts(db: &impl ConnectionTrait, ids: &BTreeSet<String>) -> Result<Vec<Account>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match db.get_database_backend() {
        DbBackend::Postgres => postgres::lock_accounts(db, ids).await,
        _ => sqlite::lock_accounts(db, ids).await,
    }
}

/// Every registered asset code.
pub async fn asset_codes(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, "SELECT code FROM assets")).await?;
    rows.iter().map(|row| row.try_get::<String>("", "code")).collect()
}

/// Writes what a batch produced: transfers (getting their sequences), entries,
/// hold statuses, account totals.
pub async fn write_batch(db: &impl ConnectionTrait, state: &mut BatchState) -> Result<(), DbErr> {
    let touched: Vec<&Account> = state.touched.iter().filter_map(|id| state.accounts.get(id)).collect();
    let holds: Vec<(&String, i16)> = state.resolved_holds.iter().map(|(id, status)| (id, *status as i16)).collect();
    let sequences = match db.get_database_backend() {
        DbBackend::Postgres => postgres::write_batch(db, &state.created, &state.entries, &holds, &touched).await?,
        _ => sqlite::write_batch(db, &state.created, &state.entries, &holds, &touched).await?,
    };
    for transfer in &mut state.created {
        transfer.sequence = sequences.get(&transfer.id).copied().unwrap_or_default();
    }
    Ok(())
}

/// A transfer's metadata as stored (a JSON object).
fn metadata_json(transfer: &Transfer) -> String {
    serde_json::to_string(&transfer.metadata).unwrap_or_else(|_| "{}".to_owned())
}

/// The columns a new transfer row is inserted with, in this order.
const INSERT_TRANSFER_COLUMNS: &str = "id, debit_account_id, credit_account_id, amount, asset_code, kind, pending_id, \
     timeout_seconds, expires_at, description, metadata, status, created_at, initiated_by, reverses_transfer_id, \
     request_hash";

/// The columns a new entry row is inserted with, in this order.
const INSERT_ENTRY_COLUMNS: &str = "account_id, account_sequence, transfer_id, side, created_at, debits_posted, \
     credits_posted, debits_pending, credits_pending";

/// Sequences by transfer id from `RETURNING id, sequence` rows.
fn sequences_from(rows: &[QueryResult], into: &mut HashMap<String, i64>) -> Result<(), DbErr> {
    for row in rows {
        into.insert(row.try_get::<String>("", "id")?, row.try_get::<i64>("", "sequence")?);
    }
    Ok(())
}
