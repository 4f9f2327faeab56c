//! A real auth, ledger and account service on port 0 over one fresh
//! PostgreSQL database, with clients and helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use folio_cluster::{self as cluster, Auth, Running};
use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    account::{CreateAccountRequest, ListAccountsRequest, account_service_client::AccountServiceClient},
    auth::{LoginRequest, RegisterRequest},
    ledger::{CreateTransferRequest, TransferKind, ledger_service_client::LedgerServiceClient},
};
use folio_testkit::{TestDatabase, unique};
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Code, Request};

const PASSWORD: &str = "Correct horse battery staple 9";
const ACCOUNT_SECRET: &str = "account-secret-0123456789abcdef-0123456789ab";
const LEDGER_SECRET: &str = "ledger-secret-0123456789abcdef-0123456789abc";
const WRITER_SECRET: &str = "writer-secret-0123456789abcdef-0123456789abc";

pub struct Suite {
    pub db: TestDatabase,
    pub auth: Auth,
    pub ledger_port: u16,
    pub ledger: Option<Running>,
    pub account: Option<Running>,
    pub operator: String,
    pub writer: String,
    /// Settings the ledger and the account service both get.
    pub extra: Vec<(String, String)>,
}

impl Suite {
    pub async fn start(with_ledger: bool) -> Self {
        Self::start_on(TestDatabase::postgres().await, Vec::new(), with_ledger).await
    }

    /// A suite over `db`, with `extra` settings for the ledger and the account service.
    pub async fn start_on(db: TestDatabase, extra: Vec<(String, String)>, with_ledger: bool) -> Self {
        let accounts = format!(
            "folio-account:{ACCOUNT_SECRET}:ledger:admin ledger:read auth:internal;folio-ledger:{LEDGER_SECRET}:auth:internal;test-writer:{WRITER_SECRET}:ledger:write ledger:read"
        );
        let auth = Auth::start(&db.url, &accounts).await;
        let operator = auth.operator_token().await;
        let writer = auth.service_token("test-writer", WRITER_SECRET, &[]).await;
        // A fixed port, so a restarted ledger is where the account service expects it.
        let ledger_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut suite = Self { db, auth, ledger_port, ledger: None, account: None, operator, writer, extra };
        if with_ledger {
            suite.start_ledger().await;
        }
        suite.start_account().await;
        suite
    }

    pub async fn start_ledger(&mut self) {
        let addr = format!("127.0.0.1:{}", self.ledger_port);
        let mut settings = vec![
            ("FOLIO__SERVER__LISTEN_ADDR", addr.as_str()),
            ("FOLIO__SERVER__GRACE_PERIOD", "1"),
            ("FOLIO__DATABASE__URL", &self.db.url),
            ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2,EUR:2"),
        ];
        settings.extend(self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let ledger = cluster::start::<folio_ledger::Binary>(&self.auth, ("folio-ledger", LEDGER_SECRET), &settings);
        self.ledger = Some(ledger.await);
        self.wait_for_ledger().await;
    }

    pub async fn stop_ledger(&mut self) {
        if let Some(mut ledger) = self.ledger.take() {
            ledger.stop().await;
        }
    }

    pub async fn wait_for_ledger(&self) {
        let client = LedgerServiceClient::new(lazy_channel(&format!("127.0.0.1:{}", self.ledger_port)).unwrap());
        cluster::wait_until("the ledger accepting a token", || {
            let mut client = client.clone();
            async move { client.list_assets(bearer(Default::default(), &self.writer)).await.is_ok() }
        })
        .await;
    }

    pub async fn start_account(&mut self) {
        let ledger = format!("127.0.0.1:{}", self.ledger_port);
        let mut settings = vec![
            ("FOLIO__DATABASE__URL", self.db.url.as_str()),
            ("FOLIO__UPSTREAMS__LEDGER", &ledger),
            ("FOLIO__ACCOUNT__OUTBOX_INTERVAL_MS", "200"),
        ];
        settings.extend(self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let account = cluster::start::<folio_account::Binary>(&self.auth, ("folio-account", ACCOUNT_SECRET), &settings);
        self.account = Some(account.await);
        let (client, operator) = (self.client(), self.operator.clone());
        cluster::wait_until("the account service accepting a token", || {
            let (mut client, operator) = (client.clone(), operator.clone());
            async move { client.list_accounts(bearer(ListAccountsRequest::default(), &operator)).await.is_ok() }
        })
        .await;
    }

    pub async fn stop_account(&mut self) {
        self.account = None;
    }

    pub fn client(&self) -> AccountServiceClient<tonic::transport::Channel> {
        let account = self.account.as_ref().expect("account service running");
        AccountServiceClient::new(lazy_channel(&account.grpc_addr.to_string()).unwrap())
    }

    pub fn ledger_client(&self) -> LedgerServiceClient<tonic::transport::Channel> {
        LedgerServiceClient::new(lazy_channel(&format!("127.0.0.1:{}", self.ledger_port)).unwrap())
    }

    pub async fn customer(&self) -> (String, String) {
        let mut auth = self.auth.client();
        let email = format!("{}@example.com", unique("c"));
        let user = auth
            .register(RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "C".into() })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        let token =
            auth.login(LoginRequest { email, password: PASSWORD.into() }).await.unwrap().into_inner().access_token;
        (user.id, token)
    }

    pub async fn ledger_accounts_with_id(&self, id: &str) -> i64 {
        let db = folio_storage::db::connect_url(&self.db.url, "ledger", 1).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM accounts WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn create(asset: &str, name: &str) -> CreateAccountRequest {
    CreateAccountRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        asset_code: asset.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

pub fn assert_reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, expected: &str) {
    match result {
        Ok(value) => panic!("expected {code:?}/{expected}, got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason_of(&status).as_deref(), Some(expected), "{status:?}");
        }
    }
}

pub fn posted(debit: &str, credit: &str, amount: i64) -> CreateTransferRequest {
    CreateTransferRequest {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: debit.into(),
        credit_account_id: credit.into(),
        amount,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        ..Default::default()
    }
}
