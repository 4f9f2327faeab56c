//! The transaction helper: commit on `Ok`, roll back on `Err`, retry
//! serialization failures and deadlocks with jittered backoff, and record
//! each operation's latency.

use std::{future::Future, sync::Arc, time::Duration, time::Instant};

use sea_orm::{
    AccessMode, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, IsolationLevel, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How a transaction is run and retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles after each retry.
    pub base_delay: Duration,
    /// Backoff never exceeds this.
    pub max_delay: Duration,
    /// PostgreSQL isolation level (SQLite transactions are always serializable).
    pub isolation: Option<IsolationLevel>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
            isolation: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy at SERIALIZABLE isolation.
    pub fn serializable() -> Self {
        Self { isolation: Some(IsolationLevel::Serializable), ..Self::default() }
    }
}

/// Why a transaction failed: the database, or the work's own error (which
/// rolls back and is never retried).
#[derive(Debug, thiserror::Error)]
pub enum TxError<E> {
    /// A database error (after retries, if it was retryable).
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The work decided to abort.
    #[error("{0}")]
    Abort(E),
}

/// Runs `work` in a transaction of `db`, committing when it returns `Ok`.
/// A serialization failure or deadlock (from the work or from the commit)
/// rolls back and runs `work` again, up to `policy.max_attempts` times.
pub async fn run_in_tx<T, E, F, Fut>(
    db: &DatabaseConnection,
    operation: &'static str,
    policy: RetryPolicy,
    mut work: F,
) -> Result<T, TxError<E>>
where
    F: FnMut(Arc<DatabaseTransaction>) -> Fut,
    Fut: Future<Output = Result<T, TxError<E>>>,
{
    let started = Instant::now();
    let backend = db.get_database_backend();
    let isolation = if backend == DbBackend::Postgres { policy.isolation } else { None };
    let mut attempt = 1;
    let result = loop {
        let outcome = attempt_once(db, isolation, &mut work).await;
        match outcome {
            Err(TxError::Db(error)) if attempt < policy.max_attempts.max(1) && is_retryable(&error) => {
                metrics::counter!("folio_db_transaction_retries_total", "operation" => operation).increment(1);
                tracing::debug!(operation, attempt, %error, "retrying transaction");
                tokio::time::sleep(backoff(policy, attempt)).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    let outcome = match &result {
        Ok(_) => "commit",
        Err(TxError::Abort(_)) => "abort",
        Err(TxError::Db(_)) => "error",
    };
    metrics::histogram!("folio_db_transaction_seconds", "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

async fn attempt_once<T, E, F, Fut>(
    db: &DatabaseConnection,
    isolation: Option<IsolationLevel>,
    work: &mut F,
) -> Result<T, TxError<E>>
where
    F: FnMut(Arc<DatabaseTransaction>) -> Fut,
    Fut: Future<Output = Result<T, TxError<E>>>,
{
    let tx = Arc::new(begin_write(db, isolation).await?);
    let value = work(Arc::clone(&tx)).await;
    // The work's future is done, so ours is normally the only handle left; a
    // handle kept elsewhere means the work leaked it, and we roll back.
    let tx = Arc::try_unwrap(tx)
        .map_err(|_| DbErr::Custom("transaction handle outlived the transaction's work".to_owned()))?;
    match value {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            // Dropping rolls back too; an explicit rollback surfaces its error in logs.
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(%rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock
/// at BEGIN (IMMEDIATE), so a writer waits its turn (the busy timeout)
/// instead of failing with SQLITE_BUSY when it upgrades from reading while
/// another writer holds the lock, which SQLite cannot wait out.
pub async fn begin_write(
    db: &DatabaseConnection,
    isolation: Option<IsolationLevel>,
) -> Result<DatabaseTransaction, DbErr> {
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    db.begin_with_options(TransactionOptions {
        isolation_level: isolation,
        access_mode: None::<AccessMode>,
        sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
    })
    .await
}

/// True for errors that a fresh attempt of the same transaction may not hit:
/// PostgreSQL serialization failures (40001) and deadlocks (40P01), SQLite
/// busy and locked databases.
pub fn is_retryable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx = match error {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_database_error().and_then(|e| e.code()) {
        Some(code) => matches!(code.as_ref(), "40001" | "40P01" | "5" | "6" | "517" | "261" | "262"),
        None => false,
    }
}

/// Whether the database refused a statement because of a value it was
/// given, not because of its own state: PostgreSQL SQLSTATE classes 22 (data
/// exception: NUL in text, a value out of range), 23 (integrity constraint)
/// and 54 (program limit: an index row too large); SQLite's CONSTRAINT,
/// TOOBIG, MISMATCH and RANGE (extended codes included). A batch that fails
/// this way can be split to find the request that caused it; any other
/// failure (connection, I/O, shutdown) is nobody's request's doing.
pub fn refused_value(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx = match error {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    let Some(code) = sqlx.as_database_error().and_then(|e| e.code()) else { return false };
    // A SQLSTATE has five characters; SQLite's extended codes are below 10,000.
    if code.len() == 5 {
        return matches!(code.get(..2), Some("22" | "23" | "54"));
    }
    code.parse::<u32>().is_ok_and(|sqlite| matches!(sqlite & 0xff, 18 | 19 | 20 | 25))
}

fn backoff(policy: RetryPolicy, attempt: u32) -> Duration {
    let exponential = policy.base_delay.saturating_mul(1 << attempt.min(16).saturating_sub(1));
    let capped = exponential.min(policy.max_delay);
    // Full jitter keeps retrying writers from colliding again in lockstep.
    capped.mul_f64(rand::random::<f64>().max(0.1))
}
