//! Reads from a hot standby (issue 15, DESIGN §6): what a replica takes off
//! the primary, for the README's capacity table.
//!
//! A scratch primary with a streaming standby of its own (both `fsync=off`:
//! this measures reads, not commits; transfers per primary come from the
//! ledger suite on the machine's durable server), and two ledger processes on
//! one database: one reads from the primary only, the other has
//! `FOLIO__DATABASE__READ_URL`. The same read load (GetBalance and a
//! 20-entry statement page, alternately) goes to each in alternated rounds,
//! then reads beside writes. CPU per read in each PostgreSQL server is what
//! sizes a replica: one core of it serves 1e6 / that many reads per second.

use std::{sync::Arc, time::Duration};

use folio_proto::ledger::{GetBalanceRequest, ListTransfersRequest};
use folio_testkit::{ReplicatedPostgres, ScratchPostgres, probe::SpawnedBinary};
use tonic::transport::Channel;

use crate::{
    cpu,
    load::{Run, admin_token, bearer, channels, drive, open_accounts, per_rpc, wait_until_ready},
    processes::{InProcessAuth, ledger_env},
};

/// One ledger process under test and where its reads go.
struct Ledger {
    name: &'static str,
    process: SpawnedBinary,
    channels: Vec<Channel>,
}

impl Ledger {
    fn pid(&self) -> u32 {
        self.process.child.id().unwrap_or_default()
    }

    /// `folio_db_reads_total` by source, from its metrics.
    async fn reads_by_source(&self) -> (f64, f64) {
        let (_, metrics) = folio_testkit::probe::http_get(self.process.admin_addr, "/metrics").await;
        let sum = |source: &str| -> f64 {
            let prefix = "folio_db_reads_total{";
            metrics
                .lines()
                .filter(|l| l.starts_with(prefix) && l.contains(&format!("source=\"{source}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        (sum("primary"), sum("replica"))
    }
}

/// CPU seconds so far of the ledger and of each PostgreSQL server.
struct Cpu {
    ledger: f64,
    primary: f64,
    standby: f64,
}

impl Cpu {
    fn now(ledger: u32, primary: &ScratchPostgres, standby: &ScratchPostgres) -> Self {
        let server = |pg: &ScratchPostgres| -> f64 {
            pg.postmaster_pid()
                .map(|pid| cpu::with_children(pid).into_iter().map(cpu::process_seconds).sum())
                .unwrap_or(0.0)
        };
        Self { ledger: cpu::process_seconds(ledger), primary: server(primary), standby: server(standby) }
    }
}

pub async fn run(phase: Duration, callers: usize, accounts: usize, ledger_binary: &str) -> anyhow::Result<()> {
    let postgres = ReplicatedPostgres::start().await;
    let (db, read_url) = postgres.database().await;
    let dir = tempfile::tempdir()?;
    let auth = InProcessAuth::start(&db.url, dir.path(), &[("FOLIO__DATABASE__MAX_CONNECTIONS", "4")]).await?;
    let auth_addr = auth.addr.clone();
    let token = admin_token(&auth_addr).await?;

    let base = ledger_env(&db.url, &auth_addr);
    let mut replicated = base.to_vec();
    replicated.push(("FOLIO__DATABASE__READ_URL", read_url.as_str()));
    let mut ledgers = Vec::new();
    for (name, env) in [("primary-only", base.to_vec()), ("with-replica", replicated)] {
        let process = SpawnedBinary::start(ledger_binary, dir.path(), &env).await;
        let channels = channels(&process.grpc_addr.to_string())?;
        wait_until_ready(&channels[0], &token).await?;
        ledgers.push(Ledger { name, process, channels });
    }
    let ids = Arc::new(open_accounts(&ledgers[0].channels, &token, accounts).await?);
    // History for the statements: about ten entries per account.
    let mut history = 0;
    while history < accounts as u64 * 5 {
        let run = per_rpc(&ledgers[0].channels, &token, callers, phase / 2, ids.clone(), false, &[]).await?;
        anyhow::ensure!(run.failures == 0, "writing history: {:?}", run.first_failure);
        history += run.done;
    }
    println!(
        "# replicas: scratch primary + streaming standby (fsync=off), accounts={accounts} transfers={history} \
         callers={callers} seconds={}",
        phase.as_secs()
    );

    let (primary, standby) = (postgres.primary(), &postgres.standby);
    for round in 1..=2 {
        for ledger in &ledgers {
            let before = (Cpu::now(ledger.pid(), primary, standby), ledger.reads_by_source().await);
            let run = reads(&ledger.channels, &token, callers, phase, ids.clone()).await?;
            let after = (Cpu::now(ledger.pid(), primary, standby), ledger.reads_by_source().await);
            let on_replica = (after.1.1 - before.1.1) / ((after.1.0 + after.1.1) - (before.1.0 + before.1.1)).max(1.0);
            let per = |a: f64, b: f64| (a - b) * 1e6 / (run.done as f64).max(1.0);
            println!(
                "replica reads {:<13} round={round} reads/s={:.0} p50_ms={:.2} p99_ms={:.2} failures={} \
                 served_by_replica={:.0}% cpu_us_per_read ledger={:.0} primary_pg={:.0} standby_pg={:.0}",
                ledger.name,
                run.transfers_per_sec,
                run.latencies.percentile_ms(50.0),
                run.latencies.percentile_ms(99.0),
                run.failures,
                on_replica * 100.0,
                per(after.0.ledger, before.0.ledger),
                per(after.0.primary, before.0.primary),
                per(after.0.standby, before.0.standby),
            );
        }
    }
    // Reads beside writes: what the reads leave the primary for transfers.
    for ledger in &ledgers {
        let writers = per_rpc(&ledger.channels, &token, callers / 4, phase, ids.clone(), false, &[]);
        let readers = reads(&ledger.channels, &token, callers, phase, ids.clone());
        let (writes, reads) = tokio::try_join!(writers, readers)?;
        println!(
            "replica mixed {:<13} transfers/s={:.0} transfer_p99_ms={:.2} reads/s={:.0} read_p99_ms={:.2} failures={}",
            ledger.name,
            writes.transfers_per_sec,
            writes.latencies.percentile_ms(99.0),
            reads.transfers_per_sec,
            reads.latencies.percentile_ms(99.0),
            writes.failures + reads.failures,
        );
    }
    drop(auth);
    Ok(())
}

/// GetBalance and a 20-entry statement page, alternately, of random accounts.
async fn reads(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    ids: Arc<Vec<String>>,
) -> anyhow::Result<Run> {
    drive(channels, token, callers, phase, &[], move |mut client, token| {
        let ids = ids.clone();
        Box::pin(async move {
            let n = rand::random::<u64>();
            let account_id = ids[n as usize % ids.len()].clone();
            if n.is_multiple_of(2) {
                client.get_balance(bearer(GetBalanceRequest { account_id, as_of: None }, &token)?).await?;
            } else {
                let request = ListTransfersRequest { account_id, page_size: 20, ..Default::default() };
                client.list_transfers(bearer(request, &token)?).await?;
            }
            Ok(1)
        })
    })
    .await
}
