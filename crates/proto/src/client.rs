//! Channels to other Folio services.

use std::time::Duration;

use folio_tls::ClientTls;
use tonic::transport::{Channel, Endpoint};

/// How long connecting (TCP and the TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connecting plaintext channel to `address` (`host:port`, or a
/// URL): for tests and tools on 127.0.0.1. Services call each other with
/// [`lazy_channel_with`], which speaks TLS when it is configured.
pub fn lazy_channel(address: &str) -> anyhow::Result<Channel> {
    lazy_channel_with(address, None)
}

/// A lazily connecting channel to `address` (`host:port`, or a URL), over
/// TLS when `tls` is given (the server's certificate must name the host of
/// `address`, and this service's own certificate is shown for mutual TLS).
/// Calls fail fast with `UNAVAILABLE` while the peer is down; the channel
/// reconnects on its own.
pub fn lazy_channel_with(address: &str, tls: Option<&ClientTls>) -> anyhow::Result<Channel> {
    let uri = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| anyhow::anyhow!("invalid upstream address {address:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let Some(tls) = tls.cloned() else { return Ok(endpoint.connect_lazy()) };
    // TLS is spoken by this connector, and tonic speaks HTTP/2 over it: the
    // connector rereads renewed certificates (tonic's own TLS would keep the
    // first ones until a restart).
    let connector = tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        async move {
            let host = uri.host().ok_or_else(|| std::io::Error::other(format!("no host in {uri}")))?.to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let connect = async {
                let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
                tcp.set_nodelay(true)?;
                tls.connect(tcp, &host).await
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))??;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}
