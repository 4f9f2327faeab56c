//! Writes `stand_ins.rs`: for every service, a `<Service>StandIn` trait
//! whose methods all answer `UNIMPLEMENTED` unless overridden, and a blanket
//! implementation of the real service trait for every stand-in. Tests write
//! only the RPCs they serve; real services implement the service trait
//! itself, which has no defaults, so they must serve every RPC. The lists
//! come from the descriptors, so a new RPC needs no edit here.

use std::fmt::Write as _;

use prost_types::FileDescriptorSet;

/// `GetJwks` → `get_jwks`, as tonic names its methods.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let previous_lower = chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous_lower || (chars[i - 1].is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `.folio.auth.v1.LoginRequest` → `crate::folio::auth::v1::LoginRequest`.
fn rust_type(proto: &str) -> String {
    match proto.strip_prefix(".google.protobuf.") {
        Some(name) => format!("::prost_types::{name}"),
        None => format!("crate{}", proto.replace('.', "::")),
    }
}

/// The Rust source of every stand-in trait in `files`.
pub fn generate(files: &FileDescriptorSet) -> anyhow::Result<String> {
    let mut out = String::new();
    for file in &files.file {
        let package = file.package();
        for service in &file.service {
            let name = service.name();
            let module = format!("crate::{}::{}_server", package.replace('.', "::"), snake_case(name));
            let mut defaults = String::new();
            let mut forwards = String::new();
            for method in &service.method {
                anyhow::ensure!(!method.client_streaming(), "stand-ins do not support client streaming ({name})");
                let rpc = method.name();
                let function = snake_case(rpc);
                let request = rust_type(method.input_type());
                let response = rust_type(method.output_type());
                // A stand-in answers a server stream with a boxed stream; the
                // service trait names that type as its associated `<Rpc>Stream`.
                let (default_answer, answer) = if method.server_streaming() {
                    let boxed = format!(
                        "::std::pin::Pin<Box<dyn ::tonic::codegen::tokio_stream::Stream<Item = ::std::result::Result<{response}, ::tonic::Status>> + Send + 'static>>"
                    );
                    writeln!(forwards, "    type {rpc}Stream = {boxed};")?;
                    (boxed, format!("Self::{rpc}Stream"))
                } else {
                    (response.clone(), response)
                };
                writeln!(
                    defaults,
                    "    /// `{rpc}`: `UNIMPLEMENTED` unless the stand-in serves it.\n    async fn {function}(&self, _request: ::tonic::Request<{request}>) -> ::std::result::Result<::tonic::Response<{default_answer}>, ::tonic::Status> {{\n        Err(::tonic::Status::unimplemented(\"this stand-in does not serve {rpc}\"))\n    }}"
                )?;
                writeln!(
                    forwards,
                    "    async fn {function}(&self, request: ::tonic::Request<{request}>) -> ::std::result::Result<::tonic::Response<{answer}>, ::tonic::Status> {{\n        <T as {name}StandIn>::{function}(self, request).await\n    }}"
                )?;
            }
            writeln!(
                out,
                "/// `{package}.{name}` for test stand-ins: override the RPCs served; the others answer `UNIMPLEMENTED`.\n#[::tonic::async_trait]\npub trait {name}StandIn: Send + Sync + 'static {{\n{defaults}}}\n\n#[::tonic::async_trait]\nimpl<T: {name}StandIn> {module}::{name} for T {{\n{forwards}}}\n"
            )?;
        }
    }
    Ok(out)
}
