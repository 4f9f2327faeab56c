//! The batch statements for SQLite: multi-row `VALUES` lists with `?`
//! placeholders, chunked under SQLite's bind-parameter limit. SQLite admits
//! one writer at a time, so rows need no lock clause.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbErr, Statement, Value};

use super::{
    ACCOUNT_COLUMNS, INSERT_ENTRY_COLUMNS, INSERT_TRANSFER_COLUMNS, TRANSFER_COLUMNS, account_from_row, metadata_json,
    query_native, sequences_from, transfer_from_row,
};
use crate::domain::{Account, Entry, Transfer};

/// Rows per multi-row statement (keeps bind parameters under SQLite's limit).
const CHUNK: usize = 1000;

/// `count` comma-separated `?`.
fn marks(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// `rows` parenthesised groups of `per_row` `?`.
fn row_marks(rows: usize, per_row: usize) -> String {
    vec![format!("({})", marks(per_row)); rows].join(", ")
}

async fn execute(db: &impl ConnectionTrait, sql: String, values: Vec<Value>) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values)).await.map(drop)
}

fn text_values(ids: &BTreeSet<String>) -> Vec<Value> {
    ids.iter().map(|id| id.clone().into()).collect()
}

pub(super) async fn transfers_by_id(db: &impl ConnectionTrait, ids: &BTreeSet<String>) -> Result<Vec<Transfer>, DbErr> {
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id IN ({}) ORDER BY id", marks(ids.len()));
    query_native(db, sql, text_values(ids)).await?.iter().map(transfer_from_row).collect()
}

pub(super) async fn reversed_among(
    db: &impl ConnectionTrait,
    originals: &BTreeSet<String>,
) -> Result<Vec<String>, DbErr> {
    let sql = format!(
        "SELECT reverses_transfer_id FROM transfers WHERE reverses_transfer_id IN ({})",
        marks(originals.len())
    );
    let rows = query_native(db, sql, text_values(originals)).await?;
    rows.iter().map(|row| row.try_get::<String>("", "reverses_transfer_id")).collect()
}

pub(super) async fn lock_accounts(db: &impl ConnectionTrait, ids: &BTreeSet<String>) -> Result<Vec<Account>, DbErr> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({}) ORDER BY id", marks(ids.len()));
    query_native(db, sql, text_values(ids)).await?.iter().map(account_from_row).collect()
}

/// Everything a batch writes, statement after statement.
pub(super) async fn write_batch(
    db: &impl ConnectionTrait,
    transfers: &[Transfer],
    entries: &[Entry],
    holds: &[(&String, i16)],
    accounts: &[&Account],
) -> Result<HashMap<String, i64>, DbErr> {
    let sequences = insert_transfers(db, transfers).await?;
    insert_entries(db, entries).await?;
    update_hold_statuses(db, holds).await?;
    update_accounts(db, accounts).await?;
    Ok(sequences)
}

async fn insert_transfers(db: &impl ConnectionTrait, transfers: &[Transfer]) -> Result<HashMap<String, i64>, DbErr> {
    let mut sequences = HashMap::with_capacity(transfers.len());
    for chunk in transfers.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO transfers ({INSERT_TRANSFER_COLUMNS}) VALUES {} RETURNING id, sequence",
            row_marks(chunk.len(), 16)
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 16);
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
                metadata_json(t).into(),
                (t.status as i16).into(),
                t.created_at.into(),
                t.initiated_by.clone().into(),
                t.reverses_transfer_id.clone().into(),
                t.request_hash.clone().into(),
            ]);
        }
        sequences_from(&query_native(db, sql, values).await?, &mut sequences)?;
    }
    Ok(sequences)
}

async fn insert_entries(db: &impl ConnectionTrait, entries: &[Entry]) -> Result<(), DbErr> {
    for chunk in entries.chunks(CHUNK) {
        let sql = format!("INSERT INTO entries ({INSERT_ENTRY_COLUMNS}) VALUES {}", row_marks(chunk.len(), 9));
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
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
        execute(db, sql, values).await?;
    }
    Ok(())
}

async fn update_hold_statuses(db: &impl ConnectionTrait, holds: &[(&String, i16)]) -> Result<(), DbErr> {
    for (id, status) in holds {
        let values = vec![(*status).into(), (*id).clone().into()];
        execute(db, "UPDATE transfers SET status = ? WHERE id = ?".to_owned(), values).await?;
    }
    Ok(())
}

async fn update_accounts(db: &impl ConnectionTrait, accounts: &[&Account]) -> Result<(), DbErr> {
    for chunk in accounts.chunks(CHUNK) {
        let sql = format!(
            "WITH v (id, dpo, cpo, dpe, cpe, n, t) AS (VALUES {}) \
             UPDATE accounts SET debits_posted = v.dpo, credits_posted = v.cpo, debits_pending = v.dpe, \
             credits_pending = v.cpe, entry_count = v.n, last_entry_at = v.t FROM v WHERE accounts.id = v.id",
            row_marks(chunk.len(), 7)
        );
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7);
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
        execute(db, sql, values).await?;
    }
    Ok(())
}
