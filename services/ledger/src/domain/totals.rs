//! An account's four running totals and the balances derived from them,
//! with checked arithmetic: an overflow is a refused amount, never a wrap.

use folio_errors::FolioError;

use super::{Side, overflow};

/// An account's totals, with the derived balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of posted debits.
    pub debits_posted: i64,
    /// Sum of posted credits.
    pub credits_posted: i64,
    /// Sum of held debits.
    pub debits_pending: i64,
    /// Sum of held credits.
    pub credits_pending: i64,
}

impl Totals {
    /// `credits_posted - debits_posted`, or `None` on overflow.
    pub fn posted(&self) -> Option<i64> {
        self.credits_posted.checked_sub(self.debits_posted)
    }

    /// `posted - debits_pending`, or `None` on overflow.
    pub fn available(&self) -> Option<i64> {
        self.posted()?.checked_sub(self.debits_pending)
    }

    /// These totals after `amount` is posted (or, `held`, held) on `side`.
    pub fn after_move(&self, side: Side, amount: i64, held: bool) -> Result<Totals, FolioError> {
        let mut after = *self;
        let total = after.total(side, held);
        *total = total.checked_add(amount).ok_or_else(overflow)?;
        Ok(after)
    }

    /// These totals after a hold of `held` on `side` is released, `posted`
    /// of it posted (0 for a void or an expiry).
    pub fn after_release(&self, side: Side, held: i64, posted: i64) -> Result<Totals, FolioError> {
        let mut after = *self;
        let pending = after.total(side, true);
        *pending = pending.checked_sub(held).ok_or_else(overflow)?;
        let settled = after.total(side, false);
        *settled = settled.checked_add(posted).ok_or_else(overflow)?;
        Ok(after)
    }

    /// Every derived balance is representable.
    pub fn check(&self) -> Result<(), FolioError> {
        self.available().map(|_| ()).ok_or_else(overflow)
    }

    fn total(&mut self, side: Side, held: bool) -> &mut i64 {
        match (side, held) {
            (Side::Debit, false) => &mut self.debits_posted,
            (Side::Credit, false) => &mut self.credits_posted,
            (Side::Debit, true) => &mut self.debits_pending,
            (Side::Credit, true) => &mut self.credits_pending,
        }
    }
}
