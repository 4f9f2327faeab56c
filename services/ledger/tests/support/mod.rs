//! A real auth and a real ledger (or two) on port 0 over one fresh database,
//! with principals of every kind and helpers to open and fund accounts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod invariants;

use std::net::SocketAddr;

use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    auth::{IssueServiceTokenRequest, LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient},
    ledger::{
        AccountKind, CreateTransferRequest, OpenAccountRequest, Transfer, TransferKind,
        ledger_admin_service_client::LedgerAdminServiceClient, ledger_service_client::LedgerServiceClient,
    },
};
use folio_testkit::{TestDatabase, unique};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, transport::Channel};

const PASSWORD: &str = "Correct horse battery staple 9";
const ADMIN_ID: &str = "test-admin";
const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef-0123456789abcdef";
const LEDGER_ID: &str = "folio-ledger";
const LEDGER_SECRET: &str = "ledger-secret-0123456789abcdef-0123456789abcdef";

pub struct Suite {
    pub auth_addr: SocketAddr,
    pub ledgers: Vec<SocketAddr>,
    pub db: TestDatabase,
    /// With SQLite each service has a file of its own.
    _auth_db: Option<TestDatabase>,
    pub operator: String,
    pub admin: String,
    pub writer: String,
    /// A service token with `ledger:write` alone.
    pub write_only: String,
    shutdowns: Vec<CancellationToken>,
}

impl Drop for Suite {
    fn drop(&mut self) {
        for shutdown in &self.shutdowns {
            shutdown.cancel();
        }
    }
}

pub struct Customer {
    pub id: String,
    pub token: String,
}

use folio_testkit::env;

impl Suite {
    pub async fn start() -> Self {
        Self::start_with(1, false).await
    }

    /// `ledgers` instances over one database; SQLite when `sqlite`.
    pub async fn start_with(ledgers: usize, sqlite: bool) -> Self {
        folio_testkit::init_logs();
        let db = if sqlite { TestDatabase::sqlite() } else { TestDatabase::postgres().await };
        let auth_db = sqlite.then(TestDatabase::sqlite);
        let auth_url = auth_db.as_ref().map_or(db.url.clone(), |d| d.url.clone());
        let dir = tempfile::tempdir().unwrap();
        let nowhere = dir.path().join("none");
        let operator_email = format!("{}@folio.test", unique("op"));
        let accounts = format!(
            "{ADMIN_ID}:{ADMIN_SECRET}:ledger:admin ledger:read ledger:write;{LEDGER_ID}:{LEDGER_SECRET}:auth:internal"
        );
        let mut shutdowns = Vec::new();
        let auth_config = folio_runtime::config::load_from(
            "auth",
            &nowhere,
            folio_testkit::auth_env(&auth_url, &operator_email, &accounts),
        )
        .unwrap();
        let shutdown = CancellationToken::new();
        let auth = folio_auth::serve(auth_config, shutdown.clone()).await.expect("auth starts");
        shutdowns.push(shutdown);
        let auth_addr = auth.grpc_addr.to_string();
        let mut addresses = Vec::new();
        for _ in 0..ledgers {
            let config = folio_runtime::config::load_from(
                "ledger",
                &nowhere,
                env(&[
                    ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
                    ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
                    ("FOLIO__DATABASE__URL", &db.url),
                    ("FOLIO__UPSTREAMS__AUTH", &auth_addr),
                    ("FOLIO__SERVICE_CLIENT__ID", LEDGER_ID),
                    ("FOLIO__SERVICE_CLIENT__SECRET", LEDGER_SECRET),
                    ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2,EUR:2"),
                    ("FOLIO__LEDGER__SWEEP_INTERVAL_MS", "200"),
                ]),
            )
            .unwrap();
            let shutdown = CancellationToken::new();
            let ledger = folio_ledger::serve(config, shutdown.clone()).await.expect("ledger starts");
            shutdowns.push(shutdown);
            addresses.push(ledger.grpc_addr);
        }
        let mut auth_client = AuthServiceClient::new(lazy_channel(&auth_addr).unwrap());
        let operator = auth_client
            .login(LoginRequest { email: operator_email, password: folio_testkit::OPERATOR_PASSWORD.into() })
            .await
            .unwrap()
            .into_inner()
            .access_token;
        let service = |scopes: Vec<&str>| IssueServiceTokenRequest {
            client_id: ADMIN_ID.into(),
            client_secret: ADMIN_SECRET.into(),
            scopes: scopes.into_iter().map(str::to_owned).collect(),
        };
        let admin =
            auth_client.issue_service_token(service(vec!["ledger:admin"])).await.unwrap().into_inner().access_token;
        let writer = auth_client
            .issue_service_token(service(vec!["ledger:write", "ledger:read"]))
            .await
            .unwrap()
            .into_inner()
            .access_token;
        let write_only =
            auth_client.issue_service_token(service(vec!["ledger:write"])).await.unwrap().into_inner().access_token;
        let suite = Self {
            write_only,
            auth_addr: auth.grpc_addr,
            ledgers: addresses,
            db,
            _auth_db: auth_db,
            operator,
            admin,
            writer,
            shutdowns,
        };
        // The ledger refuses tokens until its first revocation poll; wait for it.
        for addr in suite.ledgers.clone() {
            for _ in 0..100 {
                let mut client = LedgerServiceClient::new(lazy_channel(&addr.to_string()).unwrap());
                if client.list_assets(bearer(Default::default(), &suite.writer)).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        suite
    }

    pub fn channel(&self) -> Channel {
        lazy_channel(&self.ledgers[0].to_string()).unwrap()
    }

    pub fn ledger(&self) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(self.channel())
    }

    pub fn ledger_at(&self, index: usize) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(lazy_channel(&self.ledgers[index % self.ledgers.len()].to_string()).unwrap())
    }

    pub fn admin_client(&self) -> LedgerAdminServiceClient<Channel> {
        LedgerAdminServiceClient::new(self.channel())
    }

    pub async fn ledger_db(&self) -> DatabaseConnection {
        folio_storage::db::connect_url(&self.db.url, "ledger", 4).await.unwrap()
    }

    pub async fn customer(&self) -> Customer {
        let mut auth = AuthServiceClient::new(lazy_channel(&self.auth_addr.to_string()).unwrap());
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
        Customer { id: user.id, token }
    }

    /// Opens an account in the ledger and returns its id.
    pub async fn open(&self, owner: &str, kind: AccountKind, overdraft_limit: i64, asset: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let request = OpenAccountRequest {
            account_id: id.clone(),
            owner_id: owner.to_owned(),
            asset_code: asset.to_owned(),
            kind: kind as i32,
            overdraft_limit,
        };
        self.admin_client().open_account(bearer(request, &self.admin)).await.expect("open account");
        id
    }

    /// A system account (owned by a random id).
    pub async fn system_account(&self, asset: &str) -> String {
        self.open(&uuid::Uuid::new_v4().to_string(), AccountKind::System, 0, asset).await
    }

    /// Moves `amount` with the `ledger:write` token.
    pub async fn fund(&self, from: &str, to: &str, amount: i64) -> Transfer {
        let request = posted(from, to, amount);
        self.ledger().create_transfer(bearer(request, &self.writer)).await.expect("fund").into_inner().transfer.unwrap()
    }
}

pub fn posted(debit: &str, credit: &str, amount: i64) -> CreateTransferRequest {
    CreateTransferRequest {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: debit.to_owned(),
        credit_account_id: credit.to_owned(),
        amount,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        ..Default::default()
    }
}

pub fn pending(debit: &str, credit: &str, amount: i64, timeout_seconds: i64) -> CreateTransferRequest {
    CreateTransferRequest { kind: TransferKind::Pending as i32, timeout_seconds, ..posted(debit, credit, amount) }
}

pub fn resolve(pending_id: &str, kind: TransferKind, amount: i64) -> CreateTransferRequest {
    CreateTransferRequest {
        id: uuid::Uuid::new_v4().to_string(),
        pending_id: pending_id.to_owned(),
        kind: kind as i32,
        amount,
        ..Default::default()
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn reason(status: &tonic::Status) -> String {
    reason_of(status).unwrap_or_default()
}

pub fn assert_reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, expected: &str) {
    match result {
        Ok(value) => panic!("expected {code:?}/{expected}, got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason(&status), expected, "{status:?}");
            let domain = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.domain).unwrap_or_default();
            assert_eq!(domain, "ledger.folio", "{status:?}");
        }
    }
}

/// Runs each named `async fn(Suite)` twice, as `<name>::on_postgres` and
/// `<name>::on_sqlite` (what `make run` uses), with one ledger instance.
#[macro_export]
macro_rules! on_postgres_and_sqlite {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[tokio::test]
                async fn on_postgres() {
                    super::$test($crate::support::Suite::start_with(1, false).await).await;
                }

                #[tokio::test]
                async fn on_sqlite() {
                    super::$test($crate::support::Suite::start_with(1, true).await).await;
                }
            }
        )*
    };
}
