//! folio-ledger: the double-entry ledger (DESIGN.md section 3,
//! `folio.ledger.v1.LedgerService` and `LedgerAdminService`), owning schema `ledger`.

mod migration;

use folio_common::{
    CancellationToken,
    cli::{NoExtraCommands, ServiceBinary},
    config::LoadedConfig,
    foundation::{Foundation, migrate_only},
    server::{RunningServer, ServerBuilder},
};
use folio_proto::ledger::{
    ledger_admin_service_server::{LedgerAdminService, LedgerAdminServiceServer},
    ledger_service_server::{LedgerService, LedgerServiceServer},
};

pub use migration::Migrator;

/// The schema this service owns.
pub const SCHEMA: &str = "ledger";

/// Starts the ledger until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    let auth = foundation.remote_auth(common, &shutdown)?;
    ServerBuilder::new(SCHEMA, common.server.clone())
        .authenticate_with(auth.verifier)
        .add_service(LedgerServiceServer::new(LedgerApi))
        .add_service(LedgerAdminServiceServer::new(LedgerApi))
        .start(shutdown)
        .await
}

/// The gRPC face of the ledger. Its RPCs arrive with the ledger issue; until
/// then each answers UNIMPLEMENTED.
#[derive(Clone)]
struct LedgerApi;

impl LedgerService for LedgerApi {}
impl LedgerAdminService for LedgerApi {}

/// The `folio-ledger` binary.
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
