//! The suite's services started in this process on port 0, for tests and
//! the benchmark: [`Auth`] with the test operator and the given service
//! accounts provisioned, and any service with [`start`], configured to
//! verify tokens with that auth and to call it with its own credentials.
//! Each harness used to boot auth and log in by hand.
#![allow(clippy::expect_used)] // a cluster that cannot start is a broken fixture: the test stops there

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use folio_proto::{
    auth::{IssueServiceTokenRequest, LoginRequest, auth_service_client::AuthServiceClient},
    client::lazy_channel,
};
use folio_runtime::{cli::ServiceBinary, config, server::RunningServer};
use folio_testkit::{OPERATOR_PASSWORD, auth_env, env, unique};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A service running in this process until dropped or stopped.
pub struct Running {
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP address (`/metrics`, `/healthz`).
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    server: Option<RunningServer>,
}

impl Running {
    /// Drains the service and waits until it has stopped.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.wait().await.expect("the service stops cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Where configuration files would be (none: settings come from the environment pairs).
fn no_config_dir() -> PathBuf {
    std::env::temp_dir().join("folio-cluster-has-no-config-files")
}

async fn serve<S: ServiceBinary>(settings: Vec<(String, String)>) -> Running {
    let config = config::load_from(S::NAME, &no_config_dir(), settings).expect("valid test configuration");
    let shutdown = CancellationToken::new();
    let server = S::serve(config, shutdown.clone()).await.expect("the service starts");
    Running { grpc_addr: server.grpc_addr, admin_addr: server.admin_addr, shutdown, server: Some(server) }
}

/// The auth service over `database_url`, with a fresh operator and
/// `service_accounts` (`id:secret:scopes;...`) provisioned.
pub struct Auth {
    /// The running service.
    pub running: Running,
    /// The bootstrap operator's email (password: [`OPERATOR_PASSWORD`]).
    pub operator_email: String,
}

impl Auth {
    /// Starts auth.
    pub async fn start(database_url: &str, service_accounts: &str) -> Self {
        Self::start_with(database_url, service_accounts, &[]).await
    }

    /// Starts auth with `extra` settings (for example a short token lifetime).
    pub async fn start_with(database_url: &str, service_accounts: &str, extra: &[(&str, &str)]) -> Self {
        folio_testkit::init_logs();
        let operator_email = format!("{}@folio.test", unique("op"));
        let mut settings = auth_env(database_url, &operator_email, service_accounts);
        settings.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let running = serve::<folio_auth::Binary>(settings).await;
        Self { running, operator_email }
    }

    /// Its gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.running.grpc_addr
    }

    /// A client of `AuthService`.
    pub fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(lazy_channel(&self.addr().to_string()).expect("address"))
    }

    /// An access token of the bootstrap operator (a fresh session).
    pub async fn operator_token(&self) -> String {
        let login = LoginRequest { email: self.operator_email.clone(), password: OPERATOR_PASSWORD.into() };
        self.client().login(login).await.expect("the operator signs in").into_inner().access_token
    }

    /// A token of the service account `client_id` with `scopes` (all granted when empty).
    pub async fn service_token(&self, client_id: &str, secret: &str, scopes: &[&str]) -> String {
        let request = IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.client().issue_service_token(request).await.expect("a service token").into_inner().access_token
    }
}

/// Starts service `S` on port 0 (gRPC and admin) with `auth` as its auth
/// upstream and `client` (id, secret) as its own credentials, then
/// `settings` (`FOLIO__...` pairs, which win over those defaults).
pub async fn start<S: ServiceBinary>(auth: &Auth, client: (&str, &str), settings: &[(&str, &str)]) -> Running {
    let auth_addr = auth.addr().to_string();
    let mut pairs = vec![
        ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
        ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
        ("FOLIO__UPSTREAMS__AUTH", auth_addr.as_str()),
        ("FOLIO__SERVICE_CLIENT__ID", client.0),
        ("FOLIO__SERVICE_CLIENT__SECRET", client.1),
    ];
    pairs.extend_from_slice(settings);
    serve::<S>(env(&pairs)).await
}

/// Polls `ready` every 50 ms until it holds, for at most 5 s (a service that
/// just started accepts tokens after its first revocation poll).
pub async fn wait_until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..100 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never became ready");
}
