//! CreateAccount: what a request must hold, and who may set what.

use std::collections::{BTreeMap, HashMap};

use folio_errors::validate;
use folio_errors::{FolioError, Reason};
use sha2::{Digest, Sha256};

use super::{AccountKind, Caller};

/// A CreateAccount request, before validation.
#[derive(Debug, Default)]
pub struct NewAccount {
    /// Idempotency key.
    pub request_id: String,
    /// Asset code.
    pub asset_code: String,
    /// Display name.
    pub display_name: String,
    /// Metadata.
    pub metadata: HashMap<String, String>,
    /// Operators only; empty for the caller.
    pub owner_id: String,
    /// Operators only (proto number; 0 for a customer account).
    pub kind: i32,
    /// Operators only.
    pub overdraft_limit: i64,
}

/// A CreateAccount request that passed every rule.
#[derive(Debug, Clone)]
pub struct AccountRequest {
    /// Idempotency key (per caller).
    pub request_id: String,
    /// Asset code (its registration is the ledger's to say).
    pub asset_code: String,
    /// Display name.
    pub display_name: String,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// The owner.
    pub owner_id: String,
    /// Customer or system.
    pub kind: AccountKind,
    /// Overdraft limit.
    pub overdraft_limit: i64,
    /// What a retry with the same request id must repeat.
    pub request_hash: String,
}

impl NewAccount {
    /// The request, once its fields pass the rules and `caller` may set them.
    pub fn validate(self, caller: &Caller) -> Result<AccountRequest, FolioError> {
        let request_id = validate::uuid("request_id", &self.request_id)?;
        let asset_code = validate::asset_code("asset_code", &self.asset_code)?;
        let display_name = validate::text("display_name", &self.display_name, 1, 100)?;
        let metadata = validate::metadata("metadata", &self.metadata)?;
        if !caller.manage_any && (!self.owner_id.is_empty() || self.kind != 0 || self.overdraft_limit != 0) {
            return Err(FolioError::new(Reason::MissingRole, "owner_id, kind and overdraft_limit are for operators")
                .with_metadata("role", "operator"));
        }
        let owner_id =
            if self.owner_id.is_empty() { caller.subject.clone() } else { validate::uuid("owner_id", &self.owner_id)? };
        let kind = match self.kind {
            0 => AccountKind::Customer,
            number => AccountKind::from_number(number)
                .ok_or_else(|| FolioError::invalid_field("kind", "unknown account kind"))?,
        };
        if self.overdraft_limit < 0 {
            return Err(FolioError::invalid_field("overdraft_limit", "must not be negative"));
        }
        let digest =
            serde_json::json!([asset_code, display_name, metadata, owner_id, kind as i32, self.overdraft_limit]);
        let request_hash = hex::encode(Sha256::digest(digest.to_string().as_bytes()));
        Ok(AccountRequest {
            request_id,
            asset_code,
            display_name,
            metadata,
            owner_id,
            kind,
            overdraft_limit: self.overdraft_limit,
            request_hash,
        })
    }
}
