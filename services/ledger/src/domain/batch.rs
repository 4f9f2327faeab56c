//! A write batch in memory: the rows the writer loaded and locked, what the
//! batch's operations produced so far, and a journal of every change, so a
//! failed operation (or a failed atomic group) is undone without touching
//! its neighbours. The rules themselves are in `movement`, `resolution`,
//! `reversal` and `expiry`. No I/O here: the writer loads rows, the rules
//! decide, the writer stores.

use std::collections::{HashMap, HashSet};

use folio_errors::{FolioError, Reason};

use super::{Account, Actor, NewTransfer, Side, Status, Totals, Transfer, fail};

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Account.
    pub account_id: String,
    /// Gapless position in the account.
    pub account_sequence: i64,
    /// The transfer (for an expiry: the hold).
    pub transfer_id: String,
    /// Side.
    pub side: Side,
    /// Time (µs).
    pub created_at: i64,
    /// Totals after.
    pub totals: Totals,
}

/// What one operation asks for.
#[derive(Debug, Clone)]
pub enum Op {
    /// A client transfer.
    Transfer(NewTransfer),
    /// ReverseTransfer: a posted transfer with the sides of `original` swapped.
    Reverse {
        /// The reversal's id.
        id: String,
        /// The transfer reversed.
        original: String,
        /// Free text.
        description: String,
        /// Digest of the request.
        request_hash: String,
    },
    /// The sweeper releasing a hold past its deadline.
    Expire(String),
}

impl Op {
    /// The id of the transfer this operation would create (none for an expiry).
    pub fn new_id(&self) -> Option<&str> {
        match self {
            Op::Transfer(request) => Some(request.id()),
            Op::Reverse { id, .. } => Some(id),
            Op::Expire(_) => None,
        }
    }
}

/// Rows loaded for a batch, and what the batch produced so far.
#[derive(Default)]
pub struct BatchState {
    /// Database time of the batch (µs).
    pub now: i64,
    /// Registered asset codes (loaded only when a transfer's asset is in doubt).
    pub assets: HashSet<String>,
    /// Locked accounts by id.
    pub accounts: HashMap<String, Account>,
    /// Transfers known by id: existing ones loaded, plus those created here.
    pub transfers: HashMap<String, Transfer>,
    /// Originals that already have a reversal.
    pub reversed: HashSet<String>,
    /// New transfers, in order.
    pub created: Vec<Transfer>,
    /// New entries, in order.
    pub entries: Vec<Entry>,
    /// Holds whose status changed.
    pub resolved_holds: HashMap<String, Status>,
    /// Accounts changed.
    pub touched: HashSet<String>,
    undo: Vec<Undo>,
}

enum Undo {
    Account(Account),
    TransferStatus(String, Status),
    Resolved(String, Option<Status>),
    Created(String),
    Reversed(String),
    Touched(String),
}

/// A point to roll back to.
pub struct Savepoint {
    created: usize,
    entries: usize,
    undo: usize,
}

impl BatchState {
    /// Marks the current state.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint { created: self.created.len(), entries: self.entries.len(), undo: self.undo.len() }
    }

    /// Undoes everything since `savepoint`.
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.undo {
            match self.undo.pop() {
                Some(Undo::Account(row)) => {
                    self.accounts.insert(row.id.clone(), row);
                }
                Some(Undo::TransferStatus(id, status)) => {
                    if let Some(transfer) = self.transfers.get_mut(&id) {
                        transfer.status = status;
                    }
                }
                Some(Undo::Resolved(id, previous)) => match previous {
                    Some(status) => {
                        self.resolved_holds.insert(id, status);
                    }
                    None => {
                        self.resolved_holds.remove(&id);
                    }
                },
                Some(Undo::Created(id)) => {
                    self.transfers.remove(&id);
                }
                Some(Undo::Reversed(id)) => {
                    self.reversed.remove(&id);
                }
                Some(Undo::Touched(id)) => {
                    self.touched.remove(&id);
                }
                None => break,
            }
        }
        self.created.truncate(savepoint.created);
        self.entries.truncate(savepoint.entries);
    }

    /// Applies one operation for `actor`: the transfer it created (or the
    /// original, for a repeated id), `None` for an expiry, or why not.
    pub fn apply(&mut self, op: &Op, actor: &Actor) -> Result<Option<Transfer>, FolioError> {
        match op {
            Op::Transfer(NewTransfer::Movement(movement)) => self.apply_new(movement, actor).map(Some),
            Op::Transfer(NewTransfer::Resolution(resolution)) => self.apply_resolution(resolution, actor).map(Some),
            Op::Reverse { id, original, description, request_hash } => {
                self.apply_reversal(id, original, description, request_hash, actor).map(Some)
            }
            Op::Expire(hold) => self.apply_expiry(hold).map(|()| None),
        }
    }

    pub(super) fn account(&self, id: &str) -> Result<&Account, FolioError> {
        self.accounts.get(id).ok_or_else(|| fail(Reason::AccountNotFound, "no such account"))
    }

    /// The original for a repeated id, or `TRANSFER_ID_REUSED`.
    pub(super) fn repeated(&self, id: &str, request_hash: &str) -> Option<Result<Transfer, FolioError>> {
        let existing = self.transfers.get(id)?;
        Some(if existing.request_hash == request_hash {
            Ok(existing.clone())
        } else {
            Err(fail(Reason::TransferIdReused, "this transfer id was used with other fields"))
        })
    }

    /// Records `id` as the reversal of `original_id` (journaled).
    pub(super) fn mark_reversal(&mut self, id: &str, original_id: &str) {
        if let Some(created) = self.created.last_mut() {
            created.reverses_transfer_id = Some(original_id.to_owned());
        }
        if let Some(known) = self.transfers.get_mut(id) {
            known.reverses_transfer_id = Some(original_id.to_owned());
        }
        self.reversed.insert(original_id.to_owned());
        self.undo.push(Undo::Reversed(original_id.to_owned()));
    }

    pub(super) fn set_hold_status(&mut self, hold_id: &str, status: Status) {
        if let Some(hold) = self.transfers.get_mut(hold_id) {
            self.undo.push(Undo::TransferStatus(hold_id.to_owned(), hold.status));
            hold.status = status;
        }
        let previous = self.resolved_holds.insert(hold_id.to_owned(), status);
        self.undo.push(Undo::Resolved(hold_id.to_owned(), previous));
    }

    pub(super) fn commit_movement(
        &mut self,
        transfer: Transfer,
        debit_after: Totals,
        credit_after: Totals,
    ) -> Result<Transfer, FolioError> {
        let (debit_id, credit_id) = (transfer.debit_account_id.clone(), transfer.credit_account_id.clone());
        self.write_entries(&transfer.id, &debit_id, debit_after, &credit_id, credit_after);
        self.transfers.insert(transfer.id.clone(), transfer.clone());
        self.undo.push(Undo::Created(transfer.id.clone()));
        self.created.push(transfer.clone());
        Ok(transfer)
    }

    pub(super) fn write_entries(
        &mut self,
        transfer_id: &str,
        debit_id: &str,
        debit_after: Totals,
        credit_id: &str,
        credit_after: Totals,
    ) {
        // Entries of one account never go back in time, even when an
        // earlier-started transaction commits after a later one; both sides
        // share one time, so the change's event time never decreases for
        // either account.
        let last = |id: &str| self.accounts.get(id).map_or(0, |account| account.last_entry_at);
        let at = self.now.max(last(debit_id)).max(last(credit_id));
        for (account_id, side, after) in [(debit_id, Side::Debit, debit_after), (credit_id, Side::Credit, credit_after)]
        {
            let Some(account) = self.accounts.get_mut(account_id) else { continue };
            self.undo.push(Undo::Account(account.clone()));
            if self.touched.insert(account_id.to_owned()) {
                self.undo.push(Undo::Touched(account_id.to_owned()));
            }
            account.totals = after;
            account.entry_count += 1;
            account.last_entry_at = at;
            self.entries.push(Entry {
                account_id: account_id.to_owned(),
                account_sequence: account.entry_count,
                transfer_id: transfer_id.to_owned(),
                side,
                created_at: account.last_entry_at,
                totals: after,
            });
        }
    }
}
