//! SQL of the `auth` schema: every statement, answering domain values.

pub mod audit;
mod entities;
pub mod revocations;
pub mod service_accounts;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use sea_orm::{ConnectionTrait, DbErr};

/// The database's clock (µs): one clock for every replica.
pub async fn now(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    folio_storage::db::now(db).await.map(|at| at.timestamp_micros())
}
