//! Auth's domain: the records it keeps, the rules for their fields, the
//! password policy and hashing, the tokens it issues and the sealing of its
//! signing keys; no gRPC, no SQL.

pub mod fields;
pub mod kek;
pub mod password_hasher;
pub mod password_policy;
pub mod records;
pub mod tokens;
