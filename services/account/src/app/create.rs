//! CreateAccount: idempotent per (caller, request id); the row is written
//! PENDING with an outbox entry in one transaction, then OpenAccount is tried
//! inline; when the ledger does not answer, the outbox worker finishes later.

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, TxError, run_in_tx};
use sea_orm::SqlErr;

use super::AccountCore;
use super::ledger_client::{INLINE_DEADLINE, Opened};
use crate::domain::{Account, AccountRequest, AccountStatus, Caller, NewAccount};
use crate::store::{self, audit::StatusChange};

impl AccountCore {
    /// CreateAccount.
    pub async fn create(&self, caller: &Caller, request: NewAccount) -> Result<Account, Failure> {
        let request = request.validate(caller)?;
        if let Some(existing) = self.existing(caller, &request).await? {
            return self.finish_open(existing).await;
        }
        if !self.ledger.asset_known(&request.asset_code).await? {
            return Err(FolioError::new(Reason::AssetNotFound, "no such asset").into());
        }
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = run_in_tx(&self.db, "account_create", RetryPolicy::default(), |tx| {
            let (id, request) = (&id, &request);
            async move {
                let now = store::now(&*tx).await?;
                Ok::<_, TxError<Failure>>(
                    store::accounts::insert_pending(&*tx, id, request, &caller.subject, now).await?,
                )
            }
        })
        .await;
        let account = match inserted {
            Ok(account) => account,
            // A concurrent call with the same request id won the insert.
            Err(TxError::Db(error)) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => self
                .existing(caller, &request)
                .await?
                .ok_or_else(|| Failure::Internal(anyhow::anyhow!("request id conflict without a row")))?,
            Err(error) => return Err(error.into()),
        };
        self.finish_open(account).await
    }

    /// The account this caller already created with this request id;
    /// `REQUEST_ID_REUSED` when that request had other fields.
    async fn existing(&self, caller: &Caller, request: &AccountRequest) -> Result<Option<Account>, Failure> {
        match store::accounts::by_request(&self.db, &caller.subject, &request.request_id).await? {
            Some((account, hash)) if hash == request.request_hash => Ok(Some(account)),
            Some(_) => {
                Err(FolioError::new(Reason::RequestIdReused, "this request id was used with other fields").into())
            }
            None => Ok(None),
        }
    }

    /// Opens a PENDING account in the ledger inline (short deadline); the
    /// outbox keeps the job when the ledger does not answer.
    async fn finish_open(&self, account: Account) -> Result<Account, Failure> {
        if account.status != AccountStatus::Pending {
            return Ok(account);
        }
        match self.ledger.open(&account, INLINE_DEADLINE).await {
            Opened::Yes => self.mark_opened(&account.id).await,
            Opened::Unavailable(why) => {
                tracing::info!(account_id = %account.id, %why, "ledger did not open the account inline; the outbox will");
                Ok(account)
            }
            Opened::Refused(error) => {
                tracing::error!(account_id = %account.id, %error, "the ledger refused to open an account");
                Ok(account)
            }
        }
    }

    /// Records that the ledger has opened `id`: ACTIVE, outbox done, audited.
    pub(crate) async fn mark_opened(&self, id: &str) -> Result<Account, Failure> {
        Ok(run_in_tx(&self.db, "account_mark_opened", RetryPolicy::default(), |tx| async move {
            let account = self.lock(&tx, id).await?;
            let account = if account.status == AccountStatus::Pending {
                let now = store::now(&*tx).await?;
                let change = StatusChange {
                    account_id: id,
                    from: AccountStatus::Pending,
                    to: AccountStatus::Active,
                    actor: "folio-account",
                    reason: "opened in the ledger",
                };
                store::audit::append(&*tx, change, now).await?;
                let opened = Account { status: AccountStatus::Active, ..account };
                store::accounts::save(&*tx, &opened, now, false)
                    .await?
                    .ok_or_else(|| Failure::Internal(anyhow::anyhow!("account {id} changed under its lock")))?
            } else {
                account
            };
            store::outbox::finish(&*tx, id).await?;
            Ok::<_, TxError<Failure>>(account)
        })
        .await?)
    }
}
