//! Ledger events (DESIGN "Ledger events"): one row per committed change,
//! written in the transaction of the change, and the head of the event log.
//!
//! An event's `id` is its place in the one total order consumers read. It
//! is not a sequence: it is `event_log.last_position` plus one, taken by the
//! writing transaction as its LAST step and held (the row lock) until it
//! commits. So ids are dense and handed out in commit order, and a reader
//! whose snapshot shows `last_position = H` sees every event up to H and
//! none above it (see `store/events.rs`).
//!
//! A transfer event names its record and both entries; the reader joins
//! them (a few primary-key lookups) instead of the writer copying them.
//! The record's status at the time travels with the event, since a hold's
//! status changes later. An account event carries the account's state.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Ids compare with `transfers.id` and `entries.account_id` in joins, so on
/// PostgreSQL they share those columns' collation (see m0002).
fn tables(id: &str) -> String {
    format!(
        "CREATE TABLE events ( \
           id BIGINT NOT NULL PRIMARY KEY, \
           type SMALLINT NOT NULL, \
           occurred_at BIGINT NOT NULL, \
           transfer_id {id} NULL, \
           transfer_status SMALLINT NOT NULL, \
           debit_account_id {id} NULL, \
           debit_sequence BIGINT NOT NULL, \
           credit_account_id {id} NULL, \
           credit_sequence BIGINT NOT NULL, \
           account_id {id} NULL, \
           account_status SMALLINT NOT NULL, \
           overdraft_limit BIGINT NOT NULL, \
           version BIGINT NOT NULL); \
         CREATE TABLE event_log ( \
           id SMALLINT NOT NULL PRIMARY KEY, \
           last_position BIGINT NOT NULL); \
         INSERT INTO event_log (id, last_position) VALUES (1, 0)"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let id = if db.get_database_backend() == DbBackend::Postgres { "varchar COLLATE \"C\"" } else { "varchar" };
        // One string, so every statement runs on one connection (see m0002).
        db.execute_unprepared(&tables(id)).await?;
        Ok(())
    }
}
