//! Transfers: kinds, statuses, validated requests, committed transfers and
//! the totals they move.

use std::collections::BTreeMap;

/// What a transfer does (stored as SMALLINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Moves money at once.
    Posted = 1,
    /// Holds money until posted, voided or expired.
    Pending = 2,
    /// Posts (part of) a hold.
    PostPending = 3,
    /// Releases a hold.
    VoidPending = 4,
}

/// Where a transfer stands (stored as SMALLINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Final.
    Posted = 1,
    /// An open hold.
    Pending = 2,
    /// A posted hold.
    PostedFromPending = 3,
    /// A voided hold, or a void record.
    Voided = 4,
    /// A hold that expired.
    Expired = 5,
}

/// The side of an entry (stored as SMALLINT, proto numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Debited.
    Debit = 1,
    /// Credited.
    Credit = 2,
}

from_i16!(Kind { Posted, Pending, PostPending, VoidPending });
from_i16!(Status { Posted, Pending, PostedFromPending, Voided, Expired });
from_i16!(Side { Debit, Credit });

/// A transfer request after field validation (UUIDs normalised, amounts
/// positive where required, limits checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// Idempotency key.
    pub id: String,
    /// Empty for post/void when not given.
    pub debit_account_id: String,
    /// Empty for post/void when not given.
    pub credit_account_id: String,
    /// Minor units (0 = all of the hold, for a post).
    pub amount: i64,
    /// Empty for post/void when not given.
    pub asset_code: String,
    /// What it does.
    pub kind: Kind,
    /// The hold, for post/void.
    pub pending_id: String,
    /// Pending only.
    pub timeout_seconds: i64,
    /// Free text.
    pub description: String,
    /// Client data.
    pub metadata: BTreeMap<String, String>,
    /// Digest of every client-set field, to recognise a repeated request.
    pub request_hash: String,
}

/// A committed transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The client's id.
    pub id: String,
    /// Unique, increasing per writer.
    pub sequence: i64,
    /// Debited account.
    pub debit_account_id: String,
    /// Credited account.
    pub credit_account_id: String,
    /// Amount moved, held, or (for a post) posted.
    pub amount: i64,
    /// Asset.
    pub asset_code: String,
    /// Kind.
    pub kind: Kind,
    /// For post/void: the hold.
    pub pending_id: Option<String>,
    /// For pending: requested timeout.
    pub timeout_seconds: i64,
    /// For pending: deadline (µs).
    pub expires_at: Option<i64>,
    /// Free text.
    pub description: String,
    /// Client data.
    pub metadata: BTreeMap<String, String>,
    /// Status.
    pub status: Status,
    /// Commit time (µs, database clock).
    pub created_at: i64,
    /// The principal that created it.
    pub initiated_by: String,
    /// For a reversal: the original.
    pub reverses_transfer_id: Option<String>,
    /// Digest of the request that created it.
    pub request_hash: String,
}
