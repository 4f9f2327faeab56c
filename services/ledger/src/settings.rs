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
    /// Events are kept this many hours (DESIGN "Ledger events").
    pub event_retention_hours: u64,
    /// How often old events are deleted, in milliseconds.
    pub event_prune_interval_ms: u64,
    /// How often each instance polls the event log's head, in milliseconds
    /// (the most a consumer waits for an event of another instance).
    pub event_poll_interval_ms: u64,
    /// A heartbeat after this many milliseconds without a message.
    pub event_heartbeat_ms: u64,
    /// Streams reading the event log at once, per instance (the rest of
    /// the pool stays for unary calls).
    pub event_readers: usize,
    /// Open event streams per principal.
    pub event_streams_per_principal: usize,
    /// Open event streams per instance.
    pub event_streams_per_instance: usize,
    /// NATS with JetStream to relay events to (DESIGN "Ledger events"); unset: no relay.
    pub events_nats_url: Option<String>,
}

impl LedgerSettings {
    /// The event streams' tuning.
    pub fn events(&self) -> crate::app::events::EventSettings {
        use std::time::Duration;
        crate::app::events::EventSettings {
            poll_interval: Duration::from_millis(self.event_poll_interval_ms.max(1)),
            prune_interval: Duration::from_millis(self.event_prune_interval_ms.max(1)),
            heartbeat: Duration::from_millis(self.event_heartbeat_ms.max(1)),
            readers: self.event_readers,
            per_principal: self.event_streams_per_principal,
            per_instance: self.event_streams_per_instance,
            retention: Duration::from_secs(self.event_retention_hours.saturating_mul(3600)),
        }
    }
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            bootstrap_assets: String::new(),
            sweep_interval_ms: 500,
            writers: 2,
            writer_database_url: None,
            event_retention_hours: 168,
            event_prune_interval_ms: 60_000,
            event_poll_interval_ms: 50,
            event_heartbeat_ms: 15_000,
            event_readers: 4,
            event_streams_per_principal: 4,
            event_streams_per_instance: 1000,
            events_nats_url: None,
        }
    }
}
