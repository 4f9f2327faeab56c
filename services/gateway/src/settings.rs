//! The `gateway` configuration section (`FOLIO__GATEWAY__*`).

use serde::Deserialize;

/// Settings of the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// Per-principal and per-IP budgets.
    pub rate_limit: RateLimitSettings,
    /// Longest deadline passed upstream, in milliseconds (a longer or absent
    /// `grpc-timeout` is cut to this).
    pub max_deadline_ms: u64,
    /// Origins allowed to call through gRPC-Web from a browser, comma-separated; `*` for any.
    pub cors_allowed_origins: String,
    /// How often upstream DNS names are resolved again, in milliseconds.
    pub resolve_interval_ms: u64,
    /// How long an endpoint that refused a connection is skipped, in milliseconds.
    pub eject_for_ms: u64,
    /// Gateway replicas sharing the budgets: one that cannot reach Redis
    /// enforces its share, each budget divided by this.
    pub replicas: u32,
}

/// DESIGN.md section 5 budgets.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Requests per second per principal.
    pub per_principal_rps: f64,
    /// Burst per principal.
    pub per_principal_burst: u32,
    /// Requests per second per client IP for unauthenticated RPCs.
    pub per_ip_rps: f64,
    /// Burst per client IP.
    pub per_ip_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { per_principal_rps: 1000.0, per_principal_burst: 2000, per_ip_rps: 50.0, per_ip_burst: 100 }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            rate_limit: RateLimitSettings::default(),
            max_deadline_ms: 30_000,
            cors_allowed_origins: String::new(),
            resolve_interval_ms: 5_000,
            eject_for_ms: 5_000,
            replicas: 1,
        }
    }
}
