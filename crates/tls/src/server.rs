//! The server side: a port's certificate and, for mutual TLS, the CA its
//! clients' certificates must chain to.

use std::{path::Path, sync::Arc};

use rustls::{ServerConfig, server::WebPkiClientVerifier};

use crate::{pem, provider, reload::Reloading};

/// ALPN of an internal service's port: gRPC over HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN of the gateway's port: gRPC over HTTP/2, gRPC-Web over HTTP/2 and HTTP/1.1.
pub const ALPN_GRPC_AND_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A port's TLS configuration, kept current with its files.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<Reloading<ServerConfig>>,
    mutual: bool,
}

impl ServerTls {
    /// TLS with the certificate chain in `cert_file` and its key in
    /// `key_file`; with `client_ca_file`, every client must show a
    /// certificate that chains to it (mutual TLS).
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        client_ca_file: Option<&Path>,
        alpn: &'static [&'static [u8]],
    ) -> anyhow::Result<Self> {
        let mut files = vec![cert_file.to_path_buf(), key_file.to_path_buf()];
        files.extend(client_ca_file.map(Path::to_path_buf));
        let mutual = client_ca_file.is_some();
        let config = Reloading::start("server", files, move |contents| build(contents, alpn))?;
        Ok(Self { config, mutual })
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.current()
    }

    /// Whether clients must show a certificate.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }
}

fn build(contents: &[Vec<u8>], alpn: &[&[u8]]) -> anyhow::Result<ServerConfig> {
    let [cert, key, client_ca @ ..] = contents else { anyhow::bail!("a certificate and a key are needed") };
    let chain = pem::certificates(cert, "server certificate")?;
    let key = pem::private_key(key, "server key")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| anyhow::anyhow!("TLS versions: {error}"))?;
    let builder = match client_ca.first() {
        Some(ca) => {
            let roots = Arc::new(pem::roots(ca, "client CA")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|error| anyhow::anyhow!("client CA: {error}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    // `with_single_cert` refuses a key that does not match the certificate:
    // a renewal caught between its two writes keeps the old pair.
    let mut config =
        builder.with_single_cert(chain, key).map_err(|error| anyhow::anyhow!("server certificate and key: {error}"))?;
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(config)
}
