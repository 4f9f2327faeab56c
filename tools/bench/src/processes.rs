//! The suite's processes as the benchmarks start them: the service accounts
//! they share and each process's settings.

/// The Redis the gateway shares its budgets through (the machine's own).
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const ADMIN_ID: &str = "bench-admin";
pub const ADMIN_SECRET: &str = "bench-admin-secret-0123456789abcdef-012345";
const LEDGER_ID: &str = "folio-ledger";
const LEDGER_SECRET: &str = "bench-ledger-secret-0123456789abcdef-01234";
const GATEWAY_ID: &str = "folio-gateway";
const GATEWAY_SECRET: &str = "bench-gateway-secret-0123456789abcdef-0123";

pub fn service_accounts() -> String {
    format!(
        "{ADMIN_ID}:{ADMIN_SECRET}:ledger:admin ledger:write ledger:read;{LEDGER_ID}:{LEDGER_SECRET}:auth:internal;\
         {GATEWAY_ID}:{GATEWAY_SECRET}:auth:internal"
    )
}

/// The ledger process's settings.
pub fn ledger_env<'a>(database_url: &'a str, auth_addr: &'a str) -> [(&'static str, &'a str); 7] {
    [
        ("FOLIO__DATABASE__URL", database_url),
        ("FOLIO__UPSTREAMS__AUTH", auth_addr),
        ("FOLIO__SERVICE_CLIENT__ID", LEDGER_ID),
        ("FOLIO__SERVICE_CLIENT__SECRET", LEDGER_SECRET),
        ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2"),
        ("FOLIO__TELEMETRY__LOG_FILTER", "warn,folio_runtime::server=info"),
        ("FOLIO__DATABASE__MAX_CONNECTIONS", "8"),
    ]
}

/// The gateway process's settings, in front of `ledger_addr`.
pub fn gateway_env<'a>(auth_addr: &'a str, ledger_addr: &'a str) -> [(&'static str, &'a str); 9] {
    [
        ("FOLIO__UPSTREAMS__AUTH", auth_addr),
        ("FOLIO__UPSTREAMS__LEDGER", ledger_addr),
        ("FOLIO__SERVICE_CLIENT__ID", GATEWAY_ID),
        ("FOLIO__SERVICE_CLIENT__SECRET", GATEWAY_SECRET),
        ("FOLIO__TELEMETRY__LOG_FILTER", "warn,folio_runtime::server=info"),
        // The budgets stay on and shared through Redis, as in production;
        // one principal drives all the load, so its budget is set past it:
        // measure forwarding, not the limiter's refusals.
        ("FOLIO__REDIS__URL", REDIS_URL),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_RPS", "1000000"),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_BURST", "1000000"),
        // A proxy waits on sockets; one worker thread saves the cross-thread
        // wake-ups of two on a machine whose cores the ledger, PostgreSQL and
        // this load generator share (nginx runs one worker too).
        ("TOKIO_WORKER_THREADS", "1"),
    ]
}
