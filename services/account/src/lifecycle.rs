//! Reading and changing accounts. Status and limit changes go to the ledger
//! first (it is authoritative) with the next per-account version, and are
//! recorded here only after it confirms; a stale or retried change can never
//! undo a newer one because the ledger ignores versions it has passed.

use std::collections::HashMap;

use folio_common::{
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
    validate,
};
use folio_proto::ledger::{AccountStatus, Balance};
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::core::{Account, AccountCore, Caller, StatusChange, status_number};
use crate::entities::accounts;

/// Fields UpdateAccount may change.
pub struct Changes {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata, replacing the old.
    pub metadata: Option<HashMap<String, String>>,
    /// New overdraft limit (operators).
    pub overdraft_limit: Option<i64>,
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
        if let Some((at, id)) = folio_common::paging::decode_token(token)? {
            query = query.filter(
                accounts::Column::CreatedAt
                    .gt(at)
                    .or(accounts::Column::CreatedAt.eq(at).and(accounts::Column::Id.gt(id))),
            );
        }
        let page = query.limit(limit + 1).all(&self.db).await?;
        Ok(folio_common::paging::finish_page(page, limit, |a| folio_common::paging::encode_token(a.created_at, &a.id)))
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
            return Err(
                FolioError::new(Reason::EtagMismatch, "the account changed since it was read; read it again").into()
            );
        }
        if account.status == status_number(AccountStatus::Closed) {
            return Err(FolioError::new(Reason::AccountClosed, "the account is closed").into());
        }
        let mut ledger_version = None;
        if let Some(limit) = changes.overdraft_limit {
            caller.require_manager()?;
            if limit < 0 {
                return Err(FolioError::invalid_field("overdraft_limit", "must not be negative").into());
            }
            refuse_unless_settled(&account)?;
            let (_, version) = self.ledger.set_overdraft_limit(&id, limit, account.version + 1).await?;
            ledger_version = Some(version);
        }
        let updated = run_in_tx(&self.db, "account_update", RetryPolicy::default(), |tx| {
            let (id, display_name, metadata) = (id.clone(), display_name.clone(), metadata.clone());
            async move {
                let current = self.find(&*tx, &id).await?;
                // The etag is checked again under the write: a concurrent update loses.
                if current.revision != account.revision {
                    return Err(FolioError::new(
                        Reason::EtagMismatch,
                        "the account changed since it was read; read it again",
                    )
                    .into());
                }
                let now = self.now(&*tx).await?;
                let mut row: accounts::ActiveModel = current.clone().into();
                if let Some(name) = display_name {
                    row.display_name = Set(name);
                }
                if let Some(metadata) = metadata {
                    row.metadata = Set(metadata);
                }
                if let (Some(limit), Some(version)) = (changes.overdraft_limit, ledger_version) {
                    row.overdraft_limit = Set(limit);
                    row.version = Set(Ord::max(current.version, version));
                }
                row.revision = Set(current.revision + 1);
                row.updated_at = Set(now);
                Ok::<_, TxError<Failure>>(row.update(&*tx).await?)
            }
        })
        .await?;
        Ok(updated)
    }

    /// FreezeAccount / UnfreezeAccount / CloseAccount: the ledger first, then the record and the audit trail.
    pub async fn set_status(
        &self,
        caller: &Caller,
        id: &str,
        target: AccountStatus,
        reason: &str,
    ) -> Result<Account, Failure> {
        let id = validate::uuid("account_id", id)?;
        let account = self.find(&self.db, &id).await?;
        match target {
            AccountStatus::Closed => caller.may_change(&account)?,
            _ => caller.require_manager()?,
        }
        refuse_unless_settled(&account)?;
        let (status, version) = self.ledger.set_status(&id, target, account.version + 1).await?;
        let status = i16::try_from(status).unwrap_or_default();
        Ok(run_in_tx(&self.db, "account_set_status", RetryPolicy::default(), |tx| {
            let id = id.clone();
            async move {
                let current = self.find(&*tx, &id).await?;
                if version <= current.version {
                    // A newer change was recorded meanwhile; it stands.
                    return Ok(current);
                }
                let now = self.now(&*tx).await?;
                if status != current.status {
                    let change = StatusChange {
                        account_id: &id,
                        from: current.status,
                        to: status,
                        actor: &caller.subject,
                        reason,
                    };
                    self.audit_status(&*tx, change, now).await?;
                }
                let row = accounts::ActiveModel {
                    status: Set(status),
                    version: Set(version),
                    revision: Set(current.revision + 1),
                    updated_at: Set(now),
                    ..current.into()
                };
                Ok::<_, TxError<Failure>>(row.update(&*tx).await?)
            }
        })
        .await?)
    }
}
