//! Reading and changing accounts. Status and limit changes go to the ledger
//! first (it is authoritative) and are recorded here only after it confirms
//! (`ledger_change.rs`); local fields change under the etag alone.

use std::collections::HashMap;

use folio_common::{
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
    validate,
};
use folio_proto::ledger::{AccountStatus, Balance};
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::core::{Account, AccountCore, Caller, status_number};
use crate::entities::accounts;
use crate::ledger_change::{Intent, LedgerChange, LocalEdits};

/// Fields UpdateAccount may change.
pub struct Changes {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata, replacing the old.
    pub metadata: Option<HashMap<String, String>>,
    /// New overdraft limit (operators).
    pub overdraft_limit: Option<i64>,
}

/// Longest reason a status change may give.
const MAX_REASON_CHARS: usize = 500;

fn stale_etag() -> FolioError {
    FolioError::new(Reason::EtagMismatch, "the account changed since it was read; read it again")
}

/// The etag of an account.
pub fn etag(account: &Account) -> String {
    format!("\"{}\"", account.revision)
}

fn refuse_unless_settled(account: &Account) -> Result<(), Failure> {
    if account.status == status_number(AccountStatus::Closed) {
        return Err(FolioError::new(Reason::AccountClosed, "the account is closed").into());
    }
    if account.status == status_number(AccountStatus::Pending) {
        return Err(FolioError::new(
            Reason::AccountPending,
            "the account is not open in the ledger yet; retry shortly",
        )
        .into());
    }
    Ok(())
}

impl AccountCore {
    /// GetAccount, with the balance when the ledger answers in time.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<(Account, Option<Balance>), Failure> {
        let id = validate::uuid("account_id", id)?;
        let account = self.find(&self.db, &id).await?;
        caller.may_read(&account)?;
        let balance =
            if account.status == status_number(AccountStatus::Pending) { None } else { self.ledger.balance(&id).await };
        Ok((account, balance))
    }

    /// ListAccounts: the caller's (operators: any owner), oldest first.
    pub async fn list(
        &self,
        caller: &Caller,
        owner_id: &str,
        status: Option<i16>,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Account>, String), Failure> {
        let limit = validate::page_size(size, 50, 500)?;
        let owner = match (owner_id.is_empty(), caller.read_any) {
            (true, true) => None,
            (true, false) => Some(caller.subject.clone()),
            (false, _) => {
                let owner = validate::uuid("owner_id", owner_id)?;
                if !caller.read_any && owner != caller.subject {
                    return Err(
                        FolioError::new(Reason::NotAccountOwner, "only operators list other owners' accounts").into()
                    );
                }
                Some(owner)
            }
        };
        let mut query =
            accounts::Entity::find().order_by_asc(accounts::Column::CreatedAt).order_by_asc(accounts::Column::Id);
        if let Some(owner) = owner {
            query = query.filter(accounts::Column::OwnerId.eq(owner));
        }
        if let Some(status) = status {
            query = query.filter(accounts::Column::Status.eq(status));
        }
        if let Some((at, id)) = self.page_tokens.decode(token)? {
            query = query.filter(
                accounts::Column::CreatedAt
                    .gt(at)
                    .or(accounts::Column::CreatedAt.eq(at).and(accounts::Column::Id.gt(id))),
            );
        }
        let page = query.limit(limit + 1).all(&self.db).await?;
        Ok(folio_common::paging::finish_page(page, limit, |a| self.page_tokens.encode(a.created_at, &a.id)))
    }

    /// UpdateAccount: guarded by the etag; the overdraft limit goes to the ledger first.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        given_etag: &str,
        changes: Changes,
    ) -> Result<Account, Failure> {
        let id = validate::uuid("account_id", id)?;
        let display_name =
            changes.display_name.as_deref().map(|n| validate::text("display_name", n, 1, 100)).transpose()?;
        let metadata = changes.metadata.as_ref().map(|m| validate::metadata("metadata", m)).transpose()?;
        let metadata =
            metadata.map(|m| serde_json::to_string(&m)).transpose().map_err(|e| Failure::Internal(e.into()))?;
        let account = self.find(&self.db, &id).await?;
        caller.may_change(&account)?;
        if etag(&account) != given_etag {
            return Err(stale_etag().into());
        }
        if account.status == status_number(AccountStatus::Closed) {
            return Err(FolioError::new(Reason::AccountClosed, "the account is closed").into());
        }
        let Some(limit) = changes.overdraft_limit else {
            return self.update_locally(&account, display_name, metadata).await;
        };
        caller.require_manager()?;
        if limit < 0 {
            return Err(FolioError::invalid_field("overdraft_limit", "must not be negative").into());
        }
        // The etag is checked again under the row lock, before the ledger is
        // asked: a stale etag changes nothing anywhere.
        let intent = Intent { change: LedgerChange::OverdraftLimit(limit), actor: &caller.subject, reason: "" };
        let edits = LocalEdits { display_name, metadata };
        self.change_in_ledger(&id, intent, edits, |current| {
            if etag(current) != given_etag {
                return Err(stale_etag().into());
            }
            refuse_unless_settled(current)
        })
        .await
    }

    /// UpdateAccount of local fields only, guarded by the etag under the write.
    async fn update_locally(
        &self,
        account: &Account,
        display_name: Option<String>,
        metadata: Option<String>,
    ) -> Result<Account, Failure> {
        let updated = run_in_tx(&self.db, "account_update", RetryPolicy::default(), |tx| {
            let (display_name, metadata) = (display_name.clone(), metadata.clone());
            async move {
                let current = self.find(&*tx, &account.id).await?;
                // The etag is checked again under the write: a concurrent update loses.
                if current.revision != account.revision {
                    return Err(stale_etag().into());
                }
                let now = self.now(&*tx).await?;
                let mut row: accounts::ActiveModel = current.clone().into();
                if let Some(name) = display_name {
                    row.display_name = Set(name);
                }
                if let Some(metadata) = metadata {
                    row.metadata = Set(metadata);
                }
                row.revision = Set(current.revision + 1);
                row.updated_at = Set(now);
                Ok::<_, TxError<Failure>>(row.update(&*tx).await?)
            }
        })
        .await?;
        Ok(updated)
    }

    /// FreezeAccount / UnfreezeAccount / CloseAccount: the ledger first,
    /// under the account's lock, then the record and the audit trail. An
    /// operator's freeze stands until an operator lifts it: the owner cannot
    /// close a frozen account.
    pub async fn set_status(
        &self,
        caller: &Caller,
        id: &str,
        target: AccountStatus,
        reason: &str,
    ) -> Result<Account, Failure> {
        let id = validate::uuid("account_id", id)?;
        validate::free_text("reason", reason, MAX_REASON_CHARS)?;
        let intent = Intent { change: LedgerChange::Status(target), actor: &caller.subject, reason };
        self.change_in_ledger(&id, intent, LocalEdits::default(), |account| {
            match target {
                AccountStatus::Closed => caller.may_change(account)?,
                _ => caller.require_manager()?,
            }
            refuse_unless_settled(account)?;
            if target == AccountStatus::Closed
                && !caller.manage_any
                && account.status == status_number(AccountStatus::Frozen)
            {
                return Err(FolioError::new(Reason::AccountFrozen, "an operator froze this account").into());
            }
            Ok(())
        })
        .await
    }
}
