//! folio-gateway: the one public entry point (DESIGN.md section 5). It owns
//! no schema: it verifies tokens at the edge, rate-limits, routes the three
//! public services to their upstreams without decoding messages, speaks
//! gRPC-Web, and answers health and reflection for the public services only.
//!
//! Layout: `api` is how a call comes in (the forwarding core, deadlines);
//! `app` is how it goes out (upstream endpoints, one HTTP/2 connection each).

mod api;
mod app;
pub mod settings;

use std::time::Duration;

use folio_runtime::CancellationToken;
use folio_runtime::cli::{NoExtraCommands, ServiceBinary};
use folio_runtime::config::LoadedConfig;
use folio_runtime::server::{RunningServer, ServerBuilder};
use folio_storage::cache::{Cache, SyncedLimiter};
use folio_tokens::VerifierSettings;
use tower_http::cors::{AllowOrigin, CorsLayer};

use api::proxy;
use app::{connection::Connections, upstream::Upstream};
use folio_tls::ClientTls;
use settings::GatewaySettings;

/// The gateway's name in logs, metrics and error domains.
pub const NAME: &str = "gateway";

/// Starts the gateway until `shutdown`.
pub async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
    let common = &config.common;
    let settings: GatewaySettings = config.section("gateway")?;
    let cache = Cache::from_settings(&common.redis).await?.with_replicas(settings.replicas);
    let limiter = SyncedLimiter::new(&cache);
    limiter.spawn_sync(shutdown.clone());
    let tls = ClientTls::from_settings(&common.client)?;
    let auth = folio_tokens::remote_auth(
        &common.upstreams.auth,
        &common.service_client,
        tls.as_ref(),
        VerifierSettings::default(),
    )?;
    auth.verifier.spawn_refresh(Some(cache.clone()), shutdown.clone());
    let resolve = Duration::from_millis(settings.resolve_interval_ms);
    let eject = Duration::from_millis(settings.eject_for_ms);
    let upstreams = &common.upstreams;
    let routes = vec![
        (
            "/folio.auth.v1.AuthService/",
            Upstream::start("auth", &upstreams.auth, resolve, eject, shutdown.clone()).await,
        ),
        (
            "/folio.account.v1.AccountService/",
            Upstream::start("account", &upstreams.account, resolve, eject, shutdown.clone()).await,
        ),
        (
            "/folio.ledger.v1.LedgerService/",
            Upstream::start("ledger", &upstreams.ledger, resolve, eject, shutdown.clone()).await,
        ),
    ];
    let connections = Connections::new(tls);
    forget_gone_endpoints(&connections, &routes, resolve, shutdown.clone());
    let proxy = proxy::Proxy::new(
        proxy::ProxyConfig {
            routes,
            limiter,
            limits: settings.rate_limit.clone(),
            max_deadline: Duration::from_millis(settings.max_deadline_ms),
            max_message_bytes: common.server.max_message_bytes,
            tokens: auth.tokens.clone(),
        },
        connections,
    );
    let mut builder = ServerBuilder::new(NAME, common.server.clone())
        .public_facing()
        .descriptor_set(folio_proto::PUBLIC_FILE_DESCRIPTOR_SET)
        .authenticate_with(auth.verifier)
        .grpc_web(cors(&settings.cors_allowed_origins)?)
        .fallback(proxy);
    for service in folio_proto::PUBLIC_SERVICES {
        builder = builder.advertise(service);
    }
    builder.start(shutdown).await
}

/// Every `interval` (the re-resolve interval), drops the connections of
/// endpoints no upstream resolves to any more, so the gateway's memory does
/// not grow with every pod address it has ever called.
fn forget_gone_endpoints(
    connections: &Connections,
    routes: &[(&'static str, Upstream)],
    interval: Duration,
    shutdown: CancellationToken,
) {
    let (connections, upstreams) = (connections.clone(), routes.iter().map(|(_, u)| u.clone()).collect::<Vec<_>>());
    folio_runtime::tasks::spawn_every(interval, shutdown, move || {
        let current: std::collections::HashSet<std::net::SocketAddr> =
            upstreams.iter().flat_map(Upstream::addresses).collect();
        connections.retain(|addr| current.contains(&addr));
        std::future::ready(())
    });
}

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

fn cors(origins: &str) -> anyhow::Result<CorsLayer> {
    let origins: Vec<&str> = origins.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    let allow = if origins == ["*"] {
        AllowOrigin::any()
    } else {
        let parsed =
            origins.iter().map(|o| http::HeaderValue::from_str(o)).collect::<Result<Vec<_>, _>>().map_err(|_| {
                anyhow::anyhow!("invalid configuration: `gateway.cors_allowed_origins` holds an invalid origin")
            })?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        // Mirrored, not `*`: by the Fetch standard a wildcard never covers
        // `authorization`, and every bearer call from a browser sends it.
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        // Browsers cache a preflight for this long (Chromium caps it at 2 h),
        // so a page's calls after the first skip the extra round trip.
        .max_age(PREFLIGHT_MAX_AGE)
        .expose_headers([
            http::HeaderName::from_static("grpc-status"),
            http::HeaderName::from_static("grpc-message"),
            http::HeaderName::from_static("grpc-status-details-bin"),
            http::HeaderName::from_static("x-request-id"),
            // A write's position, for the page's next reads (DESIGN §6).
            http::HeaderName::from_static(folio_storage::db::READ_AFTER_HEADER),
        ]))
}

/// The `folio-gateway` binary.
pub struct Binary;

impl ServiceBinary for Binary {
    const NAME: &'static str = NAME;
    type Extra = NoExtraCommands;

    async fn serve(config: LoadedConfig, shutdown: CancellationToken) -> anyhow::Result<RunningServer> {
        serve(config, shutdown).await
    }

    /// The gateway has no database: nothing to migrate.
    async fn migrate(_config: LoadedConfig) -> anyhow::Result<()> {
        Ok(())
    }
}
