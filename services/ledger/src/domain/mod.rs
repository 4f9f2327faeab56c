//! The ledger's domain (DESIGN §3): accounts, transfers, totals, who may
//! act, and the rules a write batch applies, with no I/O, protobuf or SQL.
//! The writer loads and locks rows into a [`BatchState`], these rules
//! decide each operation in memory, and the store writes the outcome.

use folio_errors::{FolioError, Reason};

/// `from_i16` for enums stored as SMALLINT.
macro_rules! from_i16 {
    ($ty:ident { $($variant:ident),* }) => {
        impl $ty {
            /// From the stored SMALLINT.
            pub fn from_i16(value: i16) -> Option<Self> {
                $(if value == $ty::$variant as i16 { return Some($ty::$variant); })*
                None
            }
        }
    };
}

mod account;
mod actor;
mod asset;
mod batch;
mod event;
mod expiry;
mod movement;
mod resolution;
mod reversal;
mod statement;
mod totals;
mod transfer;

#[cfg(test)]
pub(crate) mod tests;

pub use account::{Account, AccountChange, AccountKind, AccountStatus};
pub use actor::Actor;
pub use asset::Asset;
pub use batch::{BatchState, Entry, Op};
pub use event::{Change, EventKind, EventSide, NewEvent, RecordedBody, RecordedEvent};
pub use statement::{BalanceAt, StatementLine, StatementQuery};
pub use totals::Totals;
pub use transfer::{Kind, Movement, NewTransfer, Request, Resolution, Resolve, Side, Status, Transfer};

fn fail(reason: Reason, message: &str) -> FolioError {
    FolioError::new(reason, message)
}

fn overflow() -> FolioError {
    FolioError::new(Reason::InvalidAmount, "the amount would overflow an account total")
}
