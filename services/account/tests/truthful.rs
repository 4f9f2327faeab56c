//! DESIGN §5a: a change made by the account service and the ledger is
//! answered OK only when both agree it happened; any other answer but
//! UNAVAILABLE means nothing happened anywhere; a divergence is repaired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use folio_errors::reason_of;
use folio_proto::{
    account::{
        CloseAccountRequest, FreezeAccountRequest, GetAccountRequest, UnfreezeAccountRequest, UpdateAccountRequest,
    },
    ledger::AccountStatus,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use support::{Suite, bearer, create, posted};
use tonic::Code;

async fn schema(suite: &Suite, name: &str) -> DatabaseConnection {
    folio_storage::db::connect_url(&suite.db.url, name, 2).await.unwrap()
}

/// (status, overdraft limit, version) as the ledger has them.
async fn in_ledger(ledger: &DatabaseConnection, id: &str) -> (i64, i64, i64) {
    let row = ledger
        .query_one_raw(Statement::from_string(
            ledger.get_database_backend(),
            format!("SELECT status, overdraft_limit, version FROM accounts WHERE id = '{id}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    let status: i16 = row.try_get("", "status").unwrap();
    (i64::from(status), row.try_get("", "overdraft_limit").unwrap(), row.try_get("", "version").unwrap())
}

fn mask(path: &str) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: vec![path.to_owned()] })
}

#[tokio::test]
async fn an_update_that_loses_its_etag_changes_nothing_and_a_freeze_answered_ok_holds() {
    let suite = Suite::start(true).await;
    let ledger_db = schema(&suite, "ledger").await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let account = client.create_account(bearer(create("USD", "Mine"), &token)).await.unwrap().into_inner();
    let id = account.account.unwrap().id;
    let other = client.create_account(bearer(create("USD", "Other"), &token)).await.unwrap().into_inner();
    let other_id = other.account.unwrap().id;

    // The owner renames the account in a tight loop, from four clients.
    let stop = Arc::new(AtomicBool::new(false));
    let renamers: Vec<_> = (0..4)
        .map(|n| {
            let (mut client, token, id, stop) = (suite.client(), token.clone(), id.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let got = client.get_account(bearer(GetAccountRequest { account_id: id.clone() }, &token)).await;
                    let etag = got.unwrap().into_inner().account.unwrap().etag;
                    let rename = UpdateAccountRequest {
                        account_id: id.clone(),
                        etag,
                        update_mask: mask("display_name"),
                        display_name: format!("Renamed {n}.{i}"),
                        ..Default::default()
                    };
                    let _ = client.update_account(bearer(rename, &token)).await;
                }
            })
        })
        .collect();

    // The operator changes the limit meanwhile: every answer must be true.
    let (mut applied_limit, mut aborted, mut ok) = (0, 0, 0);
    for attempt in 1..=40 {
        let got = client.get_account(bearer(GetAccountRequest { account_id: id.clone() }, &suite.operator)).await;
        let etag = got.unwrap().into_inner().account.unwrap().etag;
        let limit = 1_000 + attempt;
        let update = UpdateAccountRequest {
            account_id: id.clone(),
            etag,
            update_mask: mask("overdraft_limit"),
            overdraft_limit: limit,
            ..Default::default()
        };
        match client.update_account(bearer(update, &suite.operator)).await {
            Ok(reply) => {
                ok += 1;
                applied_limit = limit;
                assert_eq!(reply.into_inner().account.unwrap().overdraft_limit, limit);
            }
            Err(status) => {
                assert_eq!((status.code(), reason_of(&status).as_deref()), (Code::Aborted, Some("ETAG_MISMATCH")));
                aborted += 1;
            }
        }
        let (_, ledger_limit, _) = in_ledger(&ledger_db, &id).await;
        assert_eq!(ledger_limit, applied_limit, "attempt {attempt}: the ledger's limit after the answers so far");
    }
    stop.store(true, Ordering::Relaxed);
    for renamer in renamers {
        renamer.await.unwrap();
    }
    assert!(aborted > 0, "the race never happened ({ok} updates went through)");

    // An overdraft beyond the limit the operator was told OK for is refused.
    let overdraw = posted(&id, &other_id, applied_limit + 1);
    let refused = suite.ledger_client().create_transfer(bearer(overdraw, &token)).await;
    assert_eq!(reason_of(&refused.expect_err("beyond the limit")).as_deref(), Some("INSUFFICIENT_FUNDS"));

    // A freeze answered OK is a freeze.
    let freeze = FreezeAccountRequest { account_id: id.clone(), reason: "review".into() };
    let frozen = client.freeze_account(bearer(freeze, &suite.operator)).await.unwrap().into_inner();
    assert_eq!(frozen.account.unwrap().status, AccountStatus::Frozen as i32);
    assert_eq!(in_ledger(&ledger_db, &id).await.0, AccountStatus::Frozen as i64);
    let moved = suite.ledger_client().create_transfer(bearer(posted(&id, &other_id, 1), &token)).await;
    assert_eq!(reason_of(&moved.expect_err("frozen")).as_deref(), Some("ACCOUNT_FROZEN"));

    // The owner cannot close what an operator froze; an operator lifts it.
    let close = CloseAccountRequest { account_id: other_id.clone(), reason: String::new() };
    let freeze_other = FreezeAccountRequest { account_id: other_id.clone(), reason: "review".into() };
    client.freeze_account(bearer(freeze_other, &suite.operator)).await.unwrap();
    let status = client.close_account(bearer(close.clone(), &token)).await.unwrap_err();
    assert_eq!((status.code(), reason_of(&status).as_deref()), (Code::FailedPrecondition, Some("ACCOUNT_FROZEN")));
    assert_eq!(in_ledger(&ledger_db, &other_id).await.0, AccountStatus::Frozen as i64);
}

#[tokio::test]
async fn bad_text_in_a_status_change_changes_nothing_anywhere() {
    let suite = Suite::start(true).await;
    let ledger_db = schema(&suite, "ledger").await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let account = client.create_account(bearer(create("USD", "Mine"), &token)).await.unwrap().into_inner();
    let id = account.account.unwrap().id;
    let before = in_ledger(&ledger_db, &id).await;
    for reason in ["bad\u{0}", "line\u{2028}", &"x".repeat(501)] {
        let freeze = FreezeAccountRequest { account_id: id.clone(), reason: reason.to_owned() };
        let status = client.freeze_account(bearer(freeze, &suite.operator)).await.unwrap_err();
        assert_eq!((status.code(), reason_of(&status).as_deref()), (Code::InvalidArgument, Some("INVALID_FIELD")));
    }
    assert_eq!(in_ledger(&ledger_db, &id).await, before, "the ledger was not touched");
    let got = client.get_account(bearer(GetAccountRequest { account_id: id.clone() }, &token)).await.unwrap();
    assert_eq!(got.into_inner().account.unwrap().status, AccountStatus::Active as i32);
}

#[tokio::test]
async fn a_ledger_ahead_of_the_record_is_repaired_and_never_answered_ok_unapplied() {
    let suite = Suite::start(true).await;
    let ledger_db = schema(&suite, "ledger").await;
    let account_db = schema(&suite, "account").await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let account = client.create_account(bearer(create("USD", "Mine"), &token)).await.unwrap().into_inner();
    let id = account.account.unwrap().id;
    let execute = |db: &DatabaseConnection, sql: String| {
        let db = db.clone();
        async move { db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap() }
    };

    // The ledger froze the account at a version the record never learned
    // (as after a commit lost between the two services).
    let frozen = AccountStatus::Frozen as i32;
    execute(&ledger_db, format!("UPDATE accounts SET status = {frozen}, version = version + 5 WHERE id = '{id}'"))
        .await;
    // Unfreeze sends the record's next version, which the ledger has
    // passed: it must go past the ledger's version, not answer OK unapplied.
    let unfreeze = UnfreezeAccountRequest { account_id: id.clone(), reason: "cleared".into() };
    let reply = client.unfreeze_account(bearer(unfreeze, &suite.operator)).await.unwrap().into_inner();
    assert_eq!(reply.account.unwrap().status, AccountStatus::Active as i32);
    assert_eq!(in_ledger(&ledger_db, &id).await.0, AccountStatus::Active as i64);

    // A change whose outcome was unknown is repaired within 10 s.
    execute(&ledger_db, format!("UPDATE accounts SET status = {frozen}, version = version + 5 WHERE id = '{id}'"))
        .await;
    execute(&account_db, format!("UPDATE accounts SET resync_due = true WHERE id = '{id}'")).await;
    let started = Instant::now();
    loop {
        let got = client.get_account(bearer(GetAccountRequest { account_id: id.clone() }, &token)).await.unwrap();
        if got.into_inner().account.unwrap().status == frozen {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not repaired within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn of_renames_racing_with_one_etag_exactly_one_is_answered_ok_and_it_is_what_stays() {
    let suite = Suite::start(true).await;
    let (_, token) = suite.customer().await;
    let mut client = suite.client();
    let account = client.create_account(bearer(create("USD", "Mine"), &token)).await.unwrap().into_inner();
    let account = account.account.unwrap();
    for round in 0..5 {
        let got = client.get_account(bearer(GetAccountRequest { account_id: account.id.clone() }, &token)).await;
        let etag = got.unwrap().into_inner().account.unwrap().etag;
        let renames: Vec<_> = (0..8)
            .map(|n| {
                let (mut client, token) = (suite.client(), token.clone());
                let rename = UpdateAccountRequest {
                    account_id: account.id.clone(),
                    etag: etag.clone(),
                    update_mask: mask("display_name"),
                    display_name: format!("Round {round} by {n}"),
                    ..Default::default()
                };
                tokio::spawn(async move { client.update_account(bearer(rename, &token)).await })
            })
            .collect();
        let mut answered_ok = Vec::new();
        for rename in renames {
            match rename.await.unwrap() {
                Ok(reply) => answered_ok.push(reply.into_inner().account.unwrap().display_name),
                Err(status) => {
                    assert_eq!((status.code(), reason_of(&status).as_deref()), (Code::Aborted, Some("ETAG_MISMATCH")));
                }
            }
        }
        assert_eq!(answered_ok.len(), 1, "round {round}: one etag, OK answers {answered_ok:?}");
        let got = client.get_account(bearer(GetAccountRequest { account_id: account.id.clone() }, &token)).await;
        assert_eq!(got.unwrap().into_inner().account.unwrap().display_name, answered_ok[0], "round {round}");
    }
}
