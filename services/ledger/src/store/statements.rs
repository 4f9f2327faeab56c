//! Statement reads: an account's entries in commit order within a window,
//! its totals at an entry, and the holds past their deadline.

use folio_errors::Failure;
use sea_orm::{DatabaseConnection, Value};

use super::timeline::last_sequence_at_or_before;
use super::{query_all, totals_from_row, transfer_from_row};
use crate::domain::{Account, Side, StatementLine, StatementQuery, Status, Totals};

/// A page of `account`'s statement (and whether more follow).
pub async fn page(
    db: &DatabaseConnection,
    account: &Account,
    query: &StatementQuery,
) -> Result<(Vec<StatementLine>, bool), Failure> {
    let account_id = account.id.as_str();
    let mut sql = "SELECT t.id, t.sequence, t.debit_account_id, t.credit_account_id, t.amount, t.asset_code, t.kind, \
         t.pending_id, t.timeout_seconds, t.expires_at, t.description, t.metadata, t.status, t.created_at, t.initiated_by, \
         t.reverses_transfer_id, t.request_hash, e.side AS e_side, e.account_sequence AS e_sequence, \
         e.created_at AS e_created_at, e.debits_posted AS e_debits_posted, e.credits_posted AS e_credits_posted, \
         e.debits_pending AS e_debits_pending, e.credits_pending AS e_credits_pending FROM entries e JOIN transfers t ON t.id = e.transfer_id \
         WHERE e.account_id = $1 AND e.account_sequence > $2"
        .to_owned();
    // The time range as a range of sequences (entries never go back in time).
    let mut after = query.after_sequence;
    if let Some(start) = query.start {
        let before_start =
            last_sequence_at_or_before(db, account_id, start.saturating_sub(1), account.entry_count).await?;
        after = after.max(before_start);
    }
    let mut values: Vec<Value> = vec![account_id.into(), after.into()];
    if let Some(end) = query.end {
        let last = last_sequence_at_or_before(db, account_id, end.saturating_sub(1), account.entry_count).await?;
        if last < account.entry_count {
            // Every later entry, even one written since, is at or after `end`.
            values.push(last.into());
            sql.push_str(&format!(" AND e.account_sequence <= ${}", values.len()));
        } else {
            // Entries written since the count was read may still be before `end`.
            values.push(end.into());
            sql.push_str(&format!(" AND e.created_at < ${}", values.len()));
        }
    }
    if let Some(status) = query.status {
        values.push((status as i16).into());
        sql.push_str(&format!(" AND t.status = ${}", values.len()));
    }
    values.push(i64::try_from(query.limit + 1).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(" ORDER BY e.account_sequence LIMIT ${}", values.len()));
    let rows = query_all(db, &sql, values).await?;
    let more = rows.len() as u64 > query.limit;
    let lines = rows
        .iter()
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .map(|row| {
            Ok(StatementLine {
                transfer: transfer_from_row(row)?,
                side: Side::from_i16(row.try_get("", "e_side")?).unwrap_or(Side::Debit),
                account_sequence: row.try_get("", "e_sequence")?,
                created_at: row.try_get("", "e_created_at")?,
                totals: totals_from_row(row, "e_")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    Ok((lines, more))
}

/// `account_id`'s totals as of `at` (µs): after its last entry at or before
/// then, among its first `entry_count`.
pub async fn totals_at(
    db: &DatabaseConnection,
    account_id: &str,
    at: i64,
    entry_count: i64,
) -> Result<Totals, Failure> {
    let sequence = last_sequence_at_or_before(db, account_id, at, entry_count).await?;
    let rows = query_all(
        db,
        "SELECT debits_posted, credits_posted, debits_pending, credits_pending FROM entries \
         WHERE account_id = $1 AND account_sequence = $2",
        vec![account_id.into(), sequence.into()],
    )
    .await?;
    Ok(match rows.first() {
        Some(row) => totals_from_row(row, "")?,
        None => Totals::default(),
    })
}

/// Open holds whose deadline has passed (for the sweeper).
pub async fn expired_holds(db: &DatabaseConnection, limit: u64) -> Result<Vec<String>, Failure> {
    let now = folio_storage::db::now(db).await?.timestamp_micros();
    // The status is a literal so the planner can use the partial index of open holds.
    let sql = format!(
        "SELECT id FROM transfers WHERE status = {} AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        Status::Pending as i16
    );
    let rows = query_all(db, &sql, vec![now.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()]).await?;
    Ok(rows.iter().map(|row| row.try_get::<String>("", "id")).collect::<Result<Vec<_>, _>>()?)
}
