//! A Redis server of a test's own, on a free port, that the test can stop
//! and start again (the shared Redis on 6379 must stay up for every other
//! test running at the same time).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` child process; stopped when dropped.
pub struct OwnRedis {
    port: u16,
    child: Option<Child>,
    /// TLS only (`--port 0 --tls-port`): the certificate and key it serves.
    tls: Option<(crate::Issued, std::path::PathBuf)>,
}

impl OwnRedis {
    /// Starts `redis-server` on a free port (no persistence) and waits until it answers.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let mut redis = Self { port, child: None, tls: None };
        redis.resume();
        redis
    }

    /// Starts `redis-server` speaking TLS only, with a certificate of `ca`
    /// for `localhost` and 127.0.0.1 (clients show none).
    pub fn start_tls(ca: &crate::TestCa) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap();
        let issued = ca.issue_for(None, &["localhost", "127.0.0.1"], "redis");
        let mut redis = Self { port, child: None, tls: Some((issued, ca.ca_file())) };
        redis.resume();
        redis
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` when it speaks TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server answer again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        }
    }

    /// Starts it again on the same port, empty, and waits until it answers.
    pub fn resume(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some((tls, ca)) => command.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"]).args([
                "--tls-cert-file".as_ref(),
                tls.cert.as_os_str(),
                "--tls-key-file".as_ref(),
                tls.key.as_os_str(),
                "--tls-ca-cert-file".as_ref(),
                ca.as_os_str(),
            ]),
        };
        let child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
