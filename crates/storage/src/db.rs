//! One URL opens a service's database: PostgreSQL in the service's own schema
//! (created when absent and set as `search_path`), or a SQLite file of its own.

use std::{path::Path, time::Duration};

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

use folio_errors::{Failure, FolioError};
use serde::Deserialize;

mod replica;
mod tx;

pub use replica::{MAX_READ_WAIT, READ_AFTER_HEADER, ReadAfter, Reads, SAMPLE_INTERVAL, Source};

/// This service's database (`database.*`, `FOLIO__DATABASE__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `postgres://...` or `sqlite://...`; unset: a SQLite file under `data_dir`.
    pub url: Option<secrecy::SecretString>,
    /// Run migrations at start-up (the `migrate` subcommand runs them regardless).
    pub migrate_on_start: bool,
    /// Pool size.
    pub max_connections: u32,
    /// A hot standby of the PostgreSQL primary for reads that may trail it
    /// (DESIGN §6, "Reads from replicas"); its pool is `max_connections` too.
    #[serde(default)]
    pub read_url: Option<secrecy::SecretString>,
    /// A replica further behind than this is not read.
    #[serde(default = "default_read_max_lag_ms")]
    pub read_max_lag_ms: u64,
}

fn default_read_max_lag_ms() -> u64 {
    1000
}

pub use tx::{RetryPolicy, TxError, begin_write, is_retryable, refused_value, run_in_tx};

/// Opens the database of `schema` (`auth`, `account`, `ledger`) as configured:
/// `database.url` or, when unset, `<data_dir>/<schema>.sqlite`.
pub async fn connect(settings: &DatabaseSettings, data_dir: &Path, schema: &str) -> anyhow::Result<DatabaseConnection> {
    connect_pool(settings, data_dir, schema, &Pool { max_connections: settings.max_connections, session: &[] }).await
}

/// A pool's size and the PostgreSQL settings of its sessions (`SET` once per
/// connection; SQLite ignores them). A service gives a part of its work a
/// pool of its own when that part wants settings the rest should not have.
pub struct Pool<'a> {
    /// Connections at most.
    pub max_connections: u32,
    /// `(name, value)` of PostgreSQL run-time settings.
    pub session: &'a [(&'a str, &'a str)],
}

/// Opens a pool on the database of `schema`; see [`connect`].
pub async fn connect_pool(
    settings: &DatabaseSettings,
    data_dir: &Path,
    schema: &str,
    pool: &Pool<'_>,
) -> anyhow::Result<DatabaseConnection> {
    let url = match &settings.url {
        Some(url) => url.expose_secret().to_owned(),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
            format!("sqlite://{}?mode=rwc", data_dir.join(format!("{schema}.sqlite")).display())
        }
    };
    open_url(&url, schema, pool).await
}

/// How long a read waits to connect to the replica before it fails (and
/// is asked of the primary instead).
const REPLICA_PATIENCE: Duration = Duration::from_secs(1);

/// The reads of `schema`: on `primary` alone or, with `database.read_url`
/// set, on that replica where they may trail (monitored until `shutdown`).
pub async fn connect_reads(
    settings: &DatabaseSettings,
    schema: &str,
    primary: &DatabaseConnection,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<Reads> {
    let Some(url) = &settings.read_url else {
        return Ok(Reads::primary_only(primary.clone()));
    };
    let url = url.expose_secret();
    anyhow::ensure!(
        url.starts_with("postgres") && primary.get_database_backend() == DatabaseBackend::Postgres,
        "invalid configuration: `database.read_url` must be a PostgreSQL standby of a PostgreSQL primary"
    );
    let pool = Pool { max_connections: settings.max_connections, session: &[] };
    // A standby is read-only: the primary made the schema.
    // A replica is asked only while the monitor hears from it; a read that
    // meets it gone falls back to the primary, so it must not wait long.
    let replica =
        open_postgres(url, schema, &pool, REPLICA_PATIENCE).await.context("connecting to the read replica")?;
    let max_lag = Duration::from_millis(settings.read_max_lag_ms);
    Ok(Reads::with_replica(primary.clone(), replica, max_lag, shutdown.clone()))
}

/// Opens `url` for `schema`; see [`connect`].
pub async fn connect_url(url: &str, schema: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    open_url(url, schema, &Pool { max_connections, session: &[] }).await
}

async fn open_url(url: &str, schema: &str, pool: &Pool<'_>) -> anyhow::Result<DatabaseConnection> {
    let max_connections = pool.max_connections;
    anyhow::ensure!(
        !schema.is_empty() && schema.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "schema name {schema:?} must be lower-case letters and underscores"
    );
    if url.starts_with("sqlite:") {
        let mut options = ConnectOptions::new(url.to_owned());
        // SQLite allows one writer; a small pool with a busy timeout serialises
        // writers without failing them.
        options
            .max_connections(max_connections.clamp(1, 4))
            .min_connections(1)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                opts.busy_timeout(Duration::from_secs(10))
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                    .foreign_keys(true)
            });
        return Database::connect(options).await.context("opening the SQLite database");
    }
    create_schema(url, schema).await?;
    open_postgres(url, schema, pool, Duration::from_secs(10)).await
}

/// A pool on an existing schema of a PostgreSQL server.
async fn open_postgres(
    url: &str,
    schema: &str,
    pool: &Pool<'_>,
    patience: Duration,
) -> anyhow::Result<DatabaseConnection> {
    let max_connections = pool.max_connections;
    let pooled = behind_transaction_pooler(url);
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections.max(1))
        .min_connections(1)
        .connect_timeout(patience)
        .acquire_timeout(patience)
        .sqlx_logging(false);
    if !pooled {
        options.set_schema_search_path(schema.to_owned());
    }
    if !pool.session.is_empty() {
        anyhow::ensure!(
            !pooled,
            "this connection carries session settings, which a transaction pooler cannot keep: point it at the primary itself"
        );
        let session: Vec<(String, String)> =
            pool.session.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        options.map_sqlx_postgres_opts(move |opts| opts.options(session.clone()));
    }
    let db = Database::connect(options).await.context("connecting to PostgreSQL")?;
    if pooled {
        role_search_path_is(&db, schema).await?;
    }
    Ok(db)
}

/// Whether `url` goes through a transaction pooler that keeps no session
/// state or prepared statements (PgBouncer before 1.21): the URL says so
/// with `statement-cache-capacity=0`, which also makes every statement
/// unnamed and keeps its Parse and Bind on one server (vendor/README.md).
/// Then nothing may be set per session (DESIGN §2): the schema comes from
/// the role (`ALTER ROLE ... SET search_path`), checked at start.
fn behind_transaction_pooler(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| query.split('&').any(|pair| pair == "statement-cache-capacity=0"))
}

/// Refuses to start when the role's `search_path` does not lead to `schema`:
/// behind a transaction pooler a session `SET` would reach whichever client
/// gets that server next, so the role must carry it.
async fn role_search_path_is(db: &DatabaseConnection, schema: &str) -> anyhow::Result<()> {
    let row = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_setting('search_path') AS path".to_owned(),
        ))
        .await?
        .context("reading search_path")?;
    let path: String = row.try_get("", "path")?;
    let first = path.split(',').next().unwrap_or_default().trim().trim_matches('"');
    anyhow::ensure!(
        first == schema,
        "behind a transaction pooler (statement-cache-capacity=0) the role must lead to schema {schema:?} by itself \
         (ALTER ROLE <role> SET search_path = {schema}); its search_path is {path:?}"
    );
    Ok(())
}

async fn create_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(options).await.context("connecting to PostgreSQL")?;
    // The schema name was checked to be [a-z_]+ above, so quoting is safe.
    admin
        .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .await
        .with_context(|| format!("creating schema {schema}"))?;
    admin.close().await.ok();
    Ok(())
}

/// Applies every pending migration of `M`; a second run is a no-op.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> anyhow::Result<()> {
    M::up(db, None).await.context("running migrations")
}

/// The database clock in microseconds since the epoch, as an SQL expression
/// (to read it in the same round trip as something else).
pub fn clock_micros_sql(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
    }
}

/// "Now" for a read served by `source`, as an SQL expression in
/// microseconds: the database clock on the primary; on a replica, its last
/// replayed commit (DESIGN §6), since it holds nothing later than that.
pub fn read_clock_micros_sql(backend: DatabaseBackend, source: Source) -> &'static str {
    match (backend, source) {
        (DatabaseBackend::Postgres, Source::Replica) => {
            "CAST(EXTRACT(EPOCH FROM COALESCE(pg_last_xact_replay_timestamp(), clock_timestamp())) * 1000000 AS BIGINT)"
        }
        _ => clock_micros_sql(backend),
    }
}

/// The database clock: what decides expiry, ordering and `as_of`.
pub async fn now(db: &impl ConnectionTrait) -> Result<chrono::DateTime<chrono::Utc>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let sql = format!("SELECT {} AS micros", clock_micros_sql(backend));
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("database clock".to_owned()))?;
    let micros: i64 = row.try_get("", "micros")?;
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| sea_orm::DbErr::Custom(format!("database clock out of range: {micros}")))
}

impl From<TxError<Failure>> for Failure {
    fn from(error: TxError<Failure>) -> Self {
        match error {
            TxError::Db(error) => error.into(),
            TxError::Abort(failure) => failure,
        }
    }
}

impl From<Failure> for TxError<Failure> {
    fn from(failure: Failure) -> Self {
        TxError::Abort(failure)
    }
}

impl From<FolioError> for TxError<Failure> {
    fn from(error: FolioError) -> Self {
        TxError::Abort(Failure::Caller(error))
    }
}
