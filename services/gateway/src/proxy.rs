//! The forwarding core: route by service path, require a token where the
//! RPC is not public, rate-limit, stamp the client IP, cap the deadline,
//! and pass the call to an upstream endpoint without decoding its messages.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use folio_common::{
    auth::Principal,
    cache::{Cache, RateLimit},
    error::{FolioError, Reason},
    server::CallStarted,
};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use tonic::{body::Body, transport::server::TcpConnectInfo};

use crate::settings::RateLimitSettings;
use crate::upstream::Upstream;

/// The error domain of the gateway's own answers.
pub const DOMAIN: &str = "gateway.folio";

/// Everything the proxy needs.
pub struct ProxyConfig {
    /// `(path prefix, upstream)` for the three public services.
    pub routes: Vec<(&'static str, Upstream)>,
    /// Rate-limit buckets.
    pub cache: Cache,
    /// Budgets.
    pub limits: RateLimitSettings,
    /// Longest deadline passed on.
    pub max_deadline: Duration,
    /// Largest request body accepted.
    pub max_message_bytes: usize,
    /// The gateway's own token: it vouches for the client IP it forwards.
    pub tokens: Option<Arc<folio_common::auth::ServiceTokenProvider>>,
}

/// The proxy service (the gateway server's fallback for every unclaimed path).
#[derive(Clone)]
pub struct Proxy {
    config: Arc<ProxyConfig>,
    client: Client<HttpConnector, http_body_util::Full<bytes::Bytes>>,
}

impl Proxy {
    /// A proxy with an HTTP/2 client to the upstreams.
    pub fn new(config: ProxyConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        // One connection to an upstream carries many callers' calls: a header
        // block over the client's limit is a connection error in HTTP/2 (the
        // HPACK state cannot be trusted after it), so the limit is set far
        // above anything an upstream answers, and oversized values are cut
        // on the way out instead (see `bound_headers`).
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .http2_max_header_list_size(UPSTREAM_MAX_HEADER_LIST_BYTES)
            .build(connector);
        Self { config: Arc::new(config), client }
    }
}

/// The header block an upstream's answer may have before the connection it
/// shares with other calls would be torn down.
const UPSTREAM_MAX_HEADER_LIST_BYTES: u32 = 1 << 20;
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
        let started = Instant::now();
        let method = request.uri().path().to_owned();
        let principal = request.extensions().get::<Principal>().map(|p| p.subject.clone());
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
        let deadline_at = Instant::now() + self.deadline(&mut request);
        let path = request.uri().path().to_owned();
        let Some(upstream) =
            self.config.routes.iter().find(|(prefix, _)| path.starts_with(prefix)).map(|(_, u)| u.clone())
        else {
            return reply(FolioError::new(
                Reason::NotImplemented,
                format!("{} is not served here", folio_common::error::echo(&path)),
            ));
        };
        if principal.is_none() && !folio_common::auth::is_public(&path) {
            return reply(FolioError::new(
                Reason::TokenMissing,
                "this call needs `authorization: Bearer <access token>`",
            ));
        }
        let client_ip = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
        if let Some(refusal) = self.rate_limit(principal, &client_ip).await {
            return refusal;
        }
        // The gateway alone says where a call comes from, and vouches for
        // it with its own token (the services believe nobody else).
        if let Ok(value) = HeaderValue::from_str(&client_ip) {
            request.headers_mut().insert(folio_common::auth::CLIENT_IP_HEADER, value);
            if let Some(tokens) = &self.config.tokens {
                match tokens.bearer().await {
                    Ok(voucher) => {
                        if let Ok(value) = HeaderValue::from_bytes(voucher.as_bytes()) {
                            request.headers_mut().insert(folio_common::auth::GATEWAY_TOKEN_HEADER, value);
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
            self.forward(&upstream, parts, body).await
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
        match self.config.cache.rate_limit(&key, limit, 1).await {
            Ok(decision) if decision.allowed => None,
            Ok(decision) => {
                metrics::counter!("folio_gateway_rate_limited_total").increment(1);
                Some(reply(
                    FolioError::new(Reason::RateLimited, "too many requests; slow down")
                        .with_retry_after(decision.retry_after),
                ))
            }
            Err(error) => {
                // Losing the limiter must not take the bank offline: let the call through.
                tracing::warn!(%error, "rate limiter unavailable; not limiting");
                None
            }
        }
    }

    /// What is left of the caller's `grpc-timeout`, capped by the configured maximum, less a
    /// small margin so the gateway's DEADLINE_EXCEEDED reaches the caller
    /// before the caller's own deadline (and before tonic's server-side timer,
    /// which would answer CANCELLED); passed on upstream.
    fn deadline(&self, request: &mut Request<axum::body::Body>) -> Duration {
        let asked = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        let deadline = asked.map_or(self.config.max_deadline, |d| d.min(self.config.max_deadline));
        let deadline = deadline.saturating_sub((deadline / 20).min(Duration::from_millis(5)));
        // Count from the call's arrival, as the caller's clock does.
        let spent = request.extensions().get::<CallStarted>().map_or(Duration::ZERO, |started| started.0.elapsed());
        let deadline = deadline.saturating_sub(spent);
        if let Ok(value) = HeaderValue::from_str(&format!("{}m", deadline.as_millis().max(1))) {
            request.headers_mut().insert("grpc-timeout", value);
        }
        deadline
    }

    async fn forward(&self, upstream: &Upstream, parts: http::request::Parts, body: bytes::Bytes) -> Response<Body> {
        for addr in upstream.candidates() {
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let Ok(uri) = Uri::try_from(format!("http://{addr}{path}")) else { continue };
            let mut outgoing = Request::new(http_body_util::Full::new(body.clone()));
            *outgoing.method_mut() = parts.method.clone();
            *outgoing.uri_mut() = uri;
            *outgoing.version_mut() = http::Version::HTTP_2;
            *outgoing.headers_mut() = parts.headers.clone();
            outgoing.headers_mut().remove(http::header::HOST);
            // The gateway's span becomes the upstream's parent (a caller's
            // traceparent passes through untouched when tracing is off).
            folio_common::telemetry::inject_trace_context(outgoing.headers_mut());
            match self.client.request(outgoing).await {
                Ok(mut response) => {
                    bound_headers(response.headers_mut());
                    return response.map(Body::new);
                }
                Err(error) if error.is_connect() => {
                    upstream.eject(addr);
                    continue;
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

fn header<B>(request: &Request<B>, name: &str) -> String {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// `grpc-timeout`: digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
