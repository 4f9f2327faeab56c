//! CreateAccount: idempotent per (caller, request id); the row is written
//! PENDING with an outbox entry in one transaction, then OpenAccount is tried
//! inline; when the ledger does not answer, the outbox worker finishes later.

use std::collections::HashMap;

use folio_common::{
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
    validate,
};
use folio_proto::ledger::{AccountKind, AccountStatus};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use sha2::{Digest, Sha256};

use crate::core::{Account, AccountCore, Caller, StatusChange, status_number};
use crate::entities::{accounts, outbox};
use crate::ledger::{INLINE_DEADLINE, Opened};

/// A CreateAccount request, before validation.
pub struct NewAccount {
    /// Idempotency key.
    pub request_id: String,
    /// Asset code.
    pub asset_code: String,
    /// Display name.
    pub display_name: String,
    /// Metadata.
    pub metadata: HashMap<String, String>,
    /// Operators only.
    pub owner_id: String,
    /// Operators only (proto number; 0 = default).
    pub kind: i32,
    /// Operators only.
    pub overdraft_limit: i64,
}

impl AccountCore {
    /// CreateAccount.
    pub async fn create(&self, caller: &Caller, request: NewAccount) -> Result<Account, Failure> {
        let request_id = validate::uuid("request_id", &request.request_id)?;
        let asset_code = validate::asset_code("asset_code", &request.asset_code)?;
        let display_name = validate::text("display_name", &request.display_name, 1, 100)?;
        let metadata = validate::metadata("metadata", &request.metadata)?;
        if !caller.manage_any && (!request.owner_id.is_empty() || request.kind != 0 || request.overdraft_limit != 0) {
            return Err(FolioError::new(Reason::MissingRole, "owner_id, kind and overdraft_limit are for operators")
                .with_metadata("role", "operator")
                .into());
        }
        let owner_id = if request.owner_id.is_empty() {
            caller.subject.clone()
        } else {
            validate::uuid("owner_id", &request.owner_id)?
        };
        let kind = match AccountKind::try_from(request.kind) {
            Ok(AccountKind::Unspecified | AccountKind::Customer) => AccountKind::Customer,
            Ok(AccountKind::System) => AccountKind::System,
            Err(_) => return Err(FolioError::invalid_field("kind", "unknown account kind").into()),
        };
        if request.overdraft_limit < 0 {
            return Err(FolioError::invalid_field("overdraft_limit", "must not be negative").into());
        }
        let digest =
            serde_json::json!([asset_code, display_name, metadata, owner_id, kind as i32, request.overdraft_limit]);
        let request_hash = hex::encode(Sha256::digest(digest.to_string().as_bytes()));

        if let Some(existing) = self.existing(caller, &request_id, &request_hash).await? {
            return self.finish_open(existing).await;
        }
        if !self.ledger.asset_known(&asset_code).await? {
            return Err(FolioError::new(Reason::AssetNotFound, "no such asset").into());
        }
        let id = uuid::Uuid::now_v7().to_string();
        let metadata = serde_json::to_string(&metadata).map_err(|e| Failure::Internal(e.into()))?;
        let inserted = run_in_tx(&self.db, "account_create", RetryPolicy::default(), |tx| {
            let (id, owner_id, asset_code, display_name, metadata, request_id, request_hash) = (
                id.clone(),
                owner_id.clone(),
                asset_code.clone(),
                display_name.clone(),
                metadata.clone(),
                request_id.clone(),
                request_hash.clone(),
            );
            async move {
                let now = self.now(&*tx).await?;
                let account = accounts::ActiveModel {
                    id: Set(id.clone()),
                    owner_id: Set(owner_id),
                    asset_code: Set(asset_code),
                    display_name: Set(display_name),
                    metadata: Set(metadata),
                    kind: Set(i16::try_from(kind as i32).unwrap_or(1)),
                    status: Set(status_number(AccountStatus::Pending)),
                    overdraft_limit: Set(request.overdraft_limit),
                    version: Set(0),
                    revision: Set(1),
                    created_by: Set(caller.subject.clone()),
                    request_id: Set(request_id),
                    request_hash: Set(request_hash),
                    created_at: Set(now),
                    updated_at: Set(now),
                    resync_due: Set(false),
                }
                .insert(&*tx)
                .await?;
                outbox::ActiveModel {
                    account_id: Set(id),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    last_error: Set(String::new()),
                    done: Set(false),
                    created_at: Set(now),
                }
                .insert(&*tx)
                .await?;
                Ok::<_, TxError<Failure>>(account)
            }
        })
        .await;
        let account = match inserted {
            Ok(account) => account,
            // A concurrent call with the same request id won the insert.
            Err(TxError::Db(error)) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => self
                .existing(caller, &request_id, &request_hash)
                .await?
                .ok_or_else(|| Failure::Internal(anyhow::anyhow!("request id conflict without a row")))?,
            Err(error) => return Err(error.into()),
        };
        self.finish_open(account).await
    }

    async fn existing(
        &self,
        caller: &Caller,
        request_id: &str,
        request_hash: &str,
    ) -> Result<Option<Account>, Failure> {
        let found = accounts::Entity::find()
            .filter(accounts::Column::CreatedBy.eq(&caller.subject))
            .filter(accounts::Column::RequestId.eq(request_id))
            .one(&self.db)
            .await?;
        match found {
            Some(account) if account.request_hash == request_hash => Ok(Some(account)),
            Some(_) => {
                Err(FolioError::new(Reason::RequestIdReused, "this request id was used with other fields").into())
            }
            None => Ok(None),
        }
    }

    /// Opens a PENDING account in the ledger inline (short deadline); the
    /// outbox keeps the job when the ledger does not answer.
    async fn finish_open(&self, account: Account) -> Result<Account, Failure> {
        if account.status != status_number(AccountStatus::Pending) {
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
            let account = self.find(&*tx, id).await?;
            let now = self.now(&*tx).await?;
            let pending = status_number(AccountStatus::Pending);
            let account = if account.status == pending {
                let active = status_number(AccountStatus::Active);
                let change = StatusChange {
                    account_id: id,
                    from: pending,
                    to: active,
                    actor: "folio-account",
                    reason: "opened in the ledger",
                };
                self.audit_status(&*tx, change, now).await?;
                accounts::ActiveModel {
                    status: Set(active),
                    revision: Set(account.revision + 1),
                    updated_at: Set(now),
                    ..account.into()
                }
                .update(&*tx)
                .await?
            } else {
                account
            };
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Done, sea_orm::sea_query::Expr::value(true))
                .filter(outbox::Column::AccountId.eq(id))
                .exec(&*tx)
                .await?;
            Ok::<_, TxError<Failure>>(account)
        })
        .await?)
    }
}
