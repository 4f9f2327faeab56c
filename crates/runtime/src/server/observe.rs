//! Per-call span (child of the caller's W3C trace context), Prometheus
//! metrics by method and status, and one log line per call. Caller mistakes
//! are logged at DEBUG, server faults at ERROR: a client's bad request is
//! not an incident. A call whose request the client cut off (its stream
//! reset, its connection gone) is CANCELLED, whatever the service then
//! answered to no one: a caller abandoning calls makes no server faults.

use folio_errors::{FolioError, Reason};
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use http_body::{Body, Frame};
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;

use folio_telemetry::adopt_remote_parent;

/// When a call arrived, in the request's extensions: deadlines measured by
/// inner layers count from here, as tonic's own `grpc-timeout` timer does.
#[derive(Debug, Clone, Copy)]
pub struct CallStarted(pub Instant);

/// See the module docs.
#[derive(Clone, Copy)]
pub struct ObserveLayer {
    service: &'static str,
}

impl ObserveLayer {
    /// Observes calls of the service named `service`.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, service: self.service }
    }
}

/// See [`ObserveLayer`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    service: &'static str,
}

impl<S> Service<http::Request<tonic::body::Body>> for Observe<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let client_gone = Arc::new(AtomicBool::new(false));
        let (parts, body) = request.into_parts();
        let body = WatchedRequestBody { inner: body, client_gone: client_gone.clone() };
        let mut request = http::Request::from_parts(parts, tonic::body::Body::new(body));
        request.extensions_mut().insert(CallStarted(Instant::now()));
        let method = request.uri().path().to_owned();
        let request_id =
            request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let span = tracing::info_span!(
            "grpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            request_id = %request_id,
            service = self.service,
        );
        adopt_remote_parent(&span, request.headers());
        let started = Instant::now();
        let service = self.service;
        let call = CallRecord {
            method: super::methods::method_label(method),
            request_id,
            started,
            span: span.clone(),
            done: false,
            client_gone,
        };
        Box::pin(
            async move {
                match inner.call(request).await {
                    Ok(response) => {
                        let mut call = call;
                        let header_code = grpc_status(response.headers());
                        // tonic answers a method it does not route with a bare
                        // UNIMPLEMENTED; every answer carries an ErrorInfo (§4).
                        let bare = !response.headers().contains_key("grpc-status-details-bin");
                        let response = if header_code == Some(Code::Unimplemented) && bare {
                            FolioError::new(Reason::NotImplemented, "this method is not served here")
                                .into_status(&format!("{service}.folio"))
                                .into_http()
                        } else {
                            response
                        };
                        if let Some(code) = header_code {
                            // Trailers-only answer: the status is already known.
                            call.finish(code);
                        }
                        let (parts, body) = response.into_parts();
                        let body = ObservedBody { inner: body, call: Some(call) };
                        Ok(http::Response::from_parts(parts, tonic::body::Body::new(body)))
                    }
                    Err(error) => {
                        let mut call = call;
                        tracing::error!(%error, "call failed in the transport");
                        call.finish(Code::Internal);
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

struct CallRecord {
    method: String,
    request_id: String,
    started: Instant,
    span: tracing::Span,
    done: bool,
    /// Set when reading the request failed: the client cut it off.
    client_gone: Arc<AtomicBool>,
}

impl CallRecord {
    fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        let code = if self.client_gone.load(Ordering::Relaxed) { Code::Cancelled } else { code };
        let elapsed = self.started.elapsed();
        let code_label = format!("{code:?}");
        metrics::counter!("folio_grpc_requests_total", "method" => self.method.clone(), "code" => code_label.clone())
            .increment(1);
        metrics::histogram!("folio_grpc_request_seconds", "method" => self.method.clone())
            .record(elapsed.as_secs_f64());
        let _entered = self.span.enter();
        let millis = elapsed.as_secs_f64() * 1000.0;
        if is_server_fault(code) {
            tracing::error!(method = %self.method, code = ?code, duration_ms = millis, request_id = %self.request_id, "call");
        } else {
            tracing::debug!(method = %self.method, code = ?code, duration_ms = millis, request_id = %self.request_id, "call");
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // The body ended without trailers: the client went away mid-call.
        self.finish(Code::Cancelled);
    }
}

/// Codes that mean the service, not the caller, is at fault.
/// Answers logged as errors, one line per call. UNAVAILABLE is not among
/// them: a hostile client can have its own calls shed by the thousand, and
/// that must not flood the log (the shed counter and the code that found a
/// dependency down say what happened).
fn is_server_fault(code: Code) -> bool {
    matches!(code, Code::Internal | Code::Unknown | Code::DataLoss)
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(Code::from(value))
}

pin_project_lite::pin_project! {
    /// A response body that reports the call's status when its trailers pass.
    struct ObservedBody {
        #[pin]
        inner: tonic::body::Body,
        call: Option<CallRecord>,
    }
}

impl Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(mut call) = this.call.take()
        {
            call.finish(grpc_status(trailers).unwrap_or(Code::Unknown));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that notes when reading it fails: the client reset the
    /// stream or lost its connection before its request was whole.
    struct WatchedRequestBody {
        #[pin]
        inner: tonic::body::Body,
        client_gone: Arc<AtomicBool>,
    }
}

impl Body for WatchedRequestBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.client_gone.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
