//! Database plumbing against real PostgreSQL and SQLite: schema isolation,
//! idempotent migrations, and the transaction helper's commit, rollback and
//! retry behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use folio_storage::db::{self, RetryPolicy, TxError, run_in_tx};
use folio_testkit::TestDatabase;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

mod widgets {
    use sea_orm_migration::prelude::*;

    pub struct Migrator;

    #[async_trait::async_trait]
    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(CreateWidgets)]
        }
    }

    #[derive(DeriveMigrationName)]
    struct CreateWidgets;

    #[derive(DeriveIden)]
    enum Widgets {
        Table,
        Id,
        Name,
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateWidgets {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Widgets::Table)
                        .col(ColumnDef::new(Widgets::Id).big_integer().not_null().primary_key())
                        .col(ColumnDef::new(Widgets::Name).string().not_null())
                        .to_owned(),
                )
                .await
        }
    }
}

async fn count_widgets(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM widgets"))
        .await
        .expect("count")
        .expect("row");
    row.try_get("", "n").expect("n")
}

async fn insert_widget(db: &impl ConnectionTrait, id: i64) -> Result<(), sea_orm::DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        match db.get_database_backend() {
            DbBackend::Postgres => "INSERT INTO widgets (id, name) VALUES ($1, 'w')",
            _ => "INSERT INTO widgets (id, name) VALUES (?, 'w')",
        },
        [id.into()],
    ))
    .await
    .map(|_| ())
}

async fn open(test_db: &TestDatabase, schema: &str) -> DatabaseConnection {
    let db = db::connect_url(&test_db.url, schema, 4).await.expect("connect");
    db::migrate::<widgets::Migrator>(&db).await.expect("migrate");
    db
}

#[tokio::test]
async fn postgres_schemas_of_two_services_stay_apart() {
    let test_db = TestDatabase::postgres().await;
    let ledger = open(&test_db, "ledger").await;
    let account = open(&test_db, "account").await;
    insert_widget(&ledger, 1).await.expect("insert");
    insert_widget(&ledger, 2).await.expect("insert");
    assert_eq!(count_widgets(&ledger).await, 2);
    assert_eq!(count_widgets(&account).await, 0, "account sees the ledger's rows");

    let tables = ledger
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'widgets' ORDER BY 1",
        ))
        .await
        .expect("tables");
    let schemas: Vec<String> = tables.iter().map(|row| row.try_get("", "table_schema").expect("schema")).collect();
    assert_eq!(schemas, ["account", "ledger"]);
}

#[tokio::test]
async fn migrations_run_twice_are_a_no_op_on_postgres() {
    let test_db = TestDatabase::postgres().await;
    migrations_run_twice_are_a_no_op(&test_db).await;
}

#[tokio::test]
async fn migrations_run_twice_are_a_no_op_on_sqlite() {
    migrations_run_twice_are_a_no_op(&TestDatabase::sqlite()).await;
}

async fn migrations_run_twice_are_a_no_op(test_db: &TestDatabase) {
    let db = open(test_db, "ledger").await;
    insert_widget(&db, 7).await.expect("insert");
    db::migrate::<widgets::Migrator>(&db).await.expect("second migration run");
    assert_eq!(count_widgets(&db).await, 1, "the second run must not recreate the table");
    let applied = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM seaql_migrations"))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(applied.try_get::<i64>("", "n").expect("n"), 1);
}

#[tokio::test]
async fn transaction_commits_on_ok_and_rolls_back_on_err_on_postgres() {
    let test_db = TestDatabase::postgres().await;
    commit_and_rollback(&open(&test_db, "ledger").await).await;
}

#[tokio::test]
async fn transaction_commits_on_ok_and_rolls_back_on_err_on_sqlite() {
    commit_and_rollback(&open(&TestDatabase::sqlite(), "ledger").await).await;
}

async fn commit_and_rollback(db: &DatabaseConnection) {
    let committed: Result<(), TxError<&str>> = run_in_tx(db, "test_commit", RetryPolicy::default(), |tx| async move {
        insert_widget(&*tx, 1).await?;
        Ok(())
    })
    .await;
    assert!(committed.is_ok());
    let aborted: Result<(), TxError<&str>> = run_in_tx(db, "test_abort", RetryPolicy::default(), |tx| async move {
        insert_widget(&*tx, 2).await?;
        Err(TxError::Abort("changed my mind"))
    })
    .await;
    assert!(matches!(aborted, Err(TxError::Abort("changed my mind"))));
    assert_eq!(count_widgets(db).await, 1, "the aborted insert must be rolled back");
}

/// Raises PostgreSQL's own serialization_failure (SQLSTATE 40001).
async fn force_serialization_failure(tx: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    tx.execute_unprepared("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END $$")
        .await
        .map(|_| ())
}

#[tokio::test]
async fn serialization_failures_are_retried_until_success() {
    let test_db = TestDatabase::postgres().await;
    let db = open(&test_db, "ledger").await;
    let attempts = Arc::new(AtomicU32::new(0));
    let result: Result<(), TxError<()>> = run_in_tx(&db, "test_retry", RetryPolicy::serializable(), |tx| {
        let attempts = Arc::clone(&attempts);
        async move {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            insert_widget(&*tx, i64::from(attempt)).await?;
            if attempt < 3 {
                force_serialization_failure(&*tx).await?;
            }
            Ok(())
        }
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(count_widgets(&db).await, 1, "only the successful attempt's insert commits");
}

#[tokio::test]
async fn retries_give_up_after_the_bound() {
    let test_db = TestDatabase::postgres().await;
    let db = open(&test_db, "ledger").await;
    let attempts = Arc::new(AtomicU32::new(0));
    let policy = RetryPolicy { max_attempts: 4, ..RetryPolicy::serializable() };
    let result: Result<(), TxError<()>> = run_in_tx(&db, "test_give_up", policy, |tx| {
        let attempts = Arc::clone(&attempts);
        async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            force_serialization_failure(&*tx).await?;
            Ok(())
        }
    })
    .await;
    match result {
        Err(TxError::Db(error)) => assert!(db::is_retryable(&error), "{error}"),
        other => panic!("expected the serialization failure back, got {other:?}"),
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_real_write_conflict_is_retried_to_success() {
    let test_db = TestDatabase::postgres().await;
    let db = open(&test_db, "ledger").await;
    insert_widget(&db, 1).await.expect("seed");
    // Many concurrent read-modify-write transactions at SERIALIZABLE on one
    // row: PostgreSQL aborts all but one of each overlapping pair; the helper
    // must retry every loser until each increment lands exactly once.
    let writers = 8;
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let policy = RetryPolicy { max_attempts: 50, ..RetryPolicy::serializable() };
                run_in_tx::<_, (), _, _>(&db, "test_conflict", policy, |tx| async move {
                    let row = tx
                        .query_one_raw(Statement::from_string(
                            DbBackend::Postgres,
                            "SELECT name FROM widgets WHERE id = 1",
                        ))
                        .await?
                        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("widget".into()))?;
                    let name: String = row.try_get("", "name")?;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    tx.execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "UPDATE widgets SET name = $1 WHERE id = 1",
                        [format!("{name}+").into()],
                    ))
                    .await?;
                    Ok(())
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("transaction");
    }
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, "SELECT name FROM widgets WHERE id = 1"))
        .await
        .expect("select")
        .expect("row");
    let name: String = row.try_get("", "name").expect("name");
    assert_eq!(name, format!("w{}", "+".repeat(writers)), "every increment exactly once");
}

#[tokio::test]
async fn database_clock_is_close_to_now() {
    let postgres = TestDatabase::postgres().await;
    let sqlite = TestDatabase::sqlite();
    for test_db in [&postgres, &sqlite] {
        let db = db::connect_url(&test_db.url, "ledger", 1).await.expect("connect");
        let now = db::now(&db).await.expect("clock");
        let skew = (now - chrono::Utc::now()).num_milliseconds().abs();
        assert!(skew < 5_000, "database clock {now} is {skew} ms from the local clock");
    }
}
