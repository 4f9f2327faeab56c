//! `folio-dev-certs DIR`: a CA of this machine's own and a certificate for
//! each service (`spiffe://folio/<service>`, `localhost`, `127.0.0.1`), for
//! running the suite encrypted on one machine (`FOLIO_TLS=1 make run`).
//! Writes `folio-ca.pem` and `<service>.pem` / `<service>.key` into DIR,
//! which it creates; a DIR that already has a CA is left as it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: folio-dev-certs DIR");
        std::process::exit(2);
    };
    if dir.join("folio-ca.pem").exists() {
        return;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let ca = folio_testkit::TestCa::in_dir("folio", &dir);
    for service in ["auth", "account", "ledger", "gateway"] {
        ca.issue(service, service);
    }
    println!("{}", ca.ca_file().display());
}
