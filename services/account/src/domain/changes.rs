//! UpdateAccount: which fields change, and when they may.

use std::collections::{BTreeMap, HashMap};

use folio_errors::FolioError;
use folio_errors::validate;

use super::{Account, Caller};

/// Fields UpdateAccount may change, as asked.
#[derive(Debug, Default)]
pub struct Changes {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata, replacing the old.
    pub metadata: Option<HashMap<String, String>>,
    /// New overdraft limit (operators).
    pub overdraft_limit: Option<i64>,
}

/// Changes whose values passed the text rules.
#[derive(Debug, Default, Clone)]
pub struct ValidChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata, replacing the old.
    pub metadata: Option<BTreeMap<String, String>>,
    /// New overdraft limit, for the ledger.
    pub overdraft_limit: Option<i64>,
}

impl Changes {
    /// The changes, once their text passes the rules (DESIGN §4).
    pub fn validate(self) -> Result<ValidChanges, FolioError> {
        let display_name = self.display_name.map(|n| validate::text("display_name", &n, 1, 100)).transpose()?;
        let metadata = self.metadata.as_ref().map(|m| validate::metadata("metadata", m)).transpose()?;
        Ok(ValidChanges { display_name, metadata, overdraft_limit: self.overdraft_limit })
    }
}

impl ValidChanges {
    /// Whether `caller` may make these changes to `account` read at `given_etag`.
    pub fn check(&self, caller: &Caller, account: &Account, given_etag: &str) -> Result<(), FolioError> {
        caller.may_change(account)?;
        account.check_etag(given_etag)?;
        account.refuse_if_closed()?;
        if let Some(limit) = self.overdraft_limit {
            caller.require_manager()?;
            if limit < 0 {
                return Err(FolioError::invalid_field("overdraft_limit", "must not be negative"));
            }
        }
        Ok(())
    }

    /// `account` with the local fields changed (the ledger's fields come from the ledger).
    pub fn apply_local(&self, account: &Account) -> Account {
        let mut changed = account.clone();
        if let Some(name) = &self.display_name {
            changed.display_name.clone_from(name);
        }
        if let Some(metadata) = &self.metadata {
            changed.metadata.clone_from(metadata);
        }
        changed
    }
}
