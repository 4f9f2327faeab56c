//! Reversing a posted transfer: a new posted transfer with the sides
//! swapped, under the usual balance rules, at most once per original.

use folio_errors::{FolioError, Reason};

use super::{Actor, BatchState, Kind, Movement, Request, Status, Transfer, fail};

impl BatchState {
    /// Reverses `original_id` as the new transfer `id`.
    pub(super) fn apply_reversal(
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
        let swapped = Movement {
            request: Request {
                id: id.to_owned(),
                description: description.to_owned(),
                metadata: Default::default(),
                request_hash: request_hash.to_owned(),
            },
            debit_account_id: original.credit_account_id.clone(),
            credit_account_id: original.debit_account_id.clone(),
            amount: original.amount,
            asset_code: original.asset_code.clone(),
            hold_seconds: None,
        };
        // Reversals are for operators and `ledger:write`, checked at the edge;
        // they act on the original's accounts whoever owns them.
        let mut transfer = self.apply_new(&swapped, &actor.acting_for_ledger())?;
        transfer.reverses_transfer_id = Some(original_id.to_owned());
        self.mark_reversal(id, original_id);
        Ok(transfer)
    }
}
