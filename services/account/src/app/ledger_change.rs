//! Changes the ledger is authoritative for (status, overdraft limit), made so
//! that every answer is true (DESIGN §5a):
//! - the account row is locked and checked (etag, status, who may) before the
//!   ledger is asked, and stays locked until the change is recorded, so a
//!   check that passed still holds when the ledger applies the change;
//! - a change the ledger did not apply (its version was ahead of ours: an
//!   earlier outcome we never learned) is sent again past the ledger's
//!   version, and the answer is the ledger's state, never our old record;
//! - a refusal by the ledger changes nothing anywhere;
//! - when the outcome is unknown (the ledger did not answer, or our commit
//!   failed after it did) the account is marked, and the repair pass re-reads
//!   the ledger's state and records it within seconds.

use folio_errors::{Failure, FolioError, Reason};
use sea_orm::ConnectionTrait;

use super::AccountCore;
use crate::domain::{Account, AccountStatus, LedgerState, ValidChanges};
use crate::store::{self, audit::StatusChange};

/// What the ledger is asked to change.
#[derive(Debug, Clone, Copy)]
pub enum LedgerChange {
    /// A new status (freeze, unfreeze, close).
    Status(AccountStatus),
    /// A new overdraft limit.
    OverdraftLimit(i64),
}

/// Who asked, and why (for the status audit trail).
pub struct Intent<'a> {
    /// The change.
    pub change: LedgerChange,
    /// The caller's subject.
    pub actor: &'a str,
    /// The caller's reason.
    pub reason: &'a str,
}

/// Versions tried past the ledger's before giving up (each try that is not
/// applied means another writer moved the ledger meanwhile).
const ATTEMPTS: usize = 3;

/// Who records a repaired state in the audit trail.
const REPAIRER: &str = "folio-account";

fn outcome_unknown(failure: &Failure) -> bool {
    matches!(failure, Failure::Internal(_))
        || failure.reason().is_some_and(|reason| reason == Reason::DependencyUnavailable)
}

fn unconfirmed() -> Failure {
    FolioError::new(Reason::DependencyUnavailable, "the ledger did not confirm the change; retry it")
        .with_metadata("dependency", "ledger")
        .into()
}

impl AccountCore {
    /// Locks the account, runs `check` on it, applies `intent` in the ledger
    /// and records the ledger's state with the local `edits`, all or nothing.
    pub(crate) async fn change_in_ledger(
        &self,
        id: &str,
        intent: Intent<'_>,
        edits: &ValidChanges,
        check: impl FnOnce(&Account) -> Result<(), Failure>,
    ) -> Result<Account, Failure> {
        let tx = folio_storage::db::begin_write(&self.db, None).await?;
        let account = self.lock(&tx, id).await?;
        check(&account)?;
        let ledger = match self.apply_in_ledger(id, intent.change, account.version).await {
            Ok(ledger) => ledger,
            Err(failure) if outcome_unknown(&failure) => {
                drop(tx);
                self.mark_resync(id).await;
                return Err(failure);
            }
            Err(failure) => return Err(failure),
        };
        let updated = record(&tx, &edits.apply_local(&account), ledger, intent.actor, intent.reason).await?;
        if let Err(error) = tx.commit().await {
            tracing::error!(%error, account_id = id, "recording a change the ledger applied failed; repairing");
            self.mark_resync(id).await;
            return Err(unconfirmed());
        }
        Ok(updated)
    }

    /// Sends the change with the next version; past the ledger's own
    /// version when it turns out to be ahead of ours.
    async fn apply_in_ledger(&self, id: &str, change: LedgerChange, ours: i64) -> Result<LedgerState, Failure> {
        let mut version = ours.saturating_add(1);
        for _ in 0..ATTEMPTS {
            let reply = match change {
                LedgerChange::Status(status) => self.ledger.set_status(id, status, version).await?,
                LedgerChange::OverdraftLimit(limit) => self.ledger.set_overdraft_limit(id, limit, version).await?,
            };
            if reply.applied {
                return Ok(reply.state);
            }
            tracing::warn!(account_id = id, ours, ledger = reply.state.version, "the ledger was ahead; resending");
            version = reply.state.version.saturating_add(1);
        }
        Err(unconfirmed())
    }

    /// Marks the account for the repair pass (best effort: a failure here is
    /// logged; the next change of the account re-reads the ledger anyway).
    async fn mark_resync(&self, id: &str) {
        if let Err(error) = store::accounts::set_resync_due(&self.db, id, true).await {
            tracing::error!(%error, account_id = id, "could not mark an account for repair");
        }
    }

    /// The repair pass: re-reads the ledger's state of every marked account
    /// and records it where the ledger is ahead.
    pub(crate) async fn repair_pass(&self) -> Result<(), Failure> {
        for id in store::accounts::resync_due(&self.db, 50).await? {
            let ledger = match self.ledger.state(&id).await {
                Ok(ledger) => ledger,
                Err(failure) => {
                    tracing::debug!(account_id = %id, %failure, "repair: the ledger did not answer");
                    continue;
                }
            };
            let tx = folio_storage::db::begin_write(&self.db, None).await?;
            let current = self.lock(&tx, &id).await?;
            if ledger.version > current.version {
                tracing::warn!(account_id = %id, "repair: recording the ledger's state");
                let reason = "recorded from the ledger after a change whose outcome was unknown";
                record(&tx, &current, ledger, REPAIRER, reason).await?;
            } else {
                store::accounts::set_resync_due(&tx, &id, false).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Writes the ledger's `state` over `account` (already holding any local
/// edits), with an audit entry when the status changes.
async fn record(
    db: &impl ConnectionTrait,
    account: &Account,
    state: LedgerState,
    actor: &str,
    reason: &str,
) -> Result<Account, Failure> {
    let now = store::now(db).await?;
    if state.status != account.status {
        let change = StatusChange { account_id: &account.id, from: account.status, to: state.status, actor, reason };
        store::audit::append(db, change, now).await?;
    }
    // The row is locked (or, on SQLite, the database), so no write comes first.
    store::accounts::save(db, &account.with_ledger_state(state), now, true)
        .await?
        .ok_or_else(|| Failure::Internal(anyhow::anyhow!("account {} changed under its lock", account.id)))
}
