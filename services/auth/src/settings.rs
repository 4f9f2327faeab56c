//! The `auth` configuration section (`FOLIO__AUTH__*`).

use std::time::Duration;

use anyhow::Context;
use folio_tokens::scopes;
use secrecy::SecretString;
use serde::Deserialize;

/// Settings of the auth service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Creates this operator at start when absent (with the password below).
    pub bootstrap_operator_email: Option<String>,
    /// The bootstrap operator's password.
    pub bootstrap_operator_password: Option<SecretString>,
    /// Service accounts provisioned at start, `client_id:secret:scope scope;...`
    /// (deployments set it from a secret).
    pub service_accounts: Option<SecretString>,
    /// Base64 of 32 bytes that seal signing keys at rest. Required on
    /// PostgreSQL; with the embedded SQLite default a key file is created in
    /// the data directory.
    pub key_encryption_key: Option<SecretString>,
    /// Access-token lifetime in seconds (at most 900).
    pub access_token_ttl_secs: u64,
    /// Absolute session lifetime in seconds (refresh tokens never outlive it).
    pub refresh_token_ttl_secs: u64,
    /// A rotated key signs only after this many seconds, when every verifier
    /// has refreshed its key set.
    pub key_activation_delay_secs: u64,
    /// Failures per (email, client IP) within the window before lock-out.
    pub lockout_threshold: i64,
    /// Failures per email (any IP) within the window before lock-out.
    pub lockout_email_threshold: i64,
    /// The failure-counting window, in seconds.
    pub lockout_window_secs: u64,
    /// First lock-out delay in milliseconds; it doubles with each further failure.
    pub lockout_base_delay_ms: u64,
    /// Longest lock-out, in seconds.
    pub lockout_max_delay_secs: u64,
    /// argon2id memory cost in KiB (at least 19,456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (at least 2).
    pub argon2_iterations: u32,
    /// Password hashes computed at once; the rest wait (0: one less than the cores).
    pub hashing_concurrency: usize,
    /// Logins that may wait for a hashing slot before new ones are shed.
    pub hashing_queue: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            bootstrap_operator_email: None,
            bootstrap_operator_password: None,
            service_accounts: None,
            key_encryption_key: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            key_activation_delay_secs: 60,
            lockout_threshold: 5,
            lockout_email_threshold: 20,
            lockout_window_secs: 900,
            lockout_base_delay_ms: 30_000,
            lockout_max_delay_secs: 900,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            hashing_concurrency: 0,
            hashing_queue: 256,
        }
    }
}

impl AuthSettings {
    /// Checks bounds that security depends on; names the offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=900).contains(&self.access_token_ttl_secs),
            "invalid configuration: `auth.access_token_ttl_secs` must be 1..900"
        );
        anyhow::ensure!(
            self.argon2_memory_kib >= 19_456 && self.argon2_iterations >= 2,
            "invalid configuration: `auth.argon2_memory_kib` >= 19456 and `auth.argon2_iterations` >= 2 (OWASP minimum)"
        );
        anyhow::ensure!(self.lockout_threshold >= 1, "invalid configuration: `auth.lockout_threshold` must be >= 1");
        self.declared_service_accounts().map(|_| ())
    }

    /// The access-token lifetime.
    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    /// Parses `service_accounts`.
    pub fn declared_service_accounts(&self) -> anyhow::Result<Vec<DeclaredServiceAccount>> {
        let Some(raw) = &self.service_accounts else { return Ok(Vec::new()) };
        secrecy::ExposeSecret::expose_secret(raw)
            .split(';')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let mut parts = entry.splitn(3, ':');
                let (Some(client_id), Some(secret), Some(scope_list)) = (parts.next(), parts.next(), parts.next()) else {
                    anyhow::bail!("invalid configuration: `auth.service_accounts` entries are `client_id:secret:scopes`");
                };
                let granted: Vec<String> = scope_list.split_whitespace().map(str::to_owned).collect();
                for scope in &granted {
                    anyhow::ensure!(
                        scopes::ALL.contains(&scope.as_str()),
                        "invalid configuration: `auth.service_accounts` names unknown scope {scope:?}"
                    );
                }
                anyhow::ensure!(
                    secret.len() >= 32,
                    "invalid configuration: `auth.service_accounts` secret of {client_id} must be at least 32 characters"
                );
                Ok(DeclaredServiceAccount {
                    client_id: client_id.to_owned(),
                    secret: SecretString::from(secret.to_owned()),
                    scopes: granted,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .context("reading `auth.service_accounts`")
    }
}

/// A service account declared in configuration.
#[derive(Debug, Clone)]
pub struct DeclaredServiceAccount {
    /// Its client id (also its name).
    pub client_id: String,
    /// Its secret.
    pub secret: SecretString,
    /// Its scopes.
    pub scopes: Vec<String>,
}
