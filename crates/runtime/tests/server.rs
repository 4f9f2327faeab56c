//! The common server stack in process, over real gRPC on port 0: malformed
//! bodies, drain on shutdown, load shedding, request ids, authentication.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use std::{sync::Arc, time::Duration};

use bytes::{Buf, BufMut, Bytes};
use folio_errors::{FolioError, reason_of};
use folio_proto::client::lazy_channel;
use folio_proto::{
    account::account_service_server::AccountServiceServer,
    auth::{auth_internal_service_server::AuthInternalServiceServer, auth_service_server::AuthServiceServer},
    ledger::{
        GetBalanceRequest, GetBalanceResponse, ledger_admin_service_server::LedgerAdminServiceServer,
        ledger_service_client::LedgerServiceClient, ledger_service_server::LedgerServiceServer,
    },
    stand_in::{
        AccountServiceStandIn, AuthInternalServiceStandIn, AuthServiceStandIn, LedgerAdminServiceStandIn,
        LedgerServiceStandIn,
    },
};
use folio_runtime::config::ServerSettings;
use folio_runtime::server::{RunningServer, ServerBuilder};
use folio_testkit::{StubAuth, TestClaims, TestKeys};
use folio_tokens::{
    GrpcKeySource, GrpcRevocationSource, ServiceTokenProvider, TokenVerifier, VerifierSettings, principal,
};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{
    Code, Request, Response, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

/// Every RPC answering UNIMPLEMENTED, except GetBalance, which waits
/// 400 ms and echoes the caller's subject (to observe drains and principals).
#[derive(Clone)]
struct Stubs;

impl AuthServiceStandIn for Stubs {}

impl AuthInternalServiceStandIn for Stubs {}

impl AccountServiceStandIn for Stubs {}

impl LedgerAdminServiceStandIn for Stubs {}

#[tonic::async_trait]
impl LedgerServiceStandIn for Stubs {
    async fn get_balance(&self, request: Request<GetBalanceRequest>) -> Result<Response<GetBalanceResponse>, Status> {
        let caller = principal(&request).map(|p| p.subject.clone()).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(400)).await;
        if request.get_ref().account_id == "who-am-i" {
            principal(&request).map_err(|e: FolioError| e.into_status("ledger.folio"))?;
        }
        Ok(Response::new(GetBalanceResponse {
            balance: Some(folio_proto::ledger::Balance { account_id: caller, ..Default::default() }),
        }))
    }
}

fn settings(max_concurrent_requests: usize) -> ServerSettings {
    ServerSettings {
        listen_addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        max_concurrent_requests,
        grace_period: Duration::from_secs(5),
        max_message_bytes: 4 << 20,
        tls_cert_file: None,
        tls_key_file: None,
        tls_client_ca_file: None,
    }
}

async fn start(builder: ServerBuilder, shutdown: &CancellationToken) -> RunningServer {
    builder
        .add_service(AuthServiceServer::new(Stubs))
        .add_service(AuthInternalServiceServer::new(Stubs))
        .add_service(AccountServiceServer::new(Stubs))
        .add_service(LedgerServiceServer::new(Stubs))
        .add_service(LedgerAdminServiceServer::new(Stubs))
        .start(shutdown.clone())
        .await
        .expect("server starts")
}

async fn ledger_client(server: &RunningServer) -> LedgerServiceClient<tonic::transport::Channel> {
    LedgerServiceClient::connect(format!("http://{}", server.grpc_addr)).await.expect("connect")
}

/// Sends and receives raw bytes, to put arbitrary bodies on the wire.
#[derive(Default, Clone)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

fn every_rpc_path() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(folio_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut paths = Vec::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("folio.")) {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
            }
        }
    }
    paths
}

#[tokio::test]
async fn random_bytes_to_any_rpc_answer_invalid_argument() {
    let shutdown = CancellationToken::new();
    let server = start(ServerBuilder::new("test", settings(64)), &shutdown).await;
    let channel = lazy_channel(&server.grpc_addr.to_string()).expect("channel");
    let paths = every_rpc_path();
    assert!(paths.len() >= 38, "only {} RPCs found in the contracts", paths.len());
    for path in paths {
        // Random bytes whose first byte is a tag with field number 0, which no
        // protobuf message can contain, so the body is certain not to decode.
        let mut body: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
        body[0] = 0x07;
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let method = http::uri::PathAndQuery::try_from(path.as_str()).expect("path");
        let status = grpc
            .unary::<Bytes, Bytes, RawCodec>(Request::new(Bytes::from(body)), method, RawCodec)
            .await
            .expect_err("a malformed body must be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert_eq!(reason_of(&status).as_deref(), Some("INVALID_FIELD"), "{path}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn shutdown_lets_the_in_flight_call_finish_then_stops() {
    let shutdown = CancellationToken::new();
    let server = start(ServerBuilder::new("test", settings(64)), &shutdown).await;
    let addr = server.grpc_addr;
    let mut client = ledger_client(&server).await;
    let in_flight = tokio::spawn(async move { client.get_balance(GetBalanceRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel();
    let answer = in_flight.await.expect("join");
    assert!(answer.is_ok(), "the in-flight call was cut: {answer:?}");
    tokio::time::timeout(Duration::from_secs(5), server.wait()).await.expect("drained in time").expect("clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting connections after the drain");
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_are_shed_with_retry_info() {
    let shutdown = CancellationToken::new();
    let server = start(ServerBuilder::new("test", settings(1)), &shutdown).await;
    let mut first = ledger_client(&server).await;
    let mut second = ledger_client(&server).await;
    let slow = tokio::spawn(async move { first.get_balance(GetBalanceRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = second.get_balance(GetBalanceRequest::default()).await.expect_err("shed");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason_of(&status).as_deref(), Some("OVERLOADED"));
    use tonic_types::StatusExt;
    assert!(status.get_details_retry_info().and_then(|r| r.retry_delay).is_some(), "RetryInfo missing");
    assert!(slow.await.expect("join").is_ok(), "the call within the limit completes");
    shutdown.cancel();
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let shutdown = CancellationToken::new();
    let server = start(ServerBuilder::new("test", settings(64)), &shutdown).await;
    let mut client = ledger_client(&server).await;
    let mut request = Request::new(GetBalanceRequest::default());
    request.metadata_mut().insert("x-request-id", "req-123".parse().expect("value"));
    let response = client.get_balance(request).await.expect("ok");
    assert_eq!(response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-123"));
    let response = client.get_balance(GetBalanceRequest::default()).await.expect("ok");
    let generated = response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "generated request id {generated:?}");
    shutdown.cancel();
}

#[tokio::test]
async fn the_auth_layer_puts_the_principal_in_the_request_or_refuses() {
    let keys = TestKeys::generate();
    let service_keys = Arc::new(TestKeys::generate());
    let stub = StubAuth::start(vec![keys.jwk(), service_keys.jwk()], service_keys).await;
    let channel = lazy_channel(&stub.url()).expect("channel");
    let tokens = Arc::new(ServiceTokenProvider::new(channel.clone(), "svc".into(), "secret".to_owned().into(), vec![]));
    let verifier = TokenVerifier::new(
        Arc::new(GrpcKeySource::new(channel.clone())),
        Arc::new(GrpcRevocationSource::new(channel, tokens)),
        VerifierSettings::default(),
    );
    verifier.refresh_revocations().await.expect("revocations");
    let shutdown = CancellationToken::new();
    let server = start(ServerBuilder::new("test", settings(64)).authenticate_with(verifier), &shutdown).await;
    let mut client = ledger_client(&server).await;

    let mut request = Request::new(GetBalanceRequest::default());
    let token = keys.sign(&TestClaims::user("user-42", &["customer"]));
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("value"));
    let balance = client.get_balance(request).await.expect("authenticated call").into_inner().balance;
    assert_eq!(balance.map(|b| b.account_id).as_deref(), Some("user-42"));

    let mut request = Request::new(GetBalanceRequest::default());
    request.metadata_mut().insert("authorization", "Bearer garbage".parse().expect("value"));
    let status = client.get_balance(request).await.expect_err("garbage token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_INVALID"));

    let mut request = Request::new(GetBalanceRequest::default());
    request.metadata_mut().insert("authorization", "Basic dXNlcjpwYXNz".parse().expect("value"));
    let status = client.get_balance(request).await.expect_err("wrong scheme");
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_INVALID"));

    let status = client
        .get_balance(GetBalanceRequest { account_id: "who-am-i".into(), ..Default::default() })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason_of(&status).as_deref(), Some("TOKEN_MISSING"));
    shutdown.cancel();
}
