//! Tamper-evident page tokens (DESIGN §4): a token is its payload and an
//! HMAC-SHA256 tag over it, with a key every instance of a service shares
//! because it lives in the service's own schema (created once, by whichever
//! instance starts first). A token that does not verify is `INVALID_FIELD`,
//! so a caller can neither forge a position nor smuggle text into a query.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::prelude::*;
use sha2::Sha256;

use folio_errors::FolioError;

/// Bytes of the tag kept in a token (128 bits).
const TAG_BYTES: usize = 16;

/// Seals and opens a service's page tokens.
#[derive(Clone)]
pub struct PageTokens {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// Tokens sealed with `key` (tests; services use [`PageTokens::load`]).
    pub fn with_key(key: &[u8]) -> Self {
        Self { key: Arc::from(key) }
    }

    /// The service's key from its schema, created on first use.
    pub async fn load(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let backend = db.get_database_backend();
        let fresh = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let insert = match backend {
            DbBackend::Postgres => "INSERT INTO paging_key (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            _ => "INSERT INTO paging_key (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        };
        db.execute_raw(Statement::from_sql_and_values(backend, insert, [fresh.into()])).await?;
        let row = db
            .query_one_raw(Statement::from_string(backend, "SELECT secret FROM paging_key WHERE id = 1".to_owned()))
            .await?
            .ok_or_else(|| anyhow::anyhow!("the paging key is missing"))?;
        let secret: String = row.try_get("", "secret")?;
        let key = URL_SAFE_NO_PAD.decode(secret).map_err(|_| anyhow::anyhow!("the stored paging key is corrupt"))?;
        Ok(Self { key: Arc::from(key) })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts a key of any length, so this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
    }

    /// `payload` as an opaque token.
    pub fn seal(&self, payload: &str) -> String {
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// The payload of a token this service sealed, or `INVALID_FIELD` naming `field`.
    pub fn open(&self, field: &str, token: &str) -> Result<String, FolioError> {
        let invalid = || FolioError::invalid_field(field, "is not a token this service issued");
        let (payload, tag) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != TAG_BYTES {
            return Err(invalid());
        }
        let mut mac = self.mac();
        mac.update(&payload);
        // Constant time: the tag is compared without revealing how much matched.
        mac.verify_truncated_left(&tag).map_err(|_| invalid())?;
        String::from_utf8(payload).map_err(|_| invalid())
    }
}

/// The migration that creates the `paging_key` table in a service's schema.
pub struct PagingKeyMigration {
    /// The migration's name in that schema (unique across services).
    pub name: &'static str,
}

impl MigrationName for PagingKeyMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[derive(DeriveIden)]
enum PagingKey {
    Table,
    Id,
    Secret,
}

#[async_trait::async_trait]
impl MigrationTrait for PagingKeyMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PagingKey::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PagingKey::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(PagingKey::Secret).string().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PagingKey::Table).to_owned()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_and_tampered_ones_do_not() {
        let tokens = PageTokens::with_key(b"k1");
        let token = tokens.seal("42:abc");
        assert_eq!(tokens.open("page_token", &token).ok().as_deref(), Some("42:abc"));
        assert!(PageTokens::with_key(b"k2").open("page_token", &token).is_err(), "another key");
        let (payload, tag) = token.split_once('.').unwrap_or_default();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("0:\u{0}"));
        assert!(tokens.open("page_token", &forged).is_err(), "a payload under another's tag");
        assert!(tokens.open("page_token", &format!("{payload}.")).is_err(), "no tag");
        assert!(tokens.open("page_token", &format!("{payload}.{}", &tag[..4])).is_err(), "a short tag");
        assert!(tokens.open("page_token", "").is_err() && tokens.open("page_token", "!!").is_err());
    }
}
