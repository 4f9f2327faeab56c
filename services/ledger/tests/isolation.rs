//! DESIGN §5a: a transfer the database refuses fails alone. Text the
//! validator knows to be bad never reaches a batch (NUL, on both backends);
//! and when the store refuses a value the validator did not foresee (here a
//! trigger injected into the database, independent of the validator), the
//! coalesced writer finds the offending transfer, answers it alone, and
//! commits its neighbours — other customers' transfers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use folio_proto::ledger::{CreateTransfersRequest, NewTransfer, TransferKind, transfer_result};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use support::{Suite, bearer, invariants, posted, reason};
use tonic::Code;

/// Descriptions the injected fault refuses inside the batch statement.
const POISON: &str = "poison";

async fn inject_fault(suite: &Suite) {
    let db = suite.ledger_db().await;
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.description = 'poison' THEN RAISE EXCEPTION 'poisoned value' USING ERRCODE = '22023'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER poison BEFORE INSERT ON transfers FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
        _ => &["CREATE TRIGGER poison BEFORE INSERT ON transfers WHEN NEW.description = 'poison' \
                BEGIN SELECT RAISE(ABORT, 'poisoned value'); END"],
    };
    for sql in statements {
        db.execute_raw(Statement::from_string(db.get_database_backend(), (*sql).to_owned())).await.unwrap();
    }
}

fn new_transfer(debit: &str, credit: &str, amount: i64, description: &str) -> NewTransfer {
    NewTransfer {
        id: uuid::Uuid::new_v4().to_string(),
        debit_account_id: debit.to_owned(),
        credit_account_id: credit.to_owned(),
        amount,
        asset_code: "USD".into(),
        kind: TransferKind::Posted as i32,
        description: description.to_owned(),
        ..Default::default()
    }
}

async fn nul_text_is_refused_before_the_batch(sqlite: bool) {
    let suite = Suite::start_with(1, sqlite).await;
    let bank = suite.system_account("USD").await;
    let customer = suite.customer().await;
    let account = suite.open(&customer.id, folio_proto::ledger::AccountKind::Customer, 0, "USD").await;
    suite.fund(&bank, &account, 1_000).await;
    let mut ledger = suite.ledger();
    let transfers = vec![
        new_transfer(&account, &bank, 1, "good"),
        new_transfer(&account, &bank, 1, "bad\u{0}"),
        new_transfer(&account, &bank, 1, "good"),
    ];
    let ids: Vec<String> = transfers.iter().map(|t| t.id.clone()).collect();
    let reply = ledger
        .create_transfers(bearer(CreateTransfersRequest { transfers, atomic: false }, &customer.token))
        .await
        .expect("a non-atomic batch answers per transfer")
        .into_inner();
    let kinds: Vec<String> = reply
        .results
        .iter()
        .map(|r| match &r.result {
            Some(transfer_result::Result::Transfer(_)) => "transfer".to_owned(),
            Some(transfer_result::Result::Error(status)) => format!("error {}", status.code),
            None => "none".to_owned(),
        })
        .collect();
    assert_eq!(kinds, ["transfer", &format!("error {}", Code::InvalidArgument as i32), "transfer"]);
    let mut metadata_nul = posted(&account, &bank, 1);
    metadata_nul.metadata.insert("k".into(), "v\u{0}".into());
    let status = ledger.create_transfer(bearer(metadata_nul, &customer.token)).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "INVALID_FIELD"));
    let mut get = folio_proto::ledger::GetTransferRequest { transfer_id: ids[1].clone() };
    let status = ledger.get_transfer(bearer(get.clone(), &customer.token)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "a refused transfer leaves no record");
    get.transfer_id = ids[2].clone();
    ledger.get_transfer(bearer(get, &customer.token)).await.expect("the neighbour committed");
}

#[tokio::test]
async fn nul_text_is_refused_before_the_batch_on_postgres() {
    nul_text_is_refused_before_the_batch(false).await;
}

#[tokio::test]
async fn nul_text_is_refused_before_the_batch_on_sqlite() {
    nul_text_is_refused_before_the_batch(true).await;
}

async fn a_refused_value_fails_alone(sqlite: bool) {
    let suite = Arc::new(Suite::start_with(1, sqlite).await);
    inject_fault(&suite).await;
    let bank = suite.system_account("USD").await;
    let hostile = suite.customer().await;
    let normal = suite.customer().await;
    let hostile_account = suite.open(&hostile.id, folio_proto::ledger::AccountKind::Customer, 0, "USD").await;
    let normal_account = suite.open(&normal.id, folio_proto::ledger::AccountKind::Customer, 0, "USD").await;
    suite.fund(&bank, &hostile_account, 100_000).await;
    suite.fund(&bank, &normal_account, 100_000).await;

    // Non-atomic: the refused transfer answers alone, in place.
    let mut ledger = suite.ledger();
    let transfers = vec![
        new_transfer(&hostile_account, &bank, 1, "good"),
        new_transfer(&hostile_account, &bank, 1, POISON),
        new_transfer(&hostile_account, &bank, 1, "good"),
    ];
    let reply = ledger
        .create_transfers(bearer(CreateTransfersRequest { transfers, atomic: false }, &hostile.token))
        .await
        .expect("answered per transfer")
        .into_inner();
    let codes: Vec<Option<i32>> = reply
        .results
        .iter()
        .map(|r| match &r.result {
            Some(transfer_result::Result::Error(status)) => Some(status.code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [None, Some(Code::InvalidArgument as i32), None]);

    // Atomic: the whole call fails with the refused transfer's index, nothing written.
    let transfers = vec![
        new_transfer(&hostile_account, &bank, 1, "good"),
        new_transfer(&hostile_account, &bank, 1, "good"),
        new_transfer(&hostile_account, &bank, 1, POISON),
    ];
    let first = transfers[0].id.clone();
    let status = ledger
        .create_transfers(bearer(CreateTransfersRequest { transfers, atomic: true }, &hostile.token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
    assert_eq!(info.metadata.get("index").map(String::as_str), Some("2"));
    let get = folio_proto::ledger::GetTransferRequest { transfer_id: first };
    assert_eq!(ledger.get_transfer(bearer(get, &hostile.token)).await.unwrap_err().code(), Code::NotFound);

    // A hostile customer sends refused transfers while another sends
    // ordinary ones at the same time: none of the other's calls fails.
    let rounds = 60;
    let hostile_task = {
        let (suite, token, account, bank) =
            (suite.clone(), hostile.token.clone(), hostile_account.clone(), bank.clone());
        tokio::spawn(async move {
            let mut refused = 0;
            let calls: Vec<_> = (0..rounds)
                .map(|_| {
                    let mut ledger = suite.ledger();
                    let mut request = posted(&account, &bank, 1);
                    request.description = POISON.into();
                    let token = token.clone();
                    tokio::spawn(async move { ledger.create_transfer(bearer(request, &token)).await })
                })
                .collect();
            for call in calls {
                let status = call.await.unwrap().expect_err("a refused value is never OK");
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                refused += 1;
            }
            refused
        })
    };
    let normal_calls: Vec<_> = (0..rounds)
        .map(|_| {
            let mut ledger = suite.ledger();
            let request = posted(&normal_account, &bank, 1);
            let token = normal.token.clone();
            tokio::spawn(async move { ledger.create_transfer(bearer(request, &token)).await })
        })
        .collect();
    let mut collateral = Vec::new();
    for call in normal_calls {
        if let Err(status) = call.await.unwrap() {
            collateral.push(format!("{:?} {}", status.code(), reason(&status)));
        }
    }
    assert_eq!(hostile_task.await.unwrap(), rounds);
    assert!(collateral.is_empty(), "{} of {rounds} ordinary transfers failed: {collateral:?}", collateral.len());
    invariants::check(&suite.ledger_db().await).await;
}

#[tokio::test]
async fn a_refused_value_fails_alone_on_postgres() {
    a_refused_value_fails_alone(false).await;
}

#[tokio::test]
async fn a_refused_value_fails_alone_on_sqlite() {
    a_refused_value_fails_alone(true).await;
}

#[tokio::test]
async fn ledger_write_moves_money_but_does_not_read_it() {
    let suite = Suite::start().await;
    let bank = suite.system_account("USD").await;
    let customer = suite.customer().await;
    let account = suite.open(&customer.id, folio_proto::ledger::AccountKind::Customer, 0, "USD").await;
    let mut ledger = suite.ledger();
    let transfer = ledger
        .create_transfer(bearer(posted(&bank, &account, 5), &suite.write_only))
        .await
        .expect("ledger:write moves money")
        .into_inner()
        .transfer
        .unwrap();
    let balance = folio_proto::ledger::GetBalanceRequest { account_id: account.clone(), as_of: None };
    let status = ledger.get_balance(bearer(balance, &suite.write_only)).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "NOT_ACCOUNT_OWNER"));
    let get = folio_proto::ledger::GetTransferRequest { transfer_id: transfer.id };
    let status = ledger.get_transfer(bearer(get, &suite.write_only)).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "NOT_ACCOUNT_OWNER"));
}

#[tokio::test]
async fn a_page_token_from_one_instance_pages_on_another_and_a_forged_one_is_refused() {
    let suite = Suite::start_with(2, false).await;
    let bank = suite.system_account("USD").await;
    let customer = suite.customer().await;
    let account = suite.open(&customer.id, folio_proto::ledger::AccountKind::Customer, 0, "USD").await;
    for _ in 0..3 {
        suite.fund(&bank, &account, 1).await;
    }
    let list = |page_token: String| folio_proto::ledger::ListTransfersRequest {
        account_id: account.clone(),
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let first = suite.ledger_at(0).list_transfers(bearer(list(String::new()), &customer.token)).await.unwrap();
    let token = first.into_inner().next_page_token;
    assert!(!token.is_empty());
    let second = suite.ledger_at(1).list_transfers(bearer(list(token.clone()), &customer.token)).await;
    assert_eq!(second.expect("the other instance shares the key").into_inner().entries.len(), 1);
    // The same position without the service's seal.
    let unsealed = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, "s:0");
    let status = suite.ledger_at(1).list_transfers(bearer(list(unsealed), &customer.token)).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "INVALID_FIELD"));
}
