//! The coalescing writer. Requests queue up; the writer takes everything
//! queued (up to a bound), applies it in ONE database transaction, and
//! answers each caller with its own result. One commit serves many
//! transfers, so throughput is not capped by PostgreSQL's per-transaction
//! ceiling, and a hot account is locked once per batch, not once per transfer.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use folio_common::{
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
};
use sea_orm::{DatabaseConnection, DatabaseTransaction, SqlErr};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::authz::Actor;
use crate::model::{Kind, Transfer};
use crate::rules::{BatchState, Op};
use crate::store;

/// What one job (one RPC) gets back.
#[derive(Debug)]
pub enum Outcome {
    /// One result per operation, in order.
    Each(Vec<Result<Option<Transfer>, FolioError>>),
    /// An atomic job failed at `index`; nothing of it was written.
    AtomicFailed {
        /// The first failing operation.
        index: usize,
        /// Why it failed.
        error: FolioError,
    },
}

struct Job {
    ops: Vec<Op>,
    atomic: bool,
    actor: Actor,
    reply: oneshot::Sender<Result<Outcome, Failure>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

/// Operations per transaction at most (an atomic job is never split).
const MAX_BATCH_OPS: usize = 2000;

impl Writer {
    /// Starts `writers` writer tasks on `db` sharing one queue; they stop when
    /// `shutdown` fires and the queue drains. While one commits (and waits for
    /// its fsync) the next gathers and applies the following batch; their row
    /// locks, always taken in the same order, keep them correct and deadlock-free.
    pub fn start(db: DatabaseConnection, writers: usize, shutdown: CancellationToken) -> Self {
        let (queue, jobs) = mpsc::channel(4096);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(db.clone(), Arc::clone(&jobs), shutdown.clone()));
        }
        Self { queue }
    }

    /// Applies `ops` for `actor`: all or nothing when `atomic`.
    pub async fn submit(&self, ops: Vec<Op>, atomic: bool, actor: Actor) -> Result<Outcome, Failure> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { ops, atomic, actor, reply })
            .await
            .map_err(|_| unavailable("the ledger is shutting down"))?;
        answer.await.map_err(|_| unavailable("the ledger writer stopped"))?
    }
}

fn unavailable(message: &str) -> Failure {
    FolioError::new(Reason::DependencyUnavailable, format!("{message}; retrying with the same transfer id is safe"))
        .with_metadata("dependency", "ledger-database")
        .into()
}

async fn run(db: DatabaseConnection, jobs: Arc<Mutex<mpsc::Receiver<Job>>>, shutdown: CancellationToken) {
    loop {
        let Some(batch) = next_batch(&jobs, &shutdown).await else { return };
        process(&db, batch).await;
    }
}

/// Waits for a job, then takes whatever else is queued, up to the bound.
async fn next_batch(jobs: &Mutex<mpsc::Receiver<Job>>, shutdown: &CancellationToken) -> Option<Vec<Job>> {
    let mut jobs = jobs.lock().await;
    let first = tokio::select! {
        job = jobs.recv() => job,
        () = shutdown.cancelled() => { jobs.close(); jobs.recv().await }
    }?;
    let mut ops = first.ops.len();
    let mut batch = vec![first];
    while ops < MAX_BATCH_OPS {
        match jobs.try_recv() {
            Ok(job) => {
                ops += job.ops.len();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    metrics::histogram!("folio_ledger_batch_ops").record(ops as f64);
    Some(batch)
}

/// How a batch finds out whether a new transfer's id was used before.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lookup {
    /// Assume new ids are new and skip the index probe for each: a repeated
    /// id then shows up as a unique violation on insert, or as an operation
    /// that failed (a repeat of a committed transfer may now break a rule
    /// it passed the first time); either way the batch is redone `Careful`.
    /// Repeats are rare (client retries), so most batches save the probe.
    Optimistic,
    /// Look every id up first, as the rules' order prescribes.
    Careful,
}

/// An optimistic batch met an id that exists: redo it carefully.
#[derive(Debug, thiserror::Error)]
#[error("a transfer id of the batch was used before")]
struct RepeatedId;

async fn process(db: &DatabaseConnection, batch: Vec<Job>) {
    let mut lookup = Lookup::Optimistic;
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let result = run_in_tx(db, "ledger_write_batch", RetryPolicy::default(), |tx| {
            let batch = &batch;
            async move { apply_batch(&tx, batch, lookup).await }
        })
        .await;
        match result {
            Err(TxError::Abort(RepeatedId)) if attempt < 4 => lookup = Lookup::Careful,
            // A repeated id (optimistic), or another replica inserted one of
            // our ids or reversed one of our originals between our read and
            // our write: read again and redo.
            Err(TxError::Db(error))
                if attempt < 4 && matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                tracing::debug!(%error, attempt, ?lookup, "write batch met an existing row; redoing it carefully");
                lookup = Lookup::Careful;
            }
            other => break other,
        }
    };
    match result {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            // The commit may or may not have happened: the caller must retry
            // with the same ids, which is always safe.
            tracing::error!(error = %error, "ledger write batch failed");
            for job in batch {
                let _ = job.reply.send(Err(unavailable("the ledger could not confirm the write")));
            }
        }
    }
}

async fn apply_batch(
    tx: &DatabaseTransaction,
    batch: &[Job],
    lookup: Lookup,
) -> Result<Vec<Outcome>, TxError<RepeatedId>> {
    let mut state = load(tx, batch, lookup).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(apply_job(&mut state, job));
    }
    if lookup == Lookup::Optimistic {
        let suspects = failed_ids(batch, &outcomes);
        if !suspects.is_empty() && !store::transfers_by_id(tx, &suspects, false).await?.is_empty() {
            return Err(TxError::Abort(RepeatedId));
        }
    }
    store::write_batch(tx, &mut state).await?;
    let sequences: HashMap<&str, i64> = state.created.iter().map(|t| (t.id.as_str(), t.sequence)).collect();
    for outcome in &mut outcomes {
        if let Outcome::Each(results) = outcome {
            for transfer in results.iter_mut().flatten().flatten() {
                if let Some(sequence) = sequences.get(transfer.id.as_str()) {
                    transfer.sequence = *sequence;
                }
            }
        }
    }
    Ok(outcomes)
}

/// The ids of operations that failed (every id of a failed atomic job):
/// the ones whose failure could be a repeat of a committed transfer.
fn failed_ids(batch: &[Job], outcomes: &[Outcome]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (job, outcome) in batch.iter().zip(outcomes) {
        let failed: Vec<&Op> = match outcome {
            Outcome::AtomicFailed { .. } => job.ops.iter().collect(),
            Outcome::Each(results) => {
                job.ops.iter().zip(results).filter(|(_, result)| result.is_err()).map(|(op, _)| op).collect()
            }
        };
        ids.extend(failed.into_iter().filter_map(Op::new_id).map(str::to_owned));
    }
    ids
}

fn apply_job(state: &mut BatchState, job: &Job) -> Outcome {
    if job.atomic {
        let savepoint = state.savepoint();
        let mut results = Vec::with_capacity(job.ops.len());
        for (index, op) in job.ops.iter().enumerate() {
            match state.apply(op, &job.actor) {
                Ok(transfer) => results.push(Ok(transfer)),
                Err(error) => {
                    state.rollback_to(savepoint);
                    return Outcome::AtomicFailed { index, error };
                }
            }
        }
        Outcome::Each(results)
    } else {
        let results = job
            .ops
            .iter()
            .map(|op| {
                let savepoint = state.savepoint();
                let result = state.apply(op, &job.actor);
                if result.is_err() {
                    state.rollback_to(savepoint);
                }
                result
            })
            .collect();
        Outcome::Each(results)
    }
}

/// Reads and locks what the batch needs: holds first, then accounts, each in
/// id order, so concurrent writers (here or on another replica) never deadlock.
async fn load(tx: &DatabaseTransaction, batch: &[Job], lookup: Lookup) -> Result<BatchState, TxError<RepeatedId>> {
    let mut ids = BTreeSet::new();
    let mut holds = BTreeSet::new();
    let mut originals = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for op in batch.iter().flat_map(|job| &job.ops) {
        match op {
            Op::Transfer(request) => {
                ids.insert(request.id.clone());
                if matches!(request.kind, Kind::PostPending | Kind::VoidPending) {
                    holds.insert(request.pending_id.clone());
                } else {
                    accounts.insert(request.debit_account_id.clone());
                    accounts.insert(request.credit_account_id.clone());
                }
            }
            Op::Reverse { id, original, .. } => {
                ids.insert(id.clone());
                originals.insert(original.clone());
            }
            Op::Expire(hold) => {
                holds.insert(hold.clone());
            }
        }
    }
    let mut state = BatchState::default();
    state.now = folio_common::db::now(tx).await?.timestamp_micros();
    for hold in store::transfers_by_id(tx, &holds, true).await? {
        state.transfers.insert(hold.id.clone(), hold);
    }
    let probed =
        if lookup == Lookup::Careful { ids.union(&originals).collect::<Vec<_>>() } else { originals.iter().collect() };
    let others: BTreeSet<String> = probed.into_iter().filter(|id| !holds.contains(*id)).cloned().collect();
    for transfer in store::transfers_by_id(tx, &others, false).await? {
        state.transfers.insert(transfer.id.clone(), transfer);
    }
    for id in holds.iter().chain(originals.iter()) {
        if let Some(transfer) = state.transfers.get(id) {
            accounts.insert(transfer.debit_account_id.clone());
            accounts.insert(transfer.credit_account_id.clone());
        }
    }
    state.reversed = store::reversed_among(tx, &originals).await?.into_iter().collect();
    accounts.remove("");
    for account in store::lock_accounts(tx, &accounts).await? {
        state.accounts.insert(account.id.clone(), account);
    }
    // The registry decides only between ASSET_NOT_FOUND and ASSET_MISMATCH,
    // so it is read only when some transfer's asset differs from its accounts'.
    let asset_in_doubt = batch.iter().flat_map(|job| &job.ops).any(|op| match op {
        Op::Transfer(request) if matches!(request.kind, Kind::Posted | Kind::Pending) => {
            [&request.debit_account_id, &request.credit_account_id]
                .iter()
                .any(|id| state.accounts.get(*id).is_none_or(|account| account.asset_code != request.asset_code))
        }
        _ => false,
    });
    if asset_in_doubt {
        state.assets = store::asset_codes(tx).await?.into_iter().collect();
    }
    Ok(state)
}
