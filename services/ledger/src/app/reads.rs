//! Reads: one transfer, an account's statement, balances now and at a past moment.
//!
//! Each may be served by a replica (DESIGN §6). The ownership check made
//! here reads `owner_id`, which never changes once an account is opened: a
//! replica that has the account has its true owner, and one that has not
//! answers `ACCOUNT_NOT_FOUND`, which is asked again of the primary
//! ([`retry_on_primary`]); so the check decides as it would on the primary.

use folio_errors::{Failure, FolioError, Reason};
pub use folio_runtime::read_after::retry_on_primary;
use folio_storage::db::{ReadAfter, Source};
use folio_storage::paging::PageTokens;
use sea_orm::DatabaseConnection;

use crate::domain::{Actor, BalanceAt, StatementLine, StatementQuery, Transfer};
use crate::store::{accounts, statements, transfers_by_id};

/// Encodes the statement position and the state the page was read at
/// least as new as, so the next page is never older (DESIGN §6).
pub fn statement_token(tokens: &PageTokens, sequence: i64, after: Option<ReadAfter>) -> String {
    match after {
        Some(after) => tokens.seal(&format!("s:{sequence}:{after}")),
        None => tokens.seal(&format!("s:{sequence}")),
    }
}

/// Decodes a statement page token: the position, and the state the next
/// page must be at least as new as.
pub fn parse_statement_token(tokens: &PageTokens, token: &str) -> Result<(i64, Option<ReadAfter>), Failure> {
    if token.is_empty() {
        return Ok((0, None));
    }
    let invalid = || Failure::from(FolioError::invalid_field("page_token", "is not a token this service issued"));
    let text = tokens.open("page_token", token)?;
    let rest = text.strip_prefix("s:").ok_or_else(invalid)?;
    let (sequence, after) = match rest.split_once(':') {
        Some((sequence, after)) => (sequence, Some(ReadAfter::parse(after).ok_or_else(invalid)?)),
        None => (rest, None),
    };
    let sequence = sequence.parse().ok().filter(|n: &i64| *n >= 0).ok_or_else(invalid)?;
    Ok((sequence, after))
}

/// GetTransfer: readable by the owner of either account, operators and `ledger:read`.
pub async fn transfer(db: &DatabaseConnection, actor: &Actor, id: &str) -> Result<Transfer, Failure> {
    let ids = std::iter::once(id.to_owned()).collect();
    let transfer = transfers_by_id(db, &ids, false)
        .await?
        .pop()
        .ok_or_else(|| FolioError::new(Reason::TransferNotFound, "no such transfer"))?;
    let (debit, _) = accounts::account(db, &transfer.debit_account_id).await?;
    if actor.may_read(&debit.owner_id).is_err() {
        let (credit, _) = accounts::account(db, &transfer.credit_account_id).await?;
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
    let (account, _) = accounts::account(db, account_id).await?;
    actor.may_read(&account.owner_id)?;
    statements::page(db, &account, query).await
}

/// GetBalance: now, or as of a past moment (the last entry at or before
/// it). On a replica "now" is its last replayed commit; an `as_of` later
/// than that fails with [`Later`], which [`retry_on_primary`] sends on.
pub async fn balance(
    db: &DatabaseConnection,
    source: Source,
    actor: &Actor,
    account_id: &str,
    as_of: Option<i64>,
) -> Result<BalanceAt, Failure> {
    let (account, now) = accounts::account_and_read_clock(db, account_id, source).await?;
    if source == Source::Replica && as_of.is_some_and(|at| at > now) {
        return Err(anyhow::Error::new(Later).into());
    }
    actor.may_read(&account.owner_id)?;
    let Some(as_of) = as_of.filter(|at| *at < now) else {
        return Ok(BalanceAt { asset_code: account.asset_code, totals: account.totals, as_of: now });
    };
    let totals = statements::totals_at(db, account_id, as_of, account.entry_count).await?;
    Ok(BalanceAt { asset_code: account.asset_code, totals, as_of })
}

/// A balance asked as of a moment the replica has not replayed yet.
#[derive(Debug, thiserror::Error)]
#[error("as_of is later than the replica's last replayed commit")]
pub struct Later;
