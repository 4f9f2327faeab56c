//! The soak (issue 17): steady CreateTransfer load through the gateway for a
//! while, every service on the call path as its own process (auth, ledger,
//! gateway; on PostgreSQL and Redis), RSS sampled every 10 s. Memory that
//! grows with traffic shows as a slope: MiB per million calls after the
//! first minute, which must stay at most 1; and after the load stops, RSS
//! must come back to within 10% of its warmed-up level.

use std::{sync::Arc, time::Duration};

use folio_testkit::{TestDatabase, probe::SpawnedBinary};

use crate::{
    cpu,
    load::{self, Run, per_rpc, wait_until_ready},
    processes::{self, REDIS_URL},
};

/// How often RSS is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples before this much load are warm-up (pools, caches, allocator arenas).
const WARM_UP: Duration = Duration::from_secs(60);
/// How long the services rest after the load before RSS is read again.
const REST: Duration = Duration::from_secs(30);
/// Targets of issue 17.
const MAX_SLOPE_MIB_PER_MILLION: f64 = 1.0;
const MAX_RETURN_ABOVE_WARM: f64 = 0.10;

/// Where the soak's services live.
pub struct Binaries {
    pub auth: String,
    pub ledger: String,
    pub gateway: String,
}

struct Service {
    name: &'static str,
    process: SpawnedBinary,
    /// (calls so far, RSS in MiB) every [`SAMPLE_EVERY`].
    samples: Vec<(u64, f64)>,
}

impl Service {
    fn pid(&self) -> u32 {
        self.process.child.id().unwrap_or_default()
    }

    fn sample(&mut self, calls: u64) {
        self.samples.push((calls, rss_mib(self.pid())));
    }
}

/// Runs the soak for `duration` with `callers` callers and prints the slopes.
pub async fn run(duration: Duration, callers: usize, binaries: Binaries) -> anyhow::Result<()> {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let accounts = processes::service_accounts();
    let auth = SpawnedBinary::start(
        &binaries.auth,
        dir.path(),
        &[
            ("FOLIO__DATABASE__URL", db.url.as_str()),
            ("FOLIO__REDIS__URL", REDIS_URL),
            ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", folio_testkit::KEY_ENCRYPTION_KEY),
            ("FOLIO__AUTH__SERVICE_ACCOUNTS", accounts.as_str()),
            // The "serving" line tells the bench the port.
            ("FOLIO__TELEMETRY__LOG_FILTER", "warn,folio_runtime::server=info"),
        ],
    )
    .await;
    let auth_addr = auth.grpc_addr.to_string();
    let ledger_process =
        SpawnedBinary::start(&binaries.ledger, dir.path(), &processes::ledger_env(&db.url, &auth_addr)).await;
    let ledger_addr = ledger_process.grpc_addr.to_string();
    let gateway =
        SpawnedBinary::start(&binaries.gateway, dir.path(), &processes::gateway_env(&auth_addr, &ledger_addr)).await;
    let token = load::admin_token(&auth_addr).await?;
    let direct = load::channels(&ledger_addr)?;
    wait_until_ready(&direct[0], &token).await?;
    let ids = Arc::new(load::open_accounts(&direct, &token, 10_000).await?);
    let through = load::channels(&gateway.grpc_addr.to_string())?;
    wait_until_ready(&through[0], &token).await?;

    let mut services = [("auth", auth), ("ledger", ledger_process), ("gateway", gateway)]
        .map(|(name, process)| Service { name, process, samples: Vec::new() });
    let pids: Vec<u32> = services.iter().map(Service::pid).collect();
    println!(
        "# soak: {} s of CreateTransfer through the gateway, {callers} callers; RSS every {} s; pids auth={} ledger={} \
         gateway={}",
        duration.as_secs(),
        SAMPLE_EVERY.as_secs(),
        pids[0],
        pids[1],
        pids[2]
    );
    let mut total = Run::empty();
    services.iter_mut().for_each(|s| s.sample(0));
    let mut warm_calls = None;
    let mut elapsed = Duration::ZERO;
    while elapsed < duration {
        let slice = SAMPLE_EVERY.min(duration - elapsed);
        let run = per_rpc(&through, &token, callers, slice, ids.clone(), false, &pids).await?;
        total = total.merge(run);
        elapsed += slice;
        services.iter_mut().for_each(|s| s.sample(total.done));
        if elapsed >= WARM_UP && warm_calls.is_none() {
            warm_calls = Some(total.done);
        }
        let rss: Vec<String> =
            services.iter().map(|s| format!("{}={:.1}", s.name, s.samples.last().map_or(0.0, |x| x.1))).collect();
        println!("soak t={:>4}s calls={:>9} rss_mib {}", elapsed.as_secs(), total.done, rss.join(" "));
    }
    tokio::time::sleep(REST).await;
    println!(
        "soak calls={} calls/s={:.0} non_ok={} (first: {})",
        total.done,
        total.transfers_per_sec,
        total.failures,
        total.first_failure.as_deref().unwrap_or("-")
    );
    let Some(warm_calls) = warm_calls else {
        println!("soak: {} s is not past the {} s warm-up; no slope to judge", duration.as_secs(), WARM_UP.as_secs());
        return Ok(());
    };
    let mut met = total.failures == 0;
    for service in &services {
        let warm: Vec<(u64, f64)> = service.samples.iter().copied().filter(|(calls, _)| *calls >= warm_calls).collect();
        let slope = slope_mib_per_million(&warm);
        let warm_rss = warm.first().map_or(0.0, |s| s.1);
        let rested = rss_mib(service.pid());
        let back = warm_rss > 0.0 && rested <= warm_rss * (1.0 + MAX_RETURN_ABOVE_WARM);
        let ok = slope <= MAX_SLOPE_MIB_PER_MILLION && back;
        met &= ok;
        println!(
            "soak {:<8} rss_mib start={:.1} warm={warm_rss:.1} end={:.1} rested={rested:.1} \
             slope_mib_per_million_calls={slope:.2} (targets: slope <= {MAX_SLOPE_MIB_PER_MILLION}, rested <= warm \
             + 10%) {}",
            service.name,
            service.samples.first().map_or(0.0, |s| s.1),
            service.samples.last().map_or(0.0, |s| s.1),
            if ok { "met" } else { "MISSED" }
        );
    }
    println!("soak {}", if met { "targets met" } else { "targets missed" });
    Ok(())
}

/// The least-squares slope of RSS (MiB) over calls, per million calls.
fn slope_mib_per_million(samples: &[(u64, f64)]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let xs: Vec<f64> = samples.iter().map(|(calls, _)| *calls as f64 / 1e6).collect();
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = samples.iter().map(|(_, rss)| rss).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (x, (_, y)) in xs.iter().zip(samples) {
        covariance += (x - mean_x) * (y - mean_y);
        variance += (x - mean_x) * (x - mean_x);
    }
    if variance > 0.0 { covariance / variance } else { 0.0 }
}

/// The resident set of a process now, in MiB.
fn rss_mib(pid: u32) -> f64 {
    cpu::status_mib(pid, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_mib_per_million_calls() {
        let flat = [(0, 50.0), (1_000_000, 50.0), (2_000_000, 50.0)];
        assert!(slope_mib_per_million(&flat).abs() < 1e-9);
        let growing = [(0, 50.0), (1_000_000, 60.0), (2_000_000, 70.0)];
        assert!((slope_mib_per_million(&growing) - 10.0).abs() < 1e-9);
    }
}
