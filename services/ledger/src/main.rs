//! `folio-ledger [serve|migrate]`.

fn main() -> std::process::ExitCode {
    folio_common::cli::main::<folio_ledger::Binary>()
}
