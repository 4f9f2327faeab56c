//! Reading and changing accounts. Status and limit changes go to the ledger
//! first (it is authoritative) and are recorded here only after it confirms
//! (`ledger_change.rs`); local fields change under the etag alone.

use folio_errors::Failure;
use folio_errors::validate;
use folio_proto::ledger::Balance;
use folio_runtime::read_after::retry_on_primary;
use folio_storage::db::{ReadAfter, RetryPolicy, TxError, run_in_tx};

use super::AccountCore;
use super::ledger_change::{Intent, LedgerChange};
use crate::domain::{Account, AccountStatus, Caller, Changes, ValidChanges, stale_etag};
use crate::store::{self, accounts::PageQuery};

/// Longest reason a status change may give.
const MAX_REASON_CHARS: usize = 500;

/// A page of accounts and the token of the next.
pub type Page = (Vec<Account>, String);

impl AccountCore {
    /// GetAccount, with the balance when the ledger answers in time; at
    /// least as new as `after` (here and at the ledger). The owner checked
    /// never changes, so a replica decides it as the primary would.
    pub async fn get(
        &self,
        caller: &Caller,
        id: &str,
        after: Option<ReadAfter>,
    ) -> Result<(Account, Option<Balance>), Failure> {
        let id = validate::uuid("account_id", id)?;
        let key = &id;
        let account = self.reads.run(after, retry_on_primary, |db, _| async move { self.find(&db, key).await }).await?;
        caller.may_read(&account)?;
        let balance =
            if account.status == AccountStatus::Pending { None } else { self.ledger.balance(&id, after).await };
        Ok((account, balance))
    }

    /// ListAccounts: the caller's (operators: any owner), oldest first, at
    /// least as new as `after_write`.
    pub async fn list(
        &self,
        caller: &Caller,
        owner_id: &str,
        status: Option<AccountStatus>,
        size: i32,
        token: &str,
        after_write: Option<ReadAfter>,
    ) -> Result<Page, Failure> {
        let limit = validate::page_size(size, 50, 500)?;
        let owner = if owner_id.is_empty() { None } else { Some(validate::uuid("owner_id", owner_id)?) };
        let owner = caller.list_owner(owner)?;
        let (after, page_after) = self.page_tokens.decode_read_after(token)?;
        // A later page is never older than an earlier one.
        let after_write = ReadAfter::max(after_write, page_after);
        let query = PageQuery { owner: owner.as_deref(), status, after, limit: limit + 1 };
        let page = self
            .reads
            .run(after_write, retry_on_primary, |db, _| {
                let query = query.clone();
                async move { Ok::<_, Failure>(store::accounts::page(&db, query).await?) }
            })
            .await?;
        Ok(folio_storage::paging::finish_page(page, limit, |a| {
            self.page_tokens.encode_read_after(a.created_at, &a.id, after_write)
        }))
    }

    /// UpdateAccount: guarded by the etag; the overdraft limit goes to the ledger first.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        given_etag: &str,
        changes: Changes,
    ) -> Result<Account, Failure> {
        let id = validate::uuid("account_id", id)?;
        let changes = changes.validate()?;
        let account = self.find(&self.db, &id).await?;
        changes.check(caller, &account, given_etag)?;
        let Some(limit) = changes.overdraft_limit else {
            return self.update_locally(&account, changes).await;
        };
        // The etag is checked again under the row lock, before the ledger is
        // asked: a stale etag changes nothing anywhere.
        let intent = Intent { change: LedgerChange::OverdraftLimit(limit), actor: &caller.subject, reason: "" };
        self.change_in_ledger(&id, intent, &changes, |current| {
            current.check_etag(given_etag)?;
            Ok(current.refuse_unless_settled()?)
        })
        .await
    }

    /// UpdateAccount of local fields only, guarded by the etag under the write.
    async fn update_locally(&self, account: &Account, changes: ValidChanges) -> Result<Account, Failure> {
        let updated = run_in_tx(&self.db, "account_update", RetryPolicy::default(), |tx| {
            let changes = &changes;
            async move {
                let now = store::now(&*tx).await?;
                // Written only over the revision the etag named: of concurrent
                // updates with one etag, one wins and the others are refused.
                let saved = store::accounts::save(&*tx, &changes.apply_local(account), now, false).await?;
                saved.ok_or_else(|| TxError::from(stale_etag()))
            }
        })
        .await?;
        Ok(updated)
    }

    /// FreezeAccount / UnfreezeAccount / CloseAccount: the ledger first,
    /// under the account's lock, then the record and the audit trail.
    pub async fn set_status(
        &self,
        caller: &Caller,
        id: &str,
        target: AccountStatus,
        reason: &str,
    ) -> Result<Account, Failure> {
        let id = validate::uuid("account_id", id)?;
        validate::free_text("reason", reason, MAX_REASON_CHARS)?;
        let intent = Intent { change: LedgerChange::Status(target), actor: &caller.subject, reason };
        self.change_in_ledger(&id, intent, &ValidChanges::default(), |account| {
            Ok(caller.may_set_status(account, target)?)
        })
        .await
    }
}
