//! The `ledger` configuration section (`FOLIO__LEDGER__*`).

use serde::Deserialize;

/// Settings of the ledger.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LedgerSettings {
    /// Assets registered at start when missing, e.g. `USD:2,EUR:2`.
    pub bootstrap_assets: String,
    /// How often the sweeper looks for expired holds, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Write batches in flight at once on PostgreSQL (SQLite always uses one).
    pub writers: usize,
    /// Where the writer connects, when not `database.url`: the primary
    /// itself behind a transaction pooler (DESIGN §2), since its sessions
    /// carry settings (startup `options`) that PgBouncer refuses.
    pub writer_database_url: Option<secrecy::SecretString>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self { bootstrap_assets: String::new(), sweep_interval_ms: 500, writers: 2, writer_database_url: None }
    }
}
