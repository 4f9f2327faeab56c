//! Domain values to protobuf messages.

use folio_proto::ledger as pb;

use crate::domain::{
    Account, AccountKind, AccountStatus, EventKind, EventSide, Kind, RecordedBody, RecordedEvent, Side, Status, Totals,
    Transfer,
};

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
        status: account_status(row.status) as i32,
        overdraft_limit: row.overdraft_limit,
        version,
        balance: Some(balance(&row.id, &row.asset_code, &row.totals, now)),
    }
}

/// Domain account status to proto.
pub fn account_status(status: AccountStatus) -> pb::AccountStatus {
    match status {
        AccountStatus::Active => pb::AccountStatus::Active,
        AccountStatus::Frozen => pb::AccountStatus::Frozen,
        AccountStatus::Closed => pb::AccountStatus::Closed,
    }
}

/// Domain event kind to proto.
pub fn event_type(kind: EventKind) -> pb::EventType {
    match kind {
        EventKind::TransferPosted => pb::EventType::TransferPosted,
        EventKind::TransferPending => pb::EventType::TransferPending,
        EventKind::PendingVoided => pb::EventType::PendingVoided,
        EventKind::PendingExpired => pb::EventType::PendingExpired,
        EventKind::AccountOpened => pb::EventType::AccountOpened,
        EventKind::AccountStatusChanged => pb::EventType::AccountStatusChanged,
        EventKind::AccountLimitChanged => pb::EventType::AccountLimitChanged,
    }
}

/// A committed event.
pub fn event(recorded: &RecordedEvent) -> pb::Event {
    let (account_ids, change) = match &recorded.body {
        RecordedBody::Transfer { transfer: t, debit, credit } => {
            let side = |(side, totals): &(EventSide, Totals)| pb::EventSide {
                account_id: side.account_id.clone(),
                account_sequence: side.account_sequence,
                balance_after: Some(balance(&side.account_id, &t.asset_code, totals, recorded.occurred_at)),
            };
            let change =
                pb::TransferEvent { transfer: Some(transfer(t)), debit: Some(side(debit)), credit: Some(side(credit)) };
            (vec![debit.0.account_id.clone(), credit.0.account_id.clone()], pb::event::Change::Transfer(change))
        }
        RecordedBody::Account { id, status, overdraft_limit, version } => {
            let change = pb::AccountEvent {
                account_id: id.clone(),
                status: account_status(*status) as i32,
                overdraft_limit: *overdraft_limit,
                version: *version,
            };
            (vec![id.clone()], pb::event::Change::Account(change))
        }
    };
    pb::Event {
        r#type: event_type(recorded.kind) as i32,
        occurred_at: Some(timestamp(recorded.occurred_at)),
        account_ids,
        change: Some(change),
    }
}
