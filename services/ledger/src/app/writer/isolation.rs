//! Finding what the database refuses in a coalesced batch (DESIGN §5a):
//! the batch is split into the smallest parts that can be written alone
//! and written in halves, in order, until every group either commits or is
//! one part the database refuses; that part alone gets the error, and its
//! neighbours commit as if it had not been there.

use std::collections::VecDeque;

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::refused_value;
use sea_orm::{DatabaseConnection, DbErr};

use super::{Job, Mode, Outcome, Part, unavailable, write};

/// The smallest parts a batch can be split into: each atomic job whole,
/// each operation of a non-atomic job alone (in order, so later operations
/// still see earlier ones).
pub(super) fn units(batch: &[Job]) -> Vec<Part> {
    let mut units = Vec::new();
    for (job, j) in batch.iter().enumerate() {
        if j.atomic {
            units.push(Part { job, ops: 0..j.ops.len() });
        } else {
            units.extend((0..j.ops.len()).map(|op| Part { job, ops: op..op + 1 }));
        }
    }
    units
}

/// Writes `units` in halves, in order, until every group either commits or
/// is one unit the database refuses: that unit alone gets the error.
pub(super) async fn isolate(
    db: &DatabaseConnection,
    batch: &[Job],
    units: Vec<Part>,
) -> Vec<(Part, Result<Outcome, Failure>)> {
    let mut answers = Vec::with_capacity(units.len());
    let mut groups = VecDeque::from([units]);
    while let Some(mut group) = groups.pop_front() {
        match write(db, batch, &group, Mode::Commit).await {
            Ok(outcomes) => answers.extend(group.into_iter().zip(outcomes.into_iter().map(Ok))),
            Err(error) if refused_value(&error) && group.len() > 1 => {
                let second = group.split_off(group.len() / 2);
                groups.push_front(second);
                groups.push_front(group);
            }
            Err(error) if refused_value(&error) => {
                let Some(unit) = group.pop() else { continue };
                let outcome = refused(db, batch, &unit, &error).await;
                answers.push((unit, outcome));
            }
            Err(error) => {
                tracing::error!(%error, "ledger write failed while isolating a refused value");
                answers.extend(
                    group.into_iter().map(|unit| (unit, Err(unavailable("the ledger could not confirm the write")))),
                );
            }
        }
    }
    answers
}

/// The answer for a unit the database refuses: the operation's own error;
/// for an atomic job, the first operation whose prefix is refused (found by
/// trial writes that are rolled back).
async fn refused(db: &DatabaseConnection, batch: &[Job], unit: &Part, error: &DbErr) -> Result<Outcome, Failure> {
    tracing::warn!(%error, job = unit.job, "the database refused a value of one request");
    let refusal =
        FolioError::invalid_field("transfer", "the ledger's database refused a value of this transfer; check its text");
    if !batch[unit.job].atomic {
        return Ok(Outcome::Each(vec![Err(refusal)]));
    }
    // The whole job is refused; find the shortest refused prefix.
    let (mut passes, mut refused_at) = (0, unit.ops.len());
    while refused_at - passes > 1 {
        let middle = (passes + refused_at) / 2;
        let prefix = [Part { job: unit.job, ops: 0..middle }];
        match write(db, batch, &prefix, Mode::Trial).await {
            Ok(_) => passes = middle,
            Err(error) if refused_value(&error) => refused_at = middle,
            Err(_) => return Err(unavailable("the ledger could not confirm the write")),
        }
    }
    Ok(Outcome::AtomicFailed { index: refused_at - 1, error: refusal })
}

/// Answers every job from the outcomes of its parts, in order.
pub(super) fn reply(batch: Vec<Job>, mut answers: Vec<(Part, Result<Outcome, Failure>)>) {
    answers.sort_by_key(|(part, _)| (part.job, part.ops.start));
    let mut answers = answers.into_iter().peekable();
    for (index, job) in batch.into_iter().enumerate() {
        let (atomic, ops) = (job.atomic, job.ops.len());
        let mut merged: Option<Result<Outcome, Failure>> = None;
        while let Some((part, outcome)) = answers.next_if(|(part, _)| part.job == index) {
            // One operation of a non-atomic call that could not be confirmed
            // is answered for itself; its neighbours' outcomes still count.
            let outcome = match outcome {
                Err(failure) if !atomic && ops > 1 && part.ops.len() == 1 => {
                    Ok(Outcome::Each(vec![Err(as_caller_error(failure))]))
                }
                outcome => outcome,
            };
            merged = Some(match (merged, outcome) {
                (None, outcome) => outcome,
                (Some(Ok(Outcome::Each(mut done))), Ok(Outcome::Each(more))) => {
                    done.extend(more);
                    Ok(Outcome::Each(done))
                }
                // Only a non-atomic job has several parts; one that could not
                // be confirmed is answered for that operation alone.
                (Some(Ok(Outcome::Each(mut done))), Err(failure)) => {
                    done.push(Err(as_caller_error(failure)));
                    Ok(Outcome::Each(done))
                }
                (Some(earlier), _) => earlier,
            });
        }
        let answer = merged.unwrap_or_else(|| Err(unavailable("the ledger could not confirm the write")));
        let _ = job.reply.send(answer);
    }
}

fn as_caller_error(failure: Failure) -> FolioError {
    match failure {
        Failure::Caller(error) => error,
        Failure::Internal(_) => {
            FolioError::new(Reason::DependencyUnavailable, "the ledger could not confirm the write")
        }
    }
}
