//! The ledger's invariants, checked straight against its tables.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel, Statement, TransactionTrait};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    debits_posted: i64,
    credits_posted: i64,
    debits_pending: i64,
    credits_pending: i64,
}

async fn rows(db: &impl ConnectionTrait, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap()
}

/// Panics, naming the broken invariant, unless every one holds. Reads one
/// consistent snapshot: the ledger may still be writing (the sweeper runs).
pub async fn check(connection: &DatabaseConnection) {
    let isolation =
        (connection.get_database_backend() == DbBackend::Postgres).then_some(IsolationLevel::RepeatableRead);
    let snapshot = connection.begin_with_config(isolation, None).await.unwrap();
    let db = &snapshot;
    let mut stored: HashMap<String, (String, i16, i64, Totals, i64)> = HashMap::new();
    for row in rows(db, "SELECT id, asset_code, kind, overdraft_limit, debits_posted, credits_posted, debits_pending, credits_pending, entry_count FROM accounts").await {
        let totals = Totals {
            debits_posted: row.try_get("", "debits_posted").unwrap(),
            credits_posted: row.try_get("", "credits_posted").unwrap(),
            debits_pending: row.try_get("", "debits_pending").unwrap(),
            credits_pending: row.try_get("", "credits_pending").unwrap(),
        };
        stored.insert(
            row.try_get("", "id").unwrap(),
            (
                row.try_get("", "asset_code").unwrap(),
                row.try_get("", "kind").unwrap(),
                row.try_get("", "overdraft_limit").unwrap(),
                totals,
                row.try_get("", "entry_count").unwrap(),
            ),
        );
    }

    // Per asset, posted and pending sum to zero.
    let mut sums: HashMap<String, (i128, i128)> = HashMap::new();
    for (asset, _, _, t, _) in stored.values() {
        let sum = sums.entry(asset.clone()).or_default();
        sum.0 += i128::from(t.credits_posted) - i128::from(t.debits_posted);
        sum.1 += i128::from(t.credits_pending) - i128::from(t.debits_pending);
    }
    for (asset, (posted, pending)) in sums {
        assert_eq!(posted, 0, "posted balances of {asset} do not sum to zero");
        assert_eq!(pending, 0, "pending balances of {asset} do not sum to zero");
    }

    // Totals equal what the transfers add up to.
    let mut derived: HashMap<String, Totals> = HashMap::new();
    for row in rows(db, "SELECT debit_account_id, credit_account_id, amount, kind, status FROM transfers").await {
        let (debit, credit): (String, String) =
            (row.try_get("", "debit_account_id").unwrap(), row.try_get("", "credit_account_id").unwrap());
        let amount: i64 = row.try_get("", "amount").unwrap();
        let (kind, status): (i16, i16) = (row.try_get("", "kind").unwrap(), row.try_get("", "status").unwrap());
        match (kind, status) {
            (1, _) | (3, _) => {
                derived.entry(debit).or_default().debits_posted += amount;
                derived.entry(credit).or_default().credits_posted += amount;
            }
            (2, 2) => {
                derived.entry(debit).or_default().debits_pending += amount;
                derived.entry(credit).or_default().credits_pending += amount;
            }
            _ => {}
        }
    }
    for (id, (_, kind, overdraft, totals, entry_count)) in &stored {
        assert_eq!(
            derived.get(id).copied().unwrap_or_default(),
            *totals,
            "account {id}: totals differ from its transfers"
        );
        if *kind == 1 {
            let available = totals.credits_posted - totals.debits_posted - totals.debits_pending;
            assert!(available >= -overdraft, "customer account {id} is at {available}, below -{overdraft}");
        }
        let entries = rows(
            db,
            &format!(
                "SELECT COUNT(*) AS n, COALESCE(MAX(account_sequence), 0) AS top FROM entries WHERE account_id = '{id}'"
            ),
        )
        .await;
        let (n, top): (i64, i64) = (entries[0].try_get("", "n").unwrap(), entries[0].try_get("", "top").unwrap());
        assert_eq!((n, top), (*entry_count, *entry_count), "account {id}: entries are not gapless 1..{entry_count}");
        if *entry_count > 0 {
            let last = rows(
                db,
                &format!("SELECT debits_posted, credits_posted, debits_pending, credits_pending FROM entries WHERE account_id = '{id}' AND account_sequence = {entry_count}"),
            )
            .await;
            let last = Totals {
                debits_posted: last[0].try_get("", "debits_posted").unwrap(),
                credits_posted: last[0].try_get("", "credits_posted").unwrap(),
                debits_pending: last[0].try_get("", "debits_pending").unwrap(),
                credits_pending: last[0].try_get("", "credits_pending").unwrap(),
            };
            assert_eq!(last, *totals, "account {id}: the last entry's balance differs from the account's");
        }
    }

    check_events(db).await;
}

/// Every committed change has exactly one event and every event a change
/// (none for a write that rolled back); ids are dense up to the log's head
/// (these suites keep every event).
async fn check_events(db: &impl ConnectionTrait) {
    let count = |sql: &'static str| async move { rows(db, sql).await[0].try_get::<i64>("", "n").unwrap() };
    let head = count("SELECT last_position AS n FROM event_log WHERE id = 1").await;
    let (events, top) =
        (count("SELECT COUNT(*) AS n FROM events").await, count("SELECT COALESCE(MAX(id), 0) AS n FROM events").await);
    assert_eq!((events, top), (head, head), "event ids are not dense up to the head {head}");
    let transfer_events = count("SELECT COUNT(*) AS n FROM events WHERE transfer_id IS NOT NULL").await;
    let entries = count("SELECT COUNT(*) AS n FROM entries").await;
    assert_eq!(transfer_events * 2, entries, "transfer events do not match the entries one per pair");
    let unmatched = count(
        "SELECT COUNT(*) AS n FROM events e \
         LEFT JOIN entries d ON d.account_id = e.debit_account_id AND d.account_sequence = e.debit_sequence \
         LEFT JOIN entries c ON c.account_id = e.credit_account_id AND c.account_sequence = e.credit_sequence \
         WHERE e.transfer_id IS NOT NULL AND (d.transfer_id IS NULL OR c.transfer_id IS NULL \
           OR d.transfer_id <> e.transfer_id OR c.transfer_id <> e.transfer_id)",
    )
    .await;
    assert_eq!(unmatched, 0, "events naming entries of another change");
    let accounts = count("SELECT COUNT(*) AS n FROM accounts").await;
    let opened = count("SELECT COUNT(*) AS n FROM events WHERE type = 5").await;
    assert_eq!(opened, accounts, "one ACCOUNT_OPENED per account");
}
