//! Test helpers for Folio: a fresh PostgreSQL database or SQLite file per
//! test, Redis key isolation, Ed25519 keys that mint tokens, and a stand-in
//! key server speaking the real gRPC contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod databases;
mod keys;
pub mod probe;
mod redis_server;
mod stub_auth;

pub use databases::{TestDatabase, postgres_base_url, redis_url, unique};
pub use keys::{TestClaims, TestKeys};
pub use redis_server::OwnRedis;
pub use stub_auth::StubAuth;

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
