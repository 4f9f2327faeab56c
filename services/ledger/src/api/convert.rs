//! Domain values to protobuf messages.

use folio_proto::ledger as pb;

use crate::domain::{Account, AccountKind, AccountStatus, Kind, Side, Status, Totals, Transfer};

pub use folio_errors::time::{micros, timestamp};

fn kind(kind: Kind) -> pb::TransferKind {
    match kind {
        Kind::Posted => pb::TransferKind::Posted,
        Kind::Pending => pb::TransferKind::Pending,
        Kind::PostPending => pb::TransferKind::PostPending,
        Kind::VoidPending => pb::TransferKind::VoidPending,
    }
}

/// Domain status to proto.
pub fn status(status: Status) -> pb::TransferStatus {
    match status {
        Status::Posted => pb::TransferStatus::Posted,
        Status::Pending => pb::TransferStatus::Pending,
        Status::PostedFromPending => pb::TransferStatus::PostedFromPending,
        Status::Voided => pb::TransferStatus::Voided,
        Status::Expired => pb::TransferStatus::Expired,
    }
}

/// A committed transfer.
pub fn transfer(t: &Transfer) -> pb::Transfer {
    pb::Transfer {
        id: t.id.clone(),
        debit_account_id: t.debit_account_id.clone(),
        credit_account_id: t.credit_account_id.clone(),
        amount: t.amount,
        asset_code: t.asset_code.clone(),
        kind: kind(t.kind) as i32,
        pending_id: t.pending_id.clone().unwrap_or_default(),
        timeout_seconds: t.timeout_seconds,
        description: t.description.clone(),
        metadata: t.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        status: status(t.status) as i32,
        created_at: Some(timestamp(t.created_at)),
        initiated_by: t.initiated_by.clone(),
        sequence: t.sequence,
        expires_at: t.expires_at.map(timestamp),
        reverses_transfer_id: t.reverses_transfer_id.clone().unwrap_or_default(),
    }
}

/// Totals as a balance message.
pub fn balance(account_id: &str, asset_code: &str, totals: &Totals, as_of: i64) -> pb::Balance {
    pb::Balance {
        account_id: account_id.to_owned(),
        asset_code: asset_code.to_owned(),
        debits_posted: totals.debits_posted,
        credits_posted: totals.credits_posted,
        debits_pending: totals.debits_pending,
        credits_pending: totals.credits_pending,
        posted: totals.posted().unwrap_or_default(),
        available: totals.available().unwrap_or_default(),
        as_of: Some(timestamp(as_of)),
    }
}

/// The side of an entry.
pub fn side(side: Side) -> pb::EntrySide {
    match side {
        Side::Debit => pb::EntrySide::Debit,
        Side::Credit => pb::EntrySide::Credit,
    }
}

/// An account as the admin API shows it.
pub fn ledger_account(row: &Account, version: i64, now: i64) -> pb::LedgerAccount {
    pb::LedgerAccount {
        account_id: row.id.clone(),
        owner_id: row.owner_id.clone(),
        asset_code: row.asset_code.clone(),
        kind: match row.kind {
            AccountKind::Customer => pb::AccountKind::Customer,
            AccountKind::System => pb::AccountKind::System,
        } as i32,
        status: match row.status {
            AccountStatus::Active => pb::AccountStatus::Active,
            AccountStatus::Frozen => pb::AccountStatus::Frozen,
            AccountStatus::Closed => pb::AccountStatus::Closed,
        } as i32,
        overdraft_limit: row.overdraft_limit,
        version,
        balance: Some(balance(&row.id, &row.asset_code, &row.totals, now)),
    }
}
