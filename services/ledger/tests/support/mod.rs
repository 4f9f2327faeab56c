//! A real auth and a real ledger (or two) on port 0 over one fresh database,
//! with principals of every kind and helpers to open and fund accounts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod events;
pub mod invariants;

use std::net::SocketAddr;

use folio_cluster::{self as cluster, Auth, Running};
use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    auth::{LoginRequest, RegisterRequest},
    ledger::{
        AccountKind, CreateTransferRequest, CreateTransfersRequest, NewTransfer, OpenAccountRequest, Transfer,
        TransferKind, ledger_admin_service_client::LedgerAdminServiceClient,
        ledger_service_client::LedgerServiceClient,
    },
};
use folio_testkit::{TestDatabase, unique};
use sea_orm::DatabaseConnection;
use tonic::{Code, Request, transport::Channel};

const PASSWORD: &str = "Correct horse battery staple 9";
const ADMIN_ID: &str = "test-admin";
const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef-0123456789abcdef";
const LEDGER_ID: &str = "folio-ledger";
const LEDGER_SECRET: &str = "ledger-secret-0123456789abcdef-0123456789abcdef";

pub struct Suite {
    pub auth: Auth,
    pub ledgers: Vec<SocketAddr>,
    /// Each ledger's admin HTTP address (`/metrics`).
    pub ledger_admins: Vec<SocketAddr>,
    pub db: TestDatabase,
    /// With SQLite each service has a file of its own.
    _auth_db: Option<TestDatabase>,
    pub operator: String,
    pub admin: String,
    pub writer: String,
    /// A service token with `ledger:write` alone.
    pub write_only: String,
    _running: Vec<Running>,
}

pub struct Customer {
    pub id: String,
    pub token: String,
}

impl Suite {
    pub async fn start() -> Self {
        Self::start_with(1, false).await
    }

    /// `ledgers` instances over one database; SQLite when `sqlite`.
    pub async fn start_with(ledgers: usize, sqlite: bool) -> Self {
        let db = if sqlite { TestDatabase::sqlite() } else { TestDatabase::postgres().await };
        let auth_db = sqlite.then(TestDatabase::sqlite);
        Self::start_on(ledgers, db, auth_db, &[]).await
    }

    /// `ledgers` instances over `db` (auth on `auth_db`, else on `db` too),
    /// with `extra` ledger settings.
    pub async fn start_on(
        ledgers: usize,
        db: TestDatabase,
        auth_db: Option<TestDatabase>,
        extra: &[(&str, &str)],
    ) -> Self {
        let accounts = format!(
            "{ADMIN_ID}:{ADMIN_SECRET}:ledger:admin ledger:read ledger:write;{LEDGER_ID}:{LEDGER_SECRET}:auth:internal"
        );
        // `FOLIO__AUTH__*` settings go to auth, the rest to the ledgers.
        let (auth_extra, extra): (Vec<_>, Vec<_>) = extra.iter().partition(|(k, _)| k.starts_with("FOLIO__AUTH__"));
        let auth = Auth::start_with(auth_db.as_ref().map_or(&db.url, |d| &d.url), &accounts, &auth_extra).await;
        let mut settings = vec![
            ("FOLIO__DATABASE__URL", db.url.as_str()),
            ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2,EUR:2"),
            ("FOLIO__LEDGER__SWEEP_INTERVAL_MS", "200"),
        ];
        settings.extend_from_slice(&extra);
        let mut running = Vec::new();
        for _ in 0..ledgers {
            running.push(cluster::start::<folio_ledger::Binary>(&auth, (LEDGER_ID, LEDGER_SECRET), &settings).await);
        }
        let operator = auth.operator_token().await;
        let admin = auth.service_token(ADMIN_ID, ADMIN_SECRET, &["ledger:admin"]).await;
        let writer = auth.service_token(ADMIN_ID, ADMIN_SECRET, &["ledger:write", "ledger:read"]).await;
        let write_only = auth.service_token(ADMIN_ID, ADMIN_SECRET, &["ledger:write"]).await;
        let suite = Self {
            ledgers: running.iter().map(|ledger| ledger.grpc_addr).collect(),
            ledger_admins: running.iter().map(|ledger| ledger.admin_addr).collect(),
            auth,
            db,
            _auth_db: auth_db,
            operator,
            admin,
            writer,
            write_only,
            _running: running,
        };
        // The ledger refuses tokens until its first revocation poll; wait for it.
        for index in 0..suite.ledgers.len() {
            let writer = &suite.writer;
            cluster::wait_until("a ledger accepting a token", || {
                let mut client = suite.ledger_at(index);
                async move { client.list_assets(bearer(Default::default(), writer)).await.is_ok() }
            })
            .await;
        }
        suite
    }

    /// Drains ledger `index` and waits until it has stopped.
    pub async fn stop_ledger(&mut self, index: usize) {
        self._running[index].stop().await;
    }

    /// The sum of a counter's samples whose line contains `label`, from ledger `index`'s `/metrics`.
    pub async fn ledger_counter(&self, index: usize, name: &str, label: &str) -> f64 {
        let (_, metrics) = folio_testkit::probe::http_get(self.ledger_admins[index], "/metrics").await;
        metrics
            .lines()
            .filter(|line| line.starts_with(name) && line.contains(label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
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

    /// Moves 1, `count` times, in atomic batches of 1,000 (fast ways to
    /// write many events).
    pub async fn fund_many(&self, from: &str, to: &str, count: usize) {
        let mut left = count;
        while left > 0 {
            let batch = left.min(1000);
            left -= batch;
            let transfers = (0..batch)
                .map(|_| posted(from, to, 1))
                .map(|t| NewTransfer {
                    id: t.id,
                    debit_account_id: t.debit_account_id,
                    credit_account_id: t.credit_account_id,
                    amount: t.amount,
                    asset_code: t.asset_code,
                    kind: t.kind,
                    ..Default::default()
                })
                .collect();
            let request = CreateTransfersRequest { transfers, atomic: true };
            self.ledger().create_transfers(bearer(request, &self.writer)).await.expect("fund many");
        }
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
