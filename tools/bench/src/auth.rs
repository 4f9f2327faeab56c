//! The auth benchmark (issue 3): the argon2 cost bounds logins per second;
//! the hashing cap must keep other RPCs fast while logins pile up.

use std::{
    sync::Arc,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use folio_proto::auth::{GetCurrentUserRequest, LoginRequest, RegisterRequest, auth_service_client::AuthServiceClient};
use folio_testkit::{TestDatabase, unique};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::stats::Latencies;

const PASSWORD: &str = "Benchmark passphrase 2026";

pub async fn run(phase: Duration, concurrency: usize) -> anyhow::Result<()> {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let env = [
        ("FOLIO__SERVER__LISTEN_ADDR", "127.0.0.1:0"),
        ("FOLIO__SERVER__ADMIN_ADDR", "127.0.0.1:0"),
        ("FOLIO__DATABASE__URL", db.url.as_str()),
        ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", folio_testkit::KEY_ENCRYPTION_KEY),
        ("FOLIO__TELEMETRY__LOG_FILTER", "warn"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = folio_runtime::config::load_from("auth", &dir.path().join("none"), env)?;
    let shutdown = CancellationToken::new();
    let server = folio_auth::serve(config, shutdown.clone()).await?;
    let channel = folio_proto::client::lazy_channel(&server.grpc_addr.to_string())?;

    let emails: Vec<String> = (0..concurrency).map(|_| format!("{}@bench.test", unique("u"))).collect();
    for email in &emails {
        let request = RegisterRequest { email: email.clone(), password: PASSWORD.into(), display_name: "Bench".into() };
        AuthServiceClient::new(channel.clone()).register(request).await?;
    }
    let probe_token = login(&channel, &emails[0]).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let login_latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let workers: Vec<_> = emails
        .iter()
        .map(|email| {
            let (channel, email, stop, logins, latencies) =
                (channel.clone(), email.clone(), stop.clone(), logins.clone(), login_latencies.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if login(&channel, &email).await.is_ok() {
                        logins.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut samples) = latencies.lock() {
                            samples.push(started.elapsed());
                        }
                    }
                }
            })
        })
        .collect();

    // Let the login flood build up, then measure both at once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let counted_from = logins.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut reads = Vec::new();
    let mut client = AuthServiceClient::new(channel.clone());
    while started.elapsed() < phase {
        let mut request = tonic::Request::new(GetCurrentUserRequest {});
        request.metadata_mut().insert("authorization", format!("Bearer {probe_token}").parse()?);
        let call = Instant::now();
        client.get_current_user(request).await?;
        reads.push(call.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let logins_done = logins.load(Ordering::Relaxed) - counted_from;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let reads = Latencies::new(reads);
    let login_latencies = Latencies::new(login_latencies.lock().map(|s| s.clone()).unwrap_or_default());
    println!(
        "auth logins            concurrency={concurrency} argon2id=m19456,t2,p1 logins/s={:.1} p50_ms={:.1} p99_ms={:.1}",
        logins_done as f64 / elapsed,
        login_latencies.percentile_ms(50.0),
        login_latencies.percentile_ms(99.0)
    );
    println!(
        "auth get_current_user  during_logins={concurrency} samples={} p50_ms={:.2} p99_ms={:.2} target_p99_ms=50",
        reads.len(),
        reads.percentile_ms(50.0),
        reads.percentile_ms(99.0)
    );
    shutdown.cancel();
    Ok(())
}

async fn login(channel: &Channel, email: &str) -> anyhow::Result<String> {
    let request = LoginRequest { email: email.to_owned(), password: PASSWORD.into() };
    Ok(AuthServiceClient::new(channel.clone()).login(request).await?.into_inner().access_token)
}
