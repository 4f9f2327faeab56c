//! Reads: one transfer, an account's statement, balances now and at a past moment.

use folio_common::error::{Failure, FolioError, Reason};
use folio_common::paging::PageTokens;
use sea_orm::{DatabaseConnection, Value};

use crate::admin;
use crate::authz::Actor;
use crate::model::{Side, Status, Totals, Transfer};
use crate::store::{query_all, totals_from_row, transfer_from_row, transfers_by_id};
use crate::timeline::last_sequence_at_or_before;

/// One statement line.
#[derive(Debug, Clone)]
pub struct StatementLine {
    /// The transfer.
    pub transfer: Transfer,
    /// The account's side.
    pub side: Side,
    /// Position in the account.
    pub account_sequence: i64,
    /// Totals after.
    pub totals: Totals,
    /// When (µs).
    pub created_at: i64,
}

/// A balance at a moment.
#[derive(Debug, Clone)]
pub struct BalanceAt {
    /// Asset.
    pub asset_code: String,
    /// Totals.
    pub totals: Totals,
    /// The moment (µs).
    pub as_of: i64,
}

/// Statement filters.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    /// Entries at or after (µs).
    pub start: Option<i64>,
    /// Entries before (µs).
    pub end: Option<i64>,
    /// Only transfers in this status.
    pub status: Option<Status>,
    /// Page size.
    pub limit: u64,
    /// Continue after this account sequence.
    pub after_sequence: i64,
}

/// Encodes the statement position.
pub fn statement_token(tokens: &PageTokens, sequence: i64) -> String {
    tokens.seal(&format!("s:{sequence}"))
}

/// Decodes a statement page token.
pub fn parse_statement_token(tokens: &PageTokens, token: &str) -> Result<i64, Failure> {
    if token.is_empty() {
        return Ok(0);
    }
    let invalid = || Failure::from(FolioError::invalid_field("page_token", "is not a token this service issued"));
    let text = tokens.open("page_token", token)?;
    text.strip_prefix("s:").and_then(|n| n.parse().ok()).filter(|n: &i64| *n >= 0).ok_or_else(invalid)
}

/// GetTransfer: readable by the owner of either account, operators and `ledger:read`.
pub async fn transfer(db: &DatabaseConnection, actor: &Actor, id: &str) -> Result<Transfer, Failure> {
    let ids = std::iter::once(id.to_owned()).collect();
    let transfer = transfers_by_id(db, &ids, false)
        .await?
        .pop()
        .ok_or_else(|| FolioError::new(Reason::TransferNotFound, "no such transfer"))?;
    let (debit, _) = admin::account(db, &transfer.debit_account_id).await?;
    if actor.may_read(&debit.owner_id).is_err() {
        let (credit, _) = admin::account(db, &transfer.credit_account_id).await?;
        actor.may_read(&credit.owner_id)?;
    }
    Ok(transfer)
}

/// ListTransfers: the account's entries in commit order, after a position.
pub async fn statement(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: &str,
    query: &StatementQuery,
) -> Result<(Vec<StatementLine>, bool), Failure> {
    let (account, _) = admin::account(db, account_id).await?;
    actor.may_read(&account.owner_id)?;
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

/// GetBalance: now, or as of a past moment (the last entry at or before it).
pub async fn balance(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: &str,
    as_of: Option<i64>,
) -> Result<BalanceAt, Failure> {
    let (account, now) = admin::account_and_clock(db, account_id).await?;
    actor.may_read(&account.owner_id)?;
    let Some(as_of) = as_of.filter(|at| *at < now) else {
        return Ok(BalanceAt { asset_code: account.asset_code, totals: account.totals, as_of: now });
    };
    let sequence = last_sequence_at_or_before(db, account_id, as_of, account.entry_count).await?;
    let rows = query_all(
        db,
        "SELECT debits_posted, credits_posted, debits_pending, credits_pending FROM entries \
         WHERE account_id = $1 AND account_sequence = $2",
        vec![account_id.into(), sequence.into()],
    )
    .await?;
    let totals = match rows.first() {
        Some(row) => totals_from_row(row, "")?,
        None => Totals::default(),
    };
    Ok(BalanceAt { asset_code: account.asset_code, totals, as_of })
}

/// Open holds whose deadline has passed (for the sweeper).
pub async fn expired_holds(db: &DatabaseConnection, limit: u64) -> Result<Vec<String>, Failure> {
    let now = folio_common::db::now(db).await?.timestamp_micros();
    // The status is a literal so the planner can use the partial index of open holds.
    let sql = format!(
        "SELECT id FROM transfers WHERE status = {} AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        Status::Pending as i16
    );
    let rows = query_all(db, &sql, vec![now.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()]).await?;
    Ok(rows.iter().map(|row| row.try_get::<String>("", "id")).collect::<Result<Vec<_>, _>>()?)
}
