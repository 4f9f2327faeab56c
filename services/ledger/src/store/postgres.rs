//! The batch statements for PostgreSQL. Each has one fixed text whatever the
//! batch size, and takes the batch as arrays (`= ANY($1)`, `unnest(...)`):
//! the server prepares it once per connection and plans it as index lookups,
//! where a `VALUES` list of a new length every time would be parsed and
//! planned again (and, on a small table, planned as a sequential scan).
//!
//! Arrays bound here carry no NULL elements, so nullable columns travel as
//! a sentinel that `NULLIF` turns back into NULL: `''` for ids (a real id is
//! never empty) and a separate flag for `expires_at`.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{
    ACCOUNT_COLUMNS, INSERT_ENTRY_COLUMNS, INSERT_TRANSFER_COLUMNS, TRANSFER_COLUMNS, account_from_row, metadata_json,
    query_native, sequences_from, transfer_from_row,
};
use crate::domain::{Account, Entry, Transfer};

fn text_array<'a>(items: impl Iterator<Item = &'a String>) -> Value {
    items.cloned().collect::<Vec<String>>().into()
}

fn optional_id(id: Option<&String>) -> String {
    id.cloned().unwrap_or_default()
}

pub(super) async fn transfers_by_id(
    db: &impl ConnectionTrait,
    ids: &BTreeSet<String>,
    lock: bool,
) -> Result<Vec<Transfer>, DbErr> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1) ORDER BY id{lock}");
    query_native(db, sql, vec![text_array(ids.iter())]).await?.iter().map(transfer_from_row).collect()
}

pub(super) async fn reversed_among(
    db: &impl ConnectionTrait,
    originals: &BTreeSet<String>,
) -> Result<Vec<String>, DbErr> {
    let sql = "SELECT reverses_transfer_id FROM transfers WHERE reverses_transfer_id = ANY($1)".to_owned();
    let rows = query_native(db, sql, vec![text_array(originals.iter())]).await?;
    rows.iter().map(|row| row.try_get::<String>("", "reverses_transfer_id")).collect()
}

pub(super) async fn lock_accounts(db: &impl ConnectionTrait, ids: &BTreeSet<String>) -> Result<Vec<Account>, DbErr> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    query_native(db, sql, vec![text_array(ids.iter())]).await?.iter().map(account_from_row).collect()
}

/// Everything a batch writes, in ONE statement (data-modifying CTEs, as in
/// the ceiling's own batched workload): new transfers (their sequences come
/// back), their entries, resolved holds' statuses, the touched accounts'
/// totals. Empty arrays simply write nothing.
pub(super) async fn write_batch(
    db: &impl ConnectionTrait,
    transfers: &[Transfer],
    entries: &[Entry],
    holds: &[(&String, i16)],
    accounts: &[&Account],
) -> Result<HashMap<String, i64>, DbErr> {
    let sql = format!(
        "WITH new_transfers AS ( \
           INSERT INTO transfers ({INSERT_TRANSFER_COLUMNS}) \
           SELECT id, debit, credit, amount, asset, kind, NULLIF(pending, ''), timeout, \
                  CASE WHEN has_expiry THEN expires END, description, metadata, status, created_at, initiated_by, \
                  NULLIF(reverses, ''), request_hash \
           FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::int2[], $7::text[], \
                       $8::int8[], $9::bool[], $10::int8[], $11::text[], $12::text[], $13::int2[], $14::int8[], \
                       $15::text[], $16::text[], $17::text[]) \
                AS t(id, debit, credit, amount, asset, kind, pending, timeout, has_expiry, expires, description, \
                     metadata, status, created_at, initiated_by, reverses, request_hash) \
           RETURNING id, sequence), \
         new_entries AS ( \
           INSERT INTO entries ({INSERT_ENTRY_COLUMNS}) \
           SELECT * FROM unnest($18::text[], $19::int8[], $20::text[], $21::int2[], $22::int8[], $23::int8[], \
                                $24::int8[], $25::int8[], $26::int8[])), \
         resolved_holds AS ( \
           UPDATE transfers h SET status = v.status FROM unnest($27::text[], $28::int2[]) AS v(id, status) \
           WHERE h.id = v.id AND h.id = ANY($27)), \
         touched_accounts AS ( \
           UPDATE accounts a SET debits_posted = v.dpo, credits_posted = v.cpo, debits_pending = v.dpe, \
                  credits_pending = v.cpe, entry_count = v.n, last_entry_at = v.t \
           FROM unnest($29::text[], $30::int8[], $31::int8[], $32::int8[], $33::int8[], $34::int8[], $35::int8[]) \
                AS v(id, dpo, cpo, dpe, cpe, n, t) \
           WHERE a.id = v.id AND a.id = ANY($29)) \
         SELECT id, sequence FROM new_transfers"
    );
    // `x.id = ANY(...)` beside each join: the planner looks the few rows up
    // by index instead of hashing a whole table.
    let (t, e, a) = (transfers, entries, accounts);
    let values = vec![
        strings(t, |t| t.id.clone()),
        strings(t, |t| t.debit_account_id.clone()),
        strings(t, |t| t.credit_account_id.clone()),
        bigints(t, |t| t.amount),
        strings(t, |t| t.asset_code.clone()),
        smallints(t, |t| t.kind as i16),
        strings(t, |t| optional_id(t.pending_id.as_ref())),
        bigints(t, |t| t.timeout_seconds),
        flags(t, |t| t.expires_at.is_some()),
        bigints(t, |t| t.expires_at.unwrap_or_default()),
        strings(t, |t| t.description.clone()),
        strings(t, metadata_json),
        smallints(t, |t| t.status as i16),
        bigints(t, |t| t.created_at),
        strings(t, |t| t.initiated_by.clone()),
        strings(t, |t| optional_id(t.reverses_transfer_id.as_ref())),
        strings(t, |t| t.request_hash.clone()),
        strings(e, |e| e.account_id.clone()),
        bigints(e, |e| e.account_sequence),
        strings(e, |e| e.transfer_id.clone()),
        smallints(e, |e| e.side as i16),
        bigints(e, |e| e.created_at),
        bigints(e, |e| e.totals.debits_posted),
        bigints(e, |e| e.totals.credits_posted),
        bigints(e, |e| e.totals.debits_pending),
        bigints(e, |e| e.totals.credits_pending),
        strings(holds, |(id, _)| (*id).clone()),
        smallints(holds, |(_, status)| *status),
        strings(a, |a| a.id.clone()),
        bigints(a, |a| a.totals.debits_posted),
        bigints(a, |a| a.totals.credits_posted),
        bigints(a, |a| a.totals.debits_pending),
        bigints(a, |a| a.totals.credits_pending),
        bigints(a, |a| a.entry_count),
        bigints(a, |a| a.last_entry_at),
    ];
    let mut sequences = HashMap::with_capacity(transfers.len());
    sequences_from(&query_native(db, sql, values).await?, &mut sequences)?;
    Ok(sequences)
}

/// One column of a batch as an array parameter.
fn strings<T>(rows: &[T], f: impl Fn(&T) -> String) -> Value {
    rows.iter().map(f).collect::<Vec<String>>().into()
}

fn bigints<T>(rows: &[T], f: impl Fn(&T) -> i64) -> Value {
    rows.iter().map(f).collect::<Vec<i64>>().into()
}

fn smallints<T>(rows: &[T], f: impl Fn(&T) -> i16) -> Value {
    rows.iter().map(f).collect::<Vec<i16>>().into()
}

fn flags<T>(rows: &[T], f: impl Fn(&T) -> bool) -> Value {
    rows.iter().map(f).collect::<Vec<bool>>().into()
}
