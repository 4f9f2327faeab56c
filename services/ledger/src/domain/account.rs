//! Ledger accounts: kind, lifecycle status, and the checks every movement
//! and every status change makes against them.

use folio_errors::{FolioError, Reason};

use super::{Totals, fail, overflow};

/// Account kind (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Never below minus its overdraft limit.
    Customer = 1,
    /// May go negative.
    System = 2,
}

/// Account status (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Open.
    Active = 2,
    /// No new transfers.
    Frozen = 3,
    /// Final.
    Closed = 4,
}

from_i16!(AccountKind { Customer, System });
from_i16!(AccountStatus { Active, Frozen, Closed });

/// A versioned change to an account (from the account service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// New status.
    Status(AccountStatus),
    /// New overdraft limit.
    OverdraftLimit(i64),
}

/// An account as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: String,
    /// Owner (user id).
    pub owner_id: String,
    /// Asset.
    pub asset_code: String,
    /// Customer or system.
    pub kind: AccountKind,
    /// Active, frozen, closed.
    pub status: AccountStatus,
    /// Customers may go this far below zero.
    pub overdraft_limit: i64,
    /// Running totals.
    pub totals: Totals,
    /// Entries so far (the last `account_sequence`).
    pub entry_count: i64,
    /// Time of the last entry (µs): entries never go back in time.
    pub last_entry_at: i64,
}

impl Account {
    /// Money moves only on active accounts.
    pub fn require_active(&self) -> Result<(), FolioError> {
        match self.status {
            AccountStatus::Active => Ok(()),
            AccountStatus::Frozen => {
                Err(fail(Reason::AccountFrozen, "the account is frozen").with_metadata("account_id", self.id.clone()))
            }
            AccountStatus::Closed => {
                Err(fail(Reason::AccountClosed, "the account is closed").with_metadata("account_id", self.id.clone()))
            }
        }
    }

    /// `after` keeps a customer's available balance at or above minus its
    /// overdraft limit (system accounts may go anywhere), and every derived
    /// balance representable.
    pub fn allows(&self, after: &Totals) -> Result<(), FolioError> {
        let available = after.available().ok_or_else(overflow)?;
        after.check()?;
        if self.kind == AccountKind::Customer && available < self.overdraft_limit.checked_neg().ok_or_else(overflow)? {
            return Err(
                fail(Reason::InsufficientFunds, "insufficient funds").with_metadata("account_id", self.id.clone())
            );
        }
        Ok(())
    }

    /// Only an account with zero posted and pending balance can close.
    pub fn may_close(&self) -> Result<(), FolioError> {
        let totals = self.totals;
        if totals.posted() != Some(0) || totals.debits_pending != 0 || totals.credits_pending != 0 {
            return Err(fail(Reason::BalanceNotZero, "only an account with zero posted and pending balance can close"));
        }
        Ok(())
    }
}
