//! Parsing requests into domain values at the edge: every field checked once,
//! with `INVALID_FIELD` / `INVALID_AMOUNT` / `SAME_ACCOUNT` naming the field.

use std::collections::BTreeMap;

use folio_errors::{FolioError, Reason};
use folio_proto::ledger as pb;
use sha2::{Digest, Sha256};

use crate::domain::{Kind, Movement, NewTransfer, Request, Resolution, Resolve};

/// Longest hold: 30 days.
pub const MAX_TIMEOUT_SECONDS: i64 = 2_592_000;
const MAX_DESCRIPTION_CHARS: usize = 500;

pub use folio_errors::validate::{asset_code, uuid};

fn optional_uuid(field: &str, value: &str) -> Result<String, FolioError> {
    if value.is_empty() { Ok(String::new()) } else { uuid(field, value) }
}

/// Description and metadata within their limits.
pub fn description_and_metadata(
    description: &str,
    metadata: &std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>, FolioError> {
    folio_errors::validate::free_text("description", description, MAX_DESCRIPTION_CHARS)?;
    folio_errors::validate::metadata("metadata", metadata)
}

/// Validates one transfer's fields (those a client sets).
pub fn new_transfer(input: &pb::NewTransfer) -> Result<NewTransfer, FolioError> {
    let kind = match pb::TransferKind::try_from(input.kind) {
        Ok(pb::TransferKind::Posted) => Kind::Posted,
        Ok(pb::TransferKind::Pending) => Kind::Pending,
        Ok(pb::TransferKind::PostPending) => Kind::PostPending,
        Ok(pb::TransferKind::VoidPending) => Kind::VoidPending,
        Ok(pb::TransferKind::Unspecified) | Err(_) => {
            return Err(FolioError::invalid_field("kind", "must be POSTED, PENDING, POST_PENDING or VOID_PENDING"));
        }
    };
    let id = uuid("id", &input.id)?;
    let debit = optional_uuid("debit_account_id", &input.debit_account_id)?;
    let credit = optional_uuid("credit_account_id", &input.credit_account_id)?;
    let asset = if input.asset_code.is_empty() { String::new() } else { asset_code("asset_code", &input.asset_code)? };
    let metadata = description_and_metadata(&input.description, &input.metadata)?;
    match kind {
        Kind::Posted | Kind::Pending => {
            for (field, value) in [("debit_account_id", &debit), ("credit_account_id", &credit), ("asset_code", &asset)]
            {
                if value.is_empty() {
                    return Err(FolioError::invalid_field(field, "is required"));
                }
            }
            if debit == credit {
                return Err(FolioError::new(Reason::SameAccount, "debit and credit accounts must differ")
                    .with_violation("credit_account_id", "equals debit_account_id"));
            }
            if input.amount <= 0 {
                return Err(FolioError::new(Reason::InvalidAmount, "amount must be positive")
                    .with_violation("amount", "must be > 0"));
            }
            if !input.pending_id.is_empty() {
                return Err(FolioError::invalid_field("pending_id", "only post and void name a hold"));
            }
            let timeout_ok = match kind {
                Kind::Pending => (1..=MAX_TIMEOUT_SECONDS).contains(&input.timeout_seconds),
                _ => input.timeout_seconds == 0,
            };
            if !timeout_ok {
                return Err(FolioError::invalid_field(
                    "timeout_seconds",
                    "pending transfers need 1..2592000 seconds; other kinds none",
                ));
            }
        }
        Kind::PostPending | Kind::VoidPending => {
            if input.pending_id.is_empty() {
                return Err(FolioError::invalid_field("pending_id", "is required to post or void a hold"));
            }
            if input.amount < 0 {
                return Err(FolioError::new(Reason::InvalidAmount, "amount must not be negative")
                    .with_violation("amount", "must be >= 0"));
            }
            if input.timeout_seconds != 0 {
                return Err(FolioError::invalid_field("timeout_seconds", "only pending transfers have a timeout"));
            }
            if !debit.is_empty() && debit == credit {
                return Err(FolioError::new(Reason::SameAccount, "debit and credit accounts must differ"));
            }
        }
    }
    let pending_id = optional_uuid("pending_id", &input.pending_id)?;
    // The void's amount is ignored, so it does not take part in the digest.
    let hashed_amount = if kind == Kind::VoidPending { 0 } else { input.amount };
    let digest = serde_json::json!([
        id,
        debit,
        credit,
        hashed_amount,
        asset,
        kind as i16,
        pending_id,
        input.timeout_seconds,
        input.description,
        metadata
    ]);
    let request = Request {
        id,
        description: input.description.clone(),
        metadata,
        request_hash: hex::encode(Sha256::digest(digest.to_string().as_bytes())),
    };
    let given = |value: String| (!value.is_empty()).then_some(value);
    Ok(match kind {
        Kind::Posted | Kind::Pending => NewTransfer::Movement(Movement {
            request,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: input.amount,
            asset_code: asset,
            hold_seconds: (kind == Kind::Pending).then_some(input.timeout_seconds),
        }),
        Kind::PostPending | Kind::VoidPending => NewTransfer::Resolution(Resolution {
            request,
            pending_id,
            action: match kind {
                Kind::PostPending => Resolve::Post((input.amount > 0).then_some(input.amount)),
                _ => Resolve::Void,
            },
            debit_account_id: given(debit),
            credit_account_id: given(credit),
            asset_code: given(asset),
        }),
    })
}

/// `CreateTransferRequest` carries the same fields as `NewTransfer`.
pub fn from_create_request(request: pb::CreateTransferRequest) -> pb::NewTransfer {
    let pb::CreateTransferRequest {
        id,
        debit_account_id,
        credit_account_id,
        amount,
        asset_code,
        kind,
        pending_id,
        timeout_seconds,
        description,
        metadata,
    } = request;
    pb::NewTransfer {
        id,
        debit_account_id,
        credit_account_id,
        amount,
        asset_code,
        kind,
        pending_id,
        timeout_seconds,
        description,
        metadata,
    }
}
