//! A PostgreSQL server of a test's own that speaks TLS with a certificate
//! of the test's CA (the shared server on 5432 stays as every other test
//! expects it). Started from the installed server binaries as the
//! `postgres` user when the test runs as root.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::TestCa;

/// A `postgres` child process with `ssl=on`; stopped when dropped.
pub struct TlsPostgres {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsPostgres {
    /// Initialises a cluster in a temporary directory and starts it on a
    /// free port with a certificate of `ca` for `localhost` and 127.0.0.1.
    pub fn start(ca: &TestCa) -> Self {
        let bin = server_binaries();
        let root = is_root();
        let dir = tempfile::Builder::new().prefix("folio-pg-tls-").tempdir().unwrap();
        let server = ca.issue_for(None, &["localhost", "127.0.0.1"], "postgres");
        // The server runs as `postgres` (initdb refuses root): it must reach
        // its directory and certificate, and own its key (0600).
        for open in [dir.path(), ca.dir()] {
            std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&server.cert, std::fs::Permissions::from_mode(0o644)).unwrap();
        if root {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(&server.key).arg(dir.path()).status();
            assert!(status.unwrap().success(), "chown to postgres");
        }
        let data = dir.path().join("data");
        let initdb = as_server_user(root, &bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let setting = |key: &str, value: &Path| format!("{key}={}", value.display());
        let child = as_server_user(root, &bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "fsync=off"])
            .args(["-c", &setting("ssl_cert_file", &server.cert), "-c", &setting("ssl_key_file", &server.key)])
            .arg("-c")
            .arg(setting("unix_socket_directories", dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let postgres = Self { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the TLS PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        postgres
    }

    /// The URL of database `postgres`, verifying the server against `ca`
    /// and the host name (`sslmode=verify-full`).
    pub fn url(&self, ca: &TestCa, host: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca.ca_file().display()
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // SIGINT: a fast shutdown that releases shared memory (SIGKILL would not).
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The newest installed server's `bin` directory.
fn server_binaries() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server version")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// `program` run as `postgres` when this process is `root`, else as ourselves.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
