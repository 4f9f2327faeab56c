//! Statements and balances as of a time.

use super::Store;
use crate::domain::{AccountKind, Kind, Op, StatementQuery, tests::request};
use crate::store::{accounts, statements};

const SECOND: i64 = 1_000_000;

/// Five credits of 1..=5 to `a1`, ten seconds apart from `start` + 10 s.
async fn five_credits(store: &Store) -> i64 {
    store.asset("USD").await;
    store.account("bank", AccountKind::System).await;
    store.account("a1", AccountKind::Customer).await;
    let start = store.now().await - 3_600 * SECOND;
    for i in 1..=5 {
        let op = Op::Transfer(request(&format!("t{i}"), "bank", "a1", i, Kind::Posted).into());
        store.commit_at(Some(start + i * 10 * SECOND), vec![op]).await.remove(0).unwrap();
    }
    start
}

fn query(after_sequence: i64, limit: u64) -> StatementQuery {
    StatementQuery { start: None, end: None, status: None, limit, after_sequence }
}

pub async fn a_statement_pages_in_account_order_and_windows_by_time(store: Store) {
    let start = five_credits(&store).await;
    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let (lines, more) = statements::page(&store.db, &a1, &query(after, 2)).await.unwrap();
        assert!(lines.len() <= 2);
        seen.extend(lines.iter().map(|line| (line.account_sequence, line.transfer.amount, line.totals.posted())));
        after = lines.last().map_or(after, |line| line.account_sequence);
        if !more {
            break;
        }
    }
    let expected: Vec<_> = (1..=5).map(|i| (i, i, Some(i * (i + 1) / 2))).collect();
    assert_eq!(seen, expected, "each entry once, in account order, with the totals after it");

    let window = StatementQuery { start: Some(start + 20 * SECOND), end: Some(start + 40 * SECOND), ..query(0, 10) };
    let (lines, more) = statements::page(&store.db, &a1, &window).await.unwrap();
    let in_window: Vec<_> = lines.iter().map(|line| line.account_sequence).collect();
    assert_eq!((in_window, more), (vec![2, 3], false), "start inclusive, end exclusive");
}

pub async fn totals_as_of_a_time_are_those_after_the_last_entry_before_it(store: Store) {
    let start = five_credits(&store).await;
    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    let posted_at = |offset: i64| {
        let db = store.db.clone();
        async move {
            let totals = statements::totals_at(&db, "a1", start + offset, a1.entry_count).await.unwrap();
            totals.posted()
        }
    };
    assert_eq!(posted_at(5 * SECOND).await, Some(0), "before the first entry");
    assert_eq!(posted_at(10 * SECOND).await, Some(1), "at an entry's time, that entry counts");
    assert_eq!(posted_at(35 * SECOND).await, Some(6));
    assert_eq!(posted_at(3_000 * SECOND).await, Some(15), "after the last");
    let first_two = statements::totals_at(&store.db, "a1", start + 3_000 * SECOND, 2).await.unwrap();
    assert_eq!(first_two.posted(), Some(3), "only among the first entry_count entries");
}
