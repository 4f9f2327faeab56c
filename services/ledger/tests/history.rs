//! Reading the past: statements over a time window and balances as of a
//! moment, checked against the full statement for every boundary that can
//! matter (before the first entry, on an entry's time, between entries,
//! after the last, in the future), including entries that share a time; and
//! statement pages that never skip or repeat while transfers keep coming.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use folio_proto::ledger::{CreateTransfersRequest, GetBalanceRequest, ListTransfersRequest, NewTransfer, TransferKind};
use prost_types::Timestamp;
use support::{Suite, bearer, posted};

on_postgres_and_sqlite!(
    time_windows_and_as_of_agree_with_the_full_statement,
    balances_as_of_replay_the_statement_and_pages_never_skip_or_repeat,
);

fn micros(t: &Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos / 1000)
}

fn timestamp(micros: i64) -> Timestamp {
    Timestamp { seconds: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1000) as i32 }
}

/// (sequence, entry time, posted balance after) of one statement line.
type Line = (i64, i64, i64);

async fn statement(suite: &Suite, account: &str, start: Option<i64>, end: Option<i64>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListTransfersRequest {
            account_id: account.to_owned(),
            start_time: start.map(timestamp),
            end_time: end.map(timestamp),
            page_size: 4,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = suite.ledger().list_transfers(bearer(request, &suite.writer)).await.unwrap().into_inner();
        for entry in &page.entries {
            let balance = entry.balance_after.as_ref().unwrap();
            lines.push((entry.account_sequence, micros(balance.as_of.as_ref().unwrap()), balance.posted));
        }
        if page.next_page_token.is_empty() {
            return lines;
        }
        token = page.next_page_token;
    }
}

async fn time_windows_and_as_of_agree_with_the_full_statement(suite: Suite) {
    let bank = suite.system_account("USD").await;
    let account = suite.system_account("USD").await;
    // Groups written in one call share a time; pauses separate the groups.
    for group in 1..=8_i64 {
        let transfers = (0..group % 3 + 1)
            .map(|i| NewTransfer {
                id: uuid::Uuid::new_v4().to_string(),
                debit_account_id: bank.clone(),
                credit_account_id: account.clone(),
                amount: group * 10 + i,
                asset_code: "USD".into(),
                kind: TransferKind::Posted as i32,
                ..Default::default()
            })
            .collect();
        let request = CreateTransfersRequest { transfers, atomic: true };
        suite.ledger().create_transfers(bearer(request, &suite.writer)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let full = statement(&suite, &account, None, None).await;
    assert_eq!(full.iter().map(|l| l.0).collect::<Vec<_>>(), (1..=full.len() as i64).collect::<Vec<_>>());
    assert!(full.windows(2).all(|w| w[0].1 <= w[1].1), "entry times go back: {full:?}");
    assert!(full.windows(2).any(|w| w[0].1 == w[1].1), "no two entries share a time: {full:?}");

    let (first, last) = (full[0].1, full[full.len() - 1].1);
    let mut moments: Vec<i64> = vec![first - 1_000_000, first - 1, last + 1, last + 3_600_000_000];
    for (_, at, _) in &full {
        moments.extend([*at - 1, *at, *at + 1]);
    }
    moments.sort_unstable();
    moments.dedup();

    for start in &moments {
        for end in moments.iter().filter(|end| *end > start).step_by(3) {
            let expected: Vec<Line> = full.iter().filter(|l| l.1 >= *start && l.1 < *end).copied().collect();
            assert_eq!(statement(&suite, &account, Some(*start), Some(*end)).await, expected, "[{start}, {end})");
        }
        let from: Vec<Line> = full.iter().filter(|l| l.1 >= *start).copied().collect();
        assert_eq!(statement(&suite, &account, Some(*start), None).await, from, "from {start}");
        let until: Vec<Line> = full.iter().filter(|l| l.1 < *start).copied().collect();
        assert_eq!(statement(&suite, &account, None, Some(*start)).await, until, "until {start}");
    }

    for at in moments.iter().filter(|at| **at <= last + 1) {
        let request = GetBalanceRequest { account_id: account.clone(), as_of: Some(timestamp(*at)) };
        let balance = suite.ledger().get_balance(bearer(request, &suite.writer)).await.unwrap().into_inner();
        let expected = full.iter().rev().find(|l| l.1 <= *at).map_or(0, |l| l.2);
        assert_eq!(balance.balance.unwrap().posted, expected, "as of {at}");
    }
}

async fn balances_as_of_replay_the_statement_and_pages_never_skip_or_repeat(suite: Suite) {
    let bank = suite.system_account("USD").await;
    let account = suite.system_account("USD").await;
    let mut moments = Vec::new();
    for amount in 1..=30 {
        let t = suite.fund(&bank, &account, amount).await;
        moments.push(t.created_at.unwrap());
    }
    // Keep writing while paging through the statement.
    let writer = {
        let (mut client, bank, account, token) = (suite.ledger(), bank.clone(), account.clone(), suite.writer.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                let _ = client.create_transfer(bearer(posted(&bank, &account, 1), &token)).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListTransfersRequest {
            account_id: account.clone(),
            page_size: 7,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = suite.ledger().list_transfers(bearer(request, &suite.writer)).await.unwrap().into_inner();
        seen.extend(page.entries.iter().map(|e| (e.account_sequence, e.clone())));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    writer.await.unwrap();
    let sequences: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, (1..=sequences.len() as i64).collect::<Vec<_>>(), "pages skipped or repeated entries");
    assert!(sequences.len() >= 30);

    // GetBalance(as_of) equals the balance after the last entry at or before that moment.
    for moment in moments.iter().step_by(7) {
        let request = GetBalanceRequest { account_id: account.clone(), as_of: Some(*moment) };
        let at =
            suite.ledger().get_balance(bearer(request, &suite.writer)).await.unwrap().into_inner().balance.unwrap();
        let replayed = seen
            .iter()
            .rev()
            .find(|(_, e)| micros(e.balance_after.as_ref().unwrap().as_of.as_ref().unwrap()) <= micros(moment))
            .map(|(_, e)| e.balance_after.clone().unwrap())
            .unwrap();
        assert_eq!((at.posted, at.credits_posted), (replayed.posted, replayed.credits_posted));
    }
}
