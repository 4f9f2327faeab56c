//! The gRPC face of `LedgerAdminService` (scope `ledger:admin`).

use folio_errors::FolioError;
use folio_proto::ledger::{self as pb, ledger_admin_service_server::LedgerAdminService};
use folio_tokens::{principal, scopes};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::ledger::fail;
use super::{convert, parse};
use crate::domain::{AccountChange, AccountKind, AccountStatus};
use crate::store::accounts;

type Reply<T> = Result<Response<T>, Status>;

fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    let principal = principal(request).map_err(fail)?;
    principal.require_scope(scopes::LEDGER_ADMIN).map_err(fail)
}

/// Serves `LedgerAdminService`.
#[derive(Clone)]
pub struct LedgerAdminApi {
    db: DatabaseConnection,
}

impl LedgerAdminApi {
    /// Serves `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn now(&self) -> Result<i64, Status> {
        Ok(folio_storage::db::now(&self.db).await.map_err(fail)?.timestamp_micros())
    }
}

fn overdraft(value: i64) -> Result<i64, Status> {
    if value < 0 {
        return Err(fail(FolioError::invalid_field("overdraft_limit", "must not be negative")));
    }
    Ok(value)
}

#[tonic::async_trait]
impl LedgerAdminService for LedgerAdminApi {
    async fn open_account(&self, request: Request<pb::OpenAccountRequest>) -> Reply<pb::OpenAccountResponse> {
        require_admin(&request)?;
        let pb::OpenAccountRequest { account_id, owner_id, asset_code, kind, overdraft_limit } = request.into_inner();
        let id = parse::uuid("account_id", &account_id).map_err(fail)?;
        let owner = parse::uuid("owner_id", &owner_id).map_err(fail)?;
        let asset = parse::asset_code("asset_code", &asset_code).map_err(fail)?;
        let kind = match pb::AccountKind::try_from(kind) {
            Ok(pb::AccountKind::Unspecified | pb::AccountKind::Customer) => AccountKind::Customer,
            Ok(pb::AccountKind::System) => AccountKind::System,
            Err(_) => return Err(fail(FolioError::invalid_field("kind", "unknown account kind"))),
        };
        let (row, version) = accounts::open_account(&self.db, &id, &owner, &asset, kind, overdraft(overdraft_limit)?)
            .await
            .map_err(fail)?;
        let now = self.now().await?;
        Ok(Response::new(pb::OpenAccountResponse { account: Some(convert::ledger_account(&row, version, now)) }))
    }

    async fn set_account_status(
        &self,
        request: Request<pb::SetAccountStatusRequest>,
    ) -> Reply<pb::SetAccountStatusResponse> {
        require_admin(&request)?;
        let pb::SetAccountStatusRequest { account_id, status, version } = request.into_inner();
        let id = parse::uuid("account_id", &account_id).map_err(fail)?;
        let status = match pb::AccountStatus::try_from(status) {
            Ok(pb::AccountStatus::Active) => AccountStatus::Active,
            Ok(pb::AccountStatus::Frozen) => AccountStatus::Frozen,
            Ok(pb::AccountStatus::Closed) => AccountStatus::Closed,
            _ => return Err(fail(FolioError::invalid_field("status", "must be ACTIVE, FROZEN or CLOSED"))),
        };
        let (row, version, applied) =
            accounts::change_account(&self.db, &id, AccountChange::Status(status), version).await.map_err(fail)?;
        let now = self.now().await?;
        Ok(Response::new(pb::SetAccountStatusResponse {
            account: Some(convert::ledger_account(&row, version, now)),
            applied,
        }))
    }

    async fn set_overdraft_limit(
        &self,
        request: Request<pb::SetOverdraftLimitRequest>,
    ) -> Reply<pb::SetOverdraftLimitResponse> {
        require_admin(&request)?;
        let pb::SetOverdraftLimitRequest { account_id, overdraft_limit, version } = request.into_inner();
        let id = parse::uuid("account_id", &account_id).map_err(fail)?;
        let change = AccountChange::OverdraftLimit(overdraft(overdraft_limit)?);
        let (row, version, applied) = accounts::change_account(&self.db, &id, change, version).await.map_err(fail)?;
        let now = self.now().await?;
        Ok(Response::new(pb::SetOverdraftLimitResponse {
            account: Some(convert::ledger_account(&row, version, now)),
            applied,
        }))
    }
}
