//! SQL of the ledger, portable between PostgreSQL and SQLite: loading and
//! locking a batch's rows in a fixed order, and writing its results
//! set-wise (multi-row inserts, one UPDATE for all touched accounts).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};

use crate::model::{AccountKind, AccountStatus, Kind, Status, Totals, Transfer};
use crate::rules::{AccountRow, BatchState, EntryRow};

/// Rows per multi-row INSERT (keeps bind parameters under SQLite's limit).
const INSERT_CHUNK: usize = 1000;

/// Placeholders for `count` values starting after `offset` (`$n` or `?`).
fn placeholders(backend: DbBackend, offset: usize, count: usize) -> String {
    (1..=count)
        .map(|i| if backend == DbBackend::Postgres { format!("${}", offset + i) } else { "?".to_owned() })
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock_clause(backend: DbBackend) -> &'static str {
    // SQLite has one writer at a time; PostgreSQL locks rows.
    if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" }
}

/// `$n` placeholders become `?` on SQLite (statements use them in order).
fn portable_sql(backend: DbBackend, postgres: &str) -> String {
    if backend == DbBackend::Postgres {
        return postgres.to_owned();
    }
    // `$n` → `?`: every statement here uses its parameters in order.
    let mut out = String::with_capacity(postgres.len());
    let mut chars = postgres.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
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

/// Decodes an `accounts` row.
pub fn account_from_row(row: &QueryResult) -> Result<AccountRow, DbErr> {
    Ok(AccountRow {
        id: row.try_get("", "id")?,
        owner_id: row.try_get("", "owner_id")?,
        asset_code: row.try_get("", "asset_code")?,
        kind: AccountKind::from_i16(row.try_get("", "kind")?).ok_or_else(|| corrupt("account kind"))?,
        status: AccountStatus::from_i16(row.try_get("", "status")?).ok_or_else(|| corrupt("account status"))?,
        overdraft_limit: row.try_get("", "overdraft_limit")?,
        totals: Totals {
            debits_posted: row.try_get("", "debits_posted")?,
            credits_posted: row.try_get("", "credits_posted")?,
            debits_pending: row.try_get("", "debits_pending")?,
            credits_pending: row.try_get("", "credits_pending")?,
        },
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
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id IN ({}) ORDER BY id{}",
        placeholders(backend, 0, ids.len()),
        if lock { lock_clause(backend) } else { "" }
    );
    let values: Vec<Value> = ids.iter().map(|id| id.clone().into()).collect();
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(transfer_from_row).collect()
}

/// Which of `originals` already have a reversal.
pub async fn reversed_among(db: &impl ConnectionTrait, originals: &BTreeSet<String>) -> Result<Vec<String>, DbErr> {
    if originals.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT reverses_transfer_id FROM transfers WHERE reverses_transfer_id IN ({})",
        placeholders(backend, 0, originals.len())
    );
    let values: Vec<Value> = originals.iter().map(|id| id.clone().into()).collect();
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(|row| row.try_get::<String>("", "reverses_transfer_id")).collect()
}

/// Accounts with these ids, locked in id order (the fixed order that keeps
/// concurrent writers, of this replica or another, free of deadlocks).
pub async fn lock_accounts(db: &impl ConnectionTrait, ids: &BTreeSet<String>) -> Result<Vec<AccountRow>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({}) ORDER BY id{}",
        placeholders(backend, 0, ids.len()),
        lock_clause(backend)
    );
    let values: Vec<Value> = ids.iter().map(|id| id.clone().into()).collect();
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(account_from_row).collect()
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
    let backend = db.get_database_backend();
    let mut sequences = BTreeMap::new();
    for chunk in state.created.chunks(INSERT_CHUNK) {
        let per_row = 16;
        let rows: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", placeholders(backend, i * per_row, per_row))).collect();
        let sql = format!(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, asset_code, kind, pending_id, \
             timeout_seconds, expires_at, description, metadata, status, created_at, initiated_by, reverses_transfer_id, \
             request_hash) VALUES {} RETURNING id, sequence",
            rows.join(", ")
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * per_row);
        for t in chunk {
            values.extend([
                t.id.clone().into(),
                t.debit_account_id.clone().into(),
                t.credit_account_id.clone().into(),
                t.amount.into(),
                t.asset_code.clone().into(),
                (t.kind as i16).into(),
                t.pending_id.clone().into(),
                t.timeout_seconds.into(),
                t.expires_at.into(),
                t.description.clone().into(),
                serde_json::to_string(&t.metadata).unwrap_or_else(|_| "{}".to_owned()).into(),
                (t.status as i16).into(),
                t.created_at.into(),
                t.initiated_by.clone().into(),
                t.reverses_transfer_id.clone().into(),
                t.request_hash.clone().into(),
            ]);
        }
        for row in db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
            sequences.insert(row.try_get::<String>("", "id")?, row.try_get::<i64>("", "sequence")?);
        }
    }
    for transfer in &mut state.created {
        transfer.sequence = sequences.get(&transfer.id).copied().unwrap_or_default();
    }
    insert_entries(db, &state.entries).await?;
    update_hold_statuses(db, state).await?;
    update_accounts(db, state).await
}

async fn insert_entries(db: &impl ConnectionTrait, entries: &[EntryRow]) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for chunk in entries.chunks(INSERT_CHUNK) {
        let per_row = 9;
        let rows: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", placeholders(backend, i * per_row, per_row))).collect();
        let sql = format!(
            "INSERT INTO entries (account_id, account_sequence, transfer_id, side, created_at, debits_posted, \
             credits_posted, debits_pending, credits_pending) VALUES {}",
            rows.join(", ")
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * per_row);
        for e in chunk {
            values.extend([
                e.account_id.clone().into(),
                e.account_sequence.into(),
                e.transfer_id.clone().into(),
                (e.side as i16).into(),
                e.created_at.into(),
                e.totals.debits_posted.into(),
                e.totals.credits_posted.into(),
                e.totals.debits_pending.into(),
                e.totals.credits_pending.into(),
            ]);
        }
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

async fn update_hold_statuses(db: &impl ConnectionTrait, state: &BatchState) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut by_status: BTreeMap<i16, Vec<String>> = BTreeMap::new();
    for (id, status) in &state.resolved_holds {
        by_status.entry(*status as i16).or_default().push(id.clone());
    }
    for (status, ids) in by_status {
        let sql = format!(
            "UPDATE transfers SET status = {} WHERE id IN ({})",
            placeholders(backend, 0, 1),
            placeholders(backend, 1, ids.len())
        );
        let values: Vec<Value> = std::iter::once(status.into()).chain(ids.into_iter().map(Into::into)).collect();
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}

/// One statement for every touched account: `WITH v(...) AS (VALUES ...) UPDATE ... FROM v`.
async fn update_accounts(db: &impl ConnectionTrait, state: &BatchState) -> Result<(), DbErr> {
    if state.touched.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let touched: Vec<&AccountRow> = state.touched.iter().filter_map(|id| state.accounts.get(id)).collect();
    for chunk in touched.chunks(INSERT_CHUNK) {
        let per_row = 7;
        let rows: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", placeholders(backend, i * per_row, per_row))).collect();
        let sql = format!(
            "WITH v (id, dpo, cpo, dpe, cpe, n, t) AS (VALUES {}) \
             UPDATE accounts SET debits_posted = v.dpo, credits_posted = v.cpo, debits_pending = v.dpe, \
             credits_pending = v.cpe, entry_count = v.n, last_entry_at = v.t FROM v WHERE accounts.id = v.id",
            rows.join(", ")
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * per_row);
        for a in chunk {
            values.extend([
                a.id.clone().into(),
                a.totals.debits_posted.into(),
                a.totals.credits_posted.into(),
                a.totals.debits_pending.into(),
                a.totals.credits_pending.into(),
                a.entry_count.into(),
                a.last_entry_at.into(),
            ]);
        }
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    }
    Ok(())
}
