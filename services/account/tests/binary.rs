//! The `folio-account` binary as a real process: health, reflection, metrics, SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

#[tokio::test]
async fn binary_serves_health_reflection_metrics_and_exits_cleanly_on_sigterm() {
    folio_testkit::probe::check_binary(env!("CARGO_BIN_EXE_folio-account"), &["folio.account.v1.AccountService"]).await;
}
