//! Assets, accounts with running totals, immutable transfers, and one entry
//! per side with the balance after it. Money is BIGINT minor units; times are
//! BIGINT microseconds from the database clock.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Assets {
    Table,
    Code,
    Scale,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    OwnerId,
    AssetCode,
    Kind,
    Status,
    OverdraftLimit,
    Version,
    DebitsPosted,
    CreditsPosted,
    DebitsPending,
    CreditsPending,
    EntryCount,
    LastEntryAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Transfers {
    Table,
    Id,
    Sequence,
    DebitAccountId,
    CreditAccountId,
    Amount,
    AssetCode,
    Kind,
    PendingId,
    TimeoutSeconds,
    ExpiresAt,
    Description,
    Metadata,
    Status,
    CreatedAt,
    InitiatedBy,
    ReversesTransferId,
    RequestHash,
}

#[derive(DeriveIden)]
enum Entries {
    Table,
    AccountId,
    AccountSequence,
    TransferId,
    Side,
    CreatedAt,
    DebitsPosted,
    CreditsPosted,
    DebitsPending,
    CreditsPending,
}

fn money(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().default(0).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Assets::Table)
                    .col(ColumnDef::new(Assets::Code).string().not_null().primary_key())
                    .col(ColumnDef::new(Assets::Scale).integer().not_null())
                    .col(ColumnDef::new(Assets::Description).string().not_null())
                    .col(ColumnDef::new(Assets::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(ColumnDef::new(Accounts::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Accounts::OwnerId).string().not_null())
                    .col(ColumnDef::new(Accounts::AssetCode).string().not_null())
                    .col(ColumnDef::new(Accounts::Kind).small_integer().not_null())
                    .col(ColumnDef::new(Accounts::Status).small_integer().not_null())
                    .col(money(Accounts::OverdraftLimit))
                    .col(money(Accounts::Version))
                    .col(money(Accounts::DebitsPosted))
                    .col(money(Accounts::CreditsPosted))
                    .col(money(Accounts::DebitsPending))
                    .col(money(Accounts::CreditsPending))
                    .col(money(Accounts::EntryCount))
                    .col(money(Accounts::LastEntryAt))
                    .col(ColumnDef::new(Accounts::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create().from(Accounts::Table, Accounts::AssetCode).to(Assets::Table, Assets::Code),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Transfers::Table)
                    .col(ColumnDef::new(Transfers::Sequence).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Transfers::Id).string().not_null().unique_key())
                    .col(ColumnDef::new(Transfers::DebitAccountId).string().not_null())
                    .col(ColumnDef::new(Transfers::CreditAccountId).string().not_null())
                    .col(ColumnDef::new(Transfers::Amount).big_integer().not_null())
                    .col(ColumnDef::new(Transfers::AssetCode).string().not_null())
                    .col(ColumnDef::new(Transfers::Kind).small_integer().not_null())
                    .col(ColumnDef::new(Transfers::PendingId).string().null())
                    .col(ColumnDef::new(Transfers::TimeoutSeconds).big_integer().not_null())
                    .col(ColumnDef::new(Transfers::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(Transfers::Description).string().not_null())
                    .col(ColumnDef::new(Transfers::Metadata).text().not_null())
                    .col(ColumnDef::new(Transfers::Status).small_integer().not_null())
                    .col(ColumnDef::new(Transfers::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Transfers::InitiatedBy).string().not_null())
                    .col(ColumnDef::new(Transfers::ReversesTransferId).string().null().unique_key())
                    .col(ColumnDef::new(Transfers::RequestHash).string().not_null())
                    .to_owned(),
            )
            .await?;
        // A hold resolves once: at most one post or void record names it.
        manager
            .create_index(
                Index::create()
                    .name("transfers_resolving")
                    .table(Transfers::Table)
                    .col(Transfers::PendingId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The sweeper finds open holds by deadline.
        manager
            .create_index(
                Index::create()
                    .name("transfers_open_holds")
                    .table(Transfers::Table)
                    .col(Transfers::Status)
                    .col(Transfers::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Entries::Table)
                    .col(ColumnDef::new(Entries::AccountId).string().not_null())
                    .col(ColumnDef::new(Entries::AccountSequence).big_integer().not_null())
                    .col(ColumnDef::new(Entries::TransferId).string().not_null())
                    .col(ColumnDef::new(Entries::Side).small_integer().not_null())
                    .col(ColumnDef::new(Entries::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Entries::DebitsPosted).big_integer().not_null())
                    .col(ColumnDef::new(Entries::CreditsPosted).big_integer().not_null())
                    .col(ColumnDef::new(Entries::DebitsPending).big_integer().not_null())
                    .col(ColumnDef::new(Entries::CreditsPending).big_integer().not_null())
                    .primary_key(Index::create().col(Entries::AccountId).col(Entries::AccountSequence))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("entries_by_time")
                    .table(Entries::Table)
                    .col(Entries::AccountId)
                    .col(Entries::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}
