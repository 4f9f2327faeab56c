//! A real auth behind the gateway, and stand-in ledger instances that
//! record what reaches them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use folio_cluster::{self as cluster, Auth, Running};
use folio_errors::reason_of;
use folio_proto::client::lazy_channel;
use folio_proto::{
    auth::{GetCurrentUserRequest, LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient},
    ledger::{
        ListAssetsRequest, ListAssetsResponse, ledger_service_client::LedgerServiceClient,
        ledger_service_server::LedgerServiceServer,
    },
    stand_in::LedgerServiceStandIn,
};
pub use folio_testkit::OPERATOR_PASSWORD;
use folio_testkit::{TestDatabase, unique};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
pub const PASSWORD: &str = "Correct horse battery staple 9";
pub const GATEWAY_SECRET: &str = "gateway-secret-0123456789abcdef-0123456789ab";

/// A stand-in ledger that answers ListAssets with its own name and records headers.
#[derive(Clone)]
pub struct StubLedger {
    pub name: String,
    pub seen: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
}

#[tonic::async_trait]
impl LedgerServiceStandIn for StubLedger {
    async fn list_assets(&self, request: Request<ListAssetsRequest>) -> Result<Response<ListAssetsResponse>, Status> {
        self.seen.lock().unwrap().push(request.metadata().clone());
        let asset =
            folio_proto::ledger::Asset { code: "USD".into(), description: self.name.clone(), ..Default::default() };
        Ok(Response::new(ListAssetsResponse { assets: vec![asset], next_page_token: String::new() }))
    }
}

pub async fn stub_ledger(name: &str) -> (SocketAddr, StubLedger, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = StubLedger { name: name.to_owned(), seen: Arc::default() };
    let stop = CancellationToken::new();
    let (service, token) = (stub.clone(), stop.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(LedgerServiceServer::new(service))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                token.cancelled_owned(),
            )
            .await
    });
    (addr, stub, stop)
}

pub struct Suite {
    pub auth: Auth,
    pub operator_email: String,
    _db: TestDatabase,
    gateways: Vec<Running>,
    /// Admin addresses of the gateways started, in order.
    pub admin_addrs: Vec<SocketAddr>,
}

impl Suite {
    pub async fn start() -> Self {
        let db = TestDatabase::postgres().await;
        let auth = Auth::start(&db.url, &format!("folio-gateway:{GATEWAY_SECRET}:auth:internal")).await;
        let operator_email = auth.operator_email.clone();
        Self { auth, operator_email, _db: db, gateways: Vec::new(), admin_addrs: Vec::new() }
    }

    /// A gateway in front of `ledger` (and auth; account unused here).
    pub async fn gateway(&mut self, ledger: &str, extra: &[(&str, &str)]) -> SocketAddr {
        let mut settings = vec![("FOLIO__UPSTREAMS__LEDGER", ledger), ("FOLIO__UPSTREAMS__ACCOUNT", "127.0.0.1:9")];
        settings.extend_from_slice(extra);
        let gateway =
            cluster::start::<folio_gateway::Binary>(&self.auth, ("folio-gateway", GATEWAY_SECRET), &settings).await;
        let addr = gateway.grpc_addr;
        self.admin_addrs.push(gateway.admin_addr);
        self.gateways.push(gateway);
        // Wait for its first revocation poll.
        let client = AuthServiceClient::new(lazy_channel(&addr.to_string()).unwrap());
        let token = self.login(addr, &self.operator_email, OPERATOR_PASSWORD).await;
        cluster::wait_until("the gateway accepting a token", || {
            let mut client = client.clone();
            let request = bearer(GetCurrentUserRequest {}, &token);
            async move { client.get_current_user(request).await.is_ok() }
        })
        .await;
        addr
    }

    /// The `/metrics` text of the last gateway started.
    pub async fn gateway_metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.admin_addrs.last().expect("a gateway");
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut text = String::new();
        socket.read_to_string(&mut text).await.unwrap();
        text
    }

    pub async fn login(&self, gateway: SocketAddr, email: &str, password: &str) -> String {
        let mut client = AuthServiceClient::new(lazy_channel(&gateway.to_string()).unwrap());
        client
            .login(LoginRequest { email: email.into(), password: password.into() })
            .await
            .unwrap()
            .into_inner()
            .access_token
    }

    pub async fn customer(&self, gateway: SocketAddr) -> String {
        let mut client = AuthServiceClient::new(lazy_channel(&gateway.to_string()).unwrap());
        let email = format!("{}@example.com", unique("c"));
        client
            .register(RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "C".into() })
            .await
            .expect("register without a token");
        self.login(gateway, &email, PASSWORD).await
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn reason(status: &Status) -> String {
    reason_of(status).unwrap_or_default()
}

pub fn ledger_client(gateway: SocketAddr) -> LedgerServiceClient<tonic::transport::Channel> {
    LedgerServiceClient::new(lazy_channel(&gateway.to_string()).unwrap())
}

pub fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame
}
