//! Who may act (DESIGN.md section 3): new transfers by the owner of the
//! debit account, an operator or `ledger:write`; post/void by the hold's
//! initiator, an operator or `ledger:write`; reads by the account owner, an
//! operator or `ledger:read`.

use folio_errors::{FolioError, Reason};
use folio_tokens::{Principal, scopes};

use super::{Account, Transfer};

/// The caller, reduced to what ledger decisions need.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id or client id; recorded as `initiated_by`.
    pub subject: String,
    operator: bool,
    write_any: bool,
    read_any: bool,
}

impl Actor {
    /// From a verified principal.
    pub fn from_principal(principal: &Principal) -> Self {
        let operator = principal.is_operator();
        Self {
            subject: principal.subject.clone(),
            operator,
            write_any: operator || principal.has_scope(scopes::LEDGER_WRITE),
            read_any: operator || principal.has_scope(scopes::LEDGER_READ),
        }
    }

    /// The ledger itself (the sweeper; a reversal already authorised).
    pub fn system() -> Self {
        Self { subject: "folio-ledger".to_owned(), operator: true, write_any: true, read_any: true }
    }

    /// This actor with the right to move money on any account (for a
    /// reversal already authorised at the edge).
    pub fn acting_for_ledger(&self) -> Self {
        Self { write_any: true, ..self.clone() }
    }

    /// May create a transfer debiting `account`.
    pub fn may_move_from(&self, account: &Account) -> Result<(), FolioError> {
        if self.write_any || account.owner_id == self.subject {
            Ok(())
        } else {
            Err(FolioError::new(Reason::NotAccountOwner, "only the debit account's owner may move its money"))
        }
    }

    /// May post or void `hold`.
    pub fn may_resolve(&self, hold: &Transfer) -> Result<(), FolioError> {
        if self.write_any || hold.initiated_by == self.subject {
            Ok(())
        } else {
            Err(FolioError::new(Reason::NotAccountOwner, "only the hold's initiator may post or void it"))
        }
    }

    /// May read an account owned by `owner_id`.
    pub fn may_read(&self, owner_id: &str) -> Result<(), FolioError> {
        if self.read_any || owner_id == self.subject {
            Ok(())
        } else {
            Err(FolioError::new(Reason::NotAccountOwner, "this account belongs to someone else"))
        }
    }

    /// May read every account (operators and `ledger:read`).
    pub fn may_read_all(&self) -> bool {
        self.read_any
    }

    /// May reverse transfers.
    pub fn may_reverse(&self) -> Result<(), FolioError> {
        if self.write_any {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingRole, "reversals need the operator role or the ledger:write scope"))
        }
    }

    /// Operators only.
    pub fn require_operator(&self) -> Result<(), FolioError> {
        if self.operator {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingRole, "this call needs the `operator` role")
                .with_metadata("role", "operator"))
        }
    }
}
