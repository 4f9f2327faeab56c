//! Every string field of every public RPC, each given one string: the
//! probes of the text property test (`text_properties.rs`).

use std::collections::HashMap;

use folio_proto::{
    account::{
        CloseAccountRequest, CreateAccountRequest, FreezeAccountRequest, GetAccountRequest, ListAccountsRequest,
        UnfreezeAccountRequest, UpdateAccountRequest,
    },
    auth::{
        ChangePasswordRequest, CreateServiceAccountRequest, DisableServiceAccountRequest, DisableUserRequest,
        EnableUserRequest, IssueServiceTokenRequest, ListSessionsRequest, ListUsersRequest, LoginRequest,
        RefreshRequest, RegisterRequest, RevokeSessionRequest, RotateServiceAccountSecretRequest, SetUserRolesRequest,
    },
    ledger::{
        AccountKind, CreateAssetRequest, CreateTransferRequest, GetBalanceRequest, GetTransferRequest,
        ListAssetsRequest, ListTransfersRequest, ReverseTransferRequest,
    },
};
use folio_testkit::unique;

use super::{PASSWORD, Stack, bearer, posted};

/// What the probes need: tokens and existing ids.
pub struct Fixture {
    stack: Stack,
    operator: String,
    customer: String,
    victim_user: String,
    account: String,
    bank: String,
    transfer: String,
}

pub async fn fixture(stack: Stack) -> Fixture {
    let operator = stack.operator().await;
    let (_, customer) = stack.customer().await;
    let victim_email = format!("{}@example.com", unique("victim"));
    let register = RegisterRequest { email: victim_email, password: PASSWORD.into(), display_name: "Victim".into() };
    let victim_user = stack.auth().register(register).await.unwrap().into_inner().user.unwrap().id;
    let account = stack.funded(&customer, &operator, 1_000_000).await;
    let bank = stack.open(&operator, AccountKind::System).await;
    let transfer = stack.ledger().create_transfer(bearer(posted(&account, &bank, 1), &customer)).await.unwrap();
    let transfer = transfer.into_inner().transfer.unwrap().id;
    Fixture { stack, operator, customer, victim_user, account, bank, transfer }
}

fn ok<T>(answer: Result<T, tonic::Status>) -> Result<(), tonic::Status> {
    answer.map(|_| ())
}

/// Every string field of every public RPC, each given `s`; the codes answered.
pub async fn probe(f: &Fixture, s: &str) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let (mut auth, mut accounts, mut ledger) = (f.stack.auth(), f.stack.accounts(), f.stack.ledger());
    let (op, cu) = (f.operator.as_str(), f.customer.as_str());
    let t = || s.to_owned();
    let map = |pairs: &[(String, String)]| pairs.iter().cloned().collect::<HashMap<String, String>>();
    let create = |request_id: String, asset_code: String, display_name: String| CreateAccountRequest {
        request_id,
        asset_code,
        display_name,
        ..Default::default()
    };
    let uuid = || uuid::Uuid::new_v4().to_string();
    let transfer = |f2: &dyn Fn(&mut CreateTransferRequest)| {
        let mut request = posted(&f.account, &f.bank, 1);
        f2(&mut request);
        request
    };
    let update = |mask: &str, etag: String, name: String, metadata: HashMap<String, String>| UpdateAccountRequest {
        account_id: f.account.clone(),
        etag,
        update_mask: Some(prost_types::FieldMask { paths: vec![mask.to_owned()] }),
        display_name: name,
        metadata,
        ..Default::default()
    };
    vec![
        (
            "Register.email",
            ok(auth.register(RegisterRequest { email: t(), password: "x".into(), display_name: "N".into() }).await),
        ),
        (
            "Register.display_name",
            ok(auth
                .register(RegisterRequest {
                    email: format!("{}@e.com", uuid()),
                    password: "short".into(),
                    display_name: t(),
                })
                .await),
        ),
        (
            "Register.password",
            ok(auth
                .register(RegisterRequest {
                    email: format!("{}@e.com", uuid()),
                    password: t(),
                    display_name: "N".into(),
                })
                .await),
        ),
        ("Login.email", ok(auth.login(LoginRequest { email: t(), password: "p".into() }).await)),
        ("Login.password", ok(auth.login(LoginRequest { email: "nobody@example.com".into(), password: t() }).await)),
        ("Refresh.refresh_token", ok(auth.refresh(RefreshRequest { refresh_token: t() }).await)),
        (
            "IssueServiceToken.client_id",
            ok(auth
                .issue_service_token(IssueServiceTokenRequest {
                    client_id: t(),
                    client_secret: "s".into(),
                    scopes: vec![],
                })
                .await),
        ),
        (
            "IssueServiceToken.client_secret",
            ok(auth
                .issue_service_token(IssueServiceTokenRequest {
                    client_id: "folio-ledger".into(),
                    client_secret: t(),
                    scopes: vec![],
                })
                .await),
        ),
        (
            "IssueServiceToken.scopes",
            ok(auth
                .issue_service_token(IssueServiceTokenRequest {
                    client_id: "folio-ledger".into(),
                    client_secret: "s".into(),
                    scopes: vec![t()],
                })
                .await),
        ),
        (
            "ListSessions.page_token",
            ok(auth.list_sessions(bearer(ListSessionsRequest { page_size: 5, page_token: t() }, cu)).await),
        ),
        (
            "RevokeSession.session_id",
            ok(auth.revoke_session(bearer(RevokeSessionRequest { session_id: t() }, cu)).await),
        ),
        (
            "ChangePassword.old_password",
            ok(auth
                .change_password(bearer(
                    ChangePasswordRequest { old_password: t(), new_password: "irrelevant pass 77".into() },
                    cu,
                ))
                .await),
        ),
        (
            "ListUsers.page_token",
            ok(auth.list_users(bearer(ListUsersRequest { page_size: 5, page_token: t() }, op)).await),
        ),
        (
            "DisableUser.user_id",
            ok(auth.disable_user(bearer(DisableUserRequest { user_id: t(), reason: "r".into() }, op)).await),
        ),
        (
            "DisableUser.reason",
            ok(auth.disable_user(bearer(DisableUserRequest { user_id: f.victim_user.clone(), reason: t() }, op)).await),
        ),
        (
            "EnableUser.reason",
            ok(auth.enable_user(bearer(EnableUserRequest { user_id: f.victim_user.clone(), reason: t() }, op)).await),
        ),
        (
            "SetUserRoles.user_id",
            ok(auth
                .set_user_roles(bearer(SetUserRolesRequest { user_id: t(), roles: vec!["customer".into()] }, op))
                .await),
        ),
        (
            "SetUserRoles.roles",
            ok(auth
                .set_user_roles(bearer(SetUserRolesRequest { user_id: f.victim_user.clone(), roles: vec![t()] }, op))
                .await),
        ),
        (
            "CreateServiceAccount.name",
            ok(auth
                .create_service_account(bearer(
                    CreateServiceAccountRequest { name: t(), scopes: vec!["ledger:read".into()] },
                    op,
                ))
                .await),
        ),
        (
            "CreateServiceAccount.scopes",
            ok(auth
                .create_service_account(bearer(CreateServiceAccountRequest { name: "n".into(), scopes: vec![t()] }, op))
                .await),
        ),
        (
            "RotateServiceAccountSecret.client_id",
            ok(auth
                .rotate_service_account_secret(bearer(RotateServiceAccountSecretRequest { client_id: t() }, op))
                .await),
        ),
        (
            "DisableServiceAccount.client_id",
            ok(auth.disable_service_account(bearer(DisableServiceAccountRequest { client_id: t() }, op)).await),
        ),
        (
            "CreateAccount.request_id",
            ok(accounts.create_account(bearer(create(t(), "USD".into(), "N".into()), cu)).await),
        ),
        ("CreateAccount.asset_code", ok(accounts.create_account(bearer(create(uuid(), t(), "N".into()), cu)).await)),
        (
            "CreateAccount.display_name",
            ok(accounts.create_account(bearer(create(uuid(), "USD".into(), t()), cu)).await),
        ),
        (
            "CreateAccount.metadata_key",
            ok(accounts
                .create_account(bearer(
                    CreateAccountRequest {
                        metadata: map(&[(t(), "v".into())]),
                        ..create(uuid(), "USD".into(), "N".into())
                    },
                    cu,
                ))
                .await),
        ),
        (
            "CreateAccount.metadata_value",
            ok(accounts
                .create_account(bearer(
                    CreateAccountRequest {
                        metadata: map(&[("k".into(), t())]),
                        ..create(uuid(), "USD".into(), "N".into())
                    },
                    cu,
                ))
                .await),
        ),
        (
            "CreateAccount.owner_id",
            ok(accounts
                .create_account(bearer(
                    CreateAccountRequest { owner_id: t(), ..create(uuid(), "USD".into(), "N".into()) },
                    op,
                ))
                .await),
        ),
        ("GetAccount.account_id", ok(accounts.get_account(bearer(GetAccountRequest { account_id: t() }, cu)).await)),
        (
            "ListAccounts.owner_id",
            ok(accounts.list_accounts(bearer(ListAccountsRequest { owner_id: t(), ..Default::default() }, op)).await),
        ),
        (
            "ListAccounts.page_token",
            ok(accounts.list_accounts(bearer(ListAccountsRequest { page_token: t(), ..Default::default() }, cu)).await),
        ),
        (
            "UpdateAccount.account_id",
            ok(accounts
                .update_account(bearer(
                    UpdateAccountRequest {
                        account_id: t(),
                        ..update("display_name", "\"1\"".into(), "N".into(), HashMap::new())
                    },
                    cu,
                ))
                .await),
        ),
        (
            "UpdateAccount.etag",
            ok(accounts.update_account(bearer(update("display_name", t(), "N".into(), HashMap::new()), cu)).await),
        ),
        (
            "UpdateAccount.update_mask",
            ok(accounts.update_account(bearer(update(s, "\"1\"".into(), "N".into(), HashMap::new()), cu)).await),
        ),
        (
            "UpdateAccount.display_name",
            ok(accounts.update_account(bearer(update("display_name", "\"1\"".into(), t(), HashMap::new()), cu)).await),
        ),
        (
            "UpdateAccount.metadata",
            ok(accounts
                .update_account(bearer(update("metadata", "\"1\"".into(), "N".into(), map(&[(t(), t())])), cu))
                .await),
        ),
        (
            "FreezeAccount.account_id",
            ok(accounts.freeze_account(bearer(FreezeAccountRequest { account_id: t(), reason: "r".into() }, op)).await),
        ),
        (
            "FreezeAccount.reason",
            ok(accounts
                .freeze_account(bearer(FreezeAccountRequest { account_id: f.account.clone(), reason: t() }, op))
                .await),
        ),
        (
            "UnfreezeAccount.reason",
            ok(accounts
                .unfreeze_account(bearer(UnfreezeAccountRequest { account_id: f.account.clone(), reason: t() }, op))
                .await),
        ),
        (
            "CloseAccount.account_id",
            ok(accounts.close_account(bearer(CloseAccountRequest { account_id: t(), reason: "r".into() }, cu)).await),
        ),
        (
            "CreateAsset.code",
            ok(ledger
                .create_asset(bearer(CreateAssetRequest { code: t(), scale: 2, description: "d".into() }, op))
                .await),
        ),
        (
            "CreateAsset.description",
            ok(ledger
                .create_asset(bearer(CreateAssetRequest { code: "ZZZ".into(), scale: 2, description: t() }, op))
                .await),
        ),
        (
            "ListAssets.page_token",
            ok(ledger.list_assets(bearer(ListAssetsRequest { page_size: 5, page_token: t() }, cu)).await),
        ),
        ("CreateTransfer.id", ok(ledger.create_transfer(bearer(transfer(&|r| r.id = t()), cu)).await)),
        (
            "CreateTransfer.debit_account_id",
            ok(ledger.create_transfer(bearer(transfer(&|r| r.debit_account_id = t()), cu)).await),
        ),
        ("CreateTransfer.asset_code", ok(ledger.create_transfer(bearer(transfer(&|r| r.asset_code = t()), cu)).await)),
        ("CreateTransfer.pending_id", ok(ledger.create_transfer(bearer(transfer(&|r| r.pending_id = t()), cu)).await)),
        (
            "CreateTransfer.description",
            ok(ledger.create_transfer(bearer(transfer(&|r| r.description = t()), cu)).await),
        ),
        (
            "CreateTransfer.metadata",
            ok(ledger.create_transfer(bearer(transfer(&|r| r.metadata = map(&[(t(), t())])), cu)).await),
        ),
        ("GetTransfer.transfer_id", ok(ledger.get_transfer(bearer(GetTransferRequest { transfer_id: t() }, cu)).await)),
        (
            "ListTransfers.account_id",
            ok(ledger.list_transfers(bearer(ListTransfersRequest { account_id: t(), ..Default::default() }, cu)).await),
        ),
        (
            "ListTransfers.page_token",
            ok(ledger
                .list_transfers(bearer(
                    ListTransfersRequest { account_id: f.account.clone(), page_token: t(), ..Default::default() },
                    cu,
                ))
                .await),
        ),
        (
            "GetBalance.account_id",
            ok(ledger.get_balance(bearer(GetBalanceRequest { account_id: t(), as_of: None }, cu)).await),
        ),
        (
            "ReverseTransfer.transfer_id",
            ok(ledger
                .reverse_transfer(bearer(
                    ReverseTransferRequest { transfer_id: t(), id: uuid(), description: "d".into() },
                    op,
                ))
                .await),
        ),
        (
            "ReverseTransfer.description",
            ok(ledger
                .reverse_transfer(bearer(
                    ReverseTransferRequest { transfer_id: f.transfer.clone(), id: uuid(), description: t() },
                    op,
                ))
                .await),
        ),
    ]
}
