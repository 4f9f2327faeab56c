//! `folio-bench <suite>`: drives real services over gRPC on loopback and
//! prints throughput and latency; `scripts/bench.sh` runs every suite after
//! measuring the PostgreSQL ceiling in the same run.

mod auth;
mod cpu;
mod events;
mod front_door;
mod ledger;
mod load;
mod processes;
mod replicas;
mod soak;
mod stats;
mod tls_cost;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// Logins per second at production argon2 cost, and GetCurrentUser
    /// latency while 64 logins are in flight.
    Auth {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent logins.
        #[arg(long, default_value_t = 64)]
        logins: usize,
    },
    /// Steady CreateTransfer load through the gateway; every service's RSS
    /// every 10 s and its slope in MiB per million calls (issue 17).
    Soak {
        /// Seconds of load.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Concurrent callers.
        #[arg(long, default_value_t = 64)]
        callers: usize,
        #[arg(long, default_value = "target/release/folio-auth")]
        auth_binary: String,
        #[arg(long, default_value = "target/release/folio-ledger")]
        ledger_binary: String,
        #[arg(long, default_value = "target/release/folio-gateway")]
        gateway_binary: String,
    },
    /// Reads from a hot standby against reads from the primary, alone and
    /// beside writes (issue 15): reads per second, CPU per read per server.
    Replicas {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent readers.
        #[arg(long, default_value_t = 64)]
        callers: usize,
        /// Accounts.
        #[arg(long, default_value_t = 2_000)]
        accounts: usize,
        /// The ledger binary to run.
        #[arg(long, default_value = "target/release/folio-ledger")]
        binary: String,
    },
    /// What ledger events cost: transfers per second with events and with
    /// a build that writes none, and one consumer's lag (issue 16).
    Events {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent callers for the one-per-RPC phase.
        #[arg(long, default_value_t = 64)]
        callers: usize,
        /// Accounts.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Rounds of (without, with), alternated.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// The ledger binary to run.
        #[arg(long, default_value = "target/release/folio-ledger")]
        binary: String,
        /// The ledger built with `--features bench-without-events`.
        #[arg(long, default_value = "target/release/folio-ledger-without-events")]
        without_events_binary: String,
    },
    /// Transfers per second against the PostgreSQL ceiling; the front door
    /// (direct, nginx, gateway) on CreateTransfer and GetBalance.
    Ledger {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent callers for one-per-RPC phases.
        #[arg(long, default_value_t = 64)]
        callers: usize,
        /// Accounts.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// The single-transaction ceiling (transfers/s) measured in this run.
        #[arg(long, default_value_t = 0.0)]
        ceiling_single: f64,
        /// The batched ceiling (transfers/s) measured in this run.
        #[arg(long, default_value_t = 0.0)]
        ceiling_batched: f64,
        /// The ledger binary to run.
        #[arg(long, default_value = "target/release/folio-ledger")]
        binary: String,
        /// The gateway binary to run.
        #[arg(long, default_value = "target/release/folio-gateway")]
        gateway_binary: String,
        /// The nginx binary the gateway is compared with.
        #[arg(long, default_value = "nginx")]
        nginx_binary: String,
        /// Only the transfer phases (skip the front-door comparison).
        #[arg(long)]
        only_ledger: bool,
        /// Only the front-door comparison (skip the transfer phases).
        #[arg(long)]
        front_door_only: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().suite {
        Suite::Soak { seconds, callers, auth_binary, ledger_binary, gateway_binary } => {
            let binaries = soak::Binaries { auth: auth_binary, ledger: ledger_binary, gateway: gateway_binary };
            soak::run(std::time::Duration::from_secs(seconds), callers, binaries).await
        }
        Suite::Replicas { seconds, callers, accounts, binary } => {
            replicas::run(std::time::Duration::from_secs(seconds), callers, accounts, &binary).await
        }
        Suite::Events { seconds, callers, accounts, rounds, binary, without_events_binary } => {
            events::run(events::Options {
                phase: std::time::Duration::from_secs(seconds),
                callers,
                accounts,
                binary,
                without_events_binary,
                rounds,
            })
            .await
        }
        Suite::Auth { seconds, logins } => auth::run(std::time::Duration::from_secs(seconds), logins).await,
        Suite::Ledger {
            seconds,
            callers,
            accounts,
            ceiling_single,
            ceiling_batched,
            binary,
            gateway_binary,
            nginx_binary,
            only_ledger,
            front_door_only,
        } => {
            ledger::run(ledger::Options {
                phase: std::time::Duration::from_secs(seconds),
                callers,
                accounts,
                ceiling: ledger::Ceiling { single: ceiling_single, batched: ceiling_batched },
                ledger_binary: binary,
                gateway_binary,
                nginx_binary,
                only_ledger,
                front_door_only,
            })
            .await
        }
    }
}
