//! Between protobuf messages and the domain's values.

use folio_errors::time::timestamp;
use folio_errors::{FolioError, echo};
use folio_proto::account as pb;
use folio_tokens::{Principal, scopes};

use crate::domain::{Account, AccountStatus, Caller, Changes};

/// What a verified principal may do with accounts.
pub fn caller(principal: &Principal) -> Caller {
    let operator = principal.is_operator();
    let write = principal.has_scope(scopes::ACCOUNTS_WRITE);
    Caller {
        subject: principal.subject.clone(),
        manage_any: operator || write,
        read_any: operator || write || principal.has_scope(scopes::ACCOUNTS_READ),
    }
}

/// An account as answered.
pub fn message(account: &Account) -> pb::Account {
    pb::Account {
        id: account.id.clone(),
        owner_id: account.owner_id.clone(),
        asset_code: account.asset_code.clone(),
        display_name: account.display_name.clone(),
        metadata: account.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        kind: account.kind as i32,
        status: account.status as i32,
        overdraft_limit: account.overdraft_limit,
        etag: account.etag(),
        created_at: Some(timestamp(account.created_at)),
        updated_at: Some(timestamp(account.updated_at)),
    }
}

/// A list's status filter: none for unspecified.
pub fn status_filter(status: i32) -> Result<Option<AccountStatus>, FolioError> {
    match status {
        0 => Ok(None),
        number => AccountStatus::from_number(number)
            .map(Some)
            .ok_or_else(|| FolioError::invalid_field("status", "unknown status")),
    }
}

/// UpdateAccount's fields, as its mask names them.
pub fn changes(request: pb::UpdateAccountRequest) -> Result<Changes, FolioError> {
    let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(FolioError::invalid_field("update_mask", "name at least one field to change"));
    }
    let mut changes = Changes::default();
    for path in &paths {
        match path.as_str() {
            "display_name" => changes.display_name = Some(request.display_name.clone()),
            "metadata" => changes.metadata = Some(request.metadata.clone()),
            "overdraft_limit" => changes.overdraft_limit = Some(request.overdraft_limit),
            other => {
                return Err(FolioError::invalid_field("update_mask", format!("cannot update {:?}", echo(other))));
            }
        }
    }
    Ok(changes)
}
