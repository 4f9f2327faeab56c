//! The `auth` schema's migrations (kept apart from sea_orm::prelude, whose
//! names clash with sea_orm_migration::prelude).

use sea_orm_migration::prelude::*;

mod m0001_auth_schema;

/// Every migration of the `auth` schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_auth_schema::Migration),
            Box::new(folio_storage::paging::PagingKeyMigration { name: "m0002_auth_paging_key" }),
        ]
    }
}
