//! A TLS listener and client against each other over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, path::Path, time::Duration};

use folio_testkit::{Issued, TestCa};
use folio_tls::{ALPN_GRPC, ClientTls, ClientTlsSettings, Conn, Peer, ServerTls, Transport, incoming};
use futures::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tonic::transport::server::Connected;

/// Serves `tls` on a free port: every accepted connection's peer is sent on,
/// and the connection answers each byte it reads with the same byte.
async fn serve(tls: Option<ServerTls>) -> (SocketAddr, mpsc::UnboundedReceiver<Peer>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (peers, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut connections = Box::pin(incoming(listener, tls));
        while let Some(Ok(conn)) = connections.next().await {
            peers.send(conn.connect_info()).unwrap();
            tokio::spawn(echo(conn));
        }
    });
    (addr, receiver)
}

async fn echo(mut conn: Conn) {
    let mut byte = [0u8; 1];
    while conn.read_exact(&mut byte).await.is_ok() {
        if conn.write_all(&byte).await.is_err() {
            return;
        }
    }
}

fn client(ca: &Path, identity: Option<&Issued>) -> ClientTls {
    let settings = ClientTlsSettings {
        tls_ca_file: Some(ca.to_path_buf()),
        tls_cert_file: identity.map(|i| i.cert.clone()),
        tls_key_file: identity.map(|i| i.key.clone()),
    };
    ClientTls::from_settings(&settings).unwrap().unwrap()
}

/// Connects, completes a round trip, and returns the server's leaf certificate.
async fn round_trip(addr: SocketAddr, tls: &ClientTls) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = tls.connect(tcp, "127.0.0.1").await?;
    stream.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    let leaf = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).unwrap();
    Ok(leaf.to_vec())
}

fn tls_server(server: &Issued) -> ServerTls {
    ServerTls::load(&server.cert, &server.key, None, ALPN_GRPC).unwrap()
}

fn mutual_server(ca: &TestCa, server: &Issued) -> ServerTls {
    ServerTls::load(&server.cert, &server.key, Some(&ca.ca_file()), ALPN_GRPC).unwrap()
}

#[tokio::test]
async fn a_client_certificate_gives_the_connection_its_folio_identity() {
    let ca = TestCa::new("folio");
    let (server, account) = (ca.issue("ledger", "ledger"), ca.issue("account", "account"));
    let (addr, mut peers) = serve(Some(mutual_server(&ca, &server))).await;
    round_trip(addr, &client(&ca.ca_file(), Some(&account))).await.unwrap();
    let peer = peers.recv().await.unwrap();
    assert_eq!(peer.identity(), Some("spiffe://folio/account"));
    assert!(peer.is_mutual());
}

#[tokio::test]
async fn a_certificate_naming_no_folio_identity_is_mutual_without_an_identity() {
    let ca = TestCa::new("folio");
    let server = ca.issue("ledger", "ledger");
    let anonymous = ca.issue_for(None, &["localhost"], "anonymous");
    let (addr, mut peers) = serve(Some(mutual_server(&ca, &server))).await;
    round_trip(addr, &client(&ca.ca_file(), Some(&anonymous))).await.unwrap();
    assert_eq!(peers.recv().await.unwrap().transport, Transport::MutualTls { identity: None });
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_or_with_one_from_another_ca() {
    let ca = TestCa::new("folio");
    let other = TestCa::new("other");
    let server = ca.issue("ledger", "ledger");
    let impostor = other.issue("gateway", "gateway");
    let (addr, mut peers) = serve(Some(mutual_server(&ca, &server))).await;
    assert!(round_trip(addr, &client(&ca.ca_file(), None)).await.is_err(), "no client certificate");
    assert!(round_trip(addr, &client(&ca.ca_file(), Some(&impostor))).await.is_err(), "another CA's certificate");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(peers.try_recv().is_err(), "no refused connection reaches the server");
}

#[tokio::test]
async fn a_plaintext_client_is_refused_and_a_client_that_trusts_another_ca_refuses_the_server() {
    let ca = TestCa::new("folio");
    let server = ca.issue("gateway", "gateway");
    let (addr, mut peers) = serve(Some(tls_server(&server))).await;
    // A plaintext HTTP/2 preface is not a ClientHello: the server closes.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await.unwrap();
    assert!(!answer.starts_with(b"PRI") && !answer.windows(4).any(|w| w == b"HTTP"), "{answer:?}");
    let other = TestCa::new("other");
    assert!(round_trip(addr, &client(&other.ca_file(), None)).await.is_err());
    round_trip(addr, &client(&ca.ca_file(), None)).await.unwrap();
    assert_eq!(peers.recv().await.unwrap().transport, Transport::Tls);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_holds_up_no_one_else() {
    let ca = TestCa::new("folio");
    let server = ca.issue("gateway", "gateway");
    let (addr, _peers) = serve(Some(tls_server(&server))).await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(&[0x16, 0x03, 0x01]).await.unwrap(); // the start of a record, then nothing
        stalled.push(socket);
    }
    let answered = tokio::time::timeout(Duration::from_secs(2), round_trip(addr, &client(&ca.ca_file(), None))).await;
    assert!(matches!(answered, Ok(Ok(_))), "{answered:?}");
}

#[tokio::test]
async fn replaced_certificate_files_are_served_to_new_connections_without_a_restart() {
    let ca = TestCa::new("folio");
    let first = ca.issue("gateway", "gateway");
    let (addr, _peers) = serve(Some(tls_server(&first))).await;
    let client = client(&ca.ca_file(), None);
    let before = round_trip(addr, &client).await.unwrap();
    // A connection opened before the renewal stays up across it.
    let mut open = client.connect(TcpStream::connect(addr).await.unwrap(), "127.0.0.1").await.unwrap();

    // A half-done renewal (the new certificate, the old key) is not taken.
    let renewed = ca.issue("gateway", "renewed");
    std::fs::copy(&renewed.cert, &first.cert).unwrap();
    tokio::time::sleep(folio_tls::RELOAD_INTERVAL * 3).await;
    assert_eq!(round_trip(addr, &client).await.unwrap(), before, "a mismatched pair is refused");

    std::fs::copy(&renewed.key, &first.key).unwrap();
    let deadline = tokio::time::Instant::now() + folio_tls::RELOAD_INTERVAL * 5;
    loop {
        let now = round_trip(addr, &client).await.unwrap();
        if now != before {
            assert_eq!(now, pem_der(&renewed.cert), "the new certificate is the renewed one");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open.write_all(b"y").await.unwrap();
    let mut byte = [0u8; 1];
    open.read_exact(&mut byte).await.unwrap();
    assert_eq!(&byte, b"y");
}

fn pem_der(path: &Path) -> Vec<u8> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}
