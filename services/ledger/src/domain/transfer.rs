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
/// positive where required, limits checked): money moved or held, or a
/// hold resolved. Each kind carries only the fields it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewTransfer {
    /// `POSTED` or `PENDING`.
    Movement(Movement),
    /// `POST_PENDING` or `VOID_PENDING`.
    Resolution(Resolution),
}

impl NewTransfer {
    /// The idempotency key.
    pub fn id(&self) -> &str {
        match self {
            NewTransfer::Movement(movement) => &movement.request.id,
            NewTransfer::Resolution(resolution) => &resolution.request.id,
        }
    }
}

impl From<Movement> for NewTransfer {
    fn from(movement: Movement) -> Self {
        NewTransfer::Movement(movement)
    }
}

impl From<Resolution> for NewTransfer {
    fn from(resolution: Resolution) -> Self {
        NewTransfer::Resolution(resolution)
    }
}

/// What every request carries besides what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Idempotency key.
    pub id: String,
    /// Free text.
    pub description: String,
    /// Client data.
    pub metadata: BTreeMap<String, String>,
    /// Digest of every client-set field, to recognise a repeated request.
    pub request_hash: String,
}

/// Money moved at once, or held until posted, voided or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// Idempotency key and the rest every request carries.
    pub request: Request,
    /// Debited account.
    pub debit_account_id: String,
    /// Credited account (never the debited one).
    pub credit_account_id: String,
    /// Minor units, > 0.
    pub amount: i64,
    /// Asset both accounts hold.
    pub asset_code: String,
    /// `Some(timeout in seconds)` for a hold (`PENDING`), `None` for `POSTED`.
    pub hold_seconds: Option<i64>,
}

impl Movement {
    /// `POSTED` or `PENDING`.
    pub fn kind(&self) -> Kind {
        if self.hold_seconds.is_some() { Kind::Pending } else { Kind::Posted }
    }
}

/// A hold posted (all or part of it) or voided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Idempotency key and the rest every request carries.
    pub request: Request,
    /// The hold.
    pub pending_id: String,
    /// Post or void.
    pub action: Resolve,
    /// If given, must be the hold's.
    pub debit_account_id: Option<String>,
    /// If given, must be the hold's.
    pub credit_account_id: Option<String>,
    /// If given, must be the hold's.
    pub asset_code: Option<String>,
}

/// What a resolution does to its hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Posts `Some(amount)` (at most the held amount) or, `None`, all of it;
    /// the rest is released.
    Post(Option<i64>),
    /// Releases all of it.
    Void,
}

impl Resolution {
    /// `POST_PENDING` or `VOID_PENDING`.
    pub fn kind(&self) -> Kind {
        match self.action {
            Resolve::Post(_) => Kind::PostPending,
            Resolve::Void => Kind::VoidPending,
        }
    }
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
