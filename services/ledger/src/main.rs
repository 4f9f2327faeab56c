//! `folio-ledger [serve|migrate]`.

// The write path allocates per transfer (messages, SQL values); mimalloc
// keeps that off the profile where glibc malloc took a quarter of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    folio_runtime::cli::main::<folio_ledger::Binary>()
}
