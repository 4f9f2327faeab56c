//! folio-gateway: the one public entry point (DESIGN.md section 5). It owns
//! no schema.

use folio_common::{
    CancellationToken,
    cli::{NoExtraCommands, ServiceBinary},
    config::LoadedConfig,
    server::{RunningServer, ServerBuilder},
};

/// The gateway's name in logs, metrics and error domains.
pub const NAME: &str = "gateway";

/// Starts the gateway until `shutdown`. Routing to the upstreams arrives with
/// the gateway issue; until then it answers health and reflection (public
/// services only).
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let mut builder =
        ServerBuilder::new(NAME, config.common.server.clone()).descriptor_set(folio_proto::PUBLIC_FILE_DESCRIPTOR_SET);
    for service in folio_proto::PUBLIC_SERVICES {
        builder = builder.advertise(service);
    }
    builder.start(shutdown).await
}

/// The `folio-gateway` binary.
pub struct Binary;

impl ServiceBinary for Binary {
    const NAME: &'static str = NAME;
    type Extra = NoExtraCommands;

    async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
        serve(config, shutdown).await
    }

    /// The gateway has no database: nothing to migrate.
    async fn migrate(_config: LoadedConfig) -> anyhow::Result<()> {
        Ok(())
    }

    async fn run_extra(_config: LoadedConfig, command: NoExtraCommands) -> anyhow::Result<()> {
        match command {}
    }
}
