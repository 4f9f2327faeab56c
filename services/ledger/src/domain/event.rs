//! Ledger events (DESIGN "Ledger events"): what a committed change tells
//! the services that watch the ledger. A batch's events come from its
//! entries, which exist exactly for the changes that stayed in the batch
//! (an operation undone takes its entries with it), in the batch's order.

use std::collections::HashMap;

use super::{AccountStatus, BatchState, Entry, Kind, Side, Status};

/// What an event reports (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A posted transfer, a post of a hold, or a reversal.
    TransferPosted = 1,
    /// A hold placed.
    TransferPending = 2,
    /// A hold voided (the void record).
    PendingVoided = 3,
    /// A hold released past its deadline (the hold).
    PendingExpired = 4,
    /// An account opened.
    AccountOpened = 5,
    /// An account's status changed.
    AccountStatusChanged = 6,
    /// An account's overdraft limit changed.
    AccountLimitChanged = 7,
}

from_i16!(EventKind {
    TransferPosted,
    TransferPending,
    PendingVoided,
    PendingExpired,
    AccountOpened,
    AccountStatusChanged,
    AccountLimitChanged
});

impl EventKind {
    /// Whether events of this kind carry a transfer (else an account).
    pub fn is_transfer(self) -> bool {
        matches!(self, Self::TransferPosted | Self::TransferPending | Self::PendingVoided | Self::PendingExpired)
    }
}

/// One side of a transfer event: the account and its entry's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSide {
    /// The account.
    pub account_id: String,
    /// The entry's place in the account.
    pub account_sequence: i64,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A transfer record (new, or the hold an expiry released) and its entries.
    Transfer {
        /// The record.
        id: String,
        /// The record's status right after the change.
        status: Status,
        /// The debited account's entry.
        debit: EventSide,
        /// The credited account's entry.
        credit: EventSide,
    },
    /// An account, as the change left it.
    Account {
        /// The account.
        id: String,
        /// Its status.
        status: AccountStatus,
        /// Its overdraft limit.
        overdraft_limit: i64,
        /// The version the change carried.
        version: i64,
    },
}

/// An event to append in the transaction of its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// What it reports.
    pub kind: EventKind,
    /// When (µs): the entries' time for a transfer, so it never decreases
    /// per account.
    pub occurred_at: i64,
    /// The change.
    pub change: Change,
}

impl BatchState {
    /// The events of what this batch wrote, in its order: one per pair of
    /// entries (a new record's, or an expired hold's).
    pub fn events(&self) -> Vec<NewEvent> {
        let created: HashMap<&str, (Kind, Status)> =
            self.created.iter().map(|t| (t.id.as_str(), (t.kind, t.status))).collect();
        let mut events = Vec::with_capacity(self.entries.len() / 2);
        // `write_entries` pushes a debit and a credit entry per change.
        let pairs = self.entries.windows(2).filter(|pair| {
            pair[0].transfer_id == pair[1].transfer_id && pair[0].side == Side::Debit && pair[1].side == Side::Credit
        });
        for [debit, credit] in pairs.filter_map(|pair| <&[Entry; 2]>::try_from(pair).ok()) {
            let (kind, status) = match created.get(debit.transfer_id.as_str()) {
                Some((Kind::Pending, status)) => (EventKind::TransferPending, *status),
                Some((Kind::VoidPending, status)) => (EventKind::PendingVoided, *status),
                Some((_, status)) => (EventKind::TransferPosted, *status),
                // Entries for a record not created here: the sweeper released a hold.
                None => (EventKind::PendingExpired, Status::Expired),
            };
            events.push(NewEvent {
                kind,
                occurred_at: debit.created_at.max(credit.created_at),
                change: Change::Transfer {
                    id: debit.transfer_id.clone(),
                    status,
                    debit: EventSide { account_id: debit.account_id.clone(), account_sequence: debit.account_sequence },
                    credit: EventSide {
                        account_id: credit.account_id.clone(),
                        account_sequence: credit.account_sequence,
                    },
                },
            });
        }
        events
    }
}

/// A committed event as a reader gets it back, with what it names.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// Its place in the event order.
    pub position: i64,
    /// What it reports.
    pub kind: EventKind,
    /// When (µs).
    pub occurred_at: i64,
    /// The change, with the records it names.
    pub body: RecordedBody,
}

/// The records an event names, as they were right after the change.
#[derive(Debug, Clone)]
pub enum RecordedBody {
    /// A transfer event.
    Transfer {
        /// The record, with its status at the time (boxed: the larger variant).
        transfer: Box<super::Transfer>,
        /// The debit entry and the debited account's totals after it.
        debit: (EventSide, super::Totals),
        /// The credit entry and the credited account's totals after it.
        credit: (EventSide, super::Totals),
    },
    /// An account event.
    Account {
        /// The account.
        id: String,
        /// Its status.
        status: AccountStatus,
        /// Its overdraft limit.
        overdraft_limit: i64,
        /// The version the change carried.
        version: i64,
    },
}
