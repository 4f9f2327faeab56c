//! Releases holds past their deadline, through the writer so expiries take
//! the same locks, in the same order, as every other write.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::writer::Writer;
use crate::domain::{Actor, Op};
use crate::store::statements;

/// Holds released per pass at most.
const PER_PASS: u64 = 1000;

/// Sweeps every `interval` until `shutdown`.
pub fn spawn(db: DatabaseConnection, writer: Writer, interval: Duration, shutdown: CancellationToken) {
    folio_runtime::tasks::spawn_every(interval, shutdown, move || {
        let (db, writer) = (db.clone(), writer.clone());
        async move { sweep(&db, &writer).await }
    });
}

async fn sweep(db: &DatabaseConnection, writer: &Writer) {
    match statements::expired_holds(db, PER_PASS).await {
        Ok(holds) if holds.is_empty() => {}
        Ok(holds) => {
            let count = holds.len();
            let ops = holds.into_iter().map(Op::Expire).collect();
            match writer.submit(ops, false, Actor::system()).await {
                Ok(_) => metrics::counter!("folio_ledger_holds_expired_total").increment(count as u64),
                Err(error) => tracing::warn!(%error, "releasing expired holds failed; next pass retries"),
            }
        }
        Err(error) => tracing::warn!(%error, "finding expired holds failed"),
    }
}
