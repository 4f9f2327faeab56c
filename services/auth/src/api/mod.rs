//! The gRPC adapters: read the caller and the request, call the use case,
//! convert the answer back. Nothing else.

pub mod auth;
