//! Certificates made at test time (nothing with a key is committed): a CA
//! of the test's own and the certificates it issues, as PEM files in a
//! temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A certificate authority of a test's own.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
    /// Removed with the CA when it is a temporary one.
    _temporary: Option<tempfile::TempDir>,
    name: String,
}

/// The files of an issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8, mode 0600).
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name` (also the stem of its files).
    pub fn new(name: &str) -> Self {
        let temporary = tempfile::Builder::new().prefix("folio-certs-").tempdir().unwrap();
        let mut ca = Self::in_dir(name, temporary.path());
        ca._temporary = Some(temporary);
        ca
    }

    /// A new CA named `name` whose files are written to `dir` and kept.
    pub fn in_dir(name: &str, dir: &Path) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("Folio test CA {name}"));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), certificate.pem()).unwrap();
        Self { issuer: Issuer::new(params, key), dir: dir.to_path_buf(), _temporary: None, name: name.to_owned() }
    }

    /// The directory holding every file of this CA.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA's certificate (PEM): the trust anchor to configure.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A certificate for the Folio service `service`: URI SAN
    /// `spiffe://folio/<service>`, DNS `localhost` and IP `127.0.0.1`, for
    /// both server and client authentication; written as `<stem>.pem` and
    /// `<stem>.key`.
    pub fn issue(&self, service: &str, stem: &str) -> Issued {
        self.issue_for(Some(&format!("spiffe://folio/{service}")), &["localhost", "127.0.0.1"], stem)
    }

    /// A certificate with the URI SAN `uri` (none when `None`) and the DNS
    /// names or IP addresses `hosts`.
    pub fn issue_for(&self, uri: Option<&str>, hosts: &[&str], stem: &str) -> Issued {
        let mut params = CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        if let Some(uri) = uri {
            params.subject_alt_names.push(SanType::URI(uri.try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let issued = Issued { cert: self.dir.join(format!("{stem}.pem")), key: self.dir.join(format!("{stem}.key")) };
        std::fs::write(&issued.cert, certificate.pem()).unwrap();
        write_private(&issued.key, key.serialize_pem().as_bytes());
        issued
    }
}

/// Writes `bytes` to `path` readable by its owner only (PostgreSQL refuses
/// a key file that others may read).
fn write_private(path: &Path, bytes: &[u8]) {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).unwrap();
    file.write_all(bytes).unwrap();
}
