//! The load every benchmark phase drives: clients over several channels,
//! accounts to move money between, and callers sending one RPC (or batches)
//! for a while, measured as a [`Run`].

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use folio_proto::{
    auth::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient},
    ledger::{
        AccountKind, CreateTransferRequest, CreateTransfersRequest, NewTransfer, OpenAccountRequest, TransferKind,
        ledger_admin_service_client::LedgerAdminServiceClient, ledger_service_client::LedgerServiceClient,
    },
};
use tonic::transport::Channel;

use crate::{
    cpu::CpuTimes,
    processes::{ADMIN_ID, ADMIN_SECRET},
    stats::Latencies,
};

pub struct Run {
    pub transfers_per_sec: f64,
    /// Operations done and seconds taken (to merge runs).
    pub done: u64,
    elapsed: f64,
    /// CPU of the service, PostgreSQL and the load generator during the run.
    pub cpu: CpuTimes,
    pub latencies: Latencies,
    pub failures: u64,
    /// What the first failed call answered.
    pub first_failure: Option<String>,
}

impl Run {
    pub fn empty() -> Self {
        Self {
            transfers_per_sec: 0.0,
            done: 0,
            elapsed: 0.0,
            cpu: CpuTimes::default(),
            latencies: Latencies::new(vec![]),
            failures: 0,
            first_failure: None,
        }
    }

    pub fn merge(self, other: Run) -> Self {
        let (done, elapsed) = (self.done + other.done, self.elapsed + other.elapsed);
        Self {
            transfers_per_sec: if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 },
            done,
            elapsed,
            cpu: self.cpu.plus(&other.cpu),
            latencies: self.latencies.merge(other.latencies),
            failures: self.failures + other.failures,
            first_failure: self.first_failure.or(other.first_failure),
        }
    }
}

pub fn bearer<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// The service accounts auth provisions for every benchmark.
/// The benchmark's admin service token (ledger admin, write and read).
pub async fn admin_token(auth_addr: &str) -> anyhow::Result<String> {
    let request =
        IssueServiceTokenRequest { client_id: ADMIN_ID.into(), client_secret: ADMIN_SECRET.into(), scopes: vec![] };
    let mut client = AuthServiceClient::new(folio_proto::client::lazy_channel(auth_addr)?);
    Ok(client.issue_service_token(request).await?.into_inner().access_token)
}

/// Eight channels to `addr`: the load spreads over several connections, as
/// many clients' would.
pub fn channels(addr: &str) -> anyhow::Result<Vec<Channel>> {
    (0..8).map(|_| folio_proto::client::lazy_channel(addr)).collect()
}

pub async fn wait_until_ready(channel: &Channel, token: &str) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..200 {
        let mut client = LedgerServiceClient::new(channel.clone());
        match client.list_assets(bearer(Default::default(), token)?).await {
            Ok(_) => return Ok(()),
            Err(status) => last = Some(status),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the service never accepted the benchmark's token: {last:?}")
}

pub async fn open_accounts(channels: &[Channel], token: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = (0..count).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let chunks: Vec<Vec<String>> = ids.chunks(count.div_ceil(32).max(1)).map(<[String]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut client = LedgerAdminServiceClient::new(channels[i % channels.len()].clone());
            let token = token.to_owned();
            tokio::spawn(async move {
                for id in chunk {
                    let request = OpenAccountRequest {
                        account_id: id,
                        owner_id: uuid::Uuid::new_v4().to_string(),
                        asset_code: "USD".into(),
                        kind: AccountKind::Customer as i32,
                        // Customer rules are checked on every transfer; the
                        // limit only keeps the random walk from running dry.
                        overdraft_limit: 1_000_000_000_000,
                    };
                    client.open_account(bearer(request, &token)?).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(ids)
}

fn transfer(ids: &[String], hot: bool) -> NewTransfer {
    let debit = rand::random::<u64>() as usize % ids.len();
    let mut credit = if hot { 0 } else { rand::random::<u64>() as usize % ids.len() };
    if credit == debit {
        credit = (debit + 1) % ids.len();
    }
    NewTransfer {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: ids[debit].clone(),
        credit_account_id: ids[credit].clone(),
        amount: 7,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        ..Default::default()
    }
}

pub async fn per_rpc(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    ids: Arc<Vec<String>>,
    hot: bool,
    service_pids: &[u32],
) -> anyhow::Result<Run> {
    drive(channels, token, callers, phase, service_pids, move |mut client, token| {
        let ids = ids.clone();
        Box::pin(async move {
            let t = transfer(&ids, hot);
            let request = CreateTransferRequest {
                id: t.id,
                debit_account_id: t.debit_account_id,
                credit_account_id: t.credit_account_id,
                amount: t.amount,
                asset_code: t.asset_code,
                kind: t.kind,
                ..Default::default()
            };
            client.create_transfer(bearer(request, &token)?).await?;
            Ok(1)
        })
    })
    .await
}

pub async fn balances(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    ids: Arc<Vec<String>>,
    service_pids: &[u32],
) -> anyhow::Result<Run> {
    drive(channels, token, callers, phase, service_pids, move |mut client, token| {
        let ids = ids.clone();
        Box::pin(async move {
            let account_id = ids[rand::random::<u64>() as usize % ids.len()].clone();
            let request = folio_proto::ledger::GetBalanceRequest { account_id, as_of: None };
            client.get_balance(bearer(request, &token)?).await?;
            Ok(1)
        })
    })
    .await
}

pub async fn batches(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    ids: Arc<Vec<String>>,
    service_pids: &[u32],
) -> anyhow::Result<Run> {
    drive(channels, token, callers, phase, service_pids, move |mut client, token| {
        let ids = ids.clone();
        Box::pin(async move {
            let transfers: Vec<NewTransfer> = (0..100).map(|_| transfer(&ids, false)).collect();
            let request = CreateTransfersRequest { transfers, atomic: false };
            let results = client.create_transfers(bearer(request, &token)?).await?.into_inner().results;
            Ok(results.len() as u64)
        })
    })
    .await
}

pub type Call = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<u64>> + Send>>;

pub async fn drive<F>(
    channels: &[Channel],
    token: &str,
    callers: usize,
    phase: Duration,
    service_pids: &[u32],
    call: F,
) -> anyhow::Result<Run>
where
    F: Fn(LedgerServiceClient<Channel>, String) -> Call + Send + Sync + Clone + 'static,
{
    let samples = Arc::new(Mutex::new(Vec::new()));
    let cpu_before = CpuTimes::now(service_pids);
    let stop_at = Instant::now() + phase;
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let (client, token, call, samples) = (
                LedgerServiceClient::new(channels[i % channels.len()].clone()),
                token.to_owned(),
                call.clone(),
                samples.clone(),
            );
            tokio::spawn(async move {
                let (mut done, mut failures, mut local, mut first) = (0u64, 0u64, Vec::new(), None);
                while Instant::now() < stop_at {
                    let t = Instant::now();
                    match call(client.clone(), token.clone()).await {
                        Ok(n) => {
                            done += n;
                            local.push(t.elapsed());
                        }
                        Err(error) => {
                            failures += 1;
                            first.get_or_insert_with(|| format!("{error:#}"));
                        }
                    }
                }
                if let Ok(mut all) = samples.lock() {
                    all.extend(local);
                }
                (done, failures, first)
            })
        })
        .collect();
    let (mut done, mut failures, mut first_failure) = (0, 0, None);
    for task in tasks {
        let (d, f, first) = task.await?;
        done += d;
        failures += f;
        first_failure = first_failure.or(first);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = CpuTimes::now(service_pids).since(&cpu_before);
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Run {
        transfers_per_sec: done as f64 / elapsed,
        done,
        elapsed,
        cpu,
        latencies: Latencies::new(samples),
        failures,
        first_failure,
    })
}
