//! An account: its owner and local fields, and the ledger's status and
//! overdraft limit as last confirmed, with the checks changes make on it.

use std::collections::BTreeMap;

use folio_errors::{FolioError, Reason};

/// Customer or system (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Never below minus its overdraft limit.
    Customer = 1,
    /// May go negative.
    System = 2,
}

/// Lifecycle status (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Recorded here, not yet opened in the ledger.
    Pending = 1,
    /// Open.
    Active = 2,
    /// Frozen by an operator.
    Frozen = 3,
    /// Final.
    Closed = 4,
}

impl AccountKind {
    /// From the proto or stored number.
    pub fn from_number(number: i32) -> Option<Self> {
        [Self::Customer, Self::System].into_iter().find(|kind| *kind as i32 == number)
    }
}

impl AccountStatus {
    /// From the proto or stored number.
    pub fn from_number(number: i32) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Frozen, Self::Closed].into_iter().find(|status| *status as i32 == number)
    }
}

/// An account as this service keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id (UUID).
    pub id: String,
    /// The owning user.
    pub owner_id: String,
    /// Asset.
    pub asset_code: String,
    /// Display name.
    pub display_name: String,
    /// Caller-defined labels.
    pub metadata: BTreeMap<String, String>,
    /// Customer or system.
    pub kind: AccountKind,
    /// As the ledger last confirmed (pending until it opened the account).
    pub status: AccountStatus,
    /// As the ledger last confirmed.
    pub overdraft_limit: i64,
    /// The last ledger-change version applied.
    pub version: i64,
    /// Bumped on every change; the etag.
    pub revision: i64,
    /// Who created it.
    pub created_by: String,
    /// When created (µs).
    pub created_at: i64,
    /// When last changed (µs).
    pub updated_at: i64,
}

/// The ledger's state of an account, as it answered a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerState {
    /// Status.
    pub status: AccountStatus,
    /// Overdraft limit.
    pub overdraft_limit: i64,
    /// The version of the last change it applied.
    pub version: i64,
}

impl Account {
    /// The etag: the revision, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }

    /// `ETAG_MISMATCH` unless `given` is this revision's etag.
    pub fn check_etag(&self, given: &str) -> Result<(), FolioError> {
        if self.etag() == given { Ok(()) } else { Err(stale_etag()) }
    }

    /// `ACCOUNT_CLOSED` for a closed account.
    pub fn refuse_if_closed(&self) -> Result<(), FolioError> {
        if self.status == AccountStatus::Closed {
            return Err(FolioError::new(Reason::AccountClosed, "the account is closed"));
        }
        Ok(())
    }

    /// Only an account the ledger has opened, and not closed, changes in the ledger.
    pub fn refuse_unless_settled(&self) -> Result<(), FolioError> {
        self.refuse_if_closed()?;
        if self.status == AccountStatus::Pending {
            return Err(FolioError::new(
                Reason::AccountPending,
                "the account is not open in the ledger yet; retry shortly",
            ));
        }
        Ok(())
    }

    /// The account after the ledger's confirmed `state`: the version never goes back.
    pub fn with_ledger_state(&self, state: LedgerState) -> Self {
        Self {
            status: state.status,
            overdraft_limit: state.overdraft_limit,
            version: Ord::max(self.version, state.version),
            ..self.clone()
        }
    }
}

/// `ETAG_MISMATCH`.
pub fn stale_etag() -> FolioError {
    FolioError::new(Reason::EtagMismatch, "the account changed since it was read; read it again")
}
