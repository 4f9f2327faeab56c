//! Layered configuration: built-in defaults < `config/*.toml` < `FOLIO__SECTION__KEY`.
//!
//! Every service reads the shared sections into [`CommonConfig`] and its own
//! section (`auth`, `ledger`, ...) with [`LoadedConfig::section`]. Secrets are
//! [`SecretString`]s, which never print.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;
use serde::{Deserialize, de::DeserializeOwned};

pub use folio_storage::{cache::RedisSettings, db::DatabaseSettings};
pub use folio_telemetry::{LogFormat, TelemetrySettings};
pub use folio_tls::ClientTlsSettings;
pub use folio_tokens::ServiceClientSettings;

/// Default ports of DESIGN.md section 6: (gRPC, admin HTTP).
pub fn default_ports(service: &str) -> (u16, u16) {
    match service {
        "gateway" => (50050, 9050),
        "auth" => (50051, 9051),
        "account" => (50052, 9052),
        "ledger" => (50053, 9053),
        _ => (0, 0),
    }
}

/// The sections every service shares.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonConfig {
    /// Where files of the embedded defaults live (SQLite databases, generated credentials).
    pub data_dir: PathBuf,
    /// Listening addresses, limits and drain.
    pub server: ServerSettings,
    /// This service's database.
    pub database: DatabaseSettings,
    /// Redis, or the in-process fallback when unset.
    #[serde(default)]
    pub redis: RedisSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Where the other services are.
    pub upstreams: UpstreamSettings,
    /// This service's own client credentials, for calls to other services.
    #[serde(default)]
    pub service_client: ServiceClientSettings,
    /// TLS for calls to other services (`FOLIO__CLIENT__TLS_*`); unset: plaintext.
    #[serde(default)]
    pub client: ClientTlsSettings,
}

/// Listening addresses, limits and drain.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// gRPC address (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// Admin HTTP address for `/metrics` and `/healthz`.
    pub admin_addr: SocketAddr,
    /// Requests served at once before new ones are shed with `OVERLOADED`.
    pub max_concurrent_requests: usize,
    /// How long a drain may take after SIGTERM before in-flight calls are cut.
    #[serde(with = "humantime_secs")]
    pub grace_period: Duration,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// The gRPC port's certificate chain (PEM); with `tls_key_file`, the
    /// port speaks TLS only. Reread when the file changes.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// The key of `tls_cert_file` (PEM).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// When set, clients must show a certificate signed by this CA (mutual
    /// TLS), and their identity is the certificate's `spiffe://folio/<service>`.
    #[serde(default)]
    pub tls_client_ca_file: Option<PathBuf>,
}

/// Where the other services are: `host:port`, or a DNS name resolving to many pods.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamSettings {
    /// The auth service.
    pub auth: String,
    /// The account service.
    pub account: String,
    /// The ledger service.
    pub ledger: String,
}

/// Configuration as loaded, before it is split into sections.
pub struct LoadedConfig {
    service: &'static str,
    raw: config::Config,
    /// The shared sections.
    pub common: CommonConfig,
}

impl LoadedConfig {
    /// The service this configuration is for.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// A service-specific section, e.g. `auth`; keys absent everywhere take
    /// the section type's `#[serde(default)]`s.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> anyhow::Result<T> {
        match self.raw.get::<T>(name) {
            Ok(value) => Ok(value),
            Err(config::ConfigError::NotFound(_)) => Ok(T::default()),
            Err(error) => Err(anyhow::anyhow!("invalid configuration in section `{name}`: {error}")),
        }
    }
}

/// Loads configuration for `service` from defaults, `<config_dir>/*.toml` and
/// the environment. `config_dir` defaults to `FOLIO_CONFIG_DIR` or `config`.
pub fn load(service: &'static str) -> anyhow::Result<LoadedConfig> {
    let dir = std::env::var_os("FOLIO_CONFIG_DIR").map_or_else(|| PathBuf::from("config"), PathBuf::from);
    load_from(service, &dir, std::env::vars())
}

/// [`load`] with an explicit directory and environment (for tests).
pub fn load_from(
    service: &'static str,
    config_dir: &std::path::Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<LoadedConfig> {
    let (grpc_port, admin_port) = default_ports(service);
    let mut builder = config::Config::builder()
        .set_default("data_dir", ".folio")?
        .set_default("server.listen_addr", format!("127.0.0.1:{grpc_port}"))?
        .set_default("server.admin_addr", format!("127.0.0.1:{admin_port}"))?
        .set_default("server.max_concurrent_requests", 1024)?
        .set_default("server.grace_period", 20)?
        .set_default("server.max_message_bytes", 4 * 1024 * 1024)?
        .set_default("database.migrate_on_start", true)?
        .set_default("database.max_connections", 16)?
        .set_default("telemetry.log_format", "json")?
        .set_default("telemetry.log_filter", "info")?
        .set_default("upstreams.auth", "127.0.0.1:50051")?
        .set_default("upstreams.account", "127.0.0.1:50052")?
        .set_default("upstreams.ledger", "127.0.0.1:50053")?;
    for file in toml_files(config_dir)? {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    let env: std::collections::HashMap<String, String> =
        env.into_iter().filter(|(key, _)| key.starts_with("FOLIO__")).collect();
    builder = builder
        .add_source(config::Environment::with_prefix("FOLIO").prefix_separator("__").separator("__").source(Some(env)));
    let raw = builder.build().context("reading configuration")?;
    let common: CommonConfig = raw.clone().try_deserialize().map_err(|error| {
        anyhow::anyhow!("invalid configuration: {error} (set it in config/*.toml or as FOLIO__SECTION__KEY)")
    })?;
    validate(&common)?;
    Ok(LoadedConfig { service, raw, common })
}

fn toml_files(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn validate(config: &CommonConfig) -> anyhow::Result<()> {
    if let Some(url) = &config.database.url {
        let url = url.expose_secret();
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"),
            "invalid configuration: `database.url` (FOLIO__DATABASE__URL) must start with postgres:// or sqlite:"
        );
    }
    if let Some(url) = &config.redis.url {
        let url = url.expose_secret();
        anyhow::ensure!(
            url.starts_with("redis://") || url.starts_with("rediss://"),
            "invalid configuration: `redis.url` (FOLIO__REDIS__URL) must start with redis:// or rediss://"
        );
    }
    anyhow::ensure!(
        config.server.max_concurrent_requests > 0,
        "invalid configuration: `server.max_concurrent_requests` must be at least 1"
    );
    if config.service_client.id.is_some() != config.service_client.secret.is_some() {
        anyhow::bail!(
            "invalid configuration: `service_client.id` and `service_client.secret` \
             (FOLIO__SERVICE_CLIENT__ID / FOLIO__SERVICE_CLIENT__SECRET) must be set together"
        );
    }
    let server = &config.server;
    anyhow::ensure!(
        server.tls_cert_file.is_some() == server.tls_key_file.is_some(),
        "invalid configuration: `server.tls_cert_file` and `server.tls_key_file` \
         (FOLIO__SERVER__TLS_CERT_FILE / FOLIO__SERVER__TLS_KEY_FILE) must be set together"
    );
    anyhow::ensure!(
        server.tls_client_ca_file.is_none() || server.tls_cert_file.is_some(),
        "invalid configuration: `server.tls_client_ca_file` (mutual TLS) needs the port's own \
         certificate: set FOLIO__SERVER__TLS_CERT_FILE and FOLIO__SERVER__TLS_KEY_FILE too"
    );
    Ok(())
}

/// Durations in configuration are whole seconds.
mod humantime_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_then_file_then_environment() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let nowhere = dir.path().join("absent");
        let loaded = load_from("ledger", &nowhere, env(&[]))?;
        assert_eq!(loaded.common.server.listen_addr.port(), 50053);
        assert_eq!(loaded.common.server.admin_addr.port(), 9053);
        assert!(loaded.common.database.url.is_none());

        std::fs::write(dir.path().join("folio.toml"), "[server]\nmax_concurrent_requests = 7\ngrace_period = 3\n")?;
        let loaded = load_from("ledger", dir.path(), env(&[]))?;
        assert_eq!(loaded.common.server.max_concurrent_requests, 7);
        assert_eq!(loaded.common.server.grace_period, Duration::from_secs(3));

        let loaded = load_from(
            "ledger",
            dir.path(),
            env(&[
                ("FOLIO__SERVER__MAX_CONCURRENT_REQUESTS", "9"),
                ("FOLIO__DATABASE__URL", "postgres://u:hunter2@db/folio"),
                ("FOLIO__SERVICE_CLIENT__ID", "ledger"),
                ("FOLIO__SERVICE_CLIENT__SECRET", "s3cret-value"),
                ("FOLIO__DATA_DIR", "/tmp/folio-x"),
            ]),
        )?;
        assert_eq!(loaded.common.server.max_concurrent_requests, 9);
        assert_eq!(loaded.common.data_dir, PathBuf::from("/tmp/folio-x"));
        let printed = format!("{:?}", loaded.common);
        assert!(!printed.contains("hunter2"), "database password printed: {printed}");
        assert!(!printed.contains("s3cret-value"), "client secret printed: {printed}");
        Ok(())
    }

    #[test]
    fn invalid_values_name_their_key() {
        let nowhere = std::path::Path::new("/nonexistent-folio-config");
        let error = load_from("auth", nowhere, env(&[("FOLIO__SERVER__LISTEN_ADDR", "not-an-address")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("listen_addr"), "{error}");

        let error = load_from("auth", nowhere, env(&[("FOLIO__DATABASE__URL", "mysql://x")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("database.url"), "{error}");

        let error = load_from("auth", nowhere, env(&[("FOLIO__SERVICE_CLIENT__ID", "only-id")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("service_client.secret"), "{error}");
    }

    #[test]
    fn service_sections_default_when_absent() -> anyhow::Result<()> {
        #[derive(Debug, Default, Deserialize, PartialEq)]
        #[serde(default)]
        struct Section {
            bootstrap_assets: String,
        }
        let nowhere = std::path::Path::new("/nonexistent-folio-config");
        let loaded = load_from("ledger", nowhere, env(&[]))?;
        assert_eq!(loaded.section::<Section>("ledger")?, Section::default());
        let loaded = load_from("ledger", nowhere, env(&[("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2")]))?;
        assert_eq!(loaded.section::<Section>("ledger")?.bootstrap_assets, "USD:2");
        Ok(())
    }
}
