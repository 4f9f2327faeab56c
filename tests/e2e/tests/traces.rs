//! Traces across services: with an OTLP collector (an in-process OTLP/gRPC
//! trace receiver) configured, one CreateAccount through the gateway yields
//! spans from gateway, account and ledger sharing one trace id, each the
//! child of the one that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use folio_proto::client::lazy_channel;
use folio_proto::{
    account::{CreateAccountRequest, account_service_client::AccountServiceClient},
    auth::{LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient},
};
use folio_testkit::{probe::SpawnedBinary, unique};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let dir: PathBuf = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    dir.join(name).display().to_string()
}

#[tokio::test]
async fn one_create_account_is_one_trace_across_gateway_account_and_ledger() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let dir = tempfile::tempdir().unwrap();
    let (account_secret, ledger_secret, gateway_secret) = (unique("a-"), unique("l-"), unique("g-"));
    let declared = format!(
        "folio-account:{account_secret}:ledger:admin ledger:read auth:internal;folio-ledger:{ledger_secret}:auth:internal;folio-gateway:{gateway_secret}:auth:internal"
    );
    let traced = |extra: &[(&'static str, String)]| {
        let mut env: Vec<(&'static str, String)> = vec![("FOLIO__TELEMETRY__OTLP_ENDPOINT", endpoint.clone())];
        env.extend_from_slice(extra);
        env
    };
    let start = |name: &'static str, env: Vec<(&'static str, String)>, data: PathBuf| async move {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        SpawnedBinary::start(&binary(name), &data, &pairs).await
    };
    let data = |name: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    let auth = start("folio-auth", traced(&[("FOLIO__AUTH__SERVICE_ACCOUNTS", declared)]), data("auth")).await;
    let auth_addr = auth.grpc_addr.to_string();
    let ledger = start(
        "folio-ledger",
        traced(&[
            ("FOLIO__UPSTREAMS__AUTH", auth_addr.clone()),
            ("FOLIO__SERVICE_CLIENT__ID", "folio-ledger".into()),
            ("FOLIO__SERVICE_CLIENT__SECRET", ledger_secret),
            ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2".into()),
        ]),
        data("ledger"),
    )
    .await;
    let account = start(
        "folio-account",
        traced(&[
            ("FOLIO__UPSTREAMS__AUTH", auth_addr.clone()),
            ("FOLIO__UPSTREAMS__LEDGER", ledger.grpc_addr.to_string()),
            ("FOLIO__SERVICE_CLIENT__ID", "folio-account".into()),
            ("FOLIO__SERVICE_CLIENT__SECRET", account_secret),
        ]),
        data("account"),
    )
    .await;
    let gateway = start(
        "folio-gateway",
        traced(&[
            ("FOLIO__UPSTREAMS__AUTH", auth_addr.clone()),
            ("FOLIO__UPSTREAMS__LEDGER", ledger.grpc_addr.to_string()),
            ("FOLIO__UPSTREAMS__ACCOUNT", account.grpc_addr.to_string()),
            ("FOLIO__SERVICE_CLIENT__ID", "folio-gateway".into()),
            ("FOLIO__SERVICE_CLIENT__SECRET", gateway_secret),
        ]),
        data("gateway"),
    )
    .await;

    let channel = lazy_channel(&gateway.grpc_addr.to_string()).unwrap();
    let email = format!("{}@example.com", unique("t"));
    let password = "Correct horse battery staple 9";
    let mut auth_client = AuthServiceClient::new(channel.clone());
    auth_client
        .register(RegisterRequest { email: email.clone(), password: password.into(), display_name: "T".into() })
        .await
        .unwrap();
    let token =
        auth_client.login(LoginRequest { email, password: password.into() }).await.unwrap().into_inner().access_token;
    let mut accounts = AccountServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut request = Request::new(CreateAccountRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            asset_code: "USD".into(),
            display_name: "Traced".into(),
            ..Default::default()
        });
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        match accounts.create_account(request).await {
            Ok(_) => break,
            Err(status) if status.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }

    let create = "/folio.account.v1.AccountService/CreateAccount";
    let open = "/folio.ledger.v1.LedgerAdminService/OpenAccount";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let spans = collector.spans.lock().unwrap();
            let find = |service: &str, name: &str| -> Vec<Span> {
                spans
                    .iter()
                    .filter(|(s, span)| s.contains(service) && span.name == name)
                    .map(|(_, span)| span.clone())
                    .collect()
            };
            let gateway_spans = find("folio-gateway", create);
            let account_spans = find("folio-account", create);
            let ledger_spans = find("folio-ledger", open);
            let linked = gateway_spans.iter().find_map(|g| {
                let a = account_spans.iter().find(|a| a.trace_id == g.trace_id && a.parent_span_id == g.span_id)?;
                let l = ledger_spans.iter().find(|l| l.trace_id == a.trace_id && l.parent_span_id == a.span_id)?;
                Some((g.clone(), a.clone(), l.clone()))
            });
            if let Some((g, a, l)) = linked {
                assert_eq!(g.trace_id, l.trace_id);
                assert_eq!(a.trace_id.len(), 16);
                return;
            }
            if Instant::now() >= deadline {
                for (service, span) in spans.iter() {
                    eprintln!(
                        "{service} {} trace={:02x?} span={:02x?} parent={:02x?}",
                        span.name,
                        &span.trace_id[..4],
                        &span.span_id[..4],
                        span.parent_span_id.get(..4)
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "no linked trace after 20 s: gateway {} / account {} / ledger {} spans",
                gateway_spans.len(),
                account_spans.len(),
                ledger_spans.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
