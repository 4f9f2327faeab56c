//! Accounts whose last ledger change had an unknown outcome (the ledger did
//! not answer, or our own commit failed after it did) are marked, so the
//! repair pass re-reads the ledger's state and records it (DESIGN §5a).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    ResyncDue,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(ColumnDef::new(Accounts::ResyncDue).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("accounts_resync_due").table(Accounts::Table).col(Accounts::ResyncDue).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("accounts_resync_due").table(Accounts::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Accounts::Table).drop_column(Accounts::ResyncDue).to_owned()).await
    }
}
