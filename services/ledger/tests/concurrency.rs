//! Conservation under load: 64 parallel clients issue a random mix of every
//! transfer kind, some invalid, against one or two ledger instances on one
//! database; afterwards every invariant holds, every OK reply is stored
//! exactly as answered, and no rejected transfer left a trace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use folio_proto::ledger::{AccountKind, CreateTransferRequest, Transfer, TransferKind};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ConnectionTrait, Statement};
use support::{Suite, bearer, invariants, pending, posted, reason, resolve};

#[derive(Default)]
struct Ledgerbook {
    accepted: HashMap<String, Transfer>,
    rejected: Vec<(String, String)>,
    holds: Vec<String>,
}

async fn run_mix(suite: &Suite, clients: usize, duration: Duration) -> Ledgerbook {
    let bank = suite.system_account("USD").await;
    let euro = suite.system_account("EUR").await;
    let mut accounts = Vec::new();
    for i in 0..24 {
        let owner = uuid::Uuid::new_v4().to_string();
        let overdraft = if i % 4 == 0 { 500 } else { 0 };
        let account = suite.open(&owner, AccountKind::Customer, overdraft, "USD").await;
        suite.fund(&bank, &account, 2_000).await;
        accounts.push(account);
    }
    let accounts = Arc::new(accounts);
    let book = Arc::new(Mutex::new(Ledgerbook::default()));
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (accounts, book, token, euro) = (accounts.clone(), book.clone(), suite.writer.clone(), euro.clone());
            let mut client = suite.ledger_at(worker);
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(worker as u64);
                while Instant::now() < deadline {
                    let pick = |rng: &mut StdRng| accounts[rng.gen_range(0..accounts.len())].clone();
                    let (a, b) = (pick(&mut rng), pick(&mut rng));
                    let amount = rng.gen_range(1..400);
                    let known_hold = { book.lock().unwrap().holds.last().cloned() };
                    let request: CreateTransferRequest = match rng.gen_range(0..10) {
                        0..=3 => posted(&a, &b, amount),
                        4 | 5 => pending(&a, &b, amount, rng.gen_range(1..3)),
                        6 => resolve(&known_hold.unwrap_or_default(), TransferKind::PostPending, rng.gen_range(0..200)),
                        7 => resolve(&known_hold.unwrap_or_default(), TransferKind::VoidPending, 0),
                        8 => posted(&a, &euro, amount),
                        _ => match rng.gen_range(0..3) {
                            0 => posted(&a, &a, amount),
                            1 => posted(&a, &b, 0),
                            _ => posted(&a, &uuid::Uuid::new_v4().to_string(), amount),
                        },
                    };
                    let id = request.id.clone();
                    let kind = request.kind;
                    match client.create_transfer(bearer(request, &token)).await {
                        Ok(reply) => {
                            let transfer = reply.into_inner().transfer.unwrap();
                            let mut book = book.lock().unwrap();
                            if kind == TransferKind::Pending as i32 {
                                book.holds.push(transfer.id.clone());
                            }
                            book.accepted.insert(transfer.id.clone(), transfer);
                        }
                        Err(status) => {
                            assert_ne!(status.code(), tonic::Code::Internal, "{status:?}");
                            assert_ne!(status.code(), tonic::Code::Unknown, "{status:?}");
                            book.lock().unwrap().rejected.push((id, reason(&status)));
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    Arc::try_unwrap(book).ok().unwrap().into_inner().unwrap()
}

async fn verify(suite: &Suite, book: &Ledgerbook) {
    let db = suite.ledger_db().await;
    invariants::check(&db).await;
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT id, amount, kind FROM transfers"))
        .await
        .unwrap();
    let stored: HashMap<String, (i64, i16)> = rows
        .iter()
        .map(|r| (r.try_get("", "id").unwrap(), (r.try_get("", "amount").unwrap(), r.try_get("", "kind").unwrap())))
        .collect();
    for (id, transfer) in &book.accepted {
        let (amount, kind) = stored.get(id).unwrap_or_else(|| panic!("accepted transfer {id} is not stored"));
        assert_eq!(
            (*amount, i32::from(*kind)),
            (transfer.amount, transfer.kind),
            "transfer {id} differs from its reply"
        );
    }
    for (id, why) in &book.rejected {
        assert!(!stored.contains_key(id), "rejected transfer {id} ({why}) is stored");
    }
    let reasons: std::collections::BTreeSet<&str> = book.rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert!(book.accepted.len() > 200, "only {} transfers were accepted", book.accepted.len());
    for expected in ["SAME_ACCOUNT", "INVALID_AMOUNT", "ACCOUNT_NOT_FOUND", "ASSET_MISMATCH"] {
        assert!(reasons.contains(expected), "the mix never produced {expected}: {reasons:?}");
    }
}

#[tokio::test]
async fn sixty_four_clients_conserve_money_on_one_ledger() {
    let suite = Suite::start().await;
    let book = run_mix(&suite, 64, Duration::from_secs(4)).await;
    verify(&suite, &book).await;
}

#[tokio::test]
async fn two_ledger_instances_on_one_database_keep_every_invariant() {
    let suite = Suite::start_with(2, false).await;
    let book = run_mix(&suite, 64, Duration::from_secs(4)).await;
    verify(&suite, &book).await;
}

#[tokio::test]
async fn the_same_mix_holds_on_sqlite() {
    let suite = Suite::start_with(1, true).await;
    let book = run_mix(&suite, 16, Duration::from_secs(2)).await;
    verify(&suite, &book).await;
}
