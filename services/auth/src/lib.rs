//! folio-auth: users, sessions, tokens, service accounts and signing keys
//! (DESIGN.md section 3, `folio.auth.v1.AuthService` and
//! `AuthInternalService`), owning schema `auth`.

mod migration;

use folio_common::{
    CancellationToken,
    cli::{NoExtraCommands, ServiceBinary},
    config::LoadedConfig,
    foundation::{Foundation, migrate_only},
    server::{RunningServer, ServerBuilder},
};
use folio_proto::auth::{
    auth_internal_service_server::{AuthInternalService, AuthInternalServiceServer},
    auth_service_server::{AuthService, AuthServiceServer},
};

pub use migration::Migrator;

/// The schema this service owns.
pub const SCHEMA: &str = "auth";

/// Starts the auth service until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let _foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    ServerBuilder::new(SCHEMA, common.server.clone())
        .add_service(AuthServiceServer::new(AuthApi))
        .add_service(AuthInternalServiceServer::new(AuthApi))
        .start(shutdown)
        .await
}

/// The gRPC face of auth. Its RPCs arrive with the auth issue; until then
/// each answers UNIMPLEMENTED.
#[derive(Clone)]
struct AuthApi;

impl AuthService for AuthApi {}
impl AuthInternalService for AuthApi {}

/// The `folio-auth` binary.
pub struct Binary;

impl ServiceBinary for Binary {
    const NAME: &'static str = SCHEMA;
    type Extra = NoExtraCommands;

    async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
        serve(config, shutdown).await
    }

    async fn migrate(config: LoadedConfig) -> anyhow::Result<()> {
        migrate_only::<Migrator>(&config.common, SCHEMA).await
    }

    async fn run_extra(_config: LoadedConfig, command: NoExtraCommands) -> anyhow::Result<()> {
        match command {}
    }
}
