//! What every Folio service shares, one module per concern.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod foundation;
pub mod paging;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
pub mod time;
pub mod validate;

pub use tokio_util::sync::CancellationToken;
