//! Server streams through the gateway (DESIGN "Ledger events"): passed on as
//! they come, longer than the maximum deadline, hundreds open at once
//! without taking the permits that unary calls need. The upstream is a
//! plain HTTP/2 server of this test's own that streams gRPC frames, since
//! the ledger's own stream is not built yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use folio_proto::client::lazy_channel;
use folio_proto::ledger::{Asset, ListAssetsRequest, ListAssetsResponse};
use futures::StreamExt;
use http_body_util::{StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use prost::Message;

use support::{Suite, bearer, grpc_web_frame, ledger_client};

const STREAM_PATH: &str = "/folio.ledger.v1.LedgerService/StreamEvents";

/// What the upstream saw of each stream call: its `grpc-timeout`, if any.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

fn grpc_frame(message: &impl Message) -> Bytes {
    Bytes::from(grpc_web_frame(&message.encode_to_vec()))
}

fn ok_trailers() -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    trailers
}

fn number(request: &http::Request<hyper::body::Incoming>, name: &str, default: u64) -> u64 {
    request.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn message(i: u64) -> ListAssetsResponse {
    ListAssetsResponse {
        assets: vec![Asset { code: format!("M{i}"), ..Default::default() }],
        next_page_token: String::new(),
    }
}

/// Streams `x-test-messages` messages, one every `x-test-every-ms` (the
/// first at once), then OK; answers any other path as a unary ListAssets.
async fn upstream(
    request: http::Request<hyper::body::Incoming>,
    seen: Seen,
) -> Result<http::Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let head = |body| http::Response::builder().header("content-type", "application/grpc").body(body).unwrap();
    if request.uri().path() != STREAM_PATH {
        let frames =
            futures::stream::iter([Ok(Frame::data(grpc_frame(&message(0)))), Ok(Frame::trailers(ok_trailers()))]);
        return Ok(head(BoxBody::new(StreamBody::new(frames))));
    }
    let timeout = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().unwrap().push(timeout);
    let (count, every) = (number(&request, "x-test-messages", 1), number(&request, "x-test-every-ms", 100));
    let frames = futures::stream::unfold(0u64, move |i| async move {
        if i > count {
            return None;
        }
        if i == count {
            return Some((Ok(Frame::trailers(ok_trailers())), i + 1));
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(every)).await;
        }
        Some((Ok(Frame::data(grpc_frame(&message(i)))), i + 1))
    });
    Ok(head(BoxBody::new(StreamBody::new(frames))))
}

async fn streaming_upstream() -> (SocketAddr, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = recorded.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| upstream(request, seen.clone()));
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .max_concurrent_streams(10_000)
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// Opens a stream of `messages` messages, one every `every_ms`.
async fn open_stream(
    channel: tonic::transport::Channel,
    token: &str,
    messages: u64,
    every_ms: u64,
) -> Result<tonic::Streaming<ListAssetsResponse>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = bearer(ListAssetsRequest::default(), token);
    request.metadata_mut().insert("x-test-messages", messages.to_string().parse().unwrap());
    request.metadata_mut().insert("x-test-every-ms", every_ms.to_string().parse().unwrap());
    let path = http::uri::PathAndQuery::from_static(STREAM_PATH);
    let codec = tonic_prost::ProstCodec::<ListAssetsRequest, ListAssetsResponse>::default();
    Ok(grpc.server_streaming(request, path, codec).await?.into_inner())
}

#[tokio::test]
async fn a_stream_is_passed_on_as_it_comes_and_outlives_the_maximum_deadline() {
    let mut suite = Suite::start().await;
    let (upstream, seen) = streaming_upstream().await;
    let gateway = suite.gateway(&upstream.to_string(), &[("FOLIO__GATEWAY__MAX_DEADLINE_MS", "1000")]).await;
    let token = suite.customer(gateway).await;
    let started = Instant::now();
    let mut stream = open_stream(lazy_channel(&gateway.to_string()).unwrap(), &token, 12, 200).await.expect("opens");
    let mut arrivals = Vec::new();
    while let Some(message) = stream.message().await.expect("the stream ends with OK") {
        arrivals.push((message.assets[0].code.clone(), started.elapsed()));
    }
    let codes: Vec<&str> = arrivals.iter().map(|(code, _)| code.as_str()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("M{i}")).collect();
    assert_eq!(codes, expected.iter().map(String::as_str).collect::<Vec<_>>(), "every message, in order");
    // Passed on as they come, not gathered until the end.
    assert!(arrivals[0].1 < Duration::from_millis(900), "the first message took {:?}", arrivals[0].1);
    assert!(arrivals[5].1 + Duration::from_millis(700) < arrivals[11].1, "messages arrived together: {arrivals:?}");
    assert!(started.elapsed() > Duration::from_secs(2), "the stream outlived the 1 s maximum deadline");
    assert_eq!(seen.lock().unwrap().as_slice(), [None], "a stream without a deadline got one upstream");

    // A unary call through the same gateway still gets the maximum.
    let started = Instant::now();
    ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &token)).await.expect("unary");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn hundreds_of_open_streams_take_none_of_the_permits_unary_calls_need() {
    let mut suite = Suite::start().await;
    let (upstream, _seen) = streaming_upstream().await;
    // 32 permits: one IP may hold 16 unary calls at once, one connection 8.
    let gateway = suite.gateway(&upstream.to_string(), &[("FOLIO__SERVER__MAX_CONCURRENT_REQUESTS", "32")]).await;
    let token = suite.customer(gateway).await;
    let channels: Vec<_> = (0..6).map(|_| lazy_channel(&gateway.to_string()).unwrap()).collect();
    let mut streams = Vec::new();
    for i in 0..300 {
        let mut stream = open_stream(channels[i % channels.len()].clone(), &token, 2, 3_000).await.expect("opens");
        let first = stream.message().await.expect("first message").expect("a message");
        assert_eq!(first.assets[0].code, "M0");
        streams.push(stream);
    }
    // All 300 are open: unary calls from the same IP and connections pass.
    for i in 0..40 {
        let mut client = folio_proto::ledger::ledger_service_client::LedgerServiceClient::new(channels[i % 6].clone());
        let answer = client.list_assets(bearer(ListAssetsRequest::default(), &token)).await;
        assert!(
            answer.is_ok(),
            "unary call {i} beside 300 open streams: {:?}",
            answer.err().map(|s| (s.code(), s.message().to_owned()))
        );
    }
    // And every stream finishes normally.
    let finished = futures::stream::iter(streams)
        .map(|mut stream| async move {
            let second = stream.message().await?;
            let end = stream.message().await?;
            Ok::<_, tonic::Status>((second.map(|m| m.assets[0].code.clone()), end.is_none()))
        })
        .buffer_unordered(300)
        .collect::<Vec<_>>()
        .await;
    for result in finished {
        match result {
            Ok((Some(code), true)) => assert_eq!(code, "M1"),
            other => panic!("a stream did not finish normally: {other:?}"),
        }
    }
}
