//! The gRPC adapters: parse requests into domain values, call the app or
//! the store, convert the answers back. Nothing else.

pub mod admin;
pub mod convert;
pub mod events;
pub mod ledger;
pub mod parse;
pub mod relay;
pub mod tail;
