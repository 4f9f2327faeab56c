//! Encryption in transit (DESIGN §6), end to end with the services as
//! processes: TLS at the gateway, mutual TLS between services, identities
//! from certificates, certificates renewed under load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    error::Error as _,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use folio_proto::{
    auth::{
        GetJwksRequest, IssueServiceTokenRequest, ListRevocationsRequest, ListSessionsRequest, LoginRequest,
        auth_internal_service_client::AuthInternalServiceClient, auth_service_client::AuthServiceClient,
    },
    client::{lazy_channel, lazy_channel_with},
    ledger::{GetBalanceRequest, SetOverdraftLimitRequest, ledger_admin_service_client::LedgerAdminServiceClient},
};
use folio_testkit::{Issued, TestCa};
use folio_tls::{ClientTls, ClientTlsSettings};
use support::{PASSWORD, Stack, bearer, hostile::describe};
use tonic::{Code, Request};

/// TLS to `addr` trusting `ca`, showing `identity` when given.
fn client(ca: &Path, identity: Option<&Issued>) -> ClientTls {
    let settings = ClientTlsSettings {
        tls_ca_file: Some(ca.to_path_buf()),
        tls_cert_file: identity.map(|i| i.cert.clone()),
        tls_key_file: identity.map(|i| i.key.clone()),
    };
    ClientTls::from_settings(&settings).unwrap().unwrap()
}

fn channel(addr: SocketAddr, tls: &ClientTls) -> tonic::transport::Channel {
    lazy_channel_with(&addr.to_string(), Some(tls)).unwrap()
}

/// The connection itself was refused: no service answered (a service's
/// answer carries a Folio reason). With TLS 1.3 the client finishes its side
/// of the handshake before the server checks its certificate, so the
/// refusal arrives as the connection's end, which tonic reports as
/// UNAVAILABLE, UNKNOWN or CANCELLED; a plaintext client reads the server's
/// TLS alert as a malformed HTTP/2 frame, which its own library calls INTERNAL.
fn assert_refused_by_tls(status: &tonic::Status) {
    let transport_failure =
        matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled);
    assert!(transport_failure && status.source().is_some(), "not a refused connection: {status:?}");
    assert_eq!(folio_errors::reason_of(status), None, "a service answered: {status:?}");
}

/// A new customer signs in, gets an account funded with `amount` by the
/// operator, and reads it back: every hop of the suite carried the journey.
async fn assert_money_moves(stack: &Stack, amount: i64) {
    let (_, customer) = stack.customer().await;
    let operator = stack.operator().await;
    let account = stack.funded(&customer, &operator, amount).await;
    let request = bearer(GetBalanceRequest { account_id: account, ..Default::default() }, &customer);
    let balance = stack.ledger().get_balance(request).await.unwrap().into_inner().balance.unwrap();
    assert_eq!(balance.posted, amount);
}

/// A token of the account service, whose scopes include `ledger:admin`.
async fn account_service_token(stack: &Stack) -> String {
    let request = IssueServiceTokenRequest {
        client_id: "folio-account".into(),
        client_secret: stack.service_secrets[0].clone(),
        scopes: Vec::new(),
    };
    stack.auth().issue_service_token(request).await.unwrap().into_inner().access_token
}

/// `LedgerAdminService.SetOverdraftLimit` of an account that does not exist
/// (`ACCOUNT_NOT_FOUND` for a caller let through), at `addr` over `tls`.
async fn set_overdraft(addr: SocketAddr, tls: &ClientTls, token: &str) -> Result<(), tonic::Status> {
    let request =
        SetOverdraftLimitRequest { account_id: uuid::Uuid::now_v7().to_string(), overdraft_limit: 0, version: 0 };
    LedgerAdminServiceClient::new(channel(addr, tls)).set_overdraft_limit(bearer(request, token)).await.map(|_| ())
}

/// `AuthInternalService.ListRevocations` at `addr` over `tls`.
async fn revocations(addr: SocketAddr, tls: &ClientTls, token: &str) -> Result<(), tonic::Status> {
    let request = bearer(ListRevocationsRequest { since_version: 0 }, token);
    AuthInternalServiceClient::new(channel(addr, tls)).list_revocations(request).await.map(|_| ())
}

#[tokio::test]
async fn the_journey_runs_encrypted_end_to_end_and_plaintext_is_refused_everywhere() {
    let ca = TestCa::new("folio");
    let stack = Stack::start_encrypted(&ca, None, None, &[]).await;
    // Through the TLS gateway, over mutual TLS inside: sign-in, accounts, money.
    assert_money_moves(&stack, 500).await;

    for (port, addr) in [("gateway", stack.gateway), ("auth", stack.auth_addr), ("ledger", stack.ledger_addr)] {
        let mut plaintext = AuthServiceClient::new(lazy_channel(&addr.to_string()).unwrap());
        let refused = plaintext.get_jwks(GetJwksRequest::default()).await.expect_err(port);
        assert_refused_by_tls(&refused);
    }
    // An internal port wants a client certificate; the gateway's does not.
    let anonymous = client(&ca.ca_file(), None);
    let mut at_auth = AuthServiceClient::new(channel(stack.auth_addr, &anonymous));
    let refused = at_auth.get_jwks(GetJwksRequest::default()).await.map(|_| ()).unwrap_err();
    assert_refused_by_tls(&refused);
    let mut at_gateway = AuthServiceClient::new(channel(stack.gateway, &anonymous));
    at_gateway.get_jwks(GetJwksRequest::default()).await.unwrap();
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused_at_the_handshake() {
    let ca = TestCa::new("folio");
    let stack = Stack::start_encrypted(&ca, None, None, &[]).await;
    let token = account_service_token(&stack).await;
    let other = TestCa::new("other");
    let impostor = client(&ca.ca_file(), Some(&other.issue("account", "account")));
    let refused = set_overdraft(stack.ledger_addr, &impostor, &token).await.unwrap_err();
    assert_refused_by_tls(&refused);
    // The same call with the account service's own certificate gets through.
    let account =
        client(&ca.ca_file(), Some(&Issued { cert: ca.dir().join("account.pem"), key: ca.dir().join("account.key") }));
    let answered = set_overdraft(stack.ledger_addr, &account, &token).await.unwrap_err();
    assert_eq!(answered.code(), Code::NotFound, "{}", describe(&answered));
}

#[tokio::test]
async fn internal_apis_answer_only_the_identities_that_need_them_whatever_the_token() {
    let ca = TestCa::new("folio");
    let stack = Stack::start_encrypted(&ca, None, None, &[]).await;
    let token = account_service_token(&stack).await;
    // The gateway's certificate with a token that has `ledger:admin`.
    let gateway = client(&ca.ca_file(), Some(&ca.issue("gateway", "gateway-as-caller")));
    let refused = set_overdraft(stack.ledger_addr, &gateway, &token).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{}", describe(&refused));
    assert_eq!(folio_errors::reason_of(&refused).as_deref(), Some("IDENTITY_NOT_ALLOWED"));
    let account = client(&ca.ca_file(), Some(&ca.issue("account", "account-as-caller")));
    let answered = set_overdraft(stack.ledger_addr, &account, &token).await.unwrap_err();
    assert_eq!(answered.code(), Code::NotFound, "the account service is let through: {}", describe(&answered));

    // The revocation list: for the services that verify tokens only.
    let stranger = client(&ca.ca_file(), Some(&ca.issue("reports", "reports")));
    let nameless = client(&ca.ca_file(), Some(&ca.issue_for(None, &["localhost"], "nameless")));
    for (who, tls) in [("spiffe://folio/reports", &stranger), ("a certificate naming no identity", &nameless)] {
        let refused = revocations(stack.auth_addr, tls, &token).await.unwrap_err();
        assert_eq!(folio_errors::reason_of(&refused).as_deref(), Some("IDENTITY_NOT_ALLOWED"), "{who}");
    }
    let ledger = client(&ca.ca_file(), Some(&ca.issue("ledger", "ledger-as-caller")));
    revocations(stack.auth_addr, &ledger, &token).await.unwrap();
}

#[tokio::test]
async fn a_client_ip_is_believed_from_the_gateways_certificate_only() {
    let ca = TestCa::new("folio");
    let stack = Stack::start_encrypted(&ca, None, None, &[]).await;
    let (email, _) = stack.customer().await;
    // The gateway's own token, as a caller that saw it on the wire would hold it.
    let stolen = IssueServiceTokenRequest {
        client_id: folio_tokens::GATEWAY_CLIENT_ID.into(),
        client_secret: stack.service_secrets[2].clone(),
        scopes: Vec::new(),
    };
    let stolen = stack.auth().issue_service_token(stolen).await.unwrap().into_inner().access_token;
    let login_at_auth = |identity: &str, claimed_ip: &str, voucher: Option<&str>| {
        let tls = client(&ca.ca_file(), Some(&ca.issue(identity, &folio_testkit::unique(identity))));
        let mut request = Request::new(LoginRequest { email: email.clone(), password: PASSWORD.into() });
        request.metadata_mut().insert(folio_tokens::CLIENT_IP_HEADER, claimed_ip.parse().unwrap());
        if let Some(voucher) = voucher {
            let value = format!("Bearer {voucher}").parse().unwrap();
            request.metadata_mut().insert(folio_tokens::GATEWAY_TOKEN_HEADER, value);
        }
        let mut auth = AuthServiceClient::new(channel(stack.auth_addr, &tls));
        async move {
            let token = auth.login(request).await.unwrap().into_inner().access_token;
            let sessions = auth.list_sessions(bearer(ListSessionsRequest::default(), &token)).await.unwrap();
            sessions.into_inner().sessions.into_iter().find(|s| s.current).unwrap().client_ip
        }
    };
    let forged = login_at_auth("account", "203.0.113.7", Some(&stolen)).await;
    assert_eq!(forged, "127.0.0.1", "claimed by the account service with the gateway's token");
    let told = login_at_auth("gateway", "198.51.100.8", None).await;
    assert_eq!(told, "198.51.100.8", "told by the gateway, whose certificate is enough");
}

#[tokio::test]
async fn certificates_renewed_under_load_drop_no_call_and_new_connections_see_them() {
    let ca = TestCa::new("folio");
    let limits = [
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_RPS", "100000"),
        ("FOLIO__GATEWAY__RATE_LIMIT__PER_PRINCIPAL_BURST", "100000"),
    ];
    let stack = Arc::new(Stack::start_encrypted(&ca, None, None, &limits).await);
    let (_, customer) = stack.customer().await;
    let operator = stack.operator().await;
    let account = stack.funded(&customer, &operator, 100).await;
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..6 {
        let (stack, customer, account) = (Arc::clone(&stack), customer.clone(), account.clone());
        let (calls, failures, stop) = (Arc::clone(&calls), Arc::clone(&failures), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let mut ledger = stack.ledger();
            for round in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                // Half the workers reconnect every few calls: new TLS handshakes throughout.
                if worker % 2 == 0 && round % 5 == 0 {
                    ledger = stack.ledger();
                }
                let request = GetBalanceRequest { account_id: account.clone(), ..Default::default() };
                match ledger.get_balance(bearer(request, &customer)).await {
                    Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        eprintln!("failed under rotation: {}", describe(&status));
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = (leaf(stack.gateway, &client(&ca.ca_file(), None)).await, leaf_of_ledger(&stack, &ca).await);
    // Renew the gateway's and the ledger's certificates the way a secret
    // volume does: each file replaced whole.
    let renewed = [renew(&ca, "gateway"), renew(&ca, "ledger")];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = (leaf(stack.gateway, &client(&ca.ca_file(), None)).await, leaf_of_ledger(&stack, &ca).await);
        if now.0 == renewed[0] && now.1 == renewed[1] {
            break;
        }
        assert!(now.0 == before.0 || now.0 == renewed[0], "the gateway serves a certificate it was never given");
        assert!(tokio::time::Instant::now() < deadline, "renewed certificates were not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "calls failed while certificates were renewed");
    assert!(calls.load(Ordering::Relaxed) > 50, "the load ran: {} calls", calls.load(Ordering::Relaxed));
}

/// Issues `service` a new certificate and moves it over the files it serves
/// (key first, then certificate, each by rename), returning its DER.
fn renew(ca: &TestCa, service: &str) -> Vec<u8> {
    let next = ca.issue(service, &format!("{service}-next"));
    let der = der(&next.cert);
    std::fs::rename(&next.key, ca.dir().join(format!("{service}.key"))).unwrap();
    std::fs::rename(&next.cert, ca.dir().join(format!("{service}.pem"))).unwrap();
    der
}

fn der(pem: &Path) -> Vec<u8> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_file(pem).unwrap().to_vec()
}

/// The certificate a new TLS connection to `addr` is shown.
async fn leaf(addr: SocketAddr, tls: &ClientTls) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tls.connect(tcp, "127.0.0.1").await.unwrap();
    stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).unwrap().to_vec()
}

async fn leaf_of_ledger(stack: &Stack, ca: &TestCa) -> Vec<u8> {
    let account = Issued { cert: ca.dir().join("account.pem"), key: ca.dir().join("account.key") };
    leaf(stack.ledger_addr, &client(&ca.ca_file(), Some(&account))).await
}

#[tokio::test]
async fn the_suite_runs_on_postgres_with_verify_full_and_on_rediss() {
    let ca = TestCa::new("folio");
    let postgres = folio_testkit::TlsPostgres::start(&ca);
    let redis = folio_testkit::OwnRedis::start_tls(&ca);
    let database = postgres.url(&ca, "localhost");
    let ca_file = ca.ca_file().display().to_string();
    let env = [
        ("FOLIO__DATABASE__URL", database.as_str()),
        ("FOLIO__REDIS__URL", &redis.url()),
        ("FOLIO__REDIS__TLS_CA_FILE", &ca_file),
    ];
    let stack = Stack::start_encrypted(&ca, None, None, &env).await;
    assert_money_moves(&stack, 700).await;

    // Every client connection the services hold is encrypted.
    let db = folio_storage::db::connect_url(&database, "public", 1).await.unwrap();
    let sql = "SELECT CAST(COUNT(*) FILTER (WHERE s.ssl) AS BIGINT) AS encrypted, \
               CAST(COUNT(*) FILTER (WHERE NOT s.ssl) AS BIGINT) AS plaintext \
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'client backend'";
    use sea_orm::ConnectionTrait;
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    let (encrypted, plaintext): (i64, i64) =
        (row.try_get("", "encrypted").unwrap(), row.try_get("", "plaintext").unwrap());
    assert!(encrypted > 3, "the services' connections: {encrypted} encrypted");
    assert_eq!(plaintext, 0);

    // A server whose certificate does not chain to the configured CA is refused.
    let other = TestCa::new("other");
    assert!(folio_storage::db::connect_url(&postgres.url(&other, "localhost"), "public", 1).await.is_err());
    let redis_elsewhere = folio_storage::cache::RedisCache::connect_with(&redis.url(), Some(&other.ca_file())).await;
    assert!(redis_elsewhere.is_err(), "Redis with a certificate of another CA");
}

#[tokio::test]
async fn the_tls_front_door_negotiates_grpc_over_h2_and_grpc_web_over_http1_by_alpn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = TestCa::new("folio");
    let stack = Stack::start_encrypted(&ca, None, None, &[]).await;
    let connect = |alpn: &'static [u8]| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls_pki_types::CertificateDer::from(der(&ca.ca_file()))).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(folio_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let gateway = stack.gateway;
        async move {
            let tcp = tokio::net::TcpStream::connect(gateway).await.unwrap();
            connector.connect(rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap()
        }
    };
    let h2 = connect(b"h2").await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // A browser without HTTP/2: gRPC-Web over HTTP/1.1 inside TLS.
    let mut http1 = connect(b"http/1.1").await;
    assert_eq!(http1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let empty_message = [0u8, 0, 0, 0, 0];
    let head = format!(
        "POST /folio.auth.v1.AuthService/GetJwks HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        empty_message.len()
    );
    http1.write_all(head.as_bytes()).await.unwrap();
    http1.write_all(&empty_message).await.unwrap();
    let mut answer = Vec::new();
    let _ = http1.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("grpc-status:0"), "the call succeeded: {text}");
}
