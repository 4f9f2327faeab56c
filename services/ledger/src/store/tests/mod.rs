//! The store's contract, written once and run on PostgreSQL and on SQLite
//! (`store_test_suite!` makes `on_postgres::<test>` and `on_sqlite::<test>`
//! of each test): the same statements must mean the same on both, since
//! PostgreSQL runs production and SQLite runs `make run`. Batches are made by
//! the domain's rules, as the writer makes them, and read back through the
//! store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod accounts;
mod batches;
mod reads;

use std::collections::BTreeSet;

use folio_errors::FolioError;
use folio_testkit::TestDatabase;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use crate::domain::{AccountKind, Actor, BatchState, NewTransfer, Op, Transfer, tests::operator};
use crate::store;

/// A migrated ledger schema on a throw-away database.
pub struct Store {
    pub db: DatabaseConnection,
    _database: TestDatabase,
}

async fn open(database: TestDatabase) -> Store {
    let db = folio_storage::db::connect_url(&database.url, crate::SCHEMA, 4).await.expect("connect");
    crate::Migrator::up(&db, None).await.expect("migrate");
    Store { db, _database: database }
}

/// Runs each test of the suite on both backends.
macro_rules! store_test_suite {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$module::$test(super::open(folio_testkit::TestDatabase::postgres().await).await).await;
                }
            )*
        }

        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$module::$test(super::open(folio_testkit::TestDatabase::sqlite()).await).await;
                }
            )*
        }
    };
}

store_test_suite! {
    accounts::opening_is_idempotent_and_refuses_an_id_with_other_fields,
    accounts::an_account_needs_a_registered_asset,
    accounts::a_change_applies_only_past_the_last_version,
    accounts::closing_needs_zero_balances_and_a_closed_account_changes_no_more,
    accounts::assets_page_by_code_and_a_taken_code_is_refused,
    batches::a_written_batch_reads_back_as_the_rules_made_it,
    batches::accounts_lock_in_id_order_and_unknown_ids_are_absent,
    batches::a_resolved_hold_and_a_reversal_are_found_again,
    batches::holds_past_their_deadline_are_listed_for_the_sweeper,
    reads::a_statement_pages_in_account_order_and_windows_by_time,
    reads::totals_as_of_a_time_are_those_after_the_last_entry_before_it,
}

impl Store {
    /// Registers `code` (scale 2).
    async fn asset(&self, code: &str) {
        store::assets::create_asset(&self.db, code, 2, code).await.expect("register asset");
    }

    /// Opens `id`, owned by `u-<id>`, in USD.
    async fn account(&self, id: &str, kind: AccountKind) {
        store::accounts::open_account(&self.db, id, &format!("u-{id}"), "USD", kind, 0).await.expect("open");
    }

    /// Applies `ops` as an operator in one batch, as the writer does, with
    /// the batch clock at `at` (µs; `None`: the database's), and writes it.
    async fn commit_at(&self, at: Option<i64>, ops: Vec<Op>) -> Vec<Result<Option<Transfer>, FolioError>> {
        let tx = folio_storage::db::begin_write(&self.db, None).await.unwrap();
        let mut state = load(&tx, &ops).await;
        if let Some(at) = at {
            state.now = at;
        }
        let actor: Actor = operator();
        let results: Vec<_> = ops
            .iter()
            .map(|op| {
                let savepoint = state.savepoint();
                let result = state.apply(op, &actor);
                if result.is_err() {
                    state.rollback_to(savepoint);
                }
                result
            })
            .collect();
        store::write_batch(&tx, &mut state).await.unwrap();
        tx.commit().await.unwrap();
        // The answers with the sequences the write gave them.
        results
            .into_iter()
            .map(|result| {
                result.map(|made| made.map(|t| state.created.iter().find(|c| c.id == t.id).cloned().unwrap_or(t)))
            })
            .collect()
    }

    /// [`Store::commit_at`] the database's clock; every op must succeed.
    async fn commit(&self, ops: Vec<Op>) -> Vec<Transfer> {
        self.commit_at(None, ops).await.into_iter().map(|r| r.unwrap().unwrap()).collect()
    }

    /// The database clock (µs).
    async fn now(&self) -> i64 {
        folio_storage::db::now(&self.db).await.unwrap().timestamp_micros()
    }
}

/// The rows `ops` need, locked as the writer locks them.
async fn load(tx: &sea_orm::DatabaseTransaction, ops: &[Op]) -> BatchState {
    let (mut accounts, mut transfers) = (BTreeSet::new(), BTreeSet::new());
    let mut originals = BTreeSet::new();
    for op in ops {
        match op {
            Op::Transfer(NewTransfer::Movement(movement)) => {
                accounts.insert(movement.debit_account_id.clone());
                accounts.insert(movement.credit_account_id.clone());
            }
            Op::Transfer(NewTransfer::Resolution(resolution)) => {
                transfers.insert(resolution.pending_id.clone());
            }
            Op::Reverse { original, .. } => {
                originals.insert(original.clone());
            }
            Op::Expire(hold) => {
                transfers.insert(hold.clone());
            }
        }
    }
    let mut state = BatchState::default();
    state.now = folio_storage::db::now(tx).await.unwrap().timestamp_micros();
    let known = transfers.union(&originals).cloned().collect();
    for transfer in store::transfers_by_id(tx, &known, true).await.unwrap() {
        accounts.insert(transfer.debit_account_id.clone());
        accounts.insert(transfer.credit_account_id.clone());
        state.transfers.insert(transfer.id.clone(), transfer);
    }
    state.reversed = store::reversed_among(tx, &originals).await.unwrap().into_iter().collect();
    for account in store::lock_accounts(tx, &accounts).await.unwrap() {
        state.accounts.insert(account.id.clone(), account);
    }
    state.assets = store::asset_codes(tx).await.unwrap().into_iter().collect();
    state
}
