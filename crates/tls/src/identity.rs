//! Who is on the other end of a connection.

use std::{net::SocketAddr, sync::Arc};

/// Every Folio identity is `spiffe://folio/<service>` (DESIGN §6).
pub const SPIFFE_PREFIX: &str = "spiffe://folio/";

/// The Folio identity a certificate names in its URI SAN, if any. A
/// certificate naming several is ambiguous and counts as naming none.
pub fn identity_of(certificate_der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(certificate_der).ok()?;
    let names = certificate.subject_alternative_name().ok()??;
    let mut ids = names.value.general_names.iter().filter_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) if uri.starts_with(SPIFFE_PREFIX) => Some(*uri),
        _ => None,
    });
    let id = ids.next()?;
    ids.next().is_none().then(|| id.to_owned())
}

/// How a connection was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// No TLS (only where nothing is configured: `make run` on 127.0.0.1).
    Plaintext,
    /// TLS; the client showed no certificate (none was asked for).
    Tls,
    /// Mutual TLS: the client's certificate verified against the client CA;
    /// `identity` is the Folio identity it names (`None`: it names none).
    MutualTls {
        /// `spiffe://folio/<service>`.
        identity: Option<Arc<str>>,
    },
}

/// The other end of a served connection, in every request's extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The TCP peer.
    pub addr: Option<SocketAddr>,
    /// Plaintext, TLS or mutual TLS.
    pub transport: Transport,
}

impl Peer {
    /// The peer of the connection a request came on.
    pub fn of(extensions: &http::Extensions) -> Option<&Peer> {
        extensions.get::<Peer>()
    }

    /// Whether the peer proved who it is with a client certificate.
    pub fn is_mutual(&self) -> bool {
        matches!(self.transport, Transport::MutualTls { .. })
    }

    /// The verified Folio identity (mutual TLS only).
    pub fn identity(&self) -> Option<&str> {
        match &self.transport {
            Transport::MutualTls { identity } => identity.as_deref(),
            _ => None,
        }
    }
}
