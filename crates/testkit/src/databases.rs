//! Throw-away databases: one PostgreSQL database or SQLite file per test.

use sea_orm::{ConnectionTrait, Database};

/// The PostgreSQL server tests use (`FOLIO_TEST_POSTGRES`, default local trust auth).
pub fn postgres_base_url() -> String {
    std::env::var("FOLIO_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The Redis server tests use (`FOLIO_TEST_REDIS`, default local).
pub fn redis_url() -> String {
    std::env::var("FOLIO_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A short unique name for keys, databases and emails.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    /// The URL services are given (`postgres://...` or `sqlite://...`).
    pub url: String,
    postgres_name: Option<String>,
    /// The server it lives on (`postgres://user@host:port`).
    base_url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A fresh PostgreSQL database on the test server.
    pub async fn postgres() -> Self {
        Self::postgres_at(&postgres_base_url()).await
    }

    /// A fresh PostgreSQL database on the server at `base_url`
    /// (`postgres://user@host:port`, trust authentication).
    pub async fn postgres_at(base_url: &str) -> Self {
        let name = unique("folio_test_");
        let admin = Database::connect(format!("{base_url}/postgres"))
            .await
            .expect("PostgreSQL must be running for the tests (see README)");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        admin.close().await.ok();
        Self { url: format!("{base_url}/{name}"), postgres_name: Some(name), base_url: base_url.to_owned(), _dir: None }
    }

    /// Its name on the PostgreSQL server.
    pub fn name(&self) -> Option<&str> {
        self.postgres_name.as_deref()
    }

    /// A fresh SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.sqlite").display());
        Self { url, postgres_name: None, base_url: String::new(), _dir: Some(dir) }
    }

    /// True for PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres_name.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let base_url = std::mem::take(&mut self.base_url);
        // Drop runs outside any runtime guarantee, so use a small one of our own
        // on a thread; FORCE ends connections a test left open.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(format!("{base_url}/postgres")).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    admin.close().await.ok();
                }
            });
        })
        .join();
    }
}
