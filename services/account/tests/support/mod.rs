//! A real auth, ledger and account service on port 0 over one fresh
//! PostgreSQL database, with clients and helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, time::Duration};

use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    account::{CreateAccountRequest, ListAccountsRequest, account_service_client::AccountServiceClient},
    auth::{IssueServiceTokenRequest, LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient},
    ledger::{CreateTransferRequest, TransferKind, ledger_service_client::LedgerServiceClient},
};
use folio_runtime::server::RunningServer;
use folio_testkit::{TestDatabase, unique};
use sea_orm::{ConnectionTrait, Statement};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};

const PASSWORD: &str = "Correct horse battery staple 9";
const ACCOUNT_SECRET: &str = "account-secret-0123456789abcdef-0123456789ab";
const LEDGER_SECRET: &str = "ledger-secret-0123456789abcdef-0123456789abc";
const WRITER_SECRET: &str = "writer-secret-0123456789abcdef-0123456789abc";

pub use folio_testkit::env;

pub struct Suite {
    pub db: TestDatabase,
    pub dir: tempfile::TempDir,
    pub auth: SocketAddr,
    pub ledger_port: u16,
    pub ledger: Option<(CancellationToken, RunningServer)>,
    pub account: Option<(CancellationToken, SocketAddr)>,
    pub operator: String,
    pub writer: String,
    _auth_shutdown: CancellationToken,
}

impl Drop for Suite {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = &self.ledger {
            shutdown.cancel();
        }
        if let Some((shutdown, _)) = &self.account {
            shutdown.cancel();
        }
        self._auth_shutdown.cancel();
    }
}

impl Suite {
    pub async fn start(with_ledger: bool) -> Self {
        folio_testkit::init_logs();
        let db = TestDatabase::postgres().await;
        let dir = tempfile::tempdir().unwrap();
        let operator_email = format!("{}@folio.test", unique("op"));
        let accounts = format!(
            "folio-account:{ACCOUNT_SECRET}:ledger:admin ledger:read auth:internal;folio-ledger:{LEDGER_SECRET}:auth:internal;test-writer:{WRITER_SECRET}:ledger:write ledger:read"
        );
        let config = folio_runtime::config::load_from(
            "auth",
            &dir.path().join("none"),
            folio_testkit::auth_env(&db.url, &operator_email, &accounts),
        )
        .unwrap();
        let auth_shutdown = CancellationToken::new();
        let auth = folio_auth::serve(config, auth_shutdown.clone()).await.unwrap().grpc_addr;
        let mut auth_client = AuthServiceClient::new(lazy_channel(&auth.to_string()).unwrap());
        let operator = auth_client
            .login(LoginRequest { email: operator_email, password: folio_testkit::OPERATOR_PASSWORD.into() })
            .await
            .unwrap()
            .into_inner()
            .access_token;
        let writer = auth_client
            .issue_service_token(IssueServiceTokenRequest {
                client_id: "test-writer".into(),
                client_secret: WRITER_SECRET.into(),
                scopes: vec![],
            })
            .await
            .unwrap()
            .into_inner()
            .access_token;
        let ledger_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut suite = Self {
            db,
            dir,
            auth,
            ledger_port,
            ledger: None,
            account: None,
            operator,
            writer,
            _auth_shutdown: auth_shutdown,
        };
        if with_ledger {
            suite.start_ledger().await;
        }
        suite.start_account().await;
        suite
    }

    pub async fn start_ledger(&mut self) {
        let addr = format!("127.0.0.1:{}", self.ledger_port);
        let config = folio_runtime::config::load_from(
            "ledger",
            &self.dir.path().join("none"),
            env(&[
                ("FOLIO__SERVER__LISTEN_ADDR", &addr),
                ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
                ("FOLIO__SERVER__GRACE_PERIOD", "1"),
                ("FOLIO__DATABASE__URL", &self.db.url),
                ("FOLIO__UPSTREAMS__AUTH", &self.auth.to_string()),
                ("FOLIO__SERVICE_CLIENT__ID", "folio-ledger"),
                ("FOLIO__SERVICE_CLIENT__SECRET", LEDGER_SECRET),
                ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2,EUR:2"),
            ]),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let server = folio_ledger::serve(config, shutdown.clone()).await.expect("ledger starts");
        self.ledger = Some((shutdown, server));
        self.wait_for_ledger().await;
    }

    pub async fn stop_ledger(&mut self) {
        if let Some((shutdown, server)) = self.ledger.take() {
            shutdown.cancel();
            server.wait().await.unwrap();
        }
    }

    pub async fn wait_for_ledger(&self) {
        let mut client = LedgerServiceClient::new(lazy_channel(&format!("127.0.0.1:{}", self.ledger_port)).unwrap());
        for _ in 0..100 {
            if client.list_assets(bearer(Default::default(), &self.writer)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the ledger never accepted a token");
    }

    pub async fn start_account(&mut self) {
        let config = folio_runtime::config::load_from(
            "account",
            &self.dir.path().join("none"),
            env(&[
                ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
                ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
                ("FOLIO__DATABASE__URL", &self.db.url),
                ("FOLIO__UPSTREAMS__AUTH", &self.auth.to_string()),
                ("FOLIO__UPSTREAMS__LEDGER", &format!("127.0.0.1:{}", self.ledger_port)),
                ("FOLIO__SERVICE_CLIENT__ID", "folio-account"),
                ("FOLIO__SERVICE_CLIENT__SECRET", ACCOUNT_SECRET),
                ("FOLIO__ACCOUNT__OUTBOX_INTERVAL_MS", "200"),
            ]),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let server = folio_account::serve(config, shutdown.clone()).await.expect("account starts");
        self.account = Some((shutdown, server.grpc_addr));
        // Wait for its first revocation poll.
        for _ in 0..100 {
            let result = self.client().list_accounts(bearer(ListAccountsRequest::default(), &self.operator)).await;
            if result.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the account service never accepted a token");
    }

    pub async fn stop_account(&mut self) {
        if let Some((shutdown, _)) = self.account.take() {
            shutdown.cancel();
        }
    }

    pub fn client(&self) -> AccountServiceClient<tonic::transport::Channel> {
        let (_, addr) = self.account.as_ref().expect("account service running");
        AccountServiceClient::new(lazy_channel(&addr.to_string()).unwrap())
    }

    pub fn ledger_client(&self) -> LedgerServiceClient<tonic::transport::Channel> {
        LedgerServiceClient::new(lazy_channel(&format!("127.0.0.1:{}", self.ledger_port)).unwrap())
    }

    pub async fn customer(&self) -> (String, String) {
        let mut auth = AuthServiceClient::new(lazy_channel(&self.auth.to_string()).unwrap());
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
