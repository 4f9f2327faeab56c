//! The events relay's lease (DESIGN "Ledger events", relay): which ledger
//! instance publishes to JetStream, and until when.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One string, so every statement runs on one connection (see m0002).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE event_relay ( \
                   id SMALLINT NOT NULL PRIMARY KEY, \
                   holder VARCHAR NOT NULL, \
                   expires_at BIGINT NOT NULL); \
                 INSERT INTO event_relay (id, holder, expires_at) VALUES (1, '', 0)",
            )
            .await?;
        Ok(())
    }
}
