//! The coalescing writer. Requests queue up; the writer takes everything
//! queued (up to a bound), applies it in ONE database transaction, and
//! answers each caller with its own result. One commit serves many
//! transfers, so throughput is not capped by PostgreSQL's per-transaction
//! ceiling, and a hot account is locked once per batch, not once per transfer.

use std::{
    collections::{BTreeSet, HashMap},
    ops::Range,
    sync::Arc,
};

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, TxError, refused_value, run_in_tx};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, SqlErr};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::{Actor, BatchState, NewTransfer, Op, Transfer};
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
pub(crate) enum Lookup {
    /// Assume new ids are new and skip the index probe for each: a repeated
    /// id then shows up as a unique violation on insert, or as an operation
    /// that failed (a repeat of a committed transfer may now break a rule
    /// it passed the first time); either way the batch is redone `Careful`.
    /// Repeats are rare (client retries), so most batches save the probe.
    Optimistic,
    /// Look every id up first, as the rules' order prescribes.
    Careful,
}

/// Why a write transaction rolled back on purpose.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Rollback {
    /// An optimistic batch met an id that exists: redo it carefully.
    #[error("a transfer id of the batch was used before")]
    RepeatedId,
    /// A trial write (finding which operation the database refuses) went
    /// through; nothing of it may stay.
    #[error("trial write")]
    Trial,
}

/// A run of one job's operations written (or refused) as one: a whole
/// atomic job, or any consecutive operations of a non-atomic job.
#[derive(Debug, Clone)]
struct Part {
    job: usize,
    ops: Range<usize>,
}

/// Commit, or only find out whether the write would go through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Commit,
    Trial,
}

mod isolation;

use isolation::{isolate, reply, units};

async fn process(db: &DatabaseConnection, batch: Vec<Job>) {
    let whole: Vec<Part> = batch.iter().enumerate().map(|(job, j)| Part { job, ops: 0..j.ops.len() }).collect();
    let answers = match write(db, &batch, &whole, Mode::Commit).await {
        Ok(outcomes) => whole.into_iter().zip(outcomes.into_iter().map(Ok)).collect(),
        // The database refused something a request carried (DESIGN §5a): the
        // neighbours of that request must not fail with it.
        Err(error) if refused_value(&error) => {
            metrics::counter!("folio_ledger_batches_isolated_total").increment(1);
            tracing::warn!(%error, jobs = batch.len(), "the database refused a value in a write batch; isolating it");
            isolate(db, &batch, units(&batch)).await
        }
        Err(error) => {
            // The commit may or may not have happened: the caller must retry
            // with the same ids, which is always safe.
            tracing::error!(%error, "ledger write batch failed");
            whole.into_iter().map(|part| (part, Err(unavailable("the ledger could not confirm the write")))).collect()
        }
    };
    reply(batch, answers);
}

/// Writes `parts` in one transaction: optimistically first, carefully when
/// an id turns out to be known.
async fn write(db: &DatabaseConnection, batch: &[Job], parts: &[Part], mode: Mode) -> Result<Vec<Outcome>, DbErr> {
    let mut lookup = Lookup::Optimistic;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = run_in_tx(db, "ledger_write_batch", RetryPolicy::default(), |tx| async move {
            apply_parts(&tx, batch, parts, lookup, mode).await
        })
        .await;
        match result {
            Ok(outcomes) => return Ok(outcomes),
            Err(TxError::Abort(Rollback::Trial)) => return Ok(Vec::new()),
            Err(TxError::Abort(Rollback::RepeatedId)) if attempt < 4 => lookup = Lookup::Careful,
            // A repeated id (optimistic), or another replica inserted one of
            // our ids or reversed one of our originals between our read and
            // our write: read again and redo.
            Err(TxError::Db(error))
                if attempt < 4 && matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                tracing::debug!(%error, attempt, ?lookup, "write batch met an existing row; redoing it carefully");
                lookup = Lookup::Careful;
            }
            Err(TxError::Db(error)) => return Err(error),
            Err(TxError::Abort(Rollback::RepeatedId)) => {
                return Err(DbErr::Custom("transfer ids kept turning out to be known".into()));
            }
        }
    }
}

async fn apply_parts(
    tx: &DatabaseTransaction,
    batch: &[Job],
    parts: &[Part],
    lookup: Lookup,
    mode: Mode,
) -> Result<Vec<Outcome>, TxError<Rollback>> {
    let ops: Vec<&Op> = parts.iter().flat_map(|part| &batch[part.job].ops[part.ops.clone()]).collect();
    let mut state = load(tx, &ops, lookup).await?;
    let mut outcomes = Vec::with_capacity(parts.len());
    for part in parts {
        let job = &batch[part.job];
        outcomes.push(apply_part(&mut state, &job.ops[part.ops.clone()], job.atomic, &job.actor));
    }
    if lookup == Lookup::Optimistic {
        let suspects = failed_ids(batch, parts, &outcomes);
        if !suspects.is_empty() && !store::transfers_by_id(tx, &suspects, false).await?.is_empty() {
            return Err(TxError::Abort(Rollback::RepeatedId));
        }
    }
    store::write_batch(tx, &mut state).await?;
    if mode == Mode::Trial {
        return Err(TxError::Abort(Rollback::Trial));
    }
    // Last, as `store::events` requires: from here to the commit, the
    // other event writers wait.
    store::events::append(tx, &state.events()).await?;
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
fn failed_ids(batch: &[Job], parts: &[Part], outcomes: &[Outcome]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (part, outcome) in parts.iter().zip(outcomes) {
        let ops = &batch[part.job].ops[part.ops.clone()];
        let failed: Vec<&Op> = match outcome {
            Outcome::AtomicFailed { .. } => ops.iter().collect(),
            Outcome::Each(results) => {
                ops.iter().zip(results).filter(|(_, result)| result.is_err()).map(|(op, _)| op).collect()
            }
        };
        ids.extend(failed.into_iter().filter_map(Op::new_id).map(str::to_owned));
    }
    ids
}

pub(crate) fn apply_part(state: &mut BatchState, ops: &[Op], atomic: bool, actor: &Actor) -> Outcome {
    if atomic {
        let savepoint = state.savepoint();
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match state.apply(op, actor) {
                Ok(transfer) => results.push(Ok(transfer)),
                Err(error) => {
                    state.rollback_to(savepoint);
                    return Outcome::AtomicFailed { index, error };
                }
            }
        }
        Outcome::Each(results)
    } else {
        let results = ops
            .iter()
            .map(|op| {
                let savepoint = state.savepoint();
                let result = state.apply(op, actor);
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
pub(crate) async fn load(
    tx: &DatabaseTransaction,
    ops: &[&Op],
    lookup: Lookup,
) -> Result<BatchState, TxError<Rollback>> {
    let mut ids = BTreeSet::new();
    let mut holds = BTreeSet::new();
    let mut originals = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for op in ops {
        match op {
            Op::Transfer(request) => {
                ids.insert(request.id().to_owned());
                match request {
                    NewTransfer::Resolution(resolution) => {
                        holds.insert(resolution.pending_id.clone());
                    }
                    NewTransfer::Movement(movement) => {
                        accounts.insert(movement.debit_account_id.clone());
                        accounts.insert(movement.credit_account_id.clone());
                    }
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
    state.now = folio_storage::db::now(tx).await?.timestamp_micros();
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
    for account in store::lock_accounts(tx, &accounts).await? {
        state.accounts.insert(account.id.clone(), account);
    }
    // The registry decides only between ASSET_NOT_FOUND and ASSET_MISMATCH,
    // so it is read only when some transfer's asset differs from its accounts'.
    let asset_in_doubt = ops.iter().any(|op| match op {
        Op::Transfer(NewTransfer::Movement(movement)) => [&movement.debit_account_id, &movement.credit_account_id]
            .iter()
            .any(|id| state.accounts.get(*id).is_none_or(|account| account.asset_code != movement.asset_code)),
        _ => false,
    });
    if asset_in_doubt {
        state.assets = store::asset_codes(tx).await?.into_iter().collect();
    }
    Ok(state)
}
