//! Looking at a running service from outside: gRPC health, reflection, the
//! admin HTTP listener, and the binary as a real process.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect")
}

/// gRPC health of `service` ("" for the whole server), as the proto enum's i32.
pub async fn health(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    let response = HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(response.into_inner().status)
}

/// `SERVING` in grpc.health.v1.
pub const SERVING: i32 = 1;

/// Services listed by reflection v1.
pub async fn reflected_services_v1(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1")
        .into_inner();
    match responses.next().await {
        Some(Ok(response)) => match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
            other => panic!("unexpected reflection answer {other:?}"),
        },
        other => panic!("no reflection answer: {other:?}"),
    }
}

/// Services listed by reflection v1alpha.
pub async fn reflected_services_v1alpha(channel: Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    match responses.next().await {
        Some(Ok(response)) => match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
            other => panic!("unexpected reflection answer {other:?}"),
        },
        other => panic!("no reflection answer: {other:?}"),
    }
}

/// A plain HTTP/1.0 GET: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect admin");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// A service binary running as a child process on port 0.
pub struct SpawnedBinary {
    /// The process.
    pub child: tokio::process::Child,
    /// Its gRPC address, read from its "serving" log line.
    pub grpc_addr: SocketAddr,
    /// Its admin address.
    pub admin_addr: SocketAddr,
    /// Lines it logged after start-up.
    pub logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl SpawnedBinary {
    /// Starts `binary` with JSON logs, ports 0, and `env` on top.
    pub async fn start(binary: &str, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0")
            .env("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0")
            .env("FOLIO__TELEMETRY__LOG_FORMAT", "json")
            .env("FOLIO__DATA_DIR", data_dir)
            .env("FOLIO_CONFIG_DIR", data_dir.join("no-config"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn service binary");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, mut logs) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let serving = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = logs.recv().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && value["message"] == "serving"
                {
                    return value;
                }
            }
            panic!("the service exited before serving");
        })
        .await
        .expect("the service did not start within 30 s");
        let address = |key: &str| serving[key].as_str().and_then(|s| s.parse().ok()).expect("address in log");
        Self { grpc_addr: address("grpc_addr"), admin_addr: address("admin_addr"), child, logs }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM failed");
    }
}

/// Starts `binary` on port 0 and checks what every Folio binary must do:
/// health SERVING for the server and each of `services`, reflection (v1 and
/// v1alpha) listing exactly those plus health, Prometheus text at
/// `/metrics`, `/healthz` OK, and exit status 0 after SIGTERM.
pub async fn check_binary(binary: &str, services: &[&str]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut spawned = SpawnedBinary::start(binary, dir.path(), &[]).await;
    let grpc = channel(spawned.grpc_addr).await;
    assert_eq!(health(grpc.clone(), "").await.expect("health"), SERVING);
    for service in services {
        assert_eq!(health(grpc.clone(), service).await.expect("health"), SERVING, "{service}");
    }
    let mut expected: Vec<String> =
        services.iter().map(|s| (*s).to_owned()).chain(["grpc.health.v1.Health".to_owned()]).collect();
    expected.sort();
    let mut listed = reflected_services_v1(grpc.clone()).await;
    listed.sort();
    assert_eq!(listed, expected, "reflection v1");
    let mut listed = reflected_services_v1alpha(grpc.clone()).await;
    listed.sort();
    assert_eq!(listed, expected, "reflection v1alpha");

    let (status, body) = http_get(spawned.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE folio_grpc_requests_total counter"), "metrics text:\n{body}");
    assert!(body.contains("grpc.health.v1.Health/Check"), "metrics text:\n{body}");
    let (status, _) = http_get(spawned.admin_addr, "/healthz").await;
    assert_eq!(status, 200);

    spawned.terminate();
    let exit = tokio::time::timeout(Duration::from_secs(15), spawned.child.wait())
        .await
        .expect("the service did not exit within 15 s of SIGTERM")
        .expect("wait");
    assert!(exit.success(), "exit status after SIGTERM: {exit:?}");
}
