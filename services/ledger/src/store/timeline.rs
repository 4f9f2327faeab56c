//! Finding an account's entries by time without an index on time.
//!
//! An account's entries never go back in time: `created_at` does not
//! decrease as `account_sequence` grows (the writer stamps each entry with
//! the later of the batch's clock and the account's last entry time). So
//! "the last entry at or before T" is a binary search over the sequence,
//! each step one primary-key lookup, all in one recursive query. That keeps
//! a second per-account index (and its random writes, two per transfer) off
//! the write path, for reads that look at the past.

use folio_errors::Failure;
use sea_orm::ConnectionTrait;

use super::query_all;

/// The largest `account_sequence` of `account_id` whose entry is at or
/// before `at` (µs), among its first `entry_count` entries; 0 if none.
pub async fn last_sequence_at_or_before(
    db: &impl ConnectionTrait,
    account_id: &str,
    at: i64,
    entry_count: i64,
) -> Result<i64, Failure> {
    if entry_count <= 0 {
        return Ok(0);
    }
    // Invariant: entries up to `lo` are at or before `at`, entries after
    // `hi` are after it; each step halves the gap through `mid`.
    let rows = query_all(
        db,
        "WITH RECURSIVE search (lo, hi) AS ( \
             SELECT CAST(0 AS BIGINT), CAST($3 AS BIGINT) \
           UNION ALL \
             SELECT CASE WHEN e.created_at <= $2 THEN (s.lo + s.hi + 1) / 2 ELSE s.lo END, \
                    CASE WHEN e.created_at <= $2 THEN s.hi ELSE (s.lo + s.hi + 1) / 2 - 1 END \
             FROM search s JOIN entries e \
               ON e.account_id = $1 AND e.account_sequence = (s.lo + s.hi + 1) / 2 \
             WHERE s.lo < s.hi) \
         SELECT MAX(lo) AS found FROM search",
        vec![account_id.into(), at.into(), entry_count.into()],
    )
    .await?;
    Ok(match rows.first() {
        Some(row) => row.try_get::<Option<i64>>("", "found")?.unwrap_or(0),
        None => 0,
    })
}
