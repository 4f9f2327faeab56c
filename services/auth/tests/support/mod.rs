//! Starts a real auth service on port 0 over a fresh database, and helpers to talk to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use folio_errors::reason_of;
use folio_proto::auth::{LoginRequest, LoginResponse, RegisterRequest, auth_service_client::AuthServiceClient};
use folio_proto::client::lazy_channel;
use folio_storage::cache::Cache;
use folio_testkit::{TestDatabase, unique};
use folio_tokens::{GrpcKeySource, GrpcRevocationSource, ServiceTokenProvider, TokenVerifier, VerifierSettings};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, transport::Channel};

pub use folio_testkit::OPERATOR_PASSWORD;
pub const VERIFIER_ID: &str = "test-verifier";
pub const VERIFIER_SECRET: &str = "verifier-secret-0123456789abcdef-0123456789";
pub const PASSWORD: &str = "Correct horse battery staple 9";

pub struct Auth {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub operator_email: String,
    pub redis_url: Option<String>,
    shutdown: CancellationToken,
    pub db: TestDatabase,
}

impl Drop for Auth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone, Default)]
pub struct Options {
    pub redis_url: Option<String>,
    pub sqlite: bool,
    pub extra: Vec<(String, String)>,
}

impl Auth {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        folio_testkit::init_logs();
        let db = if options.sqlite { TestDatabase::sqlite() } else { TestDatabase::postgres().await };
        let operator_email = format!("{}@folio.test", unique("op"));
        let accounts = format!("{VERIFIER_ID}:{VERIFIER_SECRET}:auth:internal ledger:read");
        let mut env = folio_testkit::auth_env(&db.url, &operator_email, &accounts);
        for (key, value) in
            [("FOLIO__AUTH__LOCKOUT_BASE_DELAY_MS", "300"), ("FOLIO__AUTH__KEY_ACTIVATION_DELAY_SECS", "1")]
        {
            env.push((key.to_owned(), value.to_owned()));
        }
        if let Some(url) = &options.redis_url {
            env.push(("FOLIO__REDIS__URL".to_owned(), url.clone()));
        }
        env.extend(options.extra.iter().cloned());
        let dir = tempfile::tempdir().unwrap();
        let config = folio_runtime::config::load_from("auth", &dir.path().join("none"), env).expect("config");
        let shutdown = CancellationToken::new();
        let server = folio_auth::serve(config, shutdown.clone()).await.expect("auth starts");
        Self {
            addr: server.grpc_addr,
            admin_addr: server.admin_addr,
            operator_email,
            redis_url: options.redis_url,
            shutdown,
            db,
        }
    }

    pub fn channel(&self) -> Channel {
        lazy_channel(&self.addr.to_string()).unwrap()
    }

    pub fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
    }

    pub async fn register(&self, email: &str) -> folio_proto::auth::User {
        let request =
            RegisterRequest { email: email.into(), password: PASSWORD.into(), display_name: "Test User".into() };
        self.client().register(request).await.expect("register").into_inner().user.expect("user")
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<LoginResponse, tonic::Status> {
        let request = LoginRequest { email: email.into(), password: password.into() };
        self.client().login(request).await.map(|r| r.into_inner())
    }

    /// A fresh customer, signed in.
    pub async fn customer(&self) -> (String, LoginResponse) {
        let email = format!("{}@example.com", unique("c"));
        self.register(&email).await;
        let tokens = self.login(&email, PASSWORD).await.expect("login");
        (email, tokens)
    }

    pub async fn operator(&self) -> LoginResponse {
        self.login(&self.operator_email, OPERATOR_PASSWORD).await.expect("operator login")
    }

    /// A verifier as another service would build it: keys and revocations over gRPC.
    pub async fn remote_verifier(&self, shutdown: &CancellationToken) -> TokenVerifier {
        let channel = self.channel();
        let tokens = Arc::new(ServiceTokenProvider::new(
            channel.clone(),
            VERIFIER_ID.to_owned(),
            VERIFIER_SECRET.to_owned().into(),
            vec!["auth:internal".to_owned()],
        ));
        let verifier = TokenVerifier::new(
            Arc::new(GrpcKeySource::new(channel.clone())),
            Arc::new(GrpcRevocationSource::new(channel, tokens)),
            VerifierSettings::default(),
        );
        let cache = match &self.redis_url {
            Some(url) => Some(
                Cache::from_settings(&folio_runtime::config::RedisSettings {
                    url: Some(url.clone().into()),
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
            None => None,
        };
        verifier.refresh_revocations().await.expect("revocations");
        verifier.spawn_refresh(cache, shutdown.clone());
        verifier
    }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn assert_reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, reason: &str) {
    match result {
        Ok(value) => panic!("expected {code:?}/{reason}, got OK: {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason_of(&status).as_deref(), Some(reason), "{status:?}");
            let domain = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.domain).unwrap_or_default();
            assert_eq!(domain, "auth.folio", "{status:?}");
        }
    }
}

/// Waits until `verifier` refuses `token` as revoked; panics after 5 s.
pub async fn refused_within_five_seconds(verifier: &TokenVerifier, token: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        match verifier.verify(token).await {
            Err(error) if error.reason() == folio_errors::Reason::TokenRevoked => return started.elapsed(),
            Err(error) => panic!("refused for another reason: {error}"),
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(5), "still accepted after 5 s"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The user `token` belongs to.
pub async fn me(auth: &Auth, token: &str) -> folio_proto::auth::User {
    auth.client()
        .get_current_user(bearer(folio_proto::auth::GetCurrentUserRequest {}, token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
}
