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

/// Auth, served in this process (its CPU is not what the suites measure).
pub struct InProcessAuth {
    pub addr: String,
    shutdown: tokio_util::sync::CancellationToken,
}

impl InProcessAuth {
    /// Serves auth on `database_url` with the benchmarks' service accounts;
    /// `extra` settings are added last.
    pub async fn start(database_url: &str, dir: &std::path::Path, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let services = service_accounts();
        let env = [
            ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
            ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
            ("FOLIO__DATABASE__URL", database_url),
            ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", folio_testkit::KEY_ENCRYPTION_KEY),
            ("FOLIO__AUTH__SERVICE_ACCOUNTS", services.as_str()),
            ("FOLIO__TELEMETRY__LOG_FILTER", "warn"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<Vec<_>>();
        let config = folio_runtime::config::load_from("auth", &dir.join("none"), env)?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = folio_auth::serve(config, shutdown.clone()).await?;
        Ok(Self { addr: server.grpc_addr.to_string(), shutdown })
    }
}

impl Drop for InProcessAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
