//! The suite through PgBouncer 1.18 in transaction mode (Debian's; no
//! prepared-statement support), as the production manifests run it behind
//! CloudNativePG's poolers: each service as its own role (no superuser), its
//! URL with `statement-cache-capacity=0`, the ledger's writer straight to the
//! server (DESIGN §2).

use folio_testkit::{Pgbouncer, TestDatabase};

use super::Stack;

/// The roles the pooled suite connects as, one per service, as in
/// production: not superusers, each allowed to make its schema in `database`
/// and leading to it by itself (no session state through the pooler).
async fn pooled_roles(database: &str) {
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(format!("{}/postgres", folio_testkit::postgres_base_url())).await.unwrap();
    for service in ["auth", "account", "ledger"] {
        let role = format!("folio_pooled_{service}");
        let create = format!("DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
        admin.execute_unprepared(&create).await.unwrap();
        admin.execute_unprepared(&format!("ALTER ROLE {role} NOSUPERUSER")).await.unwrap();
        admin.execute_unprepared(&format!("ALTER ROLE {role} SET search_path = {service}")).await.unwrap();
        admin.execute_unprepared(&format!("GRANT CONNECT, CREATE ON DATABASE {database} TO {role}")).await.unwrap();
    }
    admin.close().await.ok();
}

/// The four services on `db` through a PgBouncer of the test's own with
/// `server_connections` per role, so every pool of a service shares them.
/// Keep the pooler as long as the stack.
pub async fn pooled_stack(db: &TestDatabase, redis: Option<String>, server_connections: u32) -> (Stack, Pgbouncer) {
    let name = db.name().unwrap().to_owned();
    pooled_roles(&name).await;
    let base = folio_testkit::postgres_base_url();
    let server_port: u16 = base.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or(5432);
    let users = ["folio_pooled_auth", "folio_pooled_account", "folio_pooled_ledger"];
    let bouncer = Pgbouncer::start(server_port, &users, server_connections);
    let pooled = |service: &str| {
        format!("postgres://folio_pooled_{service}@127.0.0.1:{}/{name}?statement-cache-capacity=0", bouncer.port())
    };
    let direct = format!("postgres://folio_pooled_ledger@127.0.0.1:{server_port}/{name}");
    let each = [
        ("auth", "FOLIO__DATABASE__URL", pooled("auth")),
        ("account", "FOLIO__DATABASE__URL", pooled("account")),
        ("ledger", "FOLIO__DATABASE__URL", pooled("ledger")),
        ("ledger", "FOLIO__LEDGER__WRITER_DATABASE_URL", direct),
    ];
    let stack = Stack::start_with_each(Some(db), redis, &[], &each).await;
    (stack, bouncer)
}
