//! Compiles Folio's contracts with protox (no system `protoc`) and generates
//! prost messages plus tonic clients and servers that use [`FolioCodec`].

use std::{env, fs, path::PathBuf};

use anyhow::Context;
use prost::Message;

mod stand_ins;

const PUBLIC_FILES: &[&str] =
    &["folio/auth/v1/auth.proto", "folio/account/v1/account.proto", "folio/ledger/v1/ledger.proto"];
const INTERNAL_FILES: &[&str] = &["folio/auth/v1/auth_internal.proto", "folio/ledger/v1/ledger_admin.proto"];

fn main() -> anyhow::Result<()> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto_root = proto_root.canonicalize().context("locating proto/")?;
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let all: Vec<&str> = PUBLIC_FILES.iter().chain(INTERNAL_FILES).copied().collect();
    let every_file = protox::compile(&all, [&proto_root]).context("compiling proto/")?;
    // Two descriptor sets: every service (for the services' own reflection) and
    // the public ones only (for the gateway, which must not reveal internals).
    fs::write(out_dir.join("folio_descriptor.bin"), every_file.encode_to_vec())?;
    let public = protox::compile(PUBLIC_FILES, [&proto_root]).context("compiling public protos")?;
    fs::write(out_dir.join("folio_public_descriptor.bin"), public.encode_to_vec())?;

    fs::write(out_dir.join("stand_ins.rs"), stand_ins::generate(&every_file)?)?;

    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .codec_path("crate::codec::FolioCodec")
        // No default stubs: a service that forgets an RPC of its contract does
        // not compile (test stand-ins implement `folio_proto::stand_in::<Service>StandIn`).
        .compile_fds_with_config(every_file, config)
        .context("generating Rust code")?;
    Ok(())
}
