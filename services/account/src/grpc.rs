//! The gRPC face of the account service (domain `account.folio`).

use folio_common::time::timestamp;
use folio_common::{
    auth::principal,
    error::{Failure, FolioError},
};
use folio_proto::{
    account::{self as pb, account_service_server::AccountService},
    ledger::AccountStatus,
};
use tonic::{Request, Response, Status};

use crate::core::{Account, AccountCore, Caller, status_number};
use crate::create::NewAccount;
use crate::lifecycle::{Changes, etag};

/// The error domain of every account answer.
pub const DOMAIN: &str = "account.folio";

type Reply<T> = Result<Response<T>, Status>;

fn fail(failure: impl Into<Failure>) -> Status {
    failure.into().into_status(DOMAIN)
}

fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    principal(request).map(Caller::from_principal).map_err(fail)
}

fn message(account: &Account) -> pb::Account {
    pb::Account {
        id: account.id.clone(),
        owner_id: account.owner_id.clone(),
        asset_code: account.asset_code.clone(),
        display_name: account.display_name.clone(),
        metadata: serde_json::from_str(&account.metadata).unwrap_or_default(),
        kind: i32::from(account.kind),
        status: i32::from(account.status),
        overdraft_limit: account.overdraft_limit,
        etag: etag(account),
        created_at: Some(timestamp(account.created_at)),
        updated_at: Some(timestamp(account.updated_at)),
    }
}

/// Serves `AccountService`.
#[derive(Clone)]
pub struct AccountApi {
    core: AccountCore,
}

impl AccountApi {
    /// Serves `core`.
    pub fn new(core: AccountCore) -> Self {
        Self { core }
    }

    async fn change_status<T>(
        &self,
        request: Request<T>,
        id: String,
        reason: String,
        target: AccountStatus,
    ) -> Result<pb::Account, Status> {
        let caller = caller(&request)?;
        let account = self.core.set_status(&caller, &id, target, &reason).await.map_err(fail)?;
        Ok(message(&account))
    }
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn create_account(&self, request: Request<pb::CreateAccountRequest>) -> Reply<pb::CreateAccountResponse> {
        let caller = caller(&request)?;
        let pb::CreateAccountRequest {
            request_id,
            asset_code,
            display_name,
            metadata,
            owner_id,
            kind,
            overdraft_limit,
        } = request.into_inner();
        let new = NewAccount { request_id, asset_code, display_name, metadata, owner_id, kind, overdraft_limit };
        let account = self.core.create(&caller, new).await.map_err(fail)?;
        Ok(Response::new(pb::CreateAccountResponse { account: Some(message(&account)) }))
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Reply<pb::GetAccountResponse> {
        let caller = caller(&request)?;
        let (account, balance) = self.core.get(&caller, &request.into_inner().account_id).await.map_err(fail)?;
        Ok(Response::new(pb::GetAccountResponse { account: Some(message(&account)), balance }))
    }

    async fn list_accounts(&self, request: Request<pb::ListAccountsRequest>) -> Reply<pb::ListAccountsResponse> {
        let caller = caller(&request)?;
        let pb::ListAccountsRequest { owner_id, status, page_size, page_token } = request.into_inner();
        let status = match AccountStatus::try_from(status) {
            Ok(AccountStatus::Unspecified) => None,
            Ok(status) => Some(status_number(status)),
            Err(_) => return Err(fail(FolioError::invalid_field("status", "unknown status"))),
        };
        let (accounts, next_page_token) =
            self.core.list(&caller, &owner_id, status, page_size, &page_token).await.map_err(fail)?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.iter().map(message).collect(),
            next_page_token,
        }))
    }

    async fn update_account(&self, request: Request<pb::UpdateAccountRequest>) -> Reply<pb::UpdateAccountResponse> {
        let caller = caller(&request)?;
        let pb::UpdateAccountRequest { account_id, etag, update_mask, display_name, metadata, overdraft_limit } =
            request.into_inner();
        let paths = update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(fail(FolioError::invalid_field("update_mask", "name at least one field to change")));
        }
        let mut changes = Changes { display_name: None, metadata: None, overdraft_limit: None };
        for path in &paths {
            match path.as_str() {
                "display_name" => changes.display_name = Some(display_name.clone()),
                "metadata" => changes.metadata = Some(metadata.clone()),
                "overdraft_limit" => changes.overdraft_limit = Some(overdraft_limit),
                other => {
                    return Err(fail(FolioError::invalid_field(
                        "update_mask",
                        format!("cannot update {:?}", folio_common::error::echo(other)),
                    )));
                }
            }
        }
        let account = self.core.update(&caller, &account_id, &etag, changes).await.map_err(fail)?;
        Ok(Response::new(pb::UpdateAccountResponse { account: Some(message(&account)) }))
    }

    async fn freeze_account(&self, request: Request<pb::FreezeAccountRequest>) -> Reply<pb::FreezeAccountResponse> {
        let pb::FreezeAccountRequest { account_id, reason } = request.get_ref().clone();
        let account = self.change_status(request, account_id, reason, AccountStatus::Frozen).await?;
        Ok(Response::new(pb::FreezeAccountResponse { account: Some(account) }))
    }

    async fn unfreeze_account(
        &self,
        request: Request<pb::UnfreezeAccountRequest>,
    ) -> Reply<pb::UnfreezeAccountResponse> {
        let pb::UnfreezeAccountRequest { account_id, reason } = request.get_ref().clone();
        let account = self.change_status(request, account_id, reason, AccountStatus::Active).await?;
        Ok(Response::new(pb::UnfreezeAccountResponse { account: Some(account) }))
    }

    async fn close_account(&self, request: Request<pb::CloseAccountRequest>) -> Reply<pb::CloseAccountResponse> {
        let pb::CloseAccountRequest { account_id, reason } = request.get_ref().clone();
        let account = self.change_status(request, account_id, reason, AccountStatus::Closed).await?;
        Ok(Response::new(pb::CloseAccountResponse { account: Some(account) }))
    }
}
