//! Fault drill: with the suite on PostgreSQL, the ledger process is killed
//! with SIGKILL while clients transfer through the gateway, then restarted.
//! Clients retry every unanswered transfer with the same id. Afterwards every
//! transfer answered OK exists exactly once, with exactly one event, no retry
//! created a duplicate, and money is conserved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use folio_proto::client::lazy_channel;
use folio_proto::{
    auth::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient},
    ledger::{
        AccountKind, CreateTransferRequest, OpenAccountRequest, TransferKind,
        ledger_admin_service_client::LedgerAdminServiceClient, ledger_service_client::LedgerServiceClient,
    },
};
use folio_testkit::{TestDatabase, probe::SpawnedBinary, unique};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Request;

fn binary(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let dir: PathBuf = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    dir.join(name).display().to_string()
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn killing_the_ledger_mid_traffic_loses_and_duplicates_nothing() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let (ledger_secret, gateway_secret, client_secret) = (unique("l-"), unique("g-"), unique("c-"));
    let declared = format!(
        "folio-ledger:{ledger_secret}:auth:internal;folio-gateway:{gateway_secret}:auth:internal;drill:{client_secret}:ledger:write ledger:read ledger:admin"
    );
    let auth = SpawnedBinary::start(
        &binary("folio-auth"),
        dir.path(),
        &[
            ("FOLIO__DATABASE__URL", &db.url),
            ("FOLIO__AUTH__KEY_ENCRYPTION_KEY", folio_testkit::KEY_ENCRYPTION_KEY),
            ("FOLIO__AUTH__SERVICE_ACCOUNTS", &declared),
        ],
    )
    .await;
    let auth_addr = auth.grpc_addr.to_string();
    let ledger_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ledger_addr = format!("127.0.0.1:{ledger_port}");
    let ledger_env = [
        ("FOLIO__DATABASE__URL", db.url.as_str()),
        ("FOLIO__SERVER__LISTEN_ADDR", ledger_addr.as_str()),
        ("FOLIO__UPSTREAMS__AUTH", auth_addr.as_str()),
        ("FOLIO__SERVICE_CLIENT__ID", "folio-ledger"),
        ("FOLIO__SERVICE_CLIENT__SECRET", ledger_secret.as_str()),
        ("FOLIO__LEDGER__BOOTSTRAP_ASSETS", "USD:2"),
    ];
    let mut ledger = SpawnedBinary::start(&binary("folio-ledger"), dir.path(), &ledger_env).await;
    let gateway = SpawnedBinary::start(
        &binary("folio-gateway"),
        dir.path(),
        &[
            ("FOLIO__UPSTREAMS__AUTH", auth_addr.as_str()),
            ("FOLIO__UPSTREAMS__LEDGER", ledger_addr.as_str()),
            ("FOLIO__SERVICE_CLIENT__ID", "folio-gateway"),
            ("FOLIO__SERVICE_CLIENT__SECRET", gateway_secret.as_str()),
            ("FOLIO__GATEWAY__EJECT_FOR_MS", "100"),
        ],
    )
    .await;
    let token = AuthServiceClient::new(lazy_channel(&auth_addr).unwrap())
        .issue_service_token(IssueServiceTokenRequest {
            client_id: "drill".into(),
            client_secret: client_secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;

    // Accounts are opened directly (the admin service is internal).
    let mut admin = LedgerAdminServiceClient::new(lazy_channel(&ledger_addr).unwrap());
    let mut accounts = Vec::new();
    for _ in 0..10 {
        let id = uuid::Uuid::new_v4().to_string();
        let request = OpenAccountRequest {
            account_id: id.clone(),
            owner_id: uuid::Uuid::new_v4().to_string(),
            asset_code: "USD".into(),
            kind: AccountKind::System as i32,
            overdraft_limit: 0,
        };
        for _ in 0..100 {
            if admin.open_account(bearer(request.clone(), &token)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        accounts.push(id);
    }
    let accounts = Arc::new(accounts);
    let answered: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    // Clients transfer until told to stop, which happens only after the
    // ledger was killed and came back, so the kill always lands mid-traffic.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gateway_addr = gateway.grpc_addr.to_string();
    let clients: Vec<_> = (0..8)
        .map(|worker| {
            let (accounts, answered, token, addr, stop) =
                (accounts.clone(), answered.clone(), token.clone(), gateway_addr.clone(), stop.clone());
            tokio::spawn(async move {
                let mut client = LedgerServiceClient::new(lazy_channel(&addr).unwrap());
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let debit = accounts[(worker + n) % accounts.len()].clone();
                    let credit = accounts[(worker + n + 1 + n % 3) % accounts.len()].clone();
                    let request = CreateTransferRequest {
                        id: uuid::Uuid::new_v4().to_string(),
                        debit_account_id: debit,
                        credit_account_id: credit,
                        amount: 1 + i64::try_from(n % 100).unwrap(),
                        asset_code: "USD".into(),
                        kind: TransferKind::Posted as i32,
                        ..Default::default()
                    };
                    // Retry with the same id until the ledger answers.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        match client.create_transfer(bearer(request.clone(), &token)).await {
                            Ok(reply) => {
                                let transfer = reply.into_inner().transfer.unwrap();
                                assert_eq!(transfer.amount, request.amount);
                                answered.lock().unwrap().insert(transfer.id, transfer.amount);
                                break;
                            }
                            Err(status) => {
                                assert!(
                                    matches!(
                                        status.code(),
                                        tonic::Code::Unavailable
                                            | tonic::Code::DeadlineExceeded
                                            | tonic::Code::Unknown
                                            | tonic::Code::Cancelled
                                            | tonic::Code::Internal
                                    ),
                                    "unexpected answer while the ledger restarts: {status:?}"
                                );
                                assert!(Instant::now() < deadline, "no answer within 60 s");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    ledger.child.start_kill().unwrap(); // SIGKILL
    let _ = ledger.child.wait().await;
    let killed_at = answered.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    ledger = SpawnedBinary::start(&binary("folio-ledger"), dir.path(), &ledger_env).await;
    let restarted_at = answered.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(killed_at > 0, "traffic was flowing before the kill");
    assert!(
        answered.len() > restarted_at,
        "traffic flowed again after the restart ({restarted_at} then {})",
        answered.len()
    );

    let store = folio_storage::db::connect_url(&db.url, "ledger", 1).await.unwrap();
    let rows = store
        .query_all_raw(Statement::from_string(
            store.get_database_backend(),
            "SELECT id, amount FROM transfers".to_owned(),
        ))
        .await
        .unwrap();
    let stored: HashMap<String, i64> =
        rows.iter().map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "amount").unwrap())).collect();
    assert_eq!(stored.len(), answered.len(), "transfers stored vs answered (duplicates or losses)");
    for (id, amount) in &answered {
        assert_eq!(stored.get(id), Some(amount), "answered transfer {id} is missing or differs");
    }
    // Every transfer answered OK has its event, written with it; no event
    // names a transfer that was not committed (DESIGN "Ledger events").
    let rows = store
        .query_all_raw(Statement::from_string(
            store.get_database_backend(),
            "SELECT transfer_id FROM events WHERE transfer_id IS NOT NULL".to_owned(),
        ))
        .await
        .unwrap();
    let mut evented: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        *evented.entry(row.try_get("", "transfer_id").unwrap()).or_default() += 1;
    }
    for id in answered.keys() {
        assert_eq!(evented.get(id), Some(&1), "answered transfer {id} has no event, or several");
    }
    assert!(evented.keys().all(|id| stored.contains_key(id)), "an event names a transfer that was not committed");
    let sums = store
        .query_one_raw(Statement::from_string(
            store.get_database_backend(),
            "SELECT CAST(SUM(credits_posted - debits_posted) AS BIGINT) AS posted, CAST(SUM(debits_posted) AS BIGINT) AS moved FROM accounts".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sums.try_get::<i64>("", "posted").unwrap(), 0, "money is conserved");
    assert_eq!(sums.try_get::<i64>("", "moved").unwrap(), answered.values().sum::<i64>());
    drop((auth, gateway, ledger));
}
