//! folio-account: customer accounts and their lifecycle (DESIGN.md section 3,
//! `folio.account.v1.AccountService`), owning schema `account`.

mod migration;

use folio_common::{
    CancellationToken,
    cli::{NoExtraCommands, ServiceBinary},
    config::LoadedConfig,
    foundation::{Foundation, migrate_only},
    server::{RunningServer, ServerBuilder},
};
use folio_proto::account::account_service_server::{AccountService, AccountServiceServer};

pub use migration::Migrator;

/// The schema this service owns.
pub const SCHEMA: &str = "account";

/// Starts the account service until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    let auth = foundation.remote_auth(common, &shutdown)?;
    ServerBuilder::new(SCHEMA, common.server.clone())
        .authenticate_with(auth.verifier)
        .add_service(AccountServiceServer::new(AccountApi))
        .start(shutdown)
        .await
}

/// The gRPC face of the account service. Its RPCs arrive with the account
/// issue; until then each answers UNIMPLEMENTED.
#[derive(Clone)]
struct AccountApi;

impl AccountService for AccountApi {}

/// The `folio-account` binary.
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
