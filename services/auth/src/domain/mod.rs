//! Auth's domain rules, free of gRPC and SQL details.

pub mod keyring;
pub mod lockout;
pub mod password_hasher;
pub mod password_policy;
pub mod tokens;
