//! The shared `main` of every Folio binary: `serve` (the default), `migrate`,
//! and a service's own subcommands, with configuration, telemetry and
//! signal handling done once here so each `main.rs` stays a few lines.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, LoadedConfig};
use crate::server::RunningServer;

/// What a Folio service binary does.
pub trait ServiceBinary {
    /// `auth`, `account`, `ledger` or `gateway`.
    const NAME: &'static str;
    /// The service's own subcommands ([`NoExtraCommands`] when none).
    type Extra: ExtraCommands;

    /// Starts serving until `shutdown`.
    fn serve(
        config: LoadedConfig,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<RunningServer>> + Send;

    /// Applies the service's migrations and returns.
    fn migrate(config: LoadedConfig) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A service's own subcommands, beside `serve` and `migrate`.
pub trait ExtraCommands: Subcommand + Send {
    /// Runs this subcommand.
    fn run(self, config: LoadedConfig) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// For services without subcommands of their own.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum NoExtraCommands {}

impl ExtraCommands for NoExtraCommands {
    async fn run(self, _config: LoadedConfig) -> anyhow::Result<()> {
        match self {}
    }
}

#[derive(Debug, Parser)]
struct Cli<E: Subcommand> {
    #[command(subcommand)]
    command: Option<Command<E>>,
}

#[derive(Debug, Subcommand)]
enum Command<E: Subcommand> {
    /// Serve gRPC and the admin listener until SIGTERM or Ctrl-C (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    #[command(flatten)]
    Extra(E),
}

/// Parses arguments, loads configuration and runs the chosen command.
pub fn main<S: ServiceBinary>() -> ExitCode {
    let cli = Cli::<S::Extra>::parse();
    let loaded = match config::load(S::NAME) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("folio-{}: {error:#}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("folio-{}: starting the runtime: {error}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let _telemetry = folio_telemetry::init(S::NAME, &loaded.common.telemetry)?;
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let shutdown = crate::shutdown::on_signal();
                let server = S::serve(loaded, shutdown).await?;
                server.wait().await
            }
            Command::Migrate => S::migrate(loaded).await,
            Command::Extra(extra) => extra.run(loaded).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "exiting on error");
            eprintln!("folio-{}: {error:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}
