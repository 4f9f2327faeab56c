//! PEM files to rustls types.

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Every certificate in `pem`, leaf first; at least one.
pub fn certificates(pem: &[u8], what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("{what}: not PEM certificates: {error}"))?;
    anyhow::ensure!(!certs.is_empty(), "{what}: no certificate in the file");
    Ok(certs)
}

/// The private key in `pem` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(pem: &[u8], what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| anyhow::anyhow!("{what}: no PEM private key: {error}"))
}

/// The trust anchors in `pem`.
pub fn roots(pem: &[u8], what: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, what)? {
        roots.add(cert).map_err(|error| anyhow::anyhow!("{what}: not a usable CA certificate: {error}"))?;
    }
    Ok(roots)
}
