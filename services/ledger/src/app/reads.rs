//! Reads: one transfer, an account's statement, balances now and at a past moment.

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::paging::PageTokens;
use sea_orm::DatabaseConnection;

use crate::domain::{Actor, BalanceAt, StatementLine, StatementQuery, Transfer};
use crate::store::{accounts, statements, transfers_by_id};

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

/// GetBalance: now, or as of a past moment (the last entry at or before it).
pub async fn balance(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: &str,
    as_of: Option<i64>,
) -> Result<BalanceAt, Failure> {
    let (account, now) = accounts::account_and_clock(db, account_id).await?;
    actor.may_read(&account.owner_id)?;
    let Some(as_of) = as_of.filter(|at| *at < now) else {
        return Ok(BalanceAt { asset_code: account.asset_code, totals: account.totals, as_of: now });
    };
    let totals = statements::totals_at(db, account_id, as_of, account.entry_count).await?;
    Ok(BalanceAt { asset_code: account.asset_code, totals, as_of })
}
