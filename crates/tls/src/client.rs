//! The client side: calls to other services over TLS, with this service's
//! own certificate for mutual TLS.

use std::{io, path::PathBuf, sync::Arc};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::{pem, provider, reload::Reloading};

/// `FOLIO__CLIENT__TLS_*` (DESIGN §6): unset, calls to other services are
/// plaintext.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// The CA the other services' certificates chain to; setting it turns TLS on.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// This service's certificate (its identity), shown to the services it calls.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// The key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// TLS for calls to other services, kept current with its files.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<Reloading<ClientConfig>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// TLS as `settings` say, or `None` when no CA is set (plaintext). A
    /// certificate without its key (or the reverse), or files that do not
    /// build, fail the start rather than fall back to plaintext.
    pub fn from_settings(settings: &ClientTlsSettings) -> anyhow::Result<Option<Self>> {
        let ClientTlsSettings { tls_ca_file, tls_cert_file, tls_key_file } = settings;
        let Some(ca) = tls_ca_file else {
            anyhow::ensure!(
                tls_cert_file.is_none() && tls_key_file.is_none(),
                "client.tls_cert_file and tls_key_file need client.tls_ca_file"
            );
            return Ok(None);
        };
        let mut files = vec![ca.clone()];
        match (tls_cert_file, tls_key_file) {
            (Some(cert), Some(key)) => files.extend([cert.clone(), key.clone()]),
            (None, None) => {}
            _ => anyhow::bail!("client.tls_cert_file and client.tls_key_file are set together or not at all"),
        }
        Ok(Some(Self { config: Reloading::start("client", files, build)? }))
    }

    /// Speaks TLS over `tcp` to the server named `host` (a DNS name or an
    /// IP address, which its certificate must name), offering HTTP/2.
    pub async fn connect(&self, tcp: TcpStream, host: &str) -> io::Result<TlsStream<TcpStream>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, format!("server name {host:?}: {error}")))?;
        tokio_rustls::TlsConnector::from(self.config.current()).connect(name, tcp).await
    }
}

fn build(contents: &[Vec<u8>]) -> anyhow::Result<ClientConfig> {
    let [ca, identity @ ..] = contents else { anyhow::bail!("a CA is needed") };
    let roots = pem::roots(ca, "client.tls_ca_file")?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| anyhow::anyhow!("TLS versions: {error}"))?
        .with_root_certificates(roots);
    let mut config = match identity {
        [cert, key] => builder
            .with_client_auth_cert(pem::certificates(cert, "client certificate")?, pem::private_key(key, "client key")?)
            .map_err(|error| anyhow::anyhow!("client certificate and key: {error}"))?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
