//! A listener's connections, in plaintext or TLS, for tonic's
//! `serve_with_incoming`.
//!
//! TLS handshakes run in tasks of their own, never in the accept loop: a
//! client that opens a connection and sends nothing (or a byte a minute)
//! holds up only itself, for at most [`HANDSHAKE_TIMEOUT`]; and at most
//! [`MAX_HANDSHAKES`] are under way at once, so a flood of half-open
//! handshakes costs bounded memory.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tonic::transport::server::Connected;

use crate::{Peer, ServerTls, Transport, identity_of};

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes under way at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 1024;

/// A served connection and who is on the other end.
pub struct Conn {
    io: Io,
    peer: Peer,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The connections of `listener`: TLS ones when `tls` is given (a client
/// that does not complete the handshake is dropped and counted), else
/// plaintext. Sockets get `TCP_NODELAY`: without it a response larger than
/// one write waits ~40 ms on Nagle's algorithm and a delayed ACK.
pub fn incoming(listener: TcpListener, tls: Option<ServerTls>) -> impl Stream<Item = io::Result<Conn>> + Send {
    let (sender, receiver) = mpsc::channel::<Conn>(64);
    tokio::spawn(accept(listener, tls, sender));
    futures::stream::unfold(receiver, |mut receiver| async move {
        let conn = receiver.recv().await?;
        Some((Ok(conn), receiver))
    })
}

async fn accept(listener: TcpListener, tls: Option<ServerTls>, sender: mpsc::Sender<Conn>) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = match &tls {
            Some(_) => match Arc::clone(&handshakes).acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
            None => None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // The server stopped taking connections (drain).
            () = sender.closed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &tls else {
            let peer = Peer { addr: Some(addr), transport: Transport::Plaintext };
            if sender.send(Conn { io: Io::Plain(tcp), peer }).await.is_err() {
                return;
            }
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return refused(&addr, "failed", &error),
                Err(_) => return refused(&addr, "timed out", &"no handshake within the timeout"),
            };
            let connection = stream.get_ref().1;
            let transport = match connection.peer_certificates().and_then(|chain| chain.first()) {
                Some(leaf) => Transport::MutualTls { identity: identity_of(leaf).map(Arc::from) },
                None => Transport::Tls,
            };
            let peer = Peer { addr: Some(addr), transport };
            let _ = sender.send(Conn { io: Io::Tls(Box::new(stream)), peer }).await;
        });
    }
}

fn refused(addr: &std::net::SocketAddr, outcome: &'static str, error: &dyn std::fmt::Display) {
    metrics::counter!("folio_tls_handshakes_refused_total", "outcome" => outcome).increment(1);
    tracing::debug!(%addr, %error, outcome, "TLS handshake refused");
}

impl Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Io::Tls(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Io::Tls(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Io::Tls(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(io) => io.is_write_vectored(),
            Io::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_flush(cx),
            Io::Tls(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Io::Tls(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
