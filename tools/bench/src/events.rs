//! What ledger events cost (issue 16, DESIGN "Ledger events"): the same
//! one-per-RPC and batch-100 loads against the ledger as built, which writes
//! an event in every change's transaction, and against a build that writes
//! none (the `bench-without-events` feature, which only `make bench` builds),
//! in alternated rounds on fresh databases; then with events and one
//! consumer streaming every event from the start of the load, whose lag is
//! how long after the load ends it has seen the last event written.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use folio_proto::ledger::{StreamEventsRequest, ledger_service_client::LedgerServiceClient};
use folio_testkit::{TestDatabase, probe::SpawnedBinary};
use sea_orm::ConnectionTrait;

use crate::{
    load::{Run, admin_token, batches, bearer, channels, open_accounts, per_rpc, wait_until_ready},
    processes::{InProcessAuth, ledger_env},
};

/// What to run.
pub struct Options {
    pub phase: Duration,
    pub callers: usize,
    pub accounts: usize,
    /// The ledger as built.
    pub binary: String,
    /// The same ledger built without events.
    pub without_events_binary: String,
    /// Rounds of (without, with).
    pub rounds: usize,
}

/// The figures of one configuration, merged over the rounds.
struct Figures {
    per_rpc: Run,
    batched: Run,
    lag: Option<Duration>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let (mut without, mut with, mut consumed) = (None::<Figures>, None::<Figures>, None::<Figures>);
    for _ in 0..options.rounds.max(1) {
        let off = measure(&options, &options.without_events_binary, false).await?;
        without = Some(merge(without, off));
        let on = measure(&options, &options.binary, false).await?;
        with = Some(merge(with, on));
        let read = measure(&options, &options.binary, true).await?;
        consumed = Some(merge(consumed, read));
    }
    let (Some(without), Some(with), Some(consumed)) = (without, with, consumed) else { return Ok(()) };
    for (name, off, on, read) in [
        ("one-per-rpc", &without.per_rpc, &with.per_rpc, &consumed.per_rpc),
        ("batch-100 x1", &without.batched, &with.batched, &consumed.batched),
    ] {
        let ratio =
            |run: &Run| if off.transfers_per_sec > 0.0 { run.transfers_per_sec / off.transfers_per_sec } else { 0.0 };
        println!(
            "events {name:<13} without={:.0}/s with={:.0}/s ratio={:.3} target>=0.90 with_a_consumer={:.0}/s ratio={:.3} failures={}",
            off.transfers_per_sec,
            on.transfers_per_sec,
            ratio(on),
            read.transfers_per_sec,
            ratio(read),
            off.failures + on.failures + read.failures
        );
        println!("events {name:<13} without:         {}", off.cpu.per_unit_us(off.done as f64));
        println!("events {name:<13} with:            {}", on.cpu.per_unit_us(on.done as f64));
        println!("events {name:<13} with a consumer: {}", read.cpu.per_unit_us(read.done as f64));
    }
    match consumed.lag {
        Some(lag) => println!("events consumer lag_at_end_ms={:.0} target<1000", lag.as_secs_f64() * 1000.0),
        None => println!("events consumer did not catch up within 30 s (target: lag < 1 s)"),
    }
    Ok(())
}

fn merge(earlier: Option<Figures>, next: Figures) -> Figures {
    match earlier {
        None => next,
        Some(earlier) => Figures {
            per_rpc: earlier.per_rpc.merge(next.per_rpc),
            batched: earlier.batched.merge(next.batched),
            lag: earlier.lag.zip(next.lag).map(|(a, b)| a.max(b)),
        },
    }
}

async fn measure(options: &Options, binary: &str, consume: bool) -> anyhow::Result<Figures> {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir()?;
    let auth = InProcessAuth::start(&db.url, dir.path(), &[]).await?;
    let ledger = SpawnedBinary::start(binary, dir.path(), &ledger_env(&db.url, &auth.addr)).await;
    let pid = ledger.child.id().unwrap_or_default();
    let token = admin_token(&auth.addr).await?;
    let channels = channels(&ledger.grpc_addr.to_string())?;
    wait_until_ready(&channels[0], &token).await?;
    let ids = Arc::new(open_accounts(&channels, &token, options.accounts).await?);

    let received = Arc::new(AtomicU64::new(0));
    let consumer = if consume {
        let request = StreamEventsRequest::default();
        let mut client = LedgerServiceClient::new(channels[0].clone());
        let mut stream = client.stream_events(bearer(request, &token)?).await?.into_inner();
        let received = received.clone();
        Some(tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                if message.event.is_some() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }))
    } else {
        None
    };
    let per_rpc = per_rpc(&channels, &token, options.callers, options.phase, ids.clone(), false, &[pid]).await?;
    let batched = batches(&channels, &token, 1, options.phase, ids.clone(), &[pid]).await?;
    let ended = Instant::now();
    let lag = match consumer {
        None => None,
        Some(task) => {
            let written = events_written(&db.url).await?;
            let mut caught_up = None;
            while ended.elapsed() < Duration::from_secs(30) {
                if received.load(Ordering::Relaxed) >= written {
                    caught_up = Some(ended.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            task.abort();
            caught_up
        }
    };
    drop((ledger, auth));
    Ok(Figures { per_rpc, batched, lag })
}

/// Transfer events in the log (every change of the load wrote one).
async fn events_written(url: &str) -> anyhow::Result<u64> {
    let db = folio_storage::db::connect_url(url, "ledger", 1).await?;
    let sql = "SELECT COUNT(*) AS n FROM events WHERE transfer_id IS NOT NULL";
    let rows = db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await?;
    let count: i64 = rows.first().map(|row| row.try_get("", "n")).transpose()?.unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}
