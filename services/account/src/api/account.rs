//! `AccountService` (error domain `account.folio`).

use std::time::Instant;

use folio_errors::Failure;
use folio_proto::account::{self as pb, account_service_server::AccountService};
use folio_runtime::read_after;
use folio_tokens::principal;
use tonic::{Request, Response, Status};

use super::convert::{caller, changes, message, status_filter};
use crate::app::AccountCore;
use crate::domain::{AccountStatus, Caller, NewAccount};

/// The error domain of every account answer.
pub const DOMAIN: &str = "account.folio";

type Reply<T> = Result<Response<T>, Status>;

fn fail(failure: impl Into<Failure>) -> Status {
    failure.into().into_status(DOMAIN)
}

fn caller_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    principal(request).map(caller).map_err(fail)
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

    /// A write's answer, with the position a later read hands back to see
    /// at least this write (DESIGN §6; PostgreSQL only).
    async fn written<T>(&self, message: T) -> Reply<T> {
        let position = self.core.position_after(Instant::now()).await.map_err(fail)?;
        Ok(read_after::answer(Response::new(message), position))
    }

    async fn change_status(
        &self,
        caller: Caller,
        id: String,
        reason: String,
        target: AccountStatus,
    ) -> Result<Option<pb::Account>, Status> {
        let account = self.core.set_status(&caller, &id, target, &reason).await.map_err(fail)?;
        Ok(Some(message(&account)))
    }
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn create_account(&self, request: Request<pb::CreateAccountRequest>) -> Reply<pb::CreateAccountResponse> {
        let caller = caller_of(&request)?;
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
        self.written(pb::CreateAccountResponse { account: Some(message(&account)) }).await
    }

    async fn get_account(&self, request: Request<pb::GetAccountRequest>) -> Reply<pb::GetAccountResponse> {
        let caller = caller_of(&request)?;
        let after = read_after::requested(&request).map_err(fail)?;
        let (account, balance) = self.core.get(&caller, &request.into_inner().account_id, after).await.map_err(fail)?;
        Ok(Response::new(pb::GetAccountResponse { account: Some(message(&account)), balance }))
    }

    async fn list_accounts(&self, request: Request<pb::ListAccountsRequest>) -> Reply<pb::ListAccountsResponse> {
        let caller = caller_of(&request)?;
        let after = read_after::requested(&request).map_err(fail)?;
        let pb::ListAccountsRequest { owner_id, status, page_size, page_token } = request.into_inner();
        let status = status_filter(status).map_err(fail)?;
        let (accounts, next_page_token) =
            self.core.list(&caller, &owner_id, status, page_size, &page_token, after).await.map_err(fail)?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.iter().map(message).collect(),
            next_page_token,
        }))
    }

    async fn update_account(&self, request: Request<pb::UpdateAccountRequest>) -> Reply<pb::UpdateAccountResponse> {
        let caller = caller_of(&request)?;
        let request = request.into_inner();
        let (account_id, etag) = (request.account_id.clone(), request.etag.clone());
        let changes = changes(request).map_err(fail)?;
        let account = self.core.update(&caller, &account_id, &etag, changes).await.map_err(fail)?;
        self.written(pb::UpdateAccountResponse { account: Some(message(&account)) }).await
    }

    async fn freeze_account(&self, request: Request<pb::FreezeAccountRequest>) -> Reply<pb::FreezeAccountResponse> {
        let caller = caller_of(&request)?;
        let pb::FreezeAccountRequest { account_id, reason } = request.into_inner();
        let account = self.change_status(caller, account_id, reason, AccountStatus::Frozen).await?;
        self.written(pb::FreezeAccountResponse { account }).await
    }

    async fn unfreeze_account(
        &self,
        request: Request<pb::UnfreezeAccountRequest>,
    ) -> Reply<pb::UnfreezeAccountResponse> {
        let caller = caller_of(&request)?;
        let pb::UnfreezeAccountRequest { account_id, reason } = request.into_inner();
        let account = self.change_status(caller, account_id, reason, AccountStatus::Active).await?;
        self.written(pb::UnfreezeAccountResponse { account }).await
    }

    async fn close_account(&self, request: Request<pb::CloseAccountRequest>) -> Reply<pb::CloseAccountResponse> {
        let caller = caller_of(&request)?;
        let pb::CloseAccountRequest { account_id, reason } = request.into_inner();
        let account = self.change_status(caller, account_id, reason, AccountStatus::Closed).await?;
        self.written(pb::CloseAccountResponse { account }).await
    }
}
