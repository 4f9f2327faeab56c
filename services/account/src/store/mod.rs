//! SQL of the account service: accounts, the outbox of openings the ledger
//! has yet to confirm, and the status audit trail. Every statement lives
//! here and answers in domain values.

pub mod accounts;
pub mod audit;
mod entities;
pub mod outbox;

use sea_orm::{ConnectionTrait, DbErr};

/// The database's clock (µs): one clock for every replica.
pub async fn now(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    folio_storage::db::now(db).await.map(|at| at.timestamp_micros())
}

fn corrupt(what: &str, value: impl std::fmt::Debug) -> DbErr {
    DbErr::Custom(format!("stored {what} {value:?} is not one this service writes"))
}
