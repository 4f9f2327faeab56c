//! `folio-account [serve|migrate]`.

fn main() -> std::process::ExitCode {
    folio_runtime::cli::main::<folio_account::Binary>()
}
