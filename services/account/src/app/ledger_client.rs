//! The account service's view of the ledger: `LedgerAdminService` for
//! opening accounts and changing status and limits, `LedgerService` for
//! balances and the asset registry, all with this service's own token.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use folio_errors::{Failure, FolioError, Reason};
use folio_proto::ledger::{
    self as pb, ledger_admin_service_client::LedgerAdminServiceClient, ledger_service_client::LedgerServiceClient,
};
use folio_storage::db::{READ_AFTER_HEADER, ReadAfter};
use folio_tokens::ServiceTokenProvider;
use tonic::{Code, transport::Channel};

use crate::domain::{Account, AccountStatus, LedgerState};

/// How long an inline ledger call may take before the caller is answered without it.
pub const INLINE_DEADLINE: Duration = Duration::from_secs(2);
const ASSETS_FRESH_FOR: Duration = Duration::from_secs(60);

/// What the ledger said to OpenAccount.
pub enum Opened {
    /// The ledger has the account (now or from before).
    Yes,
    /// The ledger did not answer; try again later.
    Unavailable(String),
    /// The ledger refused for good.
    Refused(FolioError),
}

/// The ledger's answer to a versioned change.
pub struct Applied {
    /// False when the version was not newer than the ledger's: nothing changed.
    pub applied: bool,
    /// The ledger's state after the call.
    pub state: LedgerState,
}

impl Applied {
    fn from_reply(applied: bool, account: Option<pb::LedgerAccount>) -> Result<Self, Failure> {
        let account = account.ok_or_else(|| {
            Failure::Internal(anyhow::anyhow!("the ledger answered a change without the account's state"))
        })?;
        let status = AccountStatus::from_number(account.status).ok_or_else(|| {
            Failure::Internal(anyhow::anyhow!("the ledger answered an unknown account status {}", account.status))
        })?;
        let state = LedgerState { status, overdraft_limit: account.overdraft_limit, version: account.version };
        Ok(Self { applied, state })
    }
}

/// Calls to the ledger.
#[derive(Clone)]
pub struct Ledger {
    admin: LedgerAdminServiceClient<Channel>,
    reads: LedgerServiceClient<Channel>,
    tokens: Option<Arc<ServiceTokenProvider>>,
    assets: Arc<RwLock<(HashSet<String>, Option<Instant>)>>,
}

/// A ledger failure as the account service answers it: the ledger's own
/// reason for business rules, `DEPENDENCY_UNAVAILABLE` for everything else.
pub fn from_ledger(status: &tonic::Status) -> Failure {
    let reason = folio_errors::reason_of(status).and_then(|r| Reason::parse(&r));
    match (status.code(), reason) {
        (Code::Unavailable | Code::DeadlineExceeded | Code::Internal | Code::Unknown | Code::Cancelled, _)
        | (_, None) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "ledger call failed");
            FolioError::new(Reason::DependencyUnavailable, "the ledger is unavailable; retry later")
                .with_metadata("dependency", "ledger")
                .into()
        }
        (_, Some(reason)) => FolioError::new(reason, status.message()).into(),
    }
}

impl Ledger {
    /// Calls through `channel` with `tokens` (scopes `ledger:admin`, `ledger:read`).
    pub fn new(channel: Channel, tokens: Option<Arc<ServiceTokenProvider>>) -> Self {
        Self {
            admin: LedgerAdminServiceClient::new(channel.clone()),
            reads: LedgerServiceClient::new(channel),
            tokens,
            assets: Arc::new(RwLock::new((HashSet::new(), None))),
        }
    }

    async fn request<T>(&self, message: T, deadline: Duration) -> Result<tonic::Request<T>, tonic::Status> {
        let tokens =
            self.tokens.as_ref().ok_or_else(|| tonic::Status::unavailable("no service credentials configured"))?;
        let mut request = tokens.authorize(message).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        request.set_timeout(deadline);
        Ok(request)
    }

    /// OpenAccount for a stored account (idempotent in the ledger).
    pub async fn open(&self, account: &Account, deadline: Duration) -> Opened {
        let message = pb::OpenAccountRequest {
            account_id: account.id.clone(),
            owner_id: account.owner_id.clone(),
            asset_code: account.asset_code.clone(),
            kind: account.kind as i32,
            overdraft_limit: account.overdraft_limit,
        };
        let result = match self.request(message, deadline).await {
            Ok(request) => self.admin.clone().open_account(request).await,
            Err(status) => Err(status),
        };
        match result {
            Ok(_) => Opened::Yes,
            Err(status) => match from_ledger(&status) {
                Failure::Caller(error) if error.reason() != Reason::DependencyUnavailable => Opened::Refused(error),
                _ => Opened::Unavailable(status.message().to_owned()),
            },
        }
    }

    /// SetAccountStatus: whether the ledger applied it, and its state after the call.
    pub async fn set_status(&self, id: &str, status: AccountStatus, version: i64) -> Result<Applied, Failure> {
        let message = pb::SetAccountStatusRequest { account_id: id.to_owned(), status: status as i32, version };
        let request = self.request(message, INLINE_DEADLINE).await.map_err(|s| from_ledger(&s))?;
        let reply = self.admin.clone().set_account_status(request).await.map_err(|s| from_ledger(&s))?.into_inner();
        Applied::from_reply(reply.applied, reply.account)
    }

    /// SetOverdraftLimit: whether the ledger applied it, and its state after the call.
    pub async fn set_overdraft_limit(&self, id: &str, limit: i64, version: i64) -> Result<Applied, Failure> {
        let message = pb::SetOverdraftLimitRequest { account_id: id.to_owned(), overdraft_limit: limit, version };
        let request = self.request(message, INLINE_DEADLINE).await.map_err(|s| from_ledger(&s))?;
        let reply = self.admin.clone().set_overdraft_limit(request).await.map_err(|s| from_ledger(&s))?.into_inner();
        Applied::from_reply(reply.applied, reply.account)
    }

    /// The ledger's status, limit and version of an account, read without
    /// changing anything: a change with version 0 is never newer than the
    /// ledger's, so it is answered `applied = false` with the current state.
    pub async fn state(&self, id: &str) -> Result<LedgerState, Failure> {
        Ok(self.set_status(id, AccountStatus::Active, 0).await?.state)
    }

    /// The current balance (at least as new as `after`), or `None` when
    /// the ledger does not answer in time.
    pub async fn balance(&self, id: &str, after: Option<ReadAfter>) -> Option<pb::Balance> {
        let message = pb::GetBalanceRequest { account_id: id.to_owned(), as_of: None };
        let mut request = self.request(message, Duration::from_secs(1)).await.ok()?;
        if let Some(after) = after
            && let Ok(value) = after.to_string().parse()
        {
            request.metadata_mut().insert(READ_AFTER_HEADER, value);
        }
        match self.reads.clone().get_balance(request).await {
            Ok(reply) => reply.into_inner().balance,
            Err(status) => {
                tracing::debug!(code = ?status.code(), "balance unavailable");
                None
            }
        }
    }

    /// Whether `code` is a registered asset: from the cached registry, read
    /// again when stale or when the code is unknown to it.
    pub async fn asset_known(&self, code: &str) -> Result<bool, Failure> {
        {
            let cached = self.assets.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cached.0.contains(code) && cached.1.is_some_and(|at| at.elapsed() < ASSETS_FRESH_FOR) {
                return Ok(true);
            }
        }
        match self.refresh_assets().await {
            Ok(codes) => Ok(codes.contains(code)),
            // The ledger is down: trust what it said before, if anything.
            Err(failure) => {
                let cached = self.assets.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                if cached.0.contains(code) { Ok(true) } else { Err(failure) }
            }
        }
    }

    async fn refresh_assets(&self) -> Result<HashSet<String>, Failure> {
        let mut codes = HashSet::new();
        let mut page_token = String::new();
        loop {
            let message = pb::ListAssetsRequest { page_size: 1000, page_token: page_token.clone() };
            let request = self.request(message, INLINE_DEADLINE).await.map_err(|s| from_ledger(&s))?;
            let reply = self.reads.clone().list_assets(request).await.map_err(|s| from_ledger(&s))?.into_inner();
            codes.extend(reply.assets.into_iter().map(|a| a.code));
            if reply.next_page_token.is_empty() {
                break;
            }
            page_token = reply.next_page_token;
        }
        *self.assets.write().unwrap_or_else(std::sync::PoisonError::into_inner) = (codes.clone(), Some(Instant::now()));
        Ok(codes)
    }
}
