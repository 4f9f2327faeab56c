//! Who may see and change an account.

use folio_errors::{FolioError, Reason};

use super::{Account, AccountStatus};

/// What a caller may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id or client id.
    pub subject: String,
    /// Operators, and services with `accounts:write`, act on any account.
    pub manage_any: bool,
    /// Operators, and services with `accounts:read` or `accounts:write`, see any account.
    pub read_any: bool,
}

fn not_owner() -> FolioError {
    FolioError::new(Reason::NotAccountOwner, "this account belongs to someone else")
}

impl Caller {
    /// `NOT_ACCOUNT_OWNER` unless the caller may see `account`.
    pub fn may_read(&self, account: &Account) -> Result<(), FolioError> {
        if self.read_any || account.owner_id == self.subject { Ok(()) } else { Err(not_owner()) }
    }

    /// `NOT_ACCOUNT_OWNER` unless the caller owns `account` or manages any.
    pub fn may_change(&self, account: &Account) -> Result<(), FolioError> {
        if self.manage_any || account.owner_id == self.subject { Ok(()) } else { Err(not_owner()) }
    }

    /// `MISSING_ROLE` unless the caller manages any account (operators).
    pub fn require_manager(&self) -> Result<(), FolioError> {
        if self.manage_any {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingRole, "this needs the `operator` role")
                .with_metadata("role", "operator"))
        }
    }

    /// Whose accounts a list shows: `owner` (a validated user id) when
    /// named, else the caller's own, or everyone's for those who read any.
    pub fn list_owner(&self, owner: Option<String>) -> Result<Option<String>, FolioError> {
        match (owner, self.read_any) {
            (None, true) => Ok(None),
            (None, false) => Ok(Some(self.subject.clone())),
            (Some(owner), read_any) => {
                if !read_any && owner != self.subject {
                    return Err(FolioError::new(Reason::NotAccountOwner, "only operators list other owners' accounts"));
                }
                Ok(Some(owner))
            }
        }
    }

    /// Freeze and unfreeze are for operators; the owner may close, but an
    /// operator's freeze stands until an operator lifts it: the owner cannot
    /// close a frozen account. Only a settled account changes status.
    pub fn may_set_status(&self, account: &Account, target: AccountStatus) -> Result<(), FolioError> {
        match target {
            AccountStatus::Closed => self.may_change(account)?,
            _ => self.require_manager()?,
        }
        account.refuse_unless_settled()?;
        if target == AccountStatus::Closed && !self.manage_any && account.status == AccountStatus::Frozen {
            return Err(FolioError::new(Reason::AccountFrozen, "an operator froze this account"));
        }
        Ok(())
    }
}
