//! The store's contract, written once and run on PostgreSQL and on SQLite
//! (`store_test_suite!` makes `on_postgres::<test>` and `on_sqlite::<test>`
//! of each test): the same statements must mean the same on both, since
//! PostgreSQL runs production and SQLite runs `make run`. Batches are made by
//! the domain's rules, loaded and applied by the writer's own functions,
//! and read back through the store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod accounts;
mod batches;
mod reads;

use folio_errors::FolioError;
use folio_testkit::TestDatabase;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use crate::app::writer::{self, Lookup, Outcome};
use crate::domain::{AccountKind, Op, Transfer, tests::operator};
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

    /// Applies `ops` as an operator in one batch with the writer's own
    /// loading and per-operation rollback, the batch clock at `at` (µs;
    /// `None`: the database's), and writes it.
    async fn commit_at(&self, at: Option<i64>, ops: Vec<Op>) -> Vec<Result<Option<Transfer>, FolioError>> {
        let tx = folio_storage::db::begin_write(&self.db, None).await.unwrap();
        let refs: Vec<&Op> = ops.iter().collect();
        let mut state = writer::load(&tx, &refs, Lookup::Careful).await.unwrap();
        if let Some(at) = at {
            state.now = at;
        }
        let Outcome::Each(results) = writer::apply_part(&mut state, &ops, false, &operator()) else {
            unreachable!("a non-atomic batch answers each operation");
        };
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
