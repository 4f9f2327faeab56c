//! `x-folio-read-after` in the trailers as well as the headers (DESIGN §6):
//! tonic sends a unary answer's metadata as headers only, and some clients
//! (gRPC-Web in browsers among them) read trailers more easily.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use folio_storage::db::READ_AFTER_HEADER;
use futures::future::BoxFuture;
use http::HeaderValue;
use http_body::{Body, Frame};
use tower::{Layer, Service};

/// See the module docs.
#[derive(Clone, Copy, Default)]
pub struct ReadAfterTrailerLayer;

impl<S> Layer<S> for ReadAfterTrailerLayer {
    type Service = ReadAfterTrailer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadAfterTrailer { inner }
    }
}

/// See [`ReadAfterTrailerLayer`].
#[derive(Clone)]
pub struct ReadAfterTrailer<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for ReadAfterTrailer<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let Some(position) = response.headers().get(READ_AFTER_HEADER).cloned() else {
                return Ok(response);
            };
            Ok(response.map(|body| tonic::body::Body::new(WithTrailer { inner: body, position: Some(position) })))
        })
    }
}

/// A body whose trailers gain the position.
struct WithTrailer {
    inner: tonic::body::Body,
    position: Option<HeaderValue>,
}

impl Body for WithTrailer {
    type Data = <tonic::body::Body as Body>::Data;
    type Error = <tonic::body::Body as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => match frame.into_trailers() {
                Ok(mut trailers) => {
                    if let Some(position) = this.position.take() {
                        trailers.insert(READ_AFTER_HEADER, position);
                    }
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
