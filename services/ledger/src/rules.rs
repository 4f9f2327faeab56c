//! The ledger's rules, applied in memory to the rows a write batch has
//! locked: authorization, idempotency, account and hold checks, balance
//! limits with checked arithmetic. Every change is journaled so a failed
//! operation (or a failed atomic group) is undone without touching its
//! neighbours. No I/O here: the writer loads rows, this decides, the writer
//! stores.

use std::collections::{HashMap, HashSet};

use folio_common::error::{FolioError, Reason};

use crate::authz::Actor;
use crate::model::{AccountKind, AccountStatus, Kind, NewTransfer, Side, Status, Totals, Transfer};

/// An account row as locked for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Id.
    pub id: String,
    /// Owner (user id).
    pub owner_id: String,
    /// Asset.
    pub asset_code: String,
    /// Customer or system.
    pub kind: AccountKind,
    /// Active, frozen, closed.
    pub status: AccountStatus,
    /// Customers may go this far below zero.
    pub overdraft_limit: i64,
    /// Running totals.
    pub totals: Totals,
    /// Entries so far (the last `account_sequence`).
    pub entry_count: i64,
    /// Time of the last entry (µs): entries never go back in time.
    pub last_entry_at: i64,
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
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
            Op::Transfer(request) => Some(&request.id),
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
    pub accounts: HashMap<String, AccountRow>,
    /// Transfers known by id: existing ones loaded, plus those created here.
    pub transfers: HashMap<String, Transfer>,
    /// Originals that already have a reversal.
    pub reversed: HashSet<String>,
    /// New transfers, in order.
    pub created: Vec<Transfer>,
    /// New entries, in order.
    pub entries: Vec<EntryRow>,
    /// Holds whose status changed.
    pub resolved_holds: HashMap<String, Status>,
    /// Accounts changed.
    pub touched: HashSet<String>,
    undo: Vec<Undo>,
}

enum Undo {
    Account(AccountRow),
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

fn fail(reason: Reason, message: &str) -> FolioError {
    FolioError::new(reason, message)
}

fn overflow() -> FolioError {
    FolioError::new(Reason::InvalidAmount, "the amount would overflow an account total")
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
            Op::Transfer(request) => match request.kind {
                Kind::Posted | Kind::Pending => self.apply_new(request, actor).map(Some),
                Kind::PostPending | Kind::VoidPending => self.apply_resolution(request, actor).map(Some),
            },
            Op::Reverse { id, original, description, request_hash } => {
                self.apply_reversal(id, original, description, request_hash, actor).map(Some)
            }
            Op::Expire(hold) => self.apply_expiry(hold).map(|()| None),
        }
    }

    fn account(&self, id: &str) -> Result<&AccountRow, FolioError> {
        self.accounts.get(id).ok_or_else(|| fail(Reason::AccountNotFound, "no such account"))
    }

    /// The original for a repeated id, or `TRANSFER_ID_REUSED`.
    fn repeated(&self, id: &str, request_hash: &str) -> Option<Result<Transfer, FolioError>> {
        let existing = self.transfers.get(id)?;
        Some(if existing.request_hash == request_hash {
            Ok(existing.clone())
        } else {
            Err(fail(Reason::TransferIdReused, "this transfer id was used with other fields"))
        })
    }

    fn apply_new(&mut self, request: &NewTransfer, actor: &Actor) -> Result<Transfer, FolioError> {
        let debit = self.account(&request.debit_account_id)?;
        actor.may_move_from(debit)?;
        if let Some(repeat) = self.repeated(&request.id, &request.request_hash) {
            return repeat;
        }
        let credit = self.account(&request.credit_account_id)?;
        if debit.asset_code != request.asset_code || credit.asset_code != request.asset_code {
            if !self.assets.contains(&request.asset_code) {
                return Err(fail(Reason::AssetNotFound, "no such asset"));
            }
            return Err(fail(Reason::AssetMismatch, "both accounts must hold the transfer's asset"));
        }
        require_active(debit)?;
        require_active(credit)?;
        let (debit_after, credit_after) = match request.kind {
            Kind::Posted => (
                Totals {
                    debits_posted: debit.totals.debits_posted.checked_add(request.amount).ok_or_else(overflow)?,
                    ..debit.totals
                },
                Totals {
                    credits_posted: credit.totals.credits_posted.checked_add(request.amount).ok_or_else(overflow)?,
                    ..credit.totals
                },
            ),
            _ => (
                Totals {
                    debits_pending: debit.totals.debits_pending.checked_add(request.amount).ok_or_else(overflow)?,
                    ..debit.totals
                },
                Totals {
                    credits_pending: credit.totals.credits_pending.checked_add(request.amount).ok_or_else(overflow)?,
                    ..credit.totals
                },
            ),
        };
        check_limit(debit, &debit_after)?;
        check_totals(&credit_after)?;
        let status = if request.kind == Kind::Posted { Status::Posted } else { Status::Pending };
        let expires_at = (request.kind == Kind::Pending)
            .then(|| self.now.saturating_add(request.timeout_seconds.saturating_mul(1_000_000)));
        let transfer = Transfer {
            id: request.id.clone(),
            sequence: 0,
            debit_account_id: request.debit_account_id.clone(),
            credit_account_id: request.credit_account_id.clone(),
            amount: request.amount,
            asset_code: request.asset_code.clone(),
            kind: request.kind,
            pending_id: None,
            timeout_seconds: request.timeout_seconds,
            expires_at,
            description: request.description.clone(),
            metadata: request.metadata.clone(),
            status,
            created_at: self.now,
            initiated_by: actor.subject.clone(),
            reverses_transfer_id: None,
            request_hash: request.request_hash.clone(),
        };
        self.commit_movement(transfer, debit_after, credit_after)
    }

    fn apply_resolution(&mut self, request: &NewTransfer, actor: &Actor) -> Result<Transfer, FolioError> {
        let hold = match self.transfers.get(&request.pending_id) {
            Some(hold) if hold.kind == Kind::Pending => hold.clone(),
            _ => return Err(fail(Reason::PendingTransferNotFound, "no such pending transfer")),
        };
        actor.may_resolve(&hold)?;
        if let Some(repeat) = self.repeated(&request.id, &request.request_hash) {
            return repeat;
        }
        for (given, actual, field) in [
            (&request.debit_account_id, &hold.debit_account_id, "debit_account_id"),
            (&request.credit_account_id, &hold.credit_account_id, "credit_account_id"),
        ] {
            if !given.is_empty() && given != actual {
                return Err(FolioError::invalid_field(field, "does not match the pending transfer"));
            }
        }
        if !request.asset_code.is_empty() && request.asset_code != hold.asset_code {
            return Err(fail(Reason::AssetMismatch, "the asset does not match the pending transfer"));
        }
        match hold.status {
            Status::Pending if hold.expires_at.is_some_and(|at| at <= self.now) => {
                return Err(fail(Reason::PendingTransferExpired, "the pending transfer has expired"));
            }
            Status::Pending => {}
            Status::Expired => return Err(fail(Reason::PendingTransferExpired, "the pending transfer has expired")),
            _ => {
                return Err(fail(
                    Reason::PendingTransferAlreadyResolved,
                    "the pending transfer was already posted or voided",
                ));
            }
        }
        let posted = match request.kind {
            Kind::PostPending if request.amount == 0 => hold.amount,
            Kind::PostPending if request.amount > hold.amount => {
                return Err(fail(Reason::AmountExceedsPending, "the amount exceeds the pending amount"));
            }
            Kind::PostPending => request.amount,
            _ => 0,
        };
        let debit = self.account(&hold.debit_account_id)?;
        let credit = self.account(&hold.credit_account_id)?;
        require_active(debit)?;
        require_active(credit)?;
        let debit_after = Totals {
            debits_pending: debit.totals.debits_pending.checked_sub(hold.amount).ok_or_else(overflow)?,
            debits_posted: debit.totals.debits_posted.checked_add(posted).ok_or_else(overflow)?,
            ..debit.totals
        };
        let credit_after = Totals {
            credits_pending: credit.totals.credits_pending.checked_sub(hold.amount).ok_or_else(overflow)?,
            credits_posted: credit.totals.credits_posted.checked_add(posted).ok_or_else(overflow)?,
            ..credit.totals
        };
        check_limit(debit, &debit_after)?;
        check_totals(&credit_after)?;
        let (record_status, hold_status) = match request.kind {
            Kind::PostPending => (Status::Posted, Status::PostedFromPending),
            _ => (Status::Voided, Status::Voided),
        };
        let transfer = Transfer {
            id: request.id.clone(),
            sequence: 0,
            debit_account_id: hold.debit_account_id.clone(),
            credit_account_id: hold.credit_account_id.clone(),
            amount: if request.kind == Kind::PostPending { posted } else { hold.amount },
            asset_code: hold.asset_code.clone(),
            kind: request.kind,
            pending_id: Some(hold.id.clone()),
            timeout_seconds: 0,
            expires_at: None,
            description: request.description.clone(),
            metadata: request.metadata.clone(),
            status: record_status,
            created_at: self.now,
            initiated_by: actor.subject.clone(),
            reverses_transfer_id: None,
            request_hash: request.request_hash.clone(),
        };
        self.set_hold_status(&hold.id, hold_status);
        self.commit_movement(transfer, debit_after, credit_after)
    }

    fn apply_reversal(
        &mut self,
        id: &str,
        original_id: &str,
        description: &str,
        request_hash: &str,
        actor: &Actor,
    ) -> Result<Transfer, FolioError> {
        if let Some(repeat) = self.repeated(id, request_hash) {
            return repeat;
        }
        let original = self
            .transfers
            .get(original_id)
            .cloned()
            .ok_or_else(|| fail(Reason::TransferNotFound, "no such transfer"))?;
        if original.status != Status::Posted || original.kind == Kind::VoidPending {
            return Err(fail(Reason::NotReversible, "only posted transfers can be reversed"));
        }
        if self.reversed.contains(original_id) {
            return Err(fail(Reason::AlreadyReversed, "this transfer was already reversed"));
        }
        let request = NewTransfer {
            id: id.to_owned(),
            debit_account_id: original.credit_account_id.clone(),
            credit_account_id: original.debit_account_id.clone(),
            amount: original.amount,
            asset_code: original.asset_code.clone(),
            kind: Kind::Posted,
            pending_id: String::new(),
            timeout_seconds: 0,
            description: description.to_owned(),
            metadata: Default::default(),
            request_hash: request_hash.to_owned(),
        };
        // Reversals are for operators and `ledger:write`, checked at the edge;
        // they act on the original's accounts whoever owns them.
        let mut transfer = self.apply_new(&request, &actor.acting_for_ledger())?;
        if let Some(created) = self.created.last_mut() {
            created.reverses_transfer_id = Some(original_id.to_owned());
            transfer.reverses_transfer_id = Some(original_id.to_owned());
        }
        if let Some(known) = self.transfers.get_mut(id) {
            known.reverses_transfer_id = Some(original_id.to_owned());
        }
        self.reversed.insert(original_id.to_owned());
        self.undo.push(Undo::Reversed(original_id.to_owned()));
        Ok(transfer)
    }

    fn apply_expiry(&mut self, hold_id: &str) -> Result<(), FolioError> {
        let Some(hold) = self.transfers.get(hold_id).cloned() else { return Ok(()) };
        let due = hold.expires_at.is_some_and(|at| at <= self.now);
        if hold.kind != Kind::Pending || hold.status != Status::Pending || !due {
            // Resolved meanwhile, or another replica's sweeper was first.
            return Ok(());
        }
        let debit = self.account(&hold.debit_account_id)?.clone();
        let credit = self.account(&hold.credit_account_id)?.clone();
        let debit_after = Totals {
            debits_pending: debit.totals.debits_pending.checked_sub(hold.amount).ok_or_else(overflow)?,
            ..debit.totals
        };
        let credit_after = Totals {
            credits_pending: credit.totals.credits_pending.checked_sub(hold.amount).ok_or_else(overflow)?,
            ..credit.totals
        };
        self.set_hold_status(hold_id, Status::Expired);
        self.write_entries(hold_id, &debit.id, debit_after, &credit.id, credit_after);
        Ok(())
    }

    fn set_hold_status(&mut self, hold_id: &str, status: Status) {
        if let Some(hold) = self.transfers.get_mut(hold_id) {
            self.undo.push(Undo::TransferStatus(hold_id.to_owned(), hold.status));
            hold.status = status;
        }
        let previous = self.resolved_holds.insert(hold_id.to_owned(), status);
        self.undo.push(Undo::Resolved(hold_id.to_owned(), previous));
    }

    fn commit_movement(
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

    fn write_entries(
        &mut self,
        transfer_id: &str,
        debit_id: &str,
        debit_after: Totals,
        credit_id: &str,
        credit_after: Totals,
    ) {
        for (account_id, side, after) in [(debit_id, Side::Debit, debit_after), (credit_id, Side::Credit, credit_after)]
        {
            let Some(account) = self.accounts.get_mut(account_id) else { continue };
            self.undo.push(Undo::Account(account.clone()));
            if self.touched.insert(account_id.to_owned()) {
                self.undo.push(Undo::Touched(account_id.to_owned()));
            }
            account.totals = after;
            account.entry_count += 1;
            // Entries of one account never go back in time, even when an
            // earlier-started transaction commits after a later one.
            account.last_entry_at = account.last_entry_at.max(self.now);
            self.entries.push(EntryRow {
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

fn require_active(account: &AccountRow) -> Result<(), FolioError> {
    match account.status {
        AccountStatus::Active => Ok(()),
        AccountStatus::Frozen => {
            Err(fail(Reason::AccountFrozen, "the account is frozen").with_metadata("account_id", account.id.clone()))
        }
        AccountStatus::Closed => {
            Err(fail(Reason::AccountClosed, "the account is closed").with_metadata("account_id", account.id.clone()))
        }
    }
}

/// A customer's available balance never goes below minus its overdraft limit.
fn check_limit(account: &AccountRow, after: &Totals) -> Result<(), FolioError> {
    let available = after.available().ok_or_else(overflow)?;
    check_totals(after)?;
    if account.kind == AccountKind::Customer
        && available < account.overdraft_limit.checked_neg().ok_or_else(overflow)?
    {
        return Err(
            fail(Reason::InsufficientFunds, "insufficient funds").with_metadata("account_id", account.id.clone())
        );
    }
    Ok(())
}

fn check_totals(totals: &Totals) -> Result<(), FolioError> {
    totals.available().map(|_| ()).ok_or_else(overflow)
}
