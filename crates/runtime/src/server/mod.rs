//! Serving a Folio service: gRPC with health, reflection (v1 and v1alpha),
//! request ids, tracing, metrics, authentication and load shedding, plus the
//! admin HTTP listener; graceful drain bounded by a grace period.

mod admin;
mod callers;
mod methods;
mod observe;
mod shed;
mod trailers;

use std::{convert::Infallible, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use admin::{Readiness, UPKEEP_THREAD, prometheus};
pub use callers::{Allowed, CallersLayer};
pub use observe::{CallStarted, ObserveLayer};
pub use shed::ShedLayer;

use crate::config::ServerSettings;
use folio_tokens::{AuthLayer, TokenVerifier};

/// Builds the server of one Folio service.
pub struct ServerBuilder {
    service: &'static str,
    settings: ServerSettings,
    routes: tonic::service::RoutesBuilder,
    service_names: Vec<&'static str>,
    admin_routes: axum::Router,
    verifier: Option<TokenVerifier>,
    descriptor_set: &'static [u8],
    fallback: Option<Box<dyn FnOnce(axum::Router) -> axum::Router + Send>>,
    browser: Option<tower_http::cors::CorsLayer>,
    public_facing: bool,
    callers: Option<Allowed>,
}

/// A started server.
pub struct RunningServer {
    /// Where gRPC is served (the real port when 0 was asked for).
    pub grpc_addr: SocketAddr,
    /// Where the admin HTTP listener is.
    pub admin_addr: SocketAddr,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Waits until the server has drained and stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

impl ServerBuilder {
    /// A server for `service` (`auth`, `ledger`, ...; also its error domain's prefix).
    pub fn new(service: &'static str, settings: ServerSettings) -> Self {
        Self {
            service,
            settings,
            routes: tonic::service::RoutesBuilder::default(),
            service_names: Vec::new(),
            admin_routes: axum::Router::new(),
            verifier: None,
            descriptor_set: folio_proto::FILE_DESCRIPTOR_SET,
            fallback: None,
            browser: None,
            public_facing: false,
            callers: None,
        }
    }

    /// Serves a generated gRPC service; it is reported by health and reflection.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Lists `name` in health and reflection although this server does not
    /// implement it itself (the gateway forwards it).
    pub fn advertise(mut self, name: &'static str) -> Self {
        self.service_names.push(name);
        self
    }

    /// Verifies bearer tokens on every call with `verifier`.
    pub fn authenticate_with(mut self, verifier: TokenVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Adds routes to the admin HTTP listener.
    pub fn admin_routes(mut self, routes: axum::Router) -> Self {
        self.admin_routes = self.admin_routes.merge(routes);
        self
    }

    /// Every path no service claims goes to `service` (the gateway's proxy)
    /// instead of answering UNIMPLEMENTED.
    pub fn fallback<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<axum::body::Body>, Error = Infallible> + Clone + Send + Sync + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.fallback = Some(Box::new(move |router: axum::Router| router.fallback_service(service)));
        self
    }

    /// Also accept HTTP/1.1 and translate gRPC-Web, with `cors` for browsers.
    pub fn grpc_web(mut self, cors: tower_http::cors::CorsLayer) -> Self {
        self.browser = Some(cors);
        self
    }

    /// Caps each client connection and IP as well as the whole service: for
    /// a port that faces the public (the gateway).
    pub fn public_facing(mut self) -> Self {
        self.public_facing = true;
        self
    }

    /// Over mutual TLS, answers the paths under each prefix of `allowed`
    /// only for the identities listed with it (`IDENTITY_NOT_ALLOWED`
    /// otherwise).
    pub fn allow_callers(mut self, allowed: Allowed) -> Self {
        self.callers = Some(allowed);
        self
    }

    /// Reflection serves this descriptor set instead of every Folio file.
    pub fn descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_set = encoded;
        self
    }

    /// Binds both listeners and serves until `shutdown`, then drains: health
    /// answers NOT_SERVING, no new connections are accepted, in-flight calls
    /// finish within the grace period.
    pub async fn start(self, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
        let domain: &'static str = Box::leak(format!("{}.folio", self.service).into_boxed_str());
        let grpc_listener = TcpListener::bind(self.settings.listen_addr)
            .await
            .with_context(|| format!("binding gRPC to {}", self.settings.listen_addr))?;
        let admin_listener = TcpListener::bind(self.settings.admin_addr)
            .await
            .with_context(|| format!("binding admin HTTP to {}", self.settings.admin_addr))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let tls = self.server_tls()?;
        let admin_addr = admin_listener.local_addr()?;

        let (health, health_service) = tonic_health::server::health_reporter();
        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(self.descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(self.descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let health_name = "grpc.health.v1.Health";
        for name in self.service_names.iter().copied().chain([health_name]) {
            reflection_v1 = reflection_v1.with_service_name(name);
            reflection_v1alpha = reflection_v1alpha.with_service_name(name);
        }
        for name in &self.service_names {
            health.set_service_status(*name, ServingStatus::Serving).await;
        }
        health.set_service_status("", ServingStatus::Serving).await;

        let mut routes = self.routes;
        routes
            .add_service(health_service)
            .add_service(reflection_v1.build_v1().context("building reflection v1")?)
            .add_service(reflection_v1alpha.build_v1alpha().context("building reflection v1alpha")?);
        let mut routes = routes.routes();
        if let Some(fallback) = self.fallback {
            routes = tonic::service::Routes::from(fallback(routes.into_axum_router()));
        }
        let web = self.browser.is_some();
        let transport = match &tls {
            None => "plaintext",
            Some(tls) if tls.is_mutual() => "mutual TLS",
            Some(_) => "TLS",
        };

        let layers = ServiceBuilder::new()
            .option_layer(self.browser)
            .option_layer(web.then(tonic_web::GrpcWebLayer::new))
            .layer(tower::util::MapRequestLayer::new(methods::sanitize_request_id))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(ObserveLayer::new(self.service))
            .layer(trailers::ReadAfterTrailerLayer)
            .layer(shed_layer(self.settings.max_concurrent_requests, self.public_facing, domain))
            .option_layer(self.callers.map(|allowed| CallersLayer::new(allowed, domain)))
            .option_layer(self.verifier.map(|verifier| AuthLayer::new(verifier, domain)));
        let grpc = tonic::transport::Server::builder()
            .accept_http1(web)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_max_pending_accept_reset_streams(Some(pending_resets_allowed(
                self.settings.max_concurrent_requests,
                self.public_facing,
            )))
            .layer(layers)
            .add_routes(routes);

        let readiness = Readiness::default();
        readiness.set(true);
        let admin_shutdown = CancellationToken::new();
        let admin = axum::serve(admin_listener, admin::router(readiness.clone(), self.admin_routes))
            .with_graceful_shutdown(admin_shutdown.clone().cancelled_owned());
        let admin_task = tokio::spawn(async move { admin.await });

        let grace = self.settings.grace_period;
        let service = self.service;
        let drain_signal = {
            let shutdown = shutdown.clone();
            let names = self.service_names.clone();
            async move {
                shutdown.cancelled().await;
                readiness.set(false);
                for name in names {
                    health.set_service_status(name, ServingStatus::NotServing).await;
                }
                health.set_service_status("", ServingStatus::NotServing).await;
            }
        };
        let task = tokio::spawn(async move {
            let incoming = folio_tls::incoming(grpc_listener, tls);
            let serving = grpc.serve_with_incoming_shutdown(incoming, drain_signal);
            tokio::pin!(serving);
            let result = tokio::select! {
                result = &mut serving => result.context("serving gRPC"),
                () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                    tracing::warn!(service, grace_secs = grace.as_secs(), "drain exceeded the grace period; cutting in-flight calls");
                    Ok(())
                }
            };
            admin_shutdown.cancel();
            if let Ok(Err(error)) = admin_task.await {
                tracing::warn!(%error, "admin listener failed");
            }
            tracing::info!(service, "stopped");
            result
        });
        tracing::info!(service = self.service, %grpc_addr, %admin_addr, transport, "serving");
        Ok(RunningServer { grpc_addr, admin_addr, task })
    }

    /// The port's TLS, when a certificate is configured (the gateway's port
    /// also offers HTTP/1.1 for gRPC-Web).
    fn server_tls(&self) -> anyhow::Result<Option<folio_tls::ServerTls>> {
        let (Some(cert), Some(key)) = (&self.settings.tls_cert_file, &self.settings.tls_key_file) else {
            return Ok(None);
        };
        let alpn = if self.browser.is_some() { folio_tls::ALPN_GRPC_AND_HTTP1 } else { folio_tls::ALPN_GRPC };
        let tls = folio_tls::ServerTls::load(cert, key, self.settings.tls_client_ca_file.as_deref(), alpn)
            .context("loading the gRPC port's TLS files")?;
        Ok(Some(tls))
    }
}

/// How many streams a client connection may open and reset before they are
/// accepted, before h2 closes the whole connection (the "rapid reset" guard,
/// 20 by default). At the front door a connection is one client's: past the
/// default, only that client loses its connection. Inside, one connection of
/// the gateway (or of another service) carries the calls of every caller,
/// and each abandoned call is a reset forwarded on it: with the default, one
/// customer dropping its calls fast closed the connection under everyone
/// else's calls. The caller's own permits and rates bound those resets
/// upstream; here they may reach as many as the calls this server admits.
fn pending_resets_allowed(max_concurrent: usize, public_facing: bool) -> usize {
    const H2_DEFAULT: usize = 20;
    if public_facing { H2_DEFAULT } else { max_concurrent.max(H2_DEFAULT) }
}

fn shed_layer(max_concurrent: usize, public_facing: bool, domain: &'static str) -> ShedLayer {
    let shed = ShedLayer::new(max_concurrent, domain);
    if public_facing { shed.per_client() } else { shed }
}
