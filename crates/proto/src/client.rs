//! Channels to other Folio services.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// A lazily connecting channel to `address` (`host:port`, or a URL). Calls
/// fail fast with `UNAVAILABLE` while the peer is down; the channel
/// reconnects on its own.
pub fn lazy_channel(address: &str) -> anyhow::Result<Channel> {
    let uri = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| anyhow::anyhow!("invalid upstream address {address:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}
