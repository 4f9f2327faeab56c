//! The gateway over real gRPC with a real auth service, and stand-in ledger
//! instances that record what reaches them (to observe routing, balancing,
//! headers and that refused calls never reach an upstream).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use base64::Engine;
use folio_proto::client::lazy_channel;
use folio_proto::{
    auth::{LoginRequest, LogoutRequest, auth_service_client::AuthServiceClient},
    ledger::{
        ListAssetsRequest, ListAssetsResponse, OpenAccountRequest,
        ledger_admin_service_client::LedgerAdminServiceClient,
    },
};
use folio_testkit::{TestClaims, TestKeys};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Code, Response, Status};

use support::{OPERATOR_PASSWORD, Suite, bearer, grpc_web_frame, ledger_client, reason, stub_ledger};

#[tokio::test]
async fn routes_public_services_and_refuses_the_rest_without_reaching_an_upstream() {
    let mut suite = Suite::start().await;
    let (ledger, stub, _stop) = stub_ledger("ledger-a").await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let token = suite.customer(gateway).await;
    let assets = ledger_client(gateway)
        .list_assets(bearer(ListAssetsRequest::default(), &token))
        .await
        .expect("routed to the ledger");
    assert_eq!(assets.into_inner().assets[0].description, "ledger-a");
    let calls_before = stub.seen.lock().unwrap().len();

    let mut admin = LedgerAdminServiceClient::new(lazy_channel(&gateway.to_string()).unwrap());
    let status = admin.open_account(bearer(OpenAccountRequest::default(), &token)).await.expect_err("internal service");
    assert_eq!(status.code(), Code::Unimplemented);
    let mut grpc = tonic::client::Grpc::new(lazy_channel(&gateway.to_string()).unwrap());
    grpc.ready().await.unwrap();
    let unknown: Result<Response<ListAssetsResponse>, Status> = grpc
        .unary(
            bearer(ListAssetsRequest::default(), &token),
            http::uri::PathAndQuery::from_static("/nope.v1.Nothing/Call"),
            tonic_prost::ProstCodec::default(),
        )
        .await;
    assert_eq!(unknown.expect_err("unknown service").code(), Code::Unimplemented);
    assert_eq!(stub.seen.lock().unwrap().len(), calls_before, "a refused call reached the upstream");

    // The upstream sees the caller's request id and the connection's IP, not a forged one.
    let mut request = bearer(ListAssetsRequest::default(), &token);
    request.metadata_mut().insert("x-request-id", "req-42".parse().unwrap());
    request.metadata_mut().insert("x-folio-client-ip", "6.6.6.6".parse().unwrap());
    let response = ledger_client(gateway).list_assets(request).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-42"), "echoed");
    let seen = stub.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-42"));
    assert_eq!(seen.get("x-folio-client-ip").and_then(|v| v.to_str().ok()), Some("127.0.0.1"));
    assert!(seen.get("authorization").is_some(), "the bearer token is forwarded for the upstream to verify");
}

#[tokio::test]
async fn tokens_are_checked_at_the_edge() {
    let mut suite = Suite::start().await;
    let (ledger, _stub, _stop) = stub_ledger("ledger").await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let mut client = ledger_client(gateway);
    let status = client.list_assets(ListAssetsRequest::default()).await.expect_err("no token");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "TOKEN_MISSING"));
    let status = client.list_assets(bearer(ListAssetsRequest::default(), "not-a-jwt")).await.expect_err("malformed");
    assert_eq!(reason(&status), "TOKEN_INVALID");
    let forged = TestKeys::generate().sign(&TestClaims::user("someone", &["operator"]));
    let status = client.list_assets(bearer(ListAssetsRequest::default(), &forged)).await.expect_err("wrongly signed");
    assert_eq!(reason(&status), "TOKEN_INVALID");

    let token = suite.customer(gateway).await;
    let mut auth = AuthServiceClient::new(lazy_channel(&gateway.to_string()).unwrap());
    auth.logout(bearer(LogoutRequest {}, &token)).await.unwrap();
    let started = Instant::now();
    loop {
        match client.list_assets(bearer(ListAssetsRequest::default(), &token)).await {
            Err(status) if reason(&status) == "TOKEN_REVOKED" => break,
            other => assert!(started.elapsed() < Duration::from_secs(5), "revoked token still accepted: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rate_limits_per_principal_and_combined_across_gateways_sharing_redis() {
    let mut suite = Suite::start().await;
    let (ledger, _stub, _stop) = stub_ledger("ledger").await;
    let redis = format!("{}/6", folio_testkit::redis_url());
    let limits = [
        ("FOLIO__REDIS__URL", redis.as_str()),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_RPS", "1"),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_BURST", "10"),
    ];
    let first = suite.gateway(&ledger.to_string(), &limits).await;
    let second = suite.gateway(&ledger.to_string(), &limits).await;
    let alice = suite.customer(first).await;
    let bob = suite.customer(first).await;
    let mut allowed = 0;
    let mut retry_after = None;
    for i in 0..30 {
        let gateway = if i % 2 == 0 { first } else { second };
        match ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &alice)).await {
            Ok(_) => allowed += 1,
            Err(status) => {
                assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "RATE_LIMITED"));
                retry_after = tonic_types::StatusExt::get_details_retry_info(&status).and_then(|r| r.retry_delay);
            }
        }
    }
    // The readiness probe and these calls share one budget of 10 (+1/s) across both gateways.
    assert!((8..=12).contains(&allowed), "{allowed} of 30 calls allowed through two gateways");
    assert!(retry_after.is_some_and(|d| d > Duration::ZERO), "RetryInfo missing");
    ledger_client(second)
        .list_assets(bearer(ListAssetsRequest::default(), &bob))
        .await
        .expect("another principal is unaffected");
}

#[tokio::test]
async fn deadlines_and_dead_upstreams_answer_quickly() {
    let mut suite = Suite::start().await;
    // A "slow" upstream: accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let gateway = suite.gateway(&silent_addr.to_string(), &[]).await;
    let token = suite.customer(gateway).await;
    // A raw HTTP/2 call: tonic's client enforces grpc-timeout itself and would
    // report its own expiry as CANCELLED, hiding what the gateway answers.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let body = grpc_web_frame(&ListAssetsRequest::default().encode_to_vec());
    let request = http::Request::post(format!("http://{gateway}/folio.ledger.v1.LedgerService/ListAssets"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "50m")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let started = Instant::now();
    let response = client.request(request).await.unwrap();
    let elapsed = started.elapsed();
    let code = response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(code.as_deref(), Some("4"), "DEADLINE_EXCEEDED expected: {:?}", response.headers());
    assert!(elapsed < Duration::from_millis(150), "took {elapsed:?}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gateway = suite.gateway(&closed.to_string(), &[]).await;
    let started = Instant::now();
    let status =
        ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &token)).await.expect_err("down");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unavailable, "DEPENDENCY_UNAVAILABLE"));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn two_ledger_instances_share_the_traffic_and_a_dead_one_is_skipped() {
    let mut suite = Suite::start().await;
    let (a, stub_a, stop_a) = stub_ledger("a").await;
    let (b, stub_b, _stop_b) = stub_ledger("b").await;
    let gateway = suite.gateway(&format!("{a},{b}"), &[]).await;
    let token = suite.customer(gateway).await;
    for _ in 0..20 {
        ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &token)).await.unwrap();
    }
    let (to_a, to_b) = (stub_a.seen.lock().unwrap().len(), stub_b.seen.lock().unwrap().len());
    assert!(to_a >= 5 && to_b >= 5, "unbalanced: a={to_a} b={to_b}");
    stop_a.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut failures = 0;
    for _ in 0..20 {
        if ledger_client(gateway).list_assets(bearer(ListAssetsRequest::default(), &token)).await.is_err() {
            failures += 1;
        }
    }
    assert!(failures <= 1, "{failures} calls failed after one instance went away");
}

async fn http1_post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nAccept: {content_type}\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut plain = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            plain.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = plain;
    }
    (head, body)
}

#[tokio::test]
async fn grpc_web_over_http1_completes_a_login_in_binary_and_base64() {
    let mut suite = Suite::start().await;
    let (ledger, _stub, _stop) = stub_ledger("ledger").await;
    let gateway = suite.gateway(&ledger.to_string(), &[]).await;
    let login =
        LoginRequest { email: suite.operator_email.clone(), password: OPERATOR_PASSWORD.into() }.encode_to_vec();
    let frame = grpc_web_frame(&login);
    for (content_type, body) in [
        ("application/grpc-web+proto", frame.clone()),
        ("application/grpc-web-text", base64::engine::general_purpose::STANDARD.encode(&frame).into_bytes()),
    ] {
        let (head, body) = http1_post(gateway, "/folio.auth.v1.AuthService/Login", content_type, &body).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let body = if head.to_ascii_lowercase().contains("content-type: application/grpc-web-text") {
            // Each chunk is base64 on its own, padding included: decode per 4-character group.
            let text: Vec<u8> = body.iter().filter(|b| !b.is_ascii_whitespace()).copied().collect();
            text.chunks(4).flat_map(|group| base64::engine::general_purpose::STANDARD.decode(group).unwrap()).collect()
        } else {
            assert!(content_type.ends_with("proto"), "a grpc-web-text request got a binary answer: {head}");
            body
        };
        assert_eq!(body[0], 0, "first frame is the message");
        let length = usize::try_from(u32::from_be_bytes(body[1..5].try_into().unwrap())).unwrap();
        let response = folio_proto::auth::LoginResponse::decode(&body[5..5 + length]).unwrap();
        assert!(!response.access_token.is_empty());
        let trailers = String::from_utf8_lossy(&body[5 + length + 5..]).to_string();
        assert!(trailers.contains("grpc-status:0"), "trailers: {trailers}");
    }
}

/// Sends `head` (a whole HTTP/1.1 request without a body) and returns the answer's head.
async fn http1_head(addr: SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase()
}

#[tokio::test]
async fn cors_preflight_names_the_asked_headers_and_is_cached() {
    let mut suite = Suite::start().await;
    let (ledger, _stub, _stop) = stub_ledger("ledger").await;
    let origin = "https://bank.example";
    let gateway = suite.gateway(&ledger.to_string(), &[("FOLIO__GATEWAY__CORS_ALLOWED_ORIGINS", origin)]).await;
    // What a Connect-ES gRPC-Web client asks before a bearer call.
    let asked = "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout";
    let head = http1_head(
        gateway,
        &format!(
            "OPTIONS /folio.ledger.v1.LedgerService/GetBalance HTTP/1.1\r\nHost: {gateway}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: {asked}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let value = |name: &str| {
        head.lines().find_map(|line| line.strip_prefix(&format!("{name}: "))).map(str::to_owned).unwrap_or_default()
    };
    // By the Fetch standard `*` never covers `authorization`: it must be named.
    let allowed: Vec<String> = value("access-control-allow-headers").split(',').map(|h| h.trim().to_owned()).collect();
    for header in asked.split(',') {
        assert!(allowed.iter().any(|a| a == header), "{header} is not allowed: {head}");
    }
    assert_eq!(value("access-control-allow-origin"), origin, "{head}");
    let max_age: u64 = value("access-control-max-age").parse().unwrap_or(0);
    assert!(max_age >= 600, "the preflight is not cached (max-age {max_age}): {head}");
    assert!(value("vary").contains("access-control-request-headers"), "mirrored headers must vary: {head}");

    // Another origin is not granted.
    let other = http1_head(
        gateway,
        &format!(
            "OPTIONS /folio.ledger.v1.LedgerService/GetBalance HTTP/1.1\r\nHost: {gateway}\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: {asked}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}
