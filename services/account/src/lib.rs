//! folio-account: customer accounts and their lifecycle (DESIGN.md section 3,
//! `folio.account.v1.AccountService`), owning schema `account`. The ledger is
//! authoritative for status, limits and money; this service owns who an
//! account belongs to and makes sure its ledger side is never lost or
//! opened twice (an outbox in the same transaction as the account row).
//!
//! Layout: `api` parses messages into `domain` values and converts answers
//! back; `app` runs each use case (the ledger first where it is
//! authoritative) and the outbox that finishes openings the ledger missed;
//! `domain` holds the rules; `store` every SQL statement.

mod api;
mod app;
mod domain;
mod migration;
mod store;

use std::time::Duration;

use folio_proto::account::account_service_server::AccountServiceServer;
use folio_proto::client::lazy_channel_with;
use folio_runtime::CancellationToken;
use folio_runtime::cli::{NoExtraCommands, ServiceBinary};
use folio_runtime::config::LoadedConfig;
use folio_runtime::foundation::{Foundation, migrate_only};
use folio_runtime::server::{RunningServer, ServerBuilder};
use serde::Deserialize;

pub use migration::Migrator;

/// The schema this service owns.
pub const SCHEMA: &str = "account";

/// The `account` configuration section (`FOLIO__ACCOUNT__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AccountSettings {
    /// How often the outbox worker looks for accounts to open, in milliseconds.
    pub outbox_interval_ms: u64,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self { outbox_interval_ms: 1000 }
    }
}

/// Starts the account service until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let settings: AccountSettings = config.section("account")?;
    let foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    let auth = foundation.remote_auth(common, &shutdown)?;
    let ledger = app::ledger_client::Ledger::new(
        lazy_channel_with(&common.upstreams.ledger, foundation.client_tls.as_ref())?,
        auth.tokens.clone(),
    );
    let page_tokens = folio_storage::paging::PageTokens::load(&foundation.db).await?;
    // GetAccount and ListAccounts may be served by a replica (DESIGN §6);
    // writes, the outbox and the repair pass stay on the primary.
    let reads = folio_storage::db::connect_reads(&common.database, SCHEMA, &foundation.db, &shutdown).await?;
    let core = app::AccountCore::new(foundation.db.clone(), reads, ledger, page_tokens);
    app::outbox::spawn(core.clone(), Duration::from_millis(settings.outbox_interval_ms), shutdown.clone());
    ServerBuilder::new(SCHEMA, common.server.clone())
        .authenticate_with(auth.verifier)
        .add_service(
            AccountServiceServer::new(api::account::AccountApi::new(core))
                .max_decoding_message_size(common.server.max_message_bytes),
        )
        .start(shutdown)
        .await
}

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
}
