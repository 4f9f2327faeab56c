//! The account service's domain: an account as this service keeps it, who
//! may see and change it, and the rules a request must pass, with no I/O,
//! protobuf or SQL. The ledger is authoritative for status, limits and
//! money; this service owns who an account belongs to.

mod account;
mod caller;
mod changes;
mod new_account;

#[cfg(test)]
mod tests;

pub use account::{Account, AccountKind, AccountStatus, LedgerState, stale_etag};
pub use caller::Caller;
pub use changes::{Changes, ValidChanges};
pub use new_account::{AccountRequest, NewAccount};
