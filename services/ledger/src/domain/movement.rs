//! New money movements (`POSTED`, `PENDING`, and the posted side of a
//! reversal): who may, idempotency, the accounts' checks, the balance limit.

use folio_errors::{FolioError, Reason};

use super::{Actor, BatchState, Movement, Side, Status, Transfer, fail};

impl BatchState {
    /// Moves (or, for `PENDING`, holds) the amount from the debit account
    /// to the credit account.
    pub(super) fn apply_new(&mut self, movement: &Movement, actor: &Actor) -> Result<Transfer, FolioError> {
        let Movement { request, debit_account_id, credit_account_id, amount, asset_code, hold_seconds } = movement;
        // Checked at the edge too; here because one account on both sides
        // would have its debit overwritten by its credit (money made up).
        if debit_account_id == credit_account_id {
            return Err(fail(Reason::SameAccount, "debit and credit accounts must differ"));
        }
        let debit = self.account(debit_account_id)?;
        actor.may_move_from(debit)?;
        // Idempotency right after authorization: a repeat returns the
        // original even if the accounts changed since.
        if let Some(repeat) = self.repeated(&request.id, &request.request_hash) {
            return repeat;
        }
        let credit = self.account(credit_account_id)?;
        if debit.asset_code != *asset_code || credit.asset_code != *asset_code {
            if !self.assets.contains(asset_code) {
                return Err(fail(Reason::AssetNotFound, "no such asset"));
            }
            return Err(fail(Reason::AssetMismatch, "both accounts must hold the transfer's asset"));
        }
        debit.require_active()?;
        credit.require_active()?;
        let held = hold_seconds.is_some();
        let debit_after = debit.totals.after_move(Side::Debit, *amount, held)?;
        let credit_after = credit.totals.after_move(Side::Credit, *amount, held)?;
        debit.allows(&debit_after)?;
        credit_after.check()?;
        let expires_at = hold_seconds.map(|seconds| self.now.saturating_add(seconds.saturating_mul(1_000_000)));
        let transfer = Transfer {
            id: request.id.clone(),
            sequence: 0,
            debit_account_id: debit_account_id.clone(),
            credit_account_id: credit_account_id.clone(),
            amount: *amount,
            asset_code: asset_code.clone(),
            kind: movement.kind(),
            pending_id: None,
            timeout_seconds: hold_seconds.unwrap_or(0),
            expires_at,
            description: request.description.clone(),
            metadata: request.metadata.clone(),
            status: if held { Status::Pending } else { Status::Posted },
            created_at: self.now,
            initiated_by: actor.subject.clone(),
            reverses_transfer_id: None,
            request_hash: request.request_hash.clone(),
        };
        self.commit_movement(transfer, debit_after, credit_after)
    }
}
