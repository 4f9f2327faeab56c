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

use folio_common::error::{Failure, FolioError, Reason};
use folio_proto::ledger::{AccountStatus, LedgerAccount};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Set,
};

use crate::core::{Account, AccountCore, StatusChange};
use crate::entities::accounts;

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

/// Local fields changed together with the ledger's (UpdateAccount).
#[derive(Default)]
pub struct LocalEdits {
    /// New display name.
    pub display_name: Option<String>,
    /// New metadata (JSON).
    pub metadata: Option<String>,
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
    /// and records the ledger's state with `edits`, all or nothing.
    pub(crate) async fn change_in_ledger(
        &self,
        id: &str,
        intent: Intent<'_>,
        edits: LocalEdits,
        check: impl FnOnce(&Account) -> Result<(), Failure>,
    ) -> Result<Account, Failure> {
        let tx = folio_common::db::begin_write(&self.db, None).await?;
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
        let updated = self.record(&tx, account, &ledger, edits, intent.actor, intent.reason).await?;
        if let Err(error) = tx.commit().await {
            tracing::error!(%error, account_id = id, "recording a change the ledger applied failed; repairing");
            self.mark_resync(id).await;
            return Err(unconfirmed());
        }
        Ok(updated)
    }

    /// Sends the change with the next version; past the ledger's own
    /// version when it turns out to be ahead of ours.
    async fn apply_in_ledger(&self, id: &str, change: LedgerChange, ours: i64) -> Result<LedgerAccount, Failure> {
        let mut version = ours.saturating_add(1);
        for _ in 0..ATTEMPTS {
            let reply = match change {
                LedgerChange::Status(status) => self.ledger.set_status(id, status, version).await?,
                LedgerChange::OverdraftLimit(limit) => self.ledger.set_overdraft_limit(id, limit, version).await?,
            };
            if reply.applied {
                return Ok(reply.account);
            }
            tracing::warn!(account_id = id, ours, ledger = reply.account.version, "the ledger was ahead; resending");
            version = reply.account.version.saturating_add(1);
        }
        Err(unconfirmed())
    }

    /// The account, locked for the rest of `tx` (SQLite: `tx` holds the
    /// write lock from its BEGIN IMMEDIATE).
    async fn lock(&self, tx: &DatabaseTransaction, id: &str) -> Result<Account, Failure> {
        if tx.get_database_backend() == DbBackend::Sqlite {
            return self.find(tx, id).await;
        }
        accounts::Entity::find_by_id(id.to_owned())
            .lock_exclusive()
            .one(tx)
            .await?
            .ok_or_else(|| FolioError::new(Reason::AccountNotFound, "no such account").into())
    }

    /// Writes the ledger's state (and `edits`) over the local record, with
    /// an audit entry when the status changes.
    async fn record(
        &self,
        db: &impl ConnectionTrait,
        current: Account,
        ledger: &LedgerAccount,
        edits: LocalEdits,
        actor: &str,
        reason: &str,
    ) -> Result<Account, Failure> {
        let now = self.now(db).await?;
        let status = i16::try_from(ledger.status).unwrap_or(current.status);
        if status != current.status {
            let change = StatusChange { account_id: &current.id, from: current.status, to: status, actor, reason };
            self.audit_status(db, change, now).await?;
        }
        let mut row: accounts::ActiveModel = current.clone().into();
        row.status = Set(status);
        row.overdraft_limit = Set(ledger.overdraft_limit);
        row.version = Set(Ord::max(current.version, ledger.version));
        row.revision = Set(current.revision + 1);
        row.updated_at = Set(now);
        row.resync_due = Set(false);
        if let Some(name) = edits.display_name {
            row.display_name = Set(name);
        }
        if let Some(metadata) = edits.metadata {
            row.metadata = Set(metadata);
        }
        Ok(row.update(db).await?)
    }

    /// Marks the account for the repair pass (best effort: a failure here is
    /// logged; the next change of the account re-reads the ledger anyway).
    async fn mark_resync(&self, id: &str) {
        let marked = accounts::Entity::update_many()
            .col_expr(accounts::Column::ResyncDue, Expr::value(true))
            .filter(accounts::Column::Id.eq(id))
            .exec(&self.db)
            .await;
        if let Err(error) = marked {
            tracing::error!(%error, account_id = id, "could not mark an account for repair");
        }
    }

    /// The repair pass: re-reads the ledger's state of every marked account
    /// and records it where the ledger is ahead.
    pub(crate) async fn repair_pass(&self) -> Result<(), Failure> {
        let due = accounts::Entity::find().filter(accounts::Column::ResyncDue.eq(true)).limit(50).all(&self.db).await?;
        for account in due {
            let ledger = match self.ledger.state(&account.id).await {
                Ok(ledger) => ledger,
                Err(failure) => {
                    tracing::debug!(account_id = %account.id, %failure, "repair: the ledger did not answer");
                    continue;
                }
            };
            let tx = folio_common::db::begin_write(&self.db, None).await?;
            let current = self.lock(&tx, &account.id).await?;
            if ledger.version > current.version {
                tracing::warn!(account_id = %account.id, "repair: recording the ledger's state");
                let reason = "recorded from the ledger after a change whose outcome was unknown";
                self.record(&tx, current, &ledger, LocalEdits::default(), REPAIRER, reason).await?;
            } else {
                accounts::Entity::update_many()
                    .col_expr(accounts::Column::ResyncDue, Expr::value(false))
                    .filter(accounts::Column::Id.eq(&account.id))
                    .exec(&tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }
}
