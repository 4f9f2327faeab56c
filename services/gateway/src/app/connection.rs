//! One HTTP/2 connection per upstream endpoint, shared by every call to it,
//! spoken with the `h2` crate directly: a call opens a stream, writes its
//! (already read) request body inline and gets the response with a body that
//! hands frames on as they come. hyper-util's pooled client did the same
//! with a pool checkout, a URI key and a spawned task per request body on
//! every call (a fifth of the gateway's CPU per proxied call in the profile
//! of issue 13).

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use bytes::Bytes;
use folio_tls::ClientTls;
use h2::client::SendRequest;
use http_body::{Body, Frame};

/// What one call's answer may have in flight before its reader takes it.
const STREAM_WINDOW_BYTES: u32 = 1 << 20;
/// The largest HTTP/2 flow-control window (2^31 - 1).
const MAX_WINDOW_BYTES: u32 = (1 << 31) - 1;
/// How long connecting to an endpoint may take before it counts as refused.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The header block an upstream's answer may have before the connection it
/// shares with other calls would be torn down: a header block over the
/// limit is a connection error in HTTP/2 (the HPACK state cannot be trusted
/// after it), so the limit is set far above anything an upstream answers,
/// and oversized values are cut on the way out instead (`bound_headers`).
const MAX_HEADER_LIST_BYTES: u32 = 1 << 20;

/// An endpoint could not be reached: nothing was sent (try another).
#[derive(Debug, thiserror::Error)]
#[error("connecting to {0} failed: {1}")]
pub struct ConnectError(SocketAddr, String);

/// Which connection to an endpoint a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Unary calls: short, many at once.
    Unary,
    /// Server streams: long-lived. They have a connection of their own, so
    /// hundreds of open streams never fill the stream slots (the upstream's
    /// `max_concurrent_streams`) that unary calls need.
    Stream,
}

/// A sender per endpoint and lane.
type Open = HashMap<(SocketAddr, Lane), SendRequest<Bytes>>;

/// The last failed connect of an endpoint and lane: when, and why.
type LastFailure = Option<(Instant, String)>;

/// The connect lock of each endpoint and lane, holding its last failure.
type ConnectSlots = HashMap<(SocketAddr, Lane), Arc<tokio::sync::Mutex<LastFailure>>>;

/// Connections to every endpoint this gateway has called.
#[derive(Clone, Default)]
pub struct Connections {
    /// TLS to the upstreams (mutual, with the gateway's certificate), when configured.
    tls: Option<ClientTls>,
    open: Arc<Mutex<Open>>,
    /// One connect at a time per endpoint and lane: a burst of calls to an
    /// endpoint whose connection broke makes one new connection, not one
    /// each, and an endpoint that takes no connection holds up only its own
    /// callers (one lock for the whole gateway made a call to a healthy
    /// upstream wait out every queued connect to a dead one).
    connecting: Arc<Mutex<ConnectSlots>>,
}

impl Connections {
    /// Connections over TLS when `tls` is given, else plaintext.
    pub fn new(tls: Option<ClientTls>) -> Self {
        Self { tls, ..Self::default() }
    }

    /// Sends `request` with `body` on `sender` (from [`Connections::ready`])
    /// and waits for the response's head.
    pub async fn send(
        mut sender: SendRequest<Bytes>,
        request: http::Request<()>,
        body: Bytes,
    ) -> Result<http::Response<UpstreamBody>, h2::Error> {
        let end_of_stream = body.is_empty();
        let (response, mut stream) = sender.send_request(request, end_of_stream)?;
        if !end_of_stream {
            stream.send_data(body, true)?;
        }
        let response = response.await?;
        Ok(response.map(|recv| UpstreamBody { recv, data_done: false }))
    }

    /// A sender on a live connection to `addr` (whose certificate names
    /// `host`), connecting when there is none.
    pub async fn ready(&self, addr: SocketAddr, host: &str, lane: Lane) -> Result<SendRequest<Bytes>, ConnectError> {
        if let Some(sender) = self.cached(addr, lane)
            && let Ok(ready) = sender.ready().await
        {
            return Ok(ready);
        }
        let slot = self.slot(addr, lane);
        let waiting_since = Instant::now();
        let mut last_failure = slot.lock().await;
        // Another call may have connected while this one waited, or failed
        // to: then this one fails too rather than wait out another attempt.
        if let Some(sender) = self.cached(addr, lane)
            && let Ok(ready) = sender.ready().await
        {
            return Ok(ready);
        }
        if let Some((at, why)) = last_failure.as_ref()
            && *at >= waiting_since
        {
            return Err(ConnectError(addr, why.clone()));
        }
        let sender = match connect(addr, host, self.tls.as_ref()).await {
            Ok(sender) => sender,
            Err(error) => {
                *last_failure = Some((Instant::now(), error.1.clone()));
                return Err(error);
            }
        };
        *last_failure = None;
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert((addr, lane), sender.clone());
        sender.ready().await.map_err(|error| ConnectError(addr, error.to_string()))
    }

    /// The connect lock of `addr` and `lane` (endpoints are few: the
    /// upstreams' addresses, two lanes each).
    fn slot(&self, addr: SocketAddr, lane: Lane) -> Arc<tokio::sync::Mutex<LastFailure>> {
        let mut slots = self.connecting.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry((addr, lane)).or_default())
    }

    fn cached(&self, addr: SocketAddr, lane: Lane) -> Option<SendRequest<Bytes>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&(addr, lane)).cloned()
    }

    /// Forgets the connections and connect locks of every endpoint `keep`
    /// refuses (pods gone from the upstreams' DNS): without this, both maps
    /// grow with every address an upstream ever had. Calls in flight hold
    /// their own handles and finish; a dropped connection closes once its
    /// last stream ends.
    pub fn retain(&self, keep: impl Fn(SocketAddr) -> bool) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).retain(|(addr, _), _| keep(*addr));
        self.connecting.lock().unwrap_or_else(PoisonError::into_inner).retain(|(addr, _), _| keep(*addr));
    }
}

async fn connect(addr: SocketAddr, host: &str, tls: Option<&ClientTls>) -> Result<SendRequest<Bytes>, ConnectError> {
    let refused = |error: &dyn std::fmt::Display| ConnectError(addr, error.to_string());
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| refused(&"timed out"))?
        .map_err(|error| refused(&error))?;
    tcp.set_nodelay(true).map_err(|error| refused(&error))?;
    match tls {
        None => handshake(addr, tcp).await,
        Some(tls) => {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(tcp, host))
                .await
                .map_err(|_| refused(&"the TLS handshake timed out"))?
                .map_err(|error| refused(&error))?;
            handshake(addr, stream).await
        }
    }
}

/// Speaks HTTP/2 over `io` and drives the connection in a task of its own.
async fn handshake<T>(addr: SocketAddr, io: T) -> Result<SendRequest<Bytes>, ConnectError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let refused = |error: &dyn std::fmt::Display| ConnectError(addr, error.to_string());
    let handshake = h2::client::Builder::new()
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        // Each call is paced by its own stream window; the connection's is
        // as large as HTTP/2 allows. One connection carries every caller's
        // calls: with a smaller one, answers that callers never read (their
        // data waits here until the caller takes it) would use it up and
        // stall every other call on the connection.
        .initial_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(MAX_WINDOW_BYTES)
        .handshake::<_, Bytes>(io);
    // The handshake only writes the preface, but a socket that takes no
    // bytes would hold it (and this endpoint's connect lock) forever.
    let (sender, connection) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| refused(&"the HTTP/2 handshake timed out"))?
        .map_err(|error| refused(&error))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%addr, %error, "upstream connection closed");
        }
    });
    Ok(sender)
}

/// An upstream response's body: data frames as they arrive, then trailers.
/// Flow-control capacity is given back as each frame is handed on, so a slow
/// reader slows its own stream only.
pub struct UpstreamBody {
    recv: h2::RecvStream,
    data_done: bool,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Listeners that accept and hold connections (the HTTP/2 handshake
    /// only writes the preface, so no server reply is needed).
    async fn endpoint() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        addr
    }

    fn sizes(connections: &Connections) -> (usize, usize) {
        let open = connections.open.lock().unwrap().len();
        (open, connections.connecting.lock().unwrap().len())
    }

    #[tokio::test]
    async fn endpoints_that_are_gone_are_forgotten_and_the_rest_kept() {
        let connections = Connections::default();
        let (kept, gone) = (endpoint().await, endpoint().await);
        for addr in [kept, gone] {
            for lane in [Lane::Unary, Lane::Stream] {
                connections.ready(addr, "127.0.0.1", lane).await.unwrap();
            }
        }
        assert_eq!(sizes(&connections), (4, 4));
        connections.retain(|addr| addr == kept);
        assert_eq!(sizes(&connections), (2, 2), "only the kept endpoint's two lanes remain");
        assert!(connections.cached(kept, Lane::Unary).is_some());
        assert!(connections.cached(gone, Lane::Unary).is_none());
        // An endpoint that comes back is connected again on its next call.
        connections.ready(gone, "127.0.0.1", Lane::Unary).await.unwrap();
        assert_eq!(sizes(&connections), (3, 3));
    }
}
