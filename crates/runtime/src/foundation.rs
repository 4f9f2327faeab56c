//! What a database-backed service opens at start-up, in one place: its
//! database (migrated when configured), the cache, and token verification.

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;

use crate::config::CommonConfig;
use folio_storage::cache::Cache;
use folio_storage::db;
use folio_tls::ClientTls;
use folio_tokens::{RemoteAuth, VerifierSettings, remote_auth};

/// A service's shared resources.
pub struct Foundation {
    /// The service's own database.
    pub db: DatabaseConnection,
    /// Redis or the in-process fallback.
    pub cache: Cache,
    /// TLS for calls to other services, when configured.
    pub client_tls: Option<ClientTls>,
}

impl Foundation {
    /// Opens the database of `schema` and migrates it with `M` when
    /// `database.migrate_on_start` is set; connects the cache.
    pub async fn open<M: MigratorTrait>(common: &CommonConfig, schema: &str) -> anyhow::Result<Self> {
        let db = db::connect(&common.database, &common.data_dir, schema).await?;
        if common.database.migrate_on_start {
            db::migrate::<M>(&db).await?;
        }
        let cache = Cache::from_settings(&common.redis).await?;
        let client_tls = ClientTls::from_settings(&common.client)?;
        Ok(Self { db, cache, client_tls })
    }

    /// Token verification against the auth service, kept fresh until `shutdown`.
    pub fn remote_auth(&self, common: &CommonConfig, shutdown: &CancellationToken) -> anyhow::Result<RemoteAuth> {
        let tls = self.client_tls.as_ref();
        let auth = remote_auth(&common.upstreams.auth, &common.service_client, tls, VerifierSettings::default())?;
        auth.verifier.spawn_refresh(Some(self.cache.clone()), shutdown.clone());
        Ok(auth)
    }
}

/// Runs the migrations of `M` on the configured database of `schema` (the `migrate` subcommand).
pub async fn migrate_only<M: MigratorTrait>(common: &CommonConfig, schema: &str) -> anyhow::Result<()> {
    let db = db::connect(&common.database, &common.data_dir, schema).await?;
    db::migrate::<M>(&db).await?;
    tracing::info!(schema, "migrations applied");
    Ok(())
}
