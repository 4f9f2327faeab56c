//! The gRPC adapter: parse requests into domain values, call the use case,
//! convert the answer back. Nothing else.

pub mod account;
mod convert;
