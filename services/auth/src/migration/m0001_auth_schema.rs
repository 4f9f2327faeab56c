//! Users, credentials, sessions, refresh tokens, service accounts, signing
//! keys, revocations and the append-only audit log. Times are microseconds
//! since the epoch from the database clock (BIGINT), identical on PostgreSQL
//! and SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    Roles,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PasswordCredentials {
    Table,
    UserId,
    PasswordHash,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
    RevokeReason,
    ClientIp,
    UserAgent,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    CreatedAt,
    ExpiresAt,
    SpentAt,
}

#[derive(DeriveIden)]
enum ServiceAccounts {
    Table,
    ClientId,
    Name,
    Scopes,
    SecretHash,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    PublicKey,
    EncryptedPrivateKey,
    CreatedAt,
    SignsFrom,
    RetiredAt,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Id,
    Kind,
    Subject,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RevocationVersion {
    Table,
    Id,
    Version,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Subject,
    Detail,
}

fn micros(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Users::Email).string().not_null().unique_key())
                    .col(ColumnDef::new(Users::DisplayName).string().not_null())
                    .col(ColumnDef::new(Users::Roles).string().not_null())
                    .col(ColumnDef::new(Users::Disabled).boolean().not_null().default(false))
                    .col(micros(Users::CreatedAt))
                    .col(micros(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_by_creation")
                    .table(Users::Table)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasswordCredentials::Table)
                    .col(ColumnDef::new(PasswordCredentials::UserId).string().not_null().primary_key())
                    .col(ColumnDef::new(PasswordCredentials::PasswordHash).string().not_null())
                    .col(micros(PasswordCredentials::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PasswordCredentials::Table, PasswordCredentials::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Sessions::UserId).string().not_null())
                    .col(micros(Sessions::CreatedAt))
                    .col(micros(Sessions::LastUsedAt))
                    .col(micros(Sessions::ExpiresAt))
                    .col(ColumnDef::new(Sessions::RevokedAt).big_integer().null())
                    .col(ColumnDef::new(Sessions::RevokeReason).string().null())
                    .col(ColumnDef::new(Sessions::ClientIp).string().not_null())
                    .col(ColumnDef::new(Sessions::UserAgent).string().not_null())
                    .foreign_key(
                        ForeignKey::create().from(Sessions::Table, Sessions::UserId).to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_by_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(ColumnDef::new(RefreshTokens::TokenHash).string().not_null().primary_key())
                    .col(ColumnDef::new(RefreshTokens::SessionId).string().not_null())
                    .col(micros(RefreshTokens::CreatedAt))
                    .col(micros(RefreshTokens::ExpiresAt))
                    .col(ColumnDef::new(RefreshTokens::SpentAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_by_session")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServiceAccounts::Table)
                    .col(ColumnDef::new(ServiceAccounts::ClientId).string().not_null().primary_key())
                    .col(ColumnDef::new(ServiceAccounts::Name).string().not_null().unique_key())
                    .col(ColumnDef::new(ServiceAccounts::Scopes).string().not_null())
                    .col(ColumnDef::new(ServiceAccounts::SecretHash).string().not_null())
                    .col(ColumnDef::new(ServiceAccounts::Disabled).boolean().not_null().default(false))
                    .col(micros(ServiceAccounts::CreatedAt))
                    .col(micros(ServiceAccounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(ColumnDef::new(SigningKeys::Kid).string().not_null().primary_key())
                    .col(ColumnDef::new(SigningKeys::PublicKey).string().not_null())
                    .col(ColumnDef::new(SigningKeys::EncryptedPrivateKey).string().not_null())
                    .col(micros(SigningKeys::CreatedAt))
                    .col(micros(SigningKeys::SignsFrom))
                    .col(ColumnDef::new(SigningKeys::RetiredAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(ColumnDef::new(Revocations::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Revocations::Kind).string().not_null())
                    .col(ColumnDef::new(Revocations::Subject).string().not_null())
                    .col(micros(Revocations::CreatedAt))
                    .col(ColumnDef::new(Revocations::ExpiresAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("revocations_by_subject")
                    .table(Revocations::Table)
                    .col(Revocations::Kind)
                    .col(Revocations::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevocationVersion::Table)
                    .col(ColumnDef::new(RevocationVersion::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(RevocationVersion::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(RevocationVersion::Table)
                    .columns([RevocationVersion::Id, RevocationVersion::Version])
                    .values_panic([1.into(), 1.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(ColumnDef::new(AuditLog::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(micros(AuditLog::At))
                    .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                    .col(ColumnDef::new(AuditLog::Action).string().not_null())
                    .col(ColumnDef::new(AuditLog::Subject).string().not_null())
                    .col(ColumnDef::new(AuditLog::Detail).text().not_null())
                    .to_owned(),
            )
            .await?;
        // The audit log is append-only: the database itself refuses edits.
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
                     FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()",
                )
                .await?;
            }
            _ => {
                for event in ["UPDATE", "DELETE"] {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER audit_log_no_{event} BEFORE {event} ON audit_log \
                         BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }
}
