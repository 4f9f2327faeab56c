//! Encryption in transit (DESIGN §6): TLS on a service's port, mutual TLS
//! between services, and the caller's identity taken from its certificate.
//!
//! - [`ServerTls`] and [`incoming`]: a listener's connections, handshaken off
//!   the accept loop, each carrying its [`Peer`] into every request.
//! - [`ClientTls`]: the client side, for calls to other services.
//! - Both reread their PEM files when they change ([`reload`]), so a renewed
//!   certificate (cert-manager) is used by new connections without a restart.
//!
//! One crypto provider for the whole workspace: rustls with ring, the one
//! sqlx (PostgreSQL) and Redis use too.

mod client;
mod identity;
mod incoming;
mod pem;
mod reload;
mod server;

use std::sync::Arc;

pub use client::{ClientTls, ClientTlsSettings};
pub use identity::{Peer, SPIFFE_PREFIX, Transport, identity_of};
pub use incoming::{Conn, incoming};
pub use reload::RELOAD_INTERVAL;
pub use server::{ALPN_GRPC, ALPN_GRPC_AND_HTTP1, ServerTls};

/// The workspace's crypto provider.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
