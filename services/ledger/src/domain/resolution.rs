//! Posting or voiding a hold: once, before its deadline, by its initiator
//! (or an operator, or `ledger:write`), on the hold's own accounts.

use folio_errors::{FolioError, Reason};

use super::{Actor, BatchState, Kind, Resolution, Resolve, Side, Status, Transfer, fail};

impl BatchState {
    /// `POST_PENDING` (all or part of the hold; the rest is released) or
    /// `VOID_PENDING` (all of it released).
    pub(super) fn apply_resolution(&mut self, resolution: &Resolution, actor: &Actor) -> Result<Transfer, FolioError> {
        let request = &resolution.request;
        let hold = match self.transfers.get(&resolution.pending_id) {
            Some(hold) if hold.kind == Kind::Pending => hold.clone(),
            _ => return Err(fail(Reason::PendingTransferNotFound, "no such pending transfer")),
        };
        actor.may_resolve(&hold)?;
        if let Some(repeat) = self.repeated(&request.id, &request.request_hash) {
            return repeat;
        }
        matches_hold(resolution, &hold)?;
        self.require_open(&hold)?;
        let posted = match resolution.action {
            Resolve::Post(None) => hold.amount,
            Resolve::Post(Some(amount)) if amount > hold.amount => {
                return Err(fail(Reason::AmountExceedsPending, "the amount exceeds the pending amount"));
            }
            Resolve::Post(Some(amount)) => amount,
            Resolve::Void => 0,
        };
        let debit = self.account(&hold.debit_account_id)?;
        let credit = self.account(&hold.credit_account_id)?;
        debit.require_active()?;
        credit.require_active()?;
        let debit_after = debit.totals.after_release(Side::Debit, hold.amount, posted)?;
        let credit_after = credit.totals.after_release(Side::Credit, hold.amount, posted)?;
        debit.allows(&debit_after)?;
        credit_after.check()?;
        let (record_status, hold_status, amount) = match resolution.action {
            Resolve::Post(_) => (Status::Posted, Status::PostedFromPending, posted),
            Resolve::Void => (Status::Voided, Status::Voided, hold.amount),
        };
        let transfer = Transfer {
            id: request.id.clone(),
            sequence: 0,
            debit_account_id: hold.debit_account_id.clone(),
            credit_account_id: hold.credit_account_id.clone(),
            amount,
            asset_code: hold.asset_code.clone(),
            kind: resolution.kind(),
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

    /// The hold is open and not past its deadline (the database clock),
    /// whether or not the sweeper has run.
    fn require_open(&self, hold: &Transfer) -> Result<(), FolioError> {
        match hold.status {
            Status::Pending if hold.expires_at.is_some_and(|at| at <= self.now) => {
                Err(fail(Reason::PendingTransferExpired, "the pending transfer has expired"))
            }
            Status::Pending => Ok(()),
            Status::Expired => Err(fail(Reason::PendingTransferExpired, "the pending transfer has expired")),
            _ => Err(fail(Reason::PendingTransferAlreadyResolved, "the pending transfer was already posted or voided")),
        }
    }
}

/// Accounts and asset may be left out; given, they must be the hold's.
fn matches_hold(resolution: &Resolution, hold: &Transfer) -> Result<(), FolioError> {
    for (given, actual, field) in [
        (&resolution.debit_account_id, &hold.debit_account_id, "debit_account_id"),
        (&resolution.credit_account_id, &hold.credit_account_id, "credit_account_id"),
    ] {
        if given.as_ref().is_some_and(|given| given != actual) {
            return Err(FolioError::invalid_field(field, "does not match the pending transfer"));
        }
    }
    if resolution.asset_code.as_ref().is_some_and(|asset| *asset != hold.asset_code) {
        return Err(fail(Reason::AssetMismatch, "the asset does not match the pending transfer"));
    }
    Ok(())
}
