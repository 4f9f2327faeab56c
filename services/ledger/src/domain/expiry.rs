//! The sweeper's release of a hold past its deadline (database clock).

use folio_errors::FolioError;

use super::{BatchState, Kind, Side, Status};

impl BatchState {
    /// Releases `hold_id` if it is still open and due; otherwise nothing
    /// (resolved meanwhile, or another replica's sweeper was first).
    pub(super) fn apply_expiry(&mut self, hold_id: &str) -> Result<(), FolioError> {
        let Some(hold) = self.transfers.get(hold_id).cloned() else { return Ok(()) };
        let due = hold.expires_at.is_some_and(|at| at <= self.now);
        if hold.kind != Kind::Pending || hold.status != Status::Pending || !due {
            return Ok(());
        }
        let debit = self.account(&hold.debit_account_id)?;
        let credit = self.account(&hold.credit_account_id)?;
        let debit_after = debit.totals.after_release(Side::Debit, hold.amount, 0)?;
        let credit_after = credit.totals.after_release(Side::Credit, hold.amount, 0)?;
        self.set_hold_status(hold_id, Status::Expired);
        self.write_entries(hold_id, &hold.debit_account_id, debit_after, &hold.credit_account_id, credit_after);
        Ok(())
    }
}
