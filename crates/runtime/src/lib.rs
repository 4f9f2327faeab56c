//! What runs a Folio service: its configuration, the gRPC server stack
//! (health, reflection, gRPC-Web, authentication, shedding, metrics, drain),
//! the binary's command line, what a database-backed service opens at
//! start-up (with the reads a replica may serve), shutdown on signals and
//! timed background work.

pub mod cli;
pub mod config;
pub mod foundation;
pub mod read_after;
pub mod server;
pub mod shutdown;
pub mod tasks;

pub use tokio_util::sync::CancellationToken;
