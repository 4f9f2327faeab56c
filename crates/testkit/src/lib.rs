//! Test helpers for Folio: a fresh PostgreSQL database or SQLite file per
//! test, Redis key isolation, Ed25519 keys that mint tokens, and a stand-in
//! key server speaking the real gRPC contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod certs;
mod databases;
mod keys;
mod nats_server;
pub mod probe;
mod redis_server;
mod scratch_postgres;
mod stub_auth;

pub use certs::{Issued, TestCa};
pub use databases::{TestDatabase, postgres_base_url, redis_url, unique};
pub use keys::{TestClaims, TestKeys};
pub use nats_server::OwnNats;
pub use redis_server::OwnRedis;
pub use scratch_postgres::{Pgbouncer, ReplicatedPostgres, ScratchPostgres, TlsPostgres};
pub use stub_auth::StubAuth;

/// Auth's key-encryption key in every test and benchmark (32 bytes, base64).
pub const KEY_ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The bootstrap operator's password in the in-process suites.
pub const OPERATOR_PASSWORD: &str = "operator-Secret-passphrase-42";

/// `FOLIO__*` settings as the owned pairs `config::load_from` takes.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

/// The configuration of an auth service under test, as `FOLIO__*` pairs:
/// gRPC and admin on port 0, its database at `database_url`, a bootstrap
/// operator `operator_email` with [`OPERATOR_PASSWORD`], and the declared
/// `service_accounts` (`id:secret:scope scope;...`). Add a suite's own
/// settings after these (later pairs win).
pub fn auth_env(database_url: &str, operator_email: &str, service_accounts: &str) -> Vec<(String, String)> {
    env(&[
        ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
        ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
        ("FOLIO__DATABASE__URL", database_url),
        ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY),
        ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL", operator_email),
        ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_PASSWORD", OPERATOR_PASSWORD),
        ("FOLIO__AUTH__SERVICE_ACCOUNTS", service_accounts),
    ])
}

/// Installs a test log subscriber once (honours `RUST_LOG`); safe to call from every test.
pub fn init_logs() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
    });
}
