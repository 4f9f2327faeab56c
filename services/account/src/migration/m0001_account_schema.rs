//! Accounts, the outbox that opens them in the ledger, and the status audit
//! trail. Times are BIGINT microseconds from the database clock.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    OwnerId,
    AssetCode,
    DisplayName,
    Metadata,
    Kind,
    Status,
    OverdraftLimit,
    Version,
    Revision,
    CreatedBy,
    RequestId,
    RequestHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    AccountId,
    Attempts,
    NextAttemptAt,
    LastError,
    Done,
    CreatedAt,
}

#[derive(DeriveIden)]
enum StatusChanges {
    Table,
    Id,
    AccountId,
    FromStatus,
    ToStatus,
    Actor,
    Reason,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(ColumnDef::new(Accounts::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Accounts::OwnerId).string().not_null())
                    .col(ColumnDef::new(Accounts::AssetCode).string().not_null())
                    .col(ColumnDef::new(Accounts::DisplayName).string().not_null())
                    .col(ColumnDef::new(Accounts::Metadata).text().not_null())
                    .col(ColumnDef::new(Accounts::Kind).small_integer().not_null())
                    .col(ColumnDef::new(Accounts::Status).small_integer().not_null())
                    .col(ColumnDef::new(Accounts::OverdraftLimit).big_integer().not_null())
                    .col(ColumnDef::new(Accounts::Version).big_integer().not_null())
                    .col(ColumnDef::new(Accounts::Revision).big_integer().not_null())
                    .col(ColumnDef::new(Accounts::CreatedBy).string().not_null())
                    .col(ColumnDef::new(Accounts::RequestId).string().not_null())
                    .col(ColumnDef::new(Accounts::RequestHash).string().not_null())
                    .col(ColumnDef::new(Accounts::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Accounts::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        // Idempotency: one account per (caller, request id).
        manager
            .create_index(
                Index::create()
                    .name("accounts_by_request")
                    .table(Accounts::Table)
                    .col(Accounts::CreatedBy)
                    .col(Accounts::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("accounts_by_owner")
                    .table(Accounts::Table)
                    .col(Accounts::OwnerId)
                    .col(Accounts::CreatedAt)
                    .col(Accounts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(ColumnDef::new(Outbox::AccountId).string().not_null().primary_key())
                    .col(ColumnDef::new(Outbox::Attempts).integer().not_null())
                    .col(ColumnDef::new(Outbox::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(Outbox::LastError).string().not_null())
                    .col(ColumnDef::new(Outbox::Done).boolean().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::Done)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StatusChanges::Table)
                    .col(ColumnDef::new(StatusChanges::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(StatusChanges::AccountId).string().not_null())
                    .col(ColumnDef::new(StatusChanges::FromStatus).small_integer().not_null())
                    .col(ColumnDef::new(StatusChanges::ToStatus).small_integer().not_null())
                    .col(ColumnDef::new(StatusChanges::Actor).string().not_null())
                    .col(ColumnDef::new(StatusChanges::Reason).string().not_null())
                    .col(ColumnDef::new(StatusChanges::At).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
}
