//! PostgreSQL servers of a test's own (the shared server on 5432 stays as
//! every other test expects it): one that speaks TLS with a certificate of
//! the test's CA, and a primary with a streaming hot standby whose replay
//! a test can pause and which it can stop. Started from the installed
//! server binaries as the `postgres` user when the test runs as root.

use std::{
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::TestCa;

/// A `postgres` child process on a free port of 127.0.0.1, in a temporary
/// directory; stopped when dropped.
pub struct ScratchPostgres {
    port: u16,
    child: Option<Child>,
    data: PathBuf,
    dir: tempfile::TempDir,
}

impl ScratchPostgres {
    /// A new cluster (`initdb`, trust authentication, replication allowed
    /// from 127.0.0.1 as initdb's defaults allow it), started.
    pub fn start() -> Self {
        let dir = server_dir("folio-pg-");
        let data = dir.path().join("data");
        let initdb = as_server_user(&bin("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        Self::run(dir, data, &[])
    }

    /// A hot standby of `self`, streaming from it (`pg_basebackup -R`).
    pub fn standby(&self) -> Self {
        let dir = server_dir("folio-pg-standby-");
        let data = dir.path().join("data");
        let backup = as_server_user(&bin("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(backup.success(), "pg_basebackup failed");
        // (-c fast: a spread checkpoint would take half a minute.) -R wrote
        // standby.signal and primary_conninfo; replay as soon as WAL arrives.
        Self::run(dir, data, &["-c", "hot_standby=on", "-c", "hot_standby_feedback=on"])
    }

    /// Starts the server of `data` with `settings` and waits for its port.
    fn run(dir: tempfile::TempDir, data: PathBuf, settings: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let child = as_server_user(&bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(settings)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self { port, child: Some(child), data, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the scratch PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The URL of database `name` (plaintext).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Its postmaster's process id, while it runs (benchmarks read its CPU).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server now (a fast shutdown); dropping it afterwards does nothing more.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SIGINT to the postmaster (the child may be `runuser`, which does
        // not pass it on): a fast shutdown that releases shared memory
        // (SIGKILL would not).
        let postmaster = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|pid| pid.lines().next().map(str::to_owned))
            .unwrap_or_else(|| child.id().to_string());
        let _ = Command::new("kill").args(["-INT", &postmaster]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The data directory (owned by the server's user).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The temporary directory holding it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server of a test's own with `ssl=on`; stopped when dropped.
pub struct TlsPostgres {
    server: ScratchPostgres,
}

impl TlsPostgres {
    /// Initialises a cluster in a temporary directory and starts it on a
    /// free port with a certificate of `ca` for `localhost` and 127.0.0.1.
    pub fn start(ca: &TestCa) -> Self {
        let dir = server_dir("folio-pg-tls-");
        let server = ca.issue_for(None, &["localhost", "127.0.0.1"], "postgres");
        // The server must reach its certificate and own its key (0600).
        std::fs::set_permissions(ca.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&server.cert, std::fs::Permissions::from_mode(0o644)).unwrap();
        if is_root() {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(&server.key).status();
            assert!(status.unwrap().success(), "chown to postgres");
        }
        let data = dir.path().join("data");
        let initdb = as_server_user(&bin("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(initdb.success(), "initdb failed");
        let setting = |key: &str, value: &Path| format!("{key}={}", value.display());
        let (cert, key) = (setting("ssl_cert_file", &server.cert), setting("ssl_key_file", &server.key));
        Self { server: ScratchPostgres::run(dir, data, &["-c", "ssl=on", "-c", &cert, "-c", &key]) }
    }

    /// The URL of database `postgres`, verifying the server against `ca`
    /// and the host name (`sslmode=verify-full`).
    pub fn url(&self, ca: &TestCa, host: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            self.server.port,
            ca.ca_file().display()
        )
    }
}

/// A temporary directory the server's user may use (initdb refuses root).
fn server_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        let status = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status();
        assert!(status.unwrap().success(), "chown to postgres");
    }
    dir
}

/// The installed server's program `name`.
fn bin(name: &str) -> PathBuf {
    server_binaries().join(name)
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
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A primary of a test's own with a streaming hot standby, and the
/// standby's controls (DESIGN §6 tests).
pub struct ReplicatedPostgres {
    /// The standby (stop it with [`ScratchPostgres::stop`]).
    pub standby: ScratchPostgres,
    standby_admin: sea_orm::DatabaseConnection,
    primary: ScratchPostgres,
}

impl ReplicatedPostgres {
    /// A new primary and its standby, streaming.
    pub async fn start() -> Self {
        let primary = ScratchPostgres::start();
        let standby = primary.standby();
        let standby_admin = sea_orm::Database::connect(standby.url("postgres").as_str()).await.unwrap();
        Self { standby, standby_admin, primary }
    }

    /// A fresh database on the primary and its URL on the standby, once
    /// the standby has replayed its creation.
    pub async fn database(&self) -> (crate::TestDatabase, String) {
        let db =
            crate::TestDatabase::postgres_at(&format!("postgres://postgres@127.0.0.1:{}", self.primary.port)).await;
        let read_url = self.standby.url(db.name().unwrap_or_default());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(replica) = sea_orm::Database::connect(read_url.as_str()).await {
                replica.close().await.ok();
                return (db, read_url);
            }
            assert!(Instant::now() < deadline, "the standby never showed the test database");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The primary.
    pub fn primary(&self) -> &ScratchPostgres {
        &self.primary
    }

    /// Pauses (`false`) or resumes (`true`) the standby's replay.
    pub async fn replay(&self, on: bool) {
        use sea_orm::ConnectionTrait;
        let sql = if on { "SELECT pg_wal_replay_resume()" } else { "SELECT pg_wal_replay_pause()" };
        self.standby_admin.execute_unprepared(sql).await.unwrap();
    }
}

/// A PgBouncer of a test's own in transaction mode, in front of the shared
/// test server, on a free port; stopped when dropped. Its pools are small
/// (`pool_size` server connections per database and role), so clients
/// share servers as they do behind a production pooler.
pub struct Pgbouncer {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Pgbouncer {
    /// Starts `pgbouncer` for `users` (trust authentication, as the test
    /// server has), forwarding every database to `server_port` on 127.0.0.1.
    pub fn start(server_port: u16, users: &[&str], pool_size: u32) -> Self {
        let dir = server_dir("folio-pgbouncer-");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let users_file = dir.path().join("users.txt");
        let users: String = users.iter().map(|user| format!("\"{user}\" \"\"\n")).collect();
        std::fs::write(&users_file, users).unwrap();
        let config = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {users}\n\
                 pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 2000\n\
                 ignore_startup_parameters = extra_float_digits\nserver_reset_query =\nlogfile = {log}\n",
                users = users_file.display(),
                log = dir.path().join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        for file in [&users_file, &config] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(Path::new)
            .find(|path| path.exists())
            .expect("pgbouncer (apt-get install pgbouncer; .ci/run installs it)");
        // PgBouncer refuses to run as root.
        let child = as_server_user(program).arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child, dir }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        // The child may be `runuser`: stop pgbouncer itself, by its port's owner.
        let _ = Command::new("pkill").args(["-INT", "-f", &format!("{}", self.dir.path().display())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
