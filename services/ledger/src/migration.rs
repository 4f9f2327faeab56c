//! The `ledger` schema's migrations (kept apart from sea_orm::prelude, whose
//! names clash with sea_orm_migration::prelude).

use sea_orm_migration::prelude::*;

mod m0001_ledger_schema;
mod m0002_lean_indexes;
mod m0004_events;
mod m0005_event_relay;

/// Every migration of the `ledger` schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_ledger_schema::Migration),
            Box::new(m0002_lean_indexes::Migration),
            Box::new(folio_storage::paging::PagingKeyMigration { name: "m0003_ledger_paging_key" }),
            Box::new(m0004_events::Migration),
            Box::new(m0005_event_relay::Migration),
        ]
    }
}
