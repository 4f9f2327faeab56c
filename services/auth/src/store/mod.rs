//! Persistence of the `auth` schema.

pub mod audit;
pub mod entities;
pub mod revocations;
