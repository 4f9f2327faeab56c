//! The four services as real processes behind the gateway, started the way
//! an operator starts them (environment only), with the helpers the
//! end-to-end tests share: clients, customers, funding, metrics and the
//! conservation check.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod hostile;
pub mod pooler;
pub mod text_fields;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use folio_proto::client::lazy_channel_with;
use folio_proto::{
    account::{CreateAccountRequest, account_service_client::AccountServiceClient},
    auth::{LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient},
    ledger::{AccountKind, CreateTransferRequest, TransferKind, ledger_service_client::LedgerServiceClient},
};
use folio_testkit::{TestDatabase, probe::SpawnedBinary, unique};
use sea_orm::{ConnectionTrait, Statement};
use tonic::{Request, transport::Channel};

pub const OPERATOR_EMAIL: &str = "operator@folio.e2e";
pub const OPERATOR_PASSWORD: &str = "e2e Admin passphrase 2026";
pub const PASSWORD: &str = "Correct horse battery staple 9";

/// A service binary next to the test binaries.
pub fn binary(name: &str) -> String {
    // Test binaries live in target/<profile>/deps; the services' binaries one level up.
    let exe = std::env::current_exe().unwrap();
    let dir: PathBuf = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    // FOLIO_E2E_BIN_DIR runs the suite against other binaries (an older
    // build, to count what a fix changed).
    let dir = std::env::var_os("FOLIO_E2E_BIN_DIR").map_or(dir, PathBuf::from);
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built (run through `make test`)", path.display());
    path.display().to_string()
}

/// The running suite.
pub struct Stack {
    pub gateway: SocketAddr,
    pub gateway_admin: SocketAddr,
    pub ledger_admin: SocketAddr,
    pub account_admin: SocketAddr,
    pub auth_admin: SocketAddr,
    /// The services' gRPC addresses.
    pub auth_addr: SocketAddr,
    pub account_addr: SocketAddr,
    pub ledger_addr: SocketAddr,
    /// The client secrets of folio-account, folio-ledger and folio-gateway.
    pub service_secrets: [String; 3],
    /// TLS for this test's calls to the gateway (when the suite speaks TLS).
    pub client_tls: Option<folio_tls::ClientTls>,
    _processes: Vec<SpawnedBinary>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Stack {
    /// Starts auth, ledger, account and gateway over `database` (a SQLite
    /// file each when `None`) and `redis` (in-process when `None`), with
    /// `extra` set for every service.
    pub async fn start(database: Option<&TestDatabase>, redis: Option<String>, extra: &[(&str, &str)]) -> Self {
        Self::launch(database, redis, extra, None, &[]).await
    }

    /// [`Stack::start`] with settings of one service each: `(service, key, value)`.
    pub async fn start_with_each(
        database: Option<&TestDatabase>,
        redis: Option<String>,
        extra: &[(&str, &str)],
        each: &[(&str, &str, String)],
    ) -> Self {
        Self::launch(database, redis, extra, None, each).await
    }

    /// [`Stack::start`] with every hop encrypted (DESIGN §6): each service
    /// has a certificate of `ca` naming `spiffe://folio/<service>`, the
    /// internal ports speak mutual TLS, the gateway's public port TLS.
    pub async fn start_encrypted(
        ca: &folio_testkit::TestCa,
        database: Option<&TestDatabase>,
        redis: Option<String>,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::launch(database, redis, extra, Some(ca), &[]).await
    }

    async fn launch(
        database: Option<&TestDatabase>,
        redis: Option<String>,
        extra: &[(&str, &str)],
        ca: Option<&folio_testkit::TestCa>,
        each: &[(&str, &str, String)],
    ) -> Self {
        let secrets = [unique("acct-secret-"), unique("ledger-secret-"), unique("gw-secret-")];
        let declared = format!(
            "folio-account:{}:ledger:admin ledger:read auth:internal;folio-ledger:{}:auth:internal;folio-gateway:{}:auth:internal",
            secrets[0], secrets[1], secrets[2]
        );
        let mut common: Vec<(String, String)> = extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if let Some(db) = database {
            common.push(("FOLIO__DATABASE__URL".into(), db.url.clone()));
        }
        if let Some(redis) = redis {
            common.push(("FOLIO__REDIS__URL".into(), redis));
        }
        let mut dirs = Vec::new();
        let mut spawn = |name: &str, extra: Vec<(String, String)>| {
            let dir = tempfile::tempdir().unwrap();
            let tls = ca.map(|ca| tls_env(ca, name)).unwrap_or_default();
            let own =
                each.iter().filter(|(service, ..)| *service == name).map(|(_, k, v)| ((*k).to_owned(), v.clone()));
            let env: Vec<(String, String)> = common.iter().cloned().chain(tls).chain(extra).chain(own).collect();
            let path = dir.path().to_path_buf();
            dirs.push(dir);
            let binary = binary(&format!("folio-{name}"));
            async move {
                let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                SpawnedBinary::start(&binary, &path, &pairs).await
            }
        };
        let auth = spawn(
            "auth",
            vec![
                ("FOLIO__AUTH__KEY_ENCRYPTION_KEY".into(), folio_testkit::KEY_ENCRYPTION_KEY.into()),
                ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_EMAIL".into(), OPERATOR_EMAIL.into()),
                ("FOLIO__AUTH__BOOTSTRAP_OPERATOR_PASSWORD".into(), OPERATOR_PASSWORD.into()),
                ("FOLIO__AUTH__SERVICE_ACCOUNTS".into(), declared),
            ],
        )
        .await;
        let auth_addr = auth.grpc_addr.to_string();
        let client = |name: &str, secret: &str| {
            vec![
                ("FOLIO__UPSTREAMS__AUTH".to_owned(), auth_addr.clone()),
                ("FOLIO__SERVICE_CLIENT__ID".to_owned(), format!("folio-{name}")),
                ("FOLIO__SERVICE_CLIENT__SECRET".to_owned(), secret.to_owned()),
            ]
        };
        let mut ledger_env = client("ledger", &secrets[1]);
        ledger_env.push(("FOLIO__LEDGER__BOOTSTRAP_ASSETS".into(), "USD:2,EUR:2".into()));
        let ledger = spawn("ledger", ledger_env).await;
        let ledger_addr = ledger.grpc_addr.to_string();
        let mut account_env = client("account", &secrets[0]);
        account_env.push(("FOLIO__UPSTREAMS__LEDGER".into(), ledger_addr.clone()));
        let account = spawn("account", account_env).await;
        let account_addr = account.grpc_addr.to_string();
        let mut gateway_env = client("gateway", &secrets[2]);
        gateway_env.push(("FOLIO__UPSTREAMS__LEDGER".into(), ledger_addr));
        gateway_env.push(("FOLIO__UPSTREAMS__ACCOUNT".into(), account_addr));
        let gateway = spawn("gateway", gateway_env).await;
        let mut processes = vec![auth, ledger, account, gateway];
        for (name, process) in ["auth", "ledger", "account", "gateway"].into_iter().zip(&mut processes) {
            echo_errors(name, process);
        }
        let [auth, ledger, account, gateway] = &processes[..] else { unreachable!() };
        let client_tls = ca.map(|ca| {
            let settings = folio_tls::ClientTlsSettings { tls_ca_file: Some(ca.ca_file()), ..Default::default() };
            folio_tls::ClientTls::from_settings(&settings).unwrap().unwrap()
        });
        let stack = Stack {
            auth_addr: auth.grpc_addr,
            account_addr: account.grpc_addr,
            ledger_addr: ledger.grpc_addr,
            service_secrets: secrets.clone(),
            client_tls,
            gateway: gateway.grpc_addr,
            gateway_admin: gateway.admin_addr,
            ledger_admin: ledger.admin_addr,
            account_admin: account.admin_addr,
            auth_admin: auth.admin_addr,
            _processes: processes,
            _dirs: dirs,
        };
        stack.wait_until_ready().await;
        stack
    }

    /// Waits until a call through the gateway is verified end to end (the
    /// services have fetched keys and their first revocation list).
    async fn wait_until_ready(&self) {
        let operator = self.operator().await;
        let mut accounts = self.accounts();
        for _ in 0..100 {
            let request = bearer(folio_proto::account::ListAccountsRequest::default(), &operator);
            if accounts.list_accounts(request).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the suite never became ready");
    }

    pub fn channel(&self) -> Channel {
        lazy_channel_with(&self.gateway.to_string(), self.client_tls.as_ref()).unwrap()
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
    }

    pub fn accounts(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel())
    }

    pub fn ledger(&self) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(self.channel())
    }

    /// The operator's access token.
    pub async fn operator(&self) -> String {
        let login = LoginRequest { email: OPERATOR_EMAIL.into(), password: OPERATOR_PASSWORD.into() };
        for _ in 0..100 {
            if let Ok(reply) = self.auth().login(login.clone()).await {
                return reply.into_inner().access_token;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the operator cannot sign in");
    }

    /// A new customer: (email, access token).
    pub async fn customer(&self) -> (String, String) {
        let email = format!("{}@example.com", unique("c"));
        let register = RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "C".into() };
        self.auth().register(register).await.expect("register");
        let login = LoginRequest { email: email.clone(), password: PASSWORD.into() };
        let token = self.auth().login(login).await.expect("login").into_inner().access_token;
        (email, token)
    }

    /// An ACTIVE account of the caller (operators may pass `kind`).
    pub async fn open(&self, token: &str, kind: AccountKind) -> String {
        let request = CreateAccountRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            asset_code: "USD".into(),
            display_name: "Account".into(),
            // Customers may not name a kind at all; CUSTOMER is the default.
            kind: if kind == AccountKind::System { kind as i32 } else { 0 },
            ..Default::default()
        };
        let account = self.accounts().create_account(bearer(request, token)).await.expect("create account");
        account.into_inner().account.unwrap().id
    }

    /// A customer account funded with `amount` from an operator's system account.
    pub async fn funded(&self, token: &str, operator: &str, amount: i64) -> String {
        let account = self.open(token, AccountKind::Customer).await;
        let bank = self.open(operator, AccountKind::System).await;
        self.ledger().create_transfer(bearer(posted(&bank, &account, amount), operator)).await.expect("fund");
        account
    }

    /// The `/metrics` text at `admin`.
    pub async fn metrics(admin: SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(admin).await.unwrap();
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        socket.read_to_string(&mut text).await.unwrap();
        text
    }
}

/// A service's TLS settings: its certificate (issued by `ca` now) on its
/// port and for its calls; clients of the internal ports must show one of
/// `ca`'s certificates, the gateway's public port asks for none.
fn tls_env(ca: &folio_testkit::TestCa, name: &str) -> Vec<(String, String)> {
    let issued = ca.issue(name, name);
    let path = |p: &std::path::Path| p.display().to_string();
    let mut env = vec![
        ("FOLIO__SERVER__TLS_CERT_FILE".to_owned(), path(&issued.cert)),
        ("FOLIO__SERVER__TLS_KEY_FILE".to_owned(), path(&issued.key)),
        ("FOLIO__CLIENT__TLS_CA_FILE".to_owned(), path(&ca.ca_file())),
        ("FOLIO__CLIENT__TLS_CERT_FILE".to_owned(), path(&issued.cert)),
        ("FOLIO__CLIENT__TLS_KEY_FILE".to_owned(), path(&issued.key)),
    ];
    if name != "gateway" {
        env.push(("FOLIO__SERVER__TLS_CLIENT_CA_FILE".to_owned(), path(&ca.ca_file())));
    }
    env
}

/// Shows a service's ERROR log lines on the test's output: when a test
/// fails on an INTERNAL answer, the cause is right there.
fn echo_errors(name: &'static str, process: &mut SpawnedBinary) {
    let mut logs = std::mem::replace(&mut process.logs, tokio::sync::mpsc::unbounded_channel().1);
    tokio::spawn(async move {
        while let Some(line) = logs.recv().await {
            if line.contains("\"level\":\"ERROR\"") {
                eprintln!("[{name}] {line}");
            }
        }
    });
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
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

/// For every asset the posted and the pending balances sum to zero.
pub async fn assert_money_conserved(db: &TestDatabase) {
    let ledger = folio_storage::db::connect_url(&db.url, "ledger", 1).await.unwrap();
    let sql = "SELECT asset_code, CAST(SUM(credits_posted - debits_posted) AS BIGINT) AS posted, \
               CAST(SUM(credits_pending - debits_pending) AS BIGINT) AS pending FROM accounts GROUP BY asset_code";
    let rows =
        ledger.query_all_raw(Statement::from_string(ledger.get_database_backend(), sql.to_owned())).await.unwrap();
    for row in rows {
        let asset: String = row.try_get("", "asset_code").unwrap();
        let posted: i64 = row.try_get("", "posted").unwrap();
        let pending: i64 = row.try_get("", "pending").unwrap();
        assert_eq!((posted, pending), (0, 0), "money of {asset} is not conserved");
    }
}
