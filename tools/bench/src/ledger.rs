//! The ledger benchmark (issue 4): one transfer per RPC at 64 callers,
//! CreateTransfers of 100, and a hot account, against the ledger binary as
//! its own process on PostgreSQL with durable commits; ratios to the
//! PostgreSQL ceiling measured in the same run.

use std::{sync::Arc, time::Duration};

use folio_testkit::{TestDatabase, probe::SpawnedBinary};
use tonic::transport::Channel;

use crate::{
    cpu, front_door,
    load::{Run, admin_token, batches, channels, open_accounts, per_rpc, wait_until_ready},
    processes::{InProcessAuth, gateway_env, ledger_env},
};

/// The ceiling figures measured just before, for the ratios.
pub struct Ceiling {
    pub single: f64,
    pub batched: f64,
}

/// What to run and against what.
pub struct Options {
    pub phase: Duration,
    pub callers: usize,
    pub accounts: usize,
    pub ceiling: Ceiling,
    pub ledger_binary: String,
    pub gateway_binary: String,
    pub nginx_binary: String,
    pub only_ledger: bool,
    pub front_door_only: bool,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        phase,
        callers,
        accounts,
        ceiling,
        ledger_binary,
        gateway_binary,
        nginx_binary,
        only_ledger,
        front_door_only,
    } = options;
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let auth = InProcessAuth::start(&db.url, dir.path(), &[]).await?;
    let auth_addr = auth.addr.clone();
    let ledger = SpawnedBinary::start(&ledger_binary, dir.path(), &ledger_env(&db.url, &auth_addr)).await;
    let pid = ledger.child.id().unwrap_or_default();
    let token = admin_token(&auth_addr).await?;
    let channels = channels(&ledger.grpc_addr.to_string())?;
    wait_until_ready(&channels[0], &token).await?;

    let ids = open_accounts(&channels, &token, accounts).await?;
    let ids = Arc::new(ids);
    println!("# ledger pid={pid} accounts={accounts} callers={callers} seconds={}", phase.as_secs());

    if !front_door_only {
        transfer_phases(&channels, &token, callers, phase, ids.clone(), &ceiling, pid).await?;
    }
    if only_ledger {
        drop(auth);
        return Ok(());
    }
    let ledger_addr = ledger.grpc_addr.to_string();
    let gateway = SpawnedBinary::start(&gateway_binary, dir.path(), &gateway_env(&auth_addr, &ledger_addr)).await;
    let bench = front_door::Bench { token: token.clone(), ids: ids.clone(), callers, phase };
    let direct = front_door::Target { channels: channels.clone(), pids: vec![pid] };
    front_door::run(&bench, direct, &gateway, &ledger_addr, &nginx_binary).await?;
    crate::tls_cost::run(&bench, &gateway, &gateway_binary, dir.path(), &auth_addr, &ledger_addr, &nginx_binary)
        .await?;
    let (_, metrics) = folio_testkit::probe::http_get(ledger.admin_addr, "/metrics").await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let (tx_sum, tx_count) = (
        value("folio_db_transaction_seconds_sum{operation=\"ledger_write_batch\",outcome=\"commit\"}"),
        value("folio_db_transaction_seconds_count{operation=\"ledger_write_batch\",outcome=\"commit\"}"),
    );
    let (ops_sum, ops_count) = (value("folio_ledger_batch_ops_sum"), value("folio_ledger_batch_ops_count"));
    println!(
        "ledger writer batches={tx_count} mean_ops_per_batch={:.1} mean_batch_ms={:.2}",
        ops_sum / ops_count.max(1.0),
        tx_sum * 1000.0 / tx_count.max(1.0)
    );
    drop(auth);
    Ok(())
}

/// One transfer per RPC, batches of 100 (one and four callers), a hot account.
async fn transfer_phases(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    ids: Arc<Vec<String>>,
    ceiling: &Ceiling,
    pid: u32,
) -> anyhow::Result<()> {
    let uniform = per_rpc(channels, token, callers, phase, ids.clone(), false, &[pid]).await?;
    report("ledger one-per-rpc", &uniform, ceiling.single, "ceiling single", 1.5);
    let batched = batches(channels, token, 1, phase, ids.clone(), &[pid]).await?;
    report("ledger batch-100 x1", &batched, ceiling.batched, "ceiling batched", 0.5);
    let batched4 = batches(channels, token, 4, phase, ids.clone(), &[pid]).await?;
    report("ledger batch-100 x4", &batched4, ceiling.batched, "ceiling batched", 0.5);
    let hot = per_rpc(channels, token, callers, phase, ids.clone(), true, &[pid]).await?;
    report("ledger hot-account", &hot, uniform.transfers_per_sec, "uniform", 0.8);
    println!("ledger peak_rss_mib={:.1}", cpu::status_mib(pid, "VmHWM"));
    Ok(())
}

fn report(name: &str, run: &Run, base: f64, base_name: &str, target: f64) {
    let ratio = if base > 0.0 { run.transfers_per_sec / base } else { 0.0 };
    println!(
        "{name:<22} transfers/s={:.0} p50_ms={:.2} p99_ms={:.2} failures={} ratio_to_{}={ratio:.2} target>={target}",
        run.transfers_per_sec,
        run.latencies.percentile_ms(50.0),
        run.latencies.percentile_ms(99.0),
        run.failures,
        base_name.replace(' ', "_"),
    );
    println!("{:<22} {}", "", run.cpu.per_unit_us(run.done as f64));
}
