//! The account service's operations share this: the database, the ledger,
//! who may see and change an account, and the status audit trail.

use folio_common::paging::PageTokens;
use folio_common::{
    auth::{Principal, scopes},
    error::{Failure, FolioError, Reason},
};
use folio_proto::ledger::AccountStatus;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use crate::entities::{accounts, status_changes};
use crate::ledger::Ledger;

/// An account as stored.
pub type Account = accounts::Model;

/// One entry of the status audit trail.
pub struct StatusChange<'a> {
    /// The account.
    pub account_id: &'a str,
    /// Status before.
    pub from: i16,
    /// Status after.
    pub to: i16,
    /// Who changed it.
    pub actor: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// Everything the operations need.
#[derive(Clone)]
pub struct AccountCore {
    pub(crate) db: DatabaseConnection,
    pub(crate) ledger: Ledger,
    pub(crate) page_tokens: PageTokens,
}

/// What a caller may do.
pub struct Caller {
    /// User id or client id.
    pub subject: String,
    /// Operators, and services with `accounts:write`, act on any account.
    pub manage_any: bool,
    /// Operators, and services with `accounts:read` or `accounts:write`, see any account.
    pub read_any: bool,
}

impl Caller {
    /// From a verified principal.
    pub fn from_principal(principal: &Principal) -> Self {
        let operator = principal.is_operator();
        let write = principal.has_scope(scopes::ACCOUNTS_WRITE);
        Self {
            subject: principal.subject.clone(),
            manage_any: operator || write,
            read_any: operator || write || principal.has_scope(scopes::ACCOUNTS_READ),
        }
    }

    /// `NOT_ACCOUNT_OWNER` unless the caller may see `account`.
    pub fn may_read(&self, account: &Account) -> Result<(), Failure> {
        if self.read_any || account.owner_id == self.subject {
            Ok(())
        } else {
            Err(FolioError::new(Reason::NotAccountOwner, "this account belongs to someone else").into())
        }
    }

    /// `NOT_ACCOUNT_OWNER` unless the caller owns `account` or manages any.
    pub fn may_change(&self, account: &Account) -> Result<(), Failure> {
        if self.manage_any || account.owner_id == self.subject {
            Ok(())
        } else {
            Err(FolioError::new(Reason::NotAccountOwner, "this account belongs to someone else").into())
        }
    }

    /// `MISSING_ROLE` unless the caller manages any account (operators).
    pub fn require_manager(&self) -> Result<(), Failure> {
        if self.manage_any {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingRole, "this needs the `operator` role")
                .with_metadata("role", "operator")
                .into())
        }
    }
}

impl AccountCore {
    /// Operations over `db`, calling `ledger`.
    pub fn new(db: DatabaseConnection, ledger: Ledger, page_tokens: PageTokens) -> Self {
        Self { db, ledger, page_tokens }
    }

    pub(crate) async fn now(&self, db: &impl ConnectionTrait) -> Result<i64, Failure> {
        Ok(folio_common::db::now(db).await?.timestamp_micros())
    }

    pub(crate) async fn find(&self, db: &impl ConnectionTrait, id: &str) -> Result<Account, Failure> {
        accounts::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .ok_or_else(|| FolioError::new(Reason::AccountNotFound, "no such account").into())
    }

    /// Appends to the status audit trail (who, when, why).
    pub(crate) async fn audit_status(
        &self,
        db: &impl ConnectionTrait,
        change: StatusChange<'_>,
        at: i64,
    ) -> Result<(), Failure> {
        status_changes::ActiveModel {
            account_id: Set(change.account_id.to_owned()),
            from_status: Set(change.from),
            to_status: Set(change.to),
            actor: Set(change.actor.to_owned()),
            reason: Set(change.reason.chars().take(500).collect()),
            at: Set(at),
            ..Default::default()
        }
        .insert(db)
        .await?;
        Ok(())
    }
}

/// Stored status number of a proto status.
pub fn status_number(status: AccountStatus) -> i16 {
    i16::try_from(status as i32).unwrap_or_default()
}
