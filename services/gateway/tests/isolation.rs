//! DESIGN §5a at the front door: one caller cannot break what callers share.
//! An upstream answer with an enormous header block does not tear down the
//! connection other calls ride on; bodies that never arrive are cut at the
//! deadline and cannot take every permit; answers a caller never reads do not
//! stall the connection to the upstream; an upstream that takes no
//! connection delays no call to another; made-up paths add no metric series.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use folio_proto::ledger::{
    GetBalanceRequest, GetBalanceResponse, ListAssetsRequest, ListAssetsResponse,
    ledger_service_client::LedgerServiceClient, ledger_service_server::LedgerServiceServer,
};
use folio_proto::stand_in::LedgerServiceStandIn;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status, transport::Endpoint};

use support::{Suite, bearer, grpc_web_frame, ledger_client, reason};

/// A ledger that answers GetBalance with an error whose message is 100 KB.
#[derive(Clone)]
struct LoudLedger;

#[tonic::async_trait]
impl LedgerServiceStandIn for LoudLedger {
    async fn list_assets(&self, _: Request<ListAssetsRequest>) -> Result<Response<ListAssetsResponse>, Status> {
        Ok(Response::new(ListAssetsResponse::default()))
    }

    async fn get_balance(&self, _: Request<GetBalanceRequest>) -> Result<Response<GetBalanceResponse>, Status> {
        Err(Status::failed_precondition("x".repeat(100_000)))
    }
}

async fn loud_ledger() -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(LedgerServiceServer::new(LoudLedger))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                token.cancelled_owned(),
            )
            .await
    });
    (addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_huge_headers_does_not_fail_other_calls_on_the_shared_connection() {
    let mut suite = Suite::start().await;
    let (ledger, _stop) = loud_ledger().await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let token = suite.customer(gateway).await;
    // A few client connections carry every call (no client holds more than
    // its share of permits): the connection under test is the upstream one.
    let clients: Vec<_> = (0..4).map(|_| ledger_client(gateway)).collect();
    let mut calls = Vec::new();
    for i in 0..300 {
        let (mut client, token) = (clients[i % 4].clone(), token.clone());
        calls.push(tokio::spawn(async move {
            if i % 10 == 0 {
                let request = GetBalanceRequest { account_id: uuid::Uuid::new_v4().to_string(), as_of: None };
                (true, client.get_balance(bearer(request, &token)).await.map(|_| ()))
            } else {
                (false, client.list_assets(bearer(ListAssetsRequest::default(), &token)).await.map(|_| ()))
            }
        }));
    }
    let (mut collateral, mut loud) = (Vec::new(), Vec::new());
    for call in calls {
        match call.await.unwrap() {
            (true, answer) => loud.push(answer),
            (false, Err(status)) => collateral.push(format!("{:?} {}", status.code(), status.message())),
            (false, Ok(())) => {}
        }
    }
    assert!(collateral.is_empty(), "{} of 270 ordinary calls failed: {collateral:?}", collateral.len());
    for answer in loud {
        let status = answer.expect_err("the loud error");
        assert_eq!(status.code(), Code::FailedPrecondition, "{:?}", status.code());
        assert!(status.message().len() <= 4096, "{} bytes of message reached the caller", status.message().len());
    }
}

/// Opens `count` calls on one HTTP/2 connection whose bodies never arrive;
/// returns their answers' `grpc-status` and reason as they come.
fn stalled_calls(gateway: SocketAddr, count: usize) -> Vec<tokio::task::JoinHandle<(String, Duration)>> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::StreamBody<
        futures::stream::Pending<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>>,
    >>();
    (0..count)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let body = http_body_util::StreamBody::new(futures::stream::pending());
                let request = http::Request::post(format!("http://{gateway}/folio.auth.v1.AuthService/Login"))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(body)
                    .unwrap();
                let started = Instant::now();
                let response = client.request(request).await.unwrap();
                let code = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("-");
                (code.to_owned(), started.elapsed())
            })
        })
        .collect()
}

#[tokio::test]
async fn bodies_that_never_arrive_are_cut_at_the_deadline_and_cannot_take_every_permit() {
    let mut suite = Suite::start().await;
    let (ledger, _stop) = loud_ledger().await;
    let limits = [("FOLIO__SERVER__MAX_CONCURRENT_REQUESTS", "64"), ("FOLIO__GATEWAY__MAX_DEADLINE_MS", "1500")];
    let gateway = suite.gateway(&ledger.to_string(), &limits).await;
    let token = suite.customer(gateway).await;
    let hostile = stalled_calls(gateway, 64);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another client (another address) is served meanwhile.
    let channel = Endpoint::from_shared(format!("http://{gateway}"))
        .unwrap()
        .local_address(Some(IpAddr::from([127, 0, 0, 2])))
        .connect()
        .await
        .unwrap();
    let mut normal = LedgerServiceClient::new(channel);
    let mut collateral = Vec::new();
    for _ in 0..50 {
        if let Err(status) = normal.list_assets(bearer(ListAssetsRequest::default(), &token)).await {
            collateral.push(format!("{:?} {}", status.code(), reason(&status)));
        }
    }
    assert!(collateral.is_empty(), "{} of 50 calls beside the stalled ones failed: {collateral:?}", collateral.len());

    // The stalled calls end: past the client's cap at once, the rest at the deadline.
    let (mut cut, mut shed) = (0, 0);
    for call in hostile {
        let (code, took) = tokio::time::timeout(Duration::from_secs(5), call).await.expect("answered").unwrap();
        match code.as_str() {
            "4" => {
                cut += 1;
                assert!(took < Duration::from_millis(2_500), "cut after {took:?}");
            }
            "14" => shed += 1,
            other => panic!("a stalled call answered grpc-status {other}"),
        }
    }
    assert!(cut <= 16, "one connection held {cut} permits; its cap is a quarter of 64");
    assert_eq!(cut + shed, 64);
}

#[tokio::test]
async fn made_up_paths_add_no_metric_series_and_answer_with_error_info() {
    let mut suite = Suite::start().await;
    let (ledger, _stop) = loud_ledger().await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let token = suite.customer(gateway).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for i in 0..50 {
        for path in [format!("/folio.ledger.v1.LedgerService/Made{i}"), format!("/made.up.Service{i}/Call")] {
            let body = grpc_web_frame(&ListAssetsRequest::default().encode_to_vec());
            let request = http::Request::post(format!("http://{gateway}{path}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let headers = response.headers();
            assert_eq!(headers.get("grpc-status").and_then(|v| v.to_str().ok()), Some("12"), "{path}");
            let details = headers.get("grpc-status-details-bin").expect("an ErrorInfo rides with UNIMPLEMENTED");
            let status = tonic::Status::with_details(
                Code::Unimplemented,
                "",
                base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    details.to_str().unwrap().trim_end_matches('='),
                )
                .unwrap()
                .into(),
            );
            assert_eq!(reason(&status), "NOT_IMPLEMENTED", "{path}");
        }
    }
    let metrics = suite.gateway_metrics().await;
    assert!(!metrics.contains("Made"), "a made-up method became a label");
    assert!(!metrics.contains("made.up"), "a made-up service became a label");
    assert!(metrics.contains("method=\"unknown\""), "unknown paths are counted under one label");
}

/// Opens `calls` ListAssets calls on one raw HTTP/2 connection whose
/// receive window is zero: the answers' heads arrive, their bodies never
/// can. Returns what must stay alive for the calls to stay open.
async fn calls_never_read(gateway: SocketAddr, token: &str, calls: usize) -> Vec<Box<dyn std::any::Any + Send>> {
    let tcp = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let (sender, connection) =
        h2::client::Builder::new().initial_window_size(0).handshake::<_, bytes::Bytes>(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    for _ in 0..calls {
        let mut sender = sender.clone().ready().await.unwrap();
        let request = http::Request::post(format!("http://{gateway}/folio.ledger.v1.LedgerService/ListAssets"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        let (response, mut body) = sender.send_request(request, false).unwrap();
        body.send_data(bytes::Bytes::from(grpc_web_frame(&ListAssetsRequest::default().encode_to_vec())), true)
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(5), response).await.expect("a head").unwrap();
        assert_eq!(response.status(), 200);
        held.push(Box::new(response));
        held.push(Box::new(body));
    }
    held.push(Box::new(sender));
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_never_read_their_answers_do_not_stall_the_shared_upstream_connection() {
    let mut suite = Suite::start().await;
    // Every answer of this ledger is about 400 KB.
    let (ledger, _stub, _stop) = support::stub_ledger(&"x".repeat(400_000)).await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let (hostile, normal) = (suite.customer(gateway).await, suite.customer(gateway).await);
    // 64 answers of 400 KB waiting for a reader: more than any one HTTP/2
    // connection window the gateway's connection to the ledger could share.
    let _held = calls_never_read(gateway, &hostile, 64).await;
    for i in 0..5 {
        let mut client = ledger_client(gateway);
        let call = client.list_assets(bearer(ListAssetsRequest::default(), &normal));
        let answer = tokio::time::timeout(Duration::from_secs(5), call).await.map(|a| a.map(|_| ()));
        assert!(
            matches!(answer, Ok(Ok(_))),
            "call {i} of a customer who reads stalled behind answers another never reads: {answer:?}"
        );
    }
}

/// An address that takes no connection: a listener that never accepts,
/// with its accept queue filled, so the kernel drops every further SYN
/// and a connect waits until the caller gives up.
async fn black_hole() -> (SocketAddr, Vec<tokio::net::TcpStream>, tokio::net::TcpListener) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(error)) => panic!("the black hole refused instead of dropping: {error}"),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    (addr, queued, listener)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_takes_no_connection_delays_no_call_to_another() {
    let mut suite = Suite::start().await;
    let (hole, _queued, _listener) = black_hole().await;
    let (ledger, _stub, _stop) = support::stub_ledger("ledger").await;
    let gateway = suite.gateway(&ledger.to_string(), &[("FOLIO__UPSTREAMS__ACCOUNT", &hole.to_string())]).await;
    let token = suite.customer(gateway).await;
    // Callers of the unreachable account service: each of their connects
    // waits out the connect timeout.
    let account = folio_proto::account::account_service_client::AccountServiceClient::new(
        folio_proto::client::lazy_channel(&gateway.to_string()).unwrap(),
    );
    let stuck: Vec<_> = (0..16)
        .map(|_| {
            let (mut account, token) = (account.clone(), token.clone());
            tokio::spawn(async move {
                let request = folio_proto::account::GetAccountRequest { account_id: uuid::Uuid::new_v4().to_string() };
                account.get_account(bearer(request, &token)).await.map(|_| ())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The ledger's first call needs a connection of its own too.
    let started = Instant::now();
    let answer = ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &token)).await;
    let took = started.elapsed();
    answer.expect("a call to a healthy upstream");
    assert!(took < Duration::from_millis(1_500), "a call to the ledger waited {took:?} behind the account's connects");
    for call in stuck {
        let status = call.await.unwrap().expect_err("the account service is unreachable");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
}
