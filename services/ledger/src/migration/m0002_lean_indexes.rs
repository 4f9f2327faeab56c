//! Fewer index writes per transfer. Most transfers are plain postings, yet
//! every one of them wrote an entry into three indexes that only holds and
//! reversals need; those become partial indexes over the rows they serve.
//! Entries lose their index by time: reads by time binary-search the
//! sequence instead (see `timeline.rs`), saving two random index writes per
//! transfer.
//! On PostgreSQL the id columns also switch to the "C" collation: ids are
//! lower-case UUID text, whose byte order is their order in any collation,
//! and comparing bytes is cheaper than a locale comparison on every index
//! probe. SQLite compares bytes already, and keeps its column-level unique
//! index on `reverses_transfer_id` (SQLite cannot drop it without rebuilding
//! the table).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `Status::Pending` as stored; a partial index needs the literal.
const PENDING: i16 = 2;

/// Every column holding an id, all in one collation (comparing two columns
/// of different collations is an error in PostgreSQL).
const POSTGRES: &[&str] = &[
    "ALTER TABLE accounts ALTER COLUMN id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN owner_id TYPE varchar COLLATE \"C\"",
    "ALTER TABLE transfers ALTER COLUMN id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN debit_account_id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN credit_account_id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN pending_id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN reverses_transfer_id TYPE varchar COLLATE \"C\"",
    "ALTER TABLE entries ALTER COLUMN account_id TYPE varchar COLLATE \"C\", \
         ALTER COLUMN transfer_id TYPE varchar COLLATE \"C\"",
    "ALTER TABLE transfers DROP CONSTRAINT IF EXISTS transfers_reverses_transfer_id_key",
    "CREATE UNIQUE INDEX transfers_reversal ON transfers (reverses_transfer_id) \
         WHERE reverses_transfer_id IS NOT NULL",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if db.get_database_backend() == DbBackend::Postgres {
            for statement in POSTGRES {
                db.execute_unprepared(statement).await?;
            }
        }
        // One string, so every statement runs on one connection: SQLite
        // connections of a pool can otherwise see the schema as it was.
        db.execute_unprepared(&format!(
            // A hold resolves once: at most one post or void names it.
            "DROP INDEX IF EXISTS transfers_resolving; \
             CREATE UNIQUE INDEX transfers_resolving ON transfers (pending_id) WHERE pending_id IS NOT NULL; \
             DROP INDEX transfers_open_holds; \
             CREATE INDEX transfers_open_holds ON transfers (expires_at) WHERE status = {PENDING}; \
             DROP INDEX entries_by_time"
        ))
        .await?;
        Ok(())
    }
}
