//! The outbox worker: opens in the ledger every account still PENDING
//! because the ledger did not answer at creation, retrying with backoff. Its
//! jobs live in the database, so they survive restarts; OpenAccount is
//! idempotent in the ledger, so a job retried after an unknown outcome
//! never opens an account twice.

use std::time::Duration;

use folio_errors::Failure;
use tokio_util::sync::CancellationToken;

use super::AccountCore;
use super::ledger_client::{INLINE_DEADLINE, Opened};
use crate::store::{self, outbox::Retry};

/// A claimed job is left alone by other replicas for this long.
const CLAIM_FOR_MICROS: i64 = 30_000_000;
const MAX_BACKOFF_MICROS: i64 = 60_000_000;
/// Jobs worked per pass.
const BATCH: u64 = 50;

/// Works the outbox every `interval` until `shutdown`.
pub fn spawn(core: AccountCore, interval: Duration, shutdown: CancellationToken) {
    folio_runtime::tasks::spawn_every(interval, shutdown, move || {
        let core = core.clone();
        async move {
            if let Err(error) = pass(&core).await {
                tracing::warn!(%error, "outbox pass failed");
            }
            if let Err(error) = core.repair_pass().await {
                tracing::warn!(%error, "repair pass failed");
            }
        }
    });
}

async fn pass(core: &AccountCore) -> Result<(), Failure> {
    let now = store::now(&core.db).await?;
    for job in store::outbox::due(&core.db, now, BATCH).await? {
        // Claim it: only the replica whose update matches works this attempt.
        if !store::outbox::claim(&core.db, &job, now + CLAIM_FOR_MICROS).await? {
            continue;
        }
        let account = core.find(&core.db, &job.account_id).await?;
        let (error, give_up) = match core.ledger.open(&account, INLINE_DEADLINE).await {
            Opened::Yes => {
                core.mark_opened(&account.id).await?;
                tracing::info!(account_id = %account.id, attempts = job.attempts + 1, "account opened by the outbox");
                continue;
            }
            Opened::Unavailable(why) => (why, false),
            Opened::Refused(error) => {
                tracing::error!(account_id = %account.id, %error, "the ledger refused to open an account; giving up");
                (error.to_string(), true)
            }
        };
        let attempts = job.attempts.saturating_add(1);
        let backoff = Ord::min(1_000_000i64 << attempts.clamp(0, 6), MAX_BACKOFF_MICROS);
        let retry = Retry { attempts, next_attempt_at: now + backoff, error: &error, give_up };
        store::outbox::reschedule(&core.db, &job.account_id, retry).await?;
    }
    Ok(())
}
