//! What reads answer: statement lines and their filters, balances at a moment.

use super::{Side, Status, Totals, Transfer};

/// One statement line.
#[derive(Debug, Clone)]
pub struct StatementLine {
    /// The transfer.
    pub transfer: Transfer,
    /// The account's side.
    pub side: Side,
    /// Position in the account.
    pub account_sequence: i64,
    /// Totals after.
    pub totals: Totals,
    /// When (µs).
    pub created_at: i64,
}

/// A balance at a moment.
#[derive(Debug, Clone)]
pub struct BalanceAt {
    /// Asset.
    pub asset_code: String,
    /// Totals.
    pub totals: Totals,
    /// The moment (µs).
    pub as_of: i64,
}

/// Statement filters.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    /// Entries at or after (µs).
    pub start: Option<i64>,
    /// Entries before (µs).
    pub end: Option<i64>,
    /// Only transfers in this status.
    pub status: Option<Status>,
    /// Page size.
    pub limit: u64,
    /// Continue after this account sequence.
    pub after_sequence: i64,
}
