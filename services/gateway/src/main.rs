//! `folio-gateway [serve|migrate]`.

// Every proxied call allocates headers, frames and buffers on both legs;
// mimalloc takes that off the profile where glibc malloc held a tenth of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    folio_runtime::cli::main::<folio_gateway::Binary>()
}
