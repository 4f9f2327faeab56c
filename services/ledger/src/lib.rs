//! folio-ledger: the double-entry ledger (DESIGN.md section 3,
//! `folio.ledger.v1.LedgerService` and `LedgerAdminService`), owning schema `ledger`.
//!
//! Layout: `api` parses messages into `domain` values and converts answers
//! back; `app::writer` coalesces concurrent writes into one transaction, in
//! which the `domain` rules decide each operation against rows `store`
//! loaded and locked; `app::reads` answers statements and balances;
//! `app::sweeper` expires holds; `store` holds every SQL statement.

mod api;
mod app;
mod domain;
mod migration;
pub mod settings;
mod store;

use std::time::Duration;

use folio_proto::ledger::{
    ledger_admin_service_server::LedgerAdminServiceServer, ledger_service_server::LedgerServiceServer,
};
use folio_runtime::CancellationToken;
use folio_runtime::cli::{NoExtraCommands, ServiceBinary};
use folio_runtime::config::LoadedConfig;
use folio_runtime::foundation::{Foundation, migrate_only};
use folio_runtime::server::{RunningServer, ServerBuilder};
use folio_storage::db::Pool;

pub use migration::Migrator;
use settings::LedgerSettings;

/// The schema this service owns.
pub const SCHEMA: &str = "ledger";

/// PostgreSQL settings of the writer's sessions. Its statements are keyed
/// lookups and keyed writes only, prepared once per connection: a sequential
/// scan among them is always a planner mistake (typically a plan made while
/// a table was still small and kept as it grew), so scans are priced out;
/// JIT compilation never pays off for them either.
const WRITER_SESSION: &[(&str, &str)] = &[("enable_seqscan", "off"), ("jit", "off")];

/// Over mutual TLS, only the account service may call `LedgerAdminService`
/// (it opens, freezes and closes ledger accounts), whatever scopes a token
/// carries.
pub const INTERNAL_CALLERS: folio_runtime::server::Allowed =
    &[("/folio.ledger.v1.LedgerAdminService/", &["spiffe://folio/account"])];

/// Starts the ledger until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let settings: LedgerSettings = config.section("ledger")?;
    let foundation = Foundation::open::<Migrator>(common, SCHEMA).await?;
    if cfg!(feature = "bench-without-events") {
        tracing::error!("this ledger was built for a benchmark and writes NO events; never run it for real");
    }
    app::bootstrap::bootstrap_assets(&foundation.db, &settings.bootstrap_assets).await?;
    let auth = foundation.remote_auth(common, &shutdown)?;
    let page_tokens = folio_storage::paging::PageTokens::load(&foundation.db).await?;
    let writer = if foundation.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Overlapping writers, each on a session of its own (see WRITER_SESSION).
        let pool = Pool { max_connections: settings.writers.max(1) as u32, session: WRITER_SESSION };
        let mut database = common.database.clone();
        if let Some(url) = &settings.writer_database_url {
            database.url = Some(url.clone());
        }
        let db = folio_storage::db::connect_pool(&database, &common.data_dir, SCHEMA, &pool).await?;
        app::writer::Writer::start(db, settings.writers, shutdown.clone())
    } else {
        // SQLite has one writer at a time anyway.
        app::writer::Writer::start(foundation.db.clone(), 1, shutdown.clone())
    };
    app::sweeper::spawn(
        foundation.db.clone(),
        writer.clone(),
        Duration::from_millis(settings.sweep_interval_ms),
        shutdown.clone(),
    );
    // Statements and balances may be served by a replica (DESIGN §6); the
    // sweeper, the writer and LedgerAdminService stay on the primary.
    let reads = folio_storage::db::connect_reads(&common.database, SCHEMA, &foundation.db, &shutdown).await?;
    // Event streams read the primary only (DESIGN §6).
    let hub = app::events::EventHub::start(foundation.db.clone(), settings.events(), shutdown.clone()).await?;
    let cursors = api::events::EventCursors::new(page_tokens.clone());
    if let Some(url) = &settings.events_nats_url {
        api::relay::Relay::spawn(foundation.db.clone(), cursors.clone(), hub.clone(), url.clone(), shutdown.clone());
    }
    let tail = api::tail::Tail::start(foundation.db.clone(), hub.clone(), shutdown.clone());
    let events = api::events::EventStreams::new(
        foundation.db.clone(),
        cursors,
        hub,
        tail,
        auth.verifier.clone(),
        shutdown.clone(),
    );
    let max = common.server.max_message_bytes;
    ServerBuilder::new(SCHEMA, common.server.clone())
        .allow_callers(INTERNAL_CALLERS)
        .authenticate_with(auth.verifier)
        .add_service(
            LedgerServiceServer::new(api::ledger::LedgerApi::new(reads, writer, page_tokens, events))
                .max_decoding_message_size(max),
        )
        .add_service(LedgerAdminServiceServer::new(api::admin::LedgerAdminApi::new(foundation.db.clone())))
        .start(shutdown)
        .await
}

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
}
