//! The forwarding core: route by service path, require a token where the
//! RPC is not public, rate-limit, stamp the client IP, cap the deadline,
//! and pass the call to an upstream endpoint without decoding its messages.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use folio_errors::{FolioError, Reason};
use folio_storage::cache::{RateLimit, SyncedLimiter};
use folio_tokens::Principal;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::BodyExt;
use tonic::body::Body;

use super::deadline;
use crate::app::connection::{Connections, Lane};
use crate::app::upstream::Upstream;
use crate::settings::RateLimitSettings;

/// The error domain of the gateway's own answers.
pub const DOMAIN: &str = "gateway.folio";

/// Everything the proxy needs.
pub struct ProxyConfig {
    /// `(path prefix, upstream)` for the three public services.
    pub routes: Vec<(&'static str, Upstream)>,
    /// Rate-limit buckets, shared with the other replicas in the background.
    pub limiter: SyncedLimiter,
    /// Budgets.
    pub limits: RateLimitSettings,
    /// Longest deadline passed on.
    pub max_deadline: Duration,
    /// Largest request body accepted.
    pub max_message_bytes: usize,
    /// The gateway's own token: it vouches for the client IP it forwards.
    pub tokens: Option<Arc<folio_tokens::ServiceTokenProvider>>,
}

/// The proxy service (the gateway server's fallback for every unclaimed path).
#[derive(Clone)]
pub struct Proxy {
    config: Arc<ProxyConfig>,
    connections: Connections,
}

impl Proxy {
    /// A proxy calling the upstreams over `connections`.
    pub fn new(config: ProxyConfig, connections: Connections) -> Self {
        Self { config: Arc::new(config), connections }
    }
}

/// Longest header value passed on to a caller (gRPC clients refuse header
/// blocks past 8 KiB by default).
const MAX_FORWARDED_HEADER_BYTES: usize = 4096;

/// Cuts what no caller should receive: an over-long `grpc-message` is
/// shortened, any other over-long value dropped (logged: an upstream broke
/// the bound of DESIGN §4).
fn bound_headers(headers: &mut http::HeaderMap) {
    let oversized: Vec<http::HeaderName> = headers
        .iter()
        .filter(|(_, value)| value.len() > MAX_FORWARDED_HEADER_BYTES)
        .map(|(name, _)| name.clone())
        .collect();
    for name in oversized {
        tracing::warn!(header = %name, "an upstream answered an over-long header; cutting it");
        if name == "grpc-message" {
            headers.insert(name, HeaderValue::from_static("the upstream's message was too long and was cut"));
        } else {
            headers.remove(name);
        }
    }
}

fn reply(error: FolioError) -> Response<Body> {
    error.into_status(DOMAIN).into_http()
}

impl tower::Service<Request<axum::body::Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let proxy = self.clone();
        Box::pin(async move { Ok(proxy.handle(request).await) })
    }
}

impl Proxy {
    async fn handle(&self, request: Request<axum::body::Body>) -> Response<Body> {
        let principal = request.extensions().get::<Principal>().map(|p| p.subject.clone());
        // The access log's fields cost allocations on every call: gather
        // them only when the line is written.
        if !tracing::enabled!(tracing::Level::INFO) {
            return self.route(request, principal.as_deref()).await;
        }
        let started = Instant::now();
        let method = request.uri().path().to_owned();
        let request_id = header(&request, "x-request-id");
        let response = self.route(request, principal.as_deref()).await;
        let status =
            response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("trailers").to_owned();
        tracing::info!(
            method = %method,
            grpc_status = %status,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            principal = principal.as_deref().unwrap_or("-"),
            request_id = %request_id,
            "access"
        );
        response
    }

    async fn route(&self, mut request: Request<axum::body::Body>, principal: Option<&str>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let lane = if deadline::is_server_streaming(&path) { Lane::Stream } else { Lane::Unary };
        let deadline_at = Instant::now() + deadline::pass_on(&mut request, self.config.max_deadline, lane);
        let Some(upstream) =
            self.config.routes.iter().find(|(prefix, _)| path.starts_with(prefix)).map(|(_, u)| u.clone())
        else {
            return reply(FolioError::new(
                Reason::NotImplemented,
                format!("{} is not served here", folio_errors::echo(&path)),
            ));
        };
        if principal.is_none() && !folio_tokens::is_public(&path) {
            return reply(FolioError::new(
                Reason::TokenMissing,
                "this call needs `authorization: Bearer <access token>`",
            ));
        }
        let client_ip = request
            .extensions()
            .get::<folio_tls::Peer>()
            .and_then(|peer| peer.addr)
            .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
        if let Some(refusal) = self.rate_limit(principal, &client_ip).await {
            return refusal;
        }
        // The gateway alone says where a call comes from, and vouches for
        // it with its own token (the services believe nobody else).
        if let Ok(value) = HeaderValue::from_str(&client_ip) {
            request.headers_mut().insert(folio_tokens::CLIENT_IP_HEADER, value);
            if let Some(tokens) = &self.config.tokens {
                match tokens.bearer().await {
                    Ok(voucher) => {
                        if let Ok(value) = HeaderValue::from_bytes(voucher.as_bytes()) {
                            request.headers_mut().insert(folio_tokens::GATEWAY_TOKEN_HEADER, value);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "no gateway token to vouch for the client IP"),
                }
            }
        }
        let (parts, body) = request.into_parts();
        // Folio's RPCs are unary: the request is read (bounded) before it is
        // sent, so an endpoint that refuses the connection can be skipped and
        // the next one tried with the same bytes. The read is inside the
        // deadline: a body that never arrives is cancelled and frees its permit.
        let limited = http_body_util::Limited::new(body, self.config.max_message_bytes);
        let forwarding = async move {
            let body = match limited.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return reply(
                        FolioError::new(Reason::MessageTooLarge, "the request exceeds the size limit")
                            .with_metadata("limit_bytes", self.config.max_message_bytes.to_string()),
                    );
                }
            };
            self.forward(&upstream, lane, parts, body).await
        };
        match tokio::time::timeout_at(deadline_at.into(), forwarding).await {
            Ok(response) => response,
            Err(_) => reply(FolioError::new(
                Reason::DeadlineExceeded,
                "the deadline passed before the request arrived or the upstream answered",
            )),
        }
    }

    async fn rate_limit(&self, principal: Option<&str>, client_ip: &str) -> Option<Response<Body>> {
        let limits = &self.config.limits;
        let (key, limit) = match principal {
            Some(subject) => (
                format!("gw:rl:p:{subject}"),
                RateLimit { rate_per_sec: limits.per_principal_rps, burst: limits.per_principal_burst },
            ),
            None => (
                format!("gw:rl:ip:{client_ip}"),
                RateLimit { rate_per_sec: limits.per_ip_rps, burst: limits.per_ip_burst },
            ),
        };
        let decision = self.config.limiter.check(&key, limit).await;
        if decision.allowed {
            return None;
        }
        metrics::counter!("folio_gateway_rate_limited_total").increment(1);
        Some(reply(
            FolioError::new(Reason::RateLimited, "too many requests; slow down").with_retry_after(decision.retry_after),
        ))
    }

    async fn forward(
        &self,
        upstream: &Upstream,
        lane: Lane,
        parts: http::request::Parts,
        body: bytes::Bytes,
    ) -> Response<Body> {
        let http::request::Parts { method, uri, mut headers, .. } = parts;
        strip_connection_headers(&mut headers);
        // The gateway's span becomes the upstream's parent (a caller's
        // traceparent passes through untouched when tracing is off).
        folio_telemetry::inject_trace_context(&mut headers);
        for (addr, host) in upstream.candidates() {
            let sender = match self.connections.ready(addr, &host, lane).await {
                Ok(sender) => sender,
                Err(error) => {
                    // Nothing was sent: the next endpoint gets the same call.
                    tracing::debug!(upstream = upstream.name(), %error, "connecting failed");
                    upstream.eject(addr);
                    continue;
                }
            };
            let Ok(target) = upstream_uri(addr, &uri) else { break };
            let mut request = Request::new(());
            *request.method_mut() = method;
            *request.uri_mut() = target;
            *request.version_mut() = http::Version::HTTP_2;
            *request.headers_mut() = headers;
            match Connections::send(sender, request, body).await {
                Ok(mut response) => {
                    bound_headers(response.headers_mut());
                    return response.map(Body::new);
                }
                Err(error) => {
                    // Sent, outcome unknown: do not send it again elsewhere.
                    tracing::warn!(upstream = upstream.name(), %addr, %error, "upstream call failed");
                    break;
                }
            }
        }
        reply(
            FolioError::new(
                Reason::DependencyUnavailable,
                format!("the {} service is unavailable; retry later", upstream.name()),
            )
            .with_metadata("dependency", upstream.name()),
        )
    }
}

/// `http://addr/path`: HTTP/2 needs an absolute URI.
fn upstream_uri(addr: SocketAddr, uri: &Uri) -> Result<Uri, http::Error> {
    let path = uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    Uri::builder().scheme("http").authority(addr.to_string()).path_and_query(path).build()
}

/// HTTP/1.1's connection-specific headers (a gRPC-Web call arrives over
/// HTTP/1.1) are forbidden in HTTP/2, and `host` is the caller's, not the
/// upstream's; gRPC needs `te: trailers`.
fn strip_connection_headers(headers: &mut http::HeaderMap) {
    for name in [
        http::header::CONNECTION,
        http::header::HOST,
        http::header::TRANSFER_ENCODING,
        http::header::UPGRADE,
        http::HeaderName::from_static("keep-alive"),
        http::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
}

fn header<B>(request: &Request<B>, name: &str) -> String {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}
