//! folio-auth: users, sessions, tokens, service accounts and signing keys
//! (DESIGN.md section 3, `folio.auth.v1.AuthService` and
//! `AuthInternalService`), owning schema `auth`.
//!
//! Layout: `api` adapts messages; `app` holds one use case per RPC, the
//! keyring, the lock-out and auth's own verifier; `domain` the records and
//! rules (fields, password policy and hashing, tokens, key sealing);
//! `store` every SQL statement.

mod api;
mod app;
mod domain;
mod migration;
pub mod settings;
mod store;

use folio_storage::paging::PageTokens;
use std::path::Path;

use anyhow::Context;
use folio_proto::auth::{
    auth_internal_service_server::AuthInternalServiceServer, auth_service_server::AuthServiceServer,
};
use folio_runtime::CancellationToken;
use folio_runtime::cli::{ExtraCommands, ServiceBinary};
use folio_runtime::config::LoadedConfig;
use folio_runtime::foundation::{Foundation, migrate_only};
use folio_runtime::server::{RunningServer, ServerBuilder};
use secrecy::{ExposeSecret, SecretString};

use app::{AuthCore, keyring::Keyring};
use domain::{kek::Kek, password_hasher::PasswordHasher};
pub use migration::Migrator;
use settings::AuthSettings;

/// The schema this service owns.
pub const SCHEMA: &str = "auth";

/// Over mutual TLS, `AuthInternalService` (the revocation list) answers only
/// the services that verify tokens.
pub const INTERNAL_CALLERS: folio_runtime::server::Allowed = &[(
    "/folio.auth.v1.AuthInternalService/",
    &["spiffe://folio/account", "spiffe://folio/ledger", "spiffe://folio/gateway"],
)];

/// Starts the auth service until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let settings: AuthSettings = config.section("auth")?;
    settings.validate()?;
    let foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    let core = build_core(&foundation, &settings, &common.data_dir).await?;
    core.provision_service_accounts(&settings.declared_service_accounts()?).await?;
    if let (Some(email), Some(password)) = (&settings.bootstrap_operator_email, &settings.bootstrap_operator_password) {
        core.ensure_operator(email, password).await?;
    }
    let verifier = app::local_auth::local_verifier(core.keyring().clone(), foundation.db.clone());
    verifier.refresh_revocations().await.context("reading revocations")?;
    verifier.spawn_refresh(Some(foundation.cache.clone()), shutdown.clone());
    spawn_housekeeping(foundation.db.clone(), shutdown.clone());
    let api = api::auth::AuthApi::new(core.clone());
    ServerBuilder::new(SCHEMA, common.server.clone())
        .allow_callers(INTERNAL_CALLERS)
        .authenticate_with(verifier)
        .admin_routes(jwks_route(core.keyring().clone()))
        .add_service(AuthServiceServer::new(api.clone()).max_decoding_message_size(common.server.max_message_bytes))
        .add_service(AuthInternalServiceServer::new(api))
        .start(shutdown)
        .await
}

async fn build_core(foundation: &Foundation, settings: &AuthSettings, data_dir: &Path) -> anyhow::Result<AuthCore> {
    let kek = key_encryption_key(settings, foundation, data_dir)?;
    let keyring = Keyring::open(foundation.db.clone(), kek).await.context("opening the signing keys")?;
    let hasher = PasswordHasher::new(
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        settings.hashing_concurrency,
        settings.hashing_queue,
    )?;
    let page_tokens = PageTokens::load(&foundation.db).await.context("reading the paging key")?;
    Ok(AuthCore::new(foundation.db.clone(), foundation.cache.clone(), hasher, keyring, settings.clone(), page_tokens))
}

/// The configured key-encryption key; for the embedded SQLite default, a
/// key file made once in the data directory (owner-only).
fn key_encryption_key(settings: &AuthSettings, foundation: &Foundation, data_dir: &Path) -> anyhow::Result<Kek> {
    if let Some(encoded) = &settings.key_encryption_key {
        return Kek::from_base64(encoded.expose_secret());
    }
    anyhow::ensure!(
        foundation.db.get_database_backend() == sea_orm::DbBackend::Sqlite,
        "invalid configuration: `auth.key_encryption_key` (FOLIO__AUTH__KEY_ENCRYPTION_KEY, base64 of 32 bytes) is required with PostgreSQL"
    );
    let path = data_dir.join("auth-key-encryption.key");
    if !path.exists() {
        write_owner_only(&path, &Kek::generate_base64())?;
    }
    let encoded = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Kek::from_base64(&encoded)
}

fn write_owner_only(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

fn jwks_route(keyring: Keyring) -> axum::Router {
    axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let keyring = keyring.clone();
            async move {
                match keyring.published().await {
                    Ok(keys) => {
                        let keys: Vec<_> = keys
                            .into_iter()
                            .map(|k| serde_json::json!({"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.r#use}))
                            .collect();
                        (axum::http::StatusCode::OK, axum::Json(serde_json::json!({ "keys": keys })))
                    }
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), "reading signing keys");
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "error": "unavailable" })))
                    }
                }
            }
        }),
    )
}

/// Deletes lapsed revocations every minute.
fn spawn_housekeeping(db: sea_orm::DatabaseConnection, shutdown: CancellationToken) {
    folio_runtime::tasks::spawn_every(std::time::Duration::from_secs(60), shutdown, move || {
        let db = db.clone();
        async move {
            let purged = match folio_storage::db::now(&db).await {
                Ok(now) => store::revocations::purge_lapsed(&db, now.timestamp_micros()).await,
                Err(error) => Err(error),
            };
            if let Err(error) = purged {
                tracing::warn!(%error, "purging lapsed revocations failed");
            }
        }
    });
}

/// `folio-auth` subcommands besides `serve` and `migrate`.
#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Create an operator; the password is read from standard input.
    CreateOperator {
        /// The operator's email.
        #[arg(long)]
        email: String,
        /// The name shown for the operator.
        #[arg(long, default_value = "Operator")]
        display_name: String,
    },
}

/// The `folio-auth` binary.
pub struct Binary;

impl ServiceBinary for Binary {
    const NAME: &'static str = SCHEMA;
    type Extra = AuthCommand;

    async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
        serve(config, shutdown).await
    }

    async fn migrate(config: LoadedConfig) -> anyhow::Result<()> {
        migrate_only::<Migrator>(&config.common, SCHEMA).await
    }
}

impl ExtraCommands for AuthCommand {
    async fn run(self, config: LoadedConfig) -> anyhow::Result<()> {
        match self {
            AuthCommand::CreateOperator { email, display_name } => {
                let settings: AuthSettings = config.section("auth")?;
                let foundation = Foundation::open::<Migrator>(&config.common, SCHEMA).await?;
                let core = build_core(&foundation, &settings, &config.common.data_dir).await?;
                let mut password = String::new();
                std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
                let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_owned());
                let user = core
                    .create_user(&email, &password, &display_name, &[folio_tokens::roles::OPERATOR], "cli")
                    .await
                    .map_err(|failure| anyhow::anyhow!("{failure}"))?;
                println!("operator {} created with id {}", user.email, user.id);
                Ok(())
            }
        }
    }
}
