//! The front door (issue 13): the same `CreateTransfer` / `GetBalance` load
//! sent straight to the ledger, through nginx's `grpc_pass` (a plain HTTP/2
//! proxy, one worker, access log off) and through the gateway (edge auth,
//! revocation and the rate limits on, Redis configured), in alternated
//! rounds so a machine whose speed drifts favours none of them. CPU per call
//! is read from `/proc`: nginx's master and worker, and the gateway with the
//! Redis server it consults.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use folio_testkit::probe::SpawnedBinary;
use tonic::transport::Channel;

use crate::{
    cpu,
    load::{Run, balances, channels, per_rpc, wait_until_ready},
};

/// Alternated rounds per comparison (the one-caller medians need at least 5).
pub const ROUNDS: u32 = 5;

/// What every phase shares.
pub struct Bench {
    pub token: String,
    pub ids: Arc<Vec<String>>,
    pub callers: usize,
    pub phase: Duration,
}

/// One way to reach the ledger, and the processes whose CPU it costs.
pub struct Target {
    pub channels: Vec<Channel>,
    pub pids: Vec<u32>,
}

#[derive(Clone, Copy)]
pub enum Rpc {
    CreateTransfer,
    GetBalance,
}

impl Rpc {
    pub fn name(self) -> &'static str {
        match self {
            Rpc::CreateTransfer => "CreateTransfer",
            Rpc::GetBalance => "GetBalance",
        }
    }

    pub async fn drive(self, bench: &Bench, target: &Target, callers: usize, phase: Duration) -> anyhow::Result<Run> {
        let (channels, token, ids, pids) = (&target.channels, &bench.token, bench.ids.clone(), &target.pids);
        match self {
            Rpc::CreateTransfer => per_rpc(channels, token, callers, phase, ids, false, pids).await,
            Rpc::GetBalance => balances(channels, token, callers, phase, ids, pids).await,
        }
    }
}

/// Runs the comparison and prints it.
pub async fn run(
    bench: &Bench,
    direct: Target,
    gateway: &SpawnedBinary,
    ledger_addr: &str,
    nginx_binary: &str,
) -> anyhow::Result<()> {
    let nginx = Nginx::start(nginx_binary, ledger_addr, None)?;
    let redis = cpu::find_process("redis-server", ":6379");
    if redis.is_empty() {
        println!("# front door: no redis-server on :6379 found; the gateway's CPU excludes Redis");
    }
    let gateway_pid = gateway.child.id().unwrap_or_default();
    let nginx_channels = channels(&nginx.addr)?;
    // Ready means its worker is forked, so the worker is counted.
    wait_until_ready(&nginx_channels[0], &bench.token).await?;
    let targets = [
        direct,
        Target { channels: nginx_channels, pids: cpu::with_children(nginx.pid()) },
        Target {
            channels: channels(&gateway.grpc_addr.to_string())?,
            pids: [gateway_pid].into_iter().chain(redis.iter().copied()).collect(),
        },
    ];
    wait_until_ready(&targets[2].channels[0], &bench.token).await?;
    println!(
        "# front door: nginx {} pids={:?}, gateway pid={gateway_pid} + redis-server pids={redis:?}; {} callers, \
         {ROUNDS} alternated rounds",
        nginx.version(),
        targets[1].pids,
        bench.callers
    );
    for rpc in [Rpc::CreateTransfer, Rpc::GetBalance] {
        loaded(bench, &targets, rpc).await?;
    }
    for rpc in [Rpc::CreateTransfer, Rpc::GetBalance] {
        one_caller(bench, &targets, rpc).await?;
    }
    println!("gateway peak_rss_mib={:.1} (target <= 64)", cpu::status_mib(gateway_pid, "VmHWM"));
    Ok(())
}

/// Throughput and CPU per call at `bench.callers`, rounds alternated.
async fn loaded(bench: &Bench, targets: &[Target; 3], rpc: Rpc) -> anyhow::Result<()> {
    let runs = crate::tls_cost::alternated(bench, targets, rpc).await?;
    let [direct, nginx, gateway] = &runs;
    let rate = |run: &Run| run.transfers_per_sec;
    let share = |run: &Run| if rate(direct) > 0.0 { rate(run) / rate(direct) } else { 0.0 };
    let per_call = |run: &Run| run.cpu.service_us_per(run.done as f64);
    println!(
        "front_door {:<14} calls/s direct={:.0} nginx={:.0} ({:.2}) gateway={:.0} ({:.2}) gateway/nginx={:.2} \
         target>=0.9 failures={}/{}/{}",
        rpc.name(),
        rate(direct),
        rate(nginx),
        share(nginx),
        rate(gateway),
        share(gateway),
        if rate(nginx) > 0.0 { rate(gateway) / rate(nginx) } else { 0.0 },
        direct.failures,
        nginx.failures,
        gateway.failures,
    );
    for (name, run) in [("direct", direct), ("nginx", nginx), ("gateway", gateway)] {
        if let Some(error) = &run.first_failure {
            println!("# front door {} via {name}: first failure: {error}", rpc.name());
        }
    }
    println!(
        "front_door {:<14} proxy_cpu_us_per_call nginx={:.0} gateway+redis={:.0} target gateway<=nginx; \
         p50_ms direct={:.2} nginx={:.2} gateway={:.2}",
        rpc.name(),
        per_call(nginx),
        per_call(gateway),
        direct.latencies.percentile_ms(50.0),
        nginx.latencies.percentile_ms(50.0),
        gateway.latencies.percentile_ms(50.0),
    );
    Ok(())
}

/// Latency each proxy adds for one caller: per round the p50 through it less
/// the direct p50 of the same round; the median over the rounds.
async fn one_caller(bench: &Bench, targets: &[Target; 3], rpc: Rpc) -> anyhow::Result<()> {
    let slice = (bench.phase / ROUNDS).min(Duration::from_secs(2));
    let (mut nginx_added, mut gateway_added) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let mut p50 = [0.0; 3];
        for (p50, target) in p50.iter_mut().zip(targets) {
            *p50 = rpc.drive(bench, target, 1, slice).await?.latencies.percentile_ms(50.0);
        }
        nginx_added.push(p50[1] - p50[0]);
        gateway_added.push(p50[2] - p50[0]);
    }
    let (nginx, gateway) = (median(nginx_added), median(gateway_added));
    println!(
        "front_door {:<14} one_caller added_p50_ms nginx={nginx:.3} gateway={gateway:.3} target gateway<=nginx+0.05 \
         ({})",
        rpc.name(),
        if gateway <= nginx + 0.05 { "met" } else { "missed" }
    );
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// nginx as a plain gRPC proxy in front of the ledger, configured in a
/// directory of its own and stopped when dropped.
pub struct Nginx {
    child: Child,
    pub addr: String,
    binary: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on a free port; with `tls` (certificate, key) its port speaks TLS.
    pub fn start(binary: &str, ledger_addr: &str, tls: Option<(&Path, &Path)>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, ledger_addr, tls))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| anyhow::anyhow!("starting {binary}: {error} (scripts/bench.sh installs nginx)"))?;
        Ok(Self { child, addr: format!("127.0.0.1:{port}"), binary: binary.to_owned(), _dir: dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn version(&self) -> String {
        Command::new(&self.binary)
            .arg("-v")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("nginx version: ").to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would orphan them).
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// One worker, no access log, keep-alive connections to the ledger: nginx
/// as a platform engineer would put it in front of a gRPC service.
fn config(dir: &Path, port: u16, ledger_addr: &str, tls: Option<(&Path, &Path)>) -> String {
    let path = |name: &str| -> PathBuf { dir.join(name) };
    // TLS 1.3 only, as the gateway's rustls negotiates with our clients.
    let (listen, certificate) = match tls {
        None => ("http2", String::new()),
        Some((cert, key)) => (
            "ssl http2",
            format!(
                "ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.3;",
                cert.display(),
                key.display()
            ),
        ),
    };
    format!(
        "daemon off;
worker_processes 1;
pid {pid};
error_log {error} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp};
    # No connection is closed after a number of calls: a GOAWAY under load
    # fails in-flight calls, which would count against nginx.
    keepalive_requests 4294967295;
    upstream ledger {{
        server {ledger_addr};
        keepalive 64;
        keepalive_requests 4294967295;
    }}
    server {{
        listen 127.0.0.1:{port} {listen};
        {certificate}
        http2_max_concurrent_streams 1000;
        location / {{
            grpc_pass grpc://ledger;
        }}
    }}
}}
",
        pid = path("nginx.pid").display(),
        error = path("error.log").display(),
        tmp = path("body").display(),
    )
}
