//! `folio-bench <suite>`: drives real services over gRPC on loopback and
//! prints throughput and latency; `scripts/bench.sh` runs every suite after
//! measuring the PostgreSQL ceiling in the same run.

mod auth;
mod stats;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().suite {
        Suite::Auth { seconds, logins } => auth::run(std::time::Duration::from_secs(seconds), logins).await,
    }
}
