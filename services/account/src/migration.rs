//! The `account` schema's migrations (kept apart from sea_orm::prelude, whose
//! names clash with sea_orm_migration::prelude).

use sea_orm_migration::prelude::*;

mod m0001_account_schema;
mod m0002_resync_due;

/// Every migration of the `account` schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_account_schema::Migration),
            Box::new(m0002_resync_due::Migration),
            Box::new(folio_storage::paging::PagingKeyMigration { name: "m0003_account_paging_key" }),
        ]
    }
}
