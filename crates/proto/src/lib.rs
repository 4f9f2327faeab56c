//! Folio's protobuf contracts as Rust: messages, clients, servers, and the
//! encoded file descriptor sets that reflection serves.

pub mod client;
pub mod codec;

/// Every file descriptor, internal services included (for a service's own reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/folio_descriptor.bin"));

/// The public services' file descriptors only (for the gateway's reflection).
pub const PUBLIC_FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/folio_public_descriptor.bin"));

/// Generated code, nested as the proto packages are so cross-package references resolve.
pub mod folio {
    /// `folio.auth.v1`.
    pub mod auth {
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("folio.auth.v1");
        }
    }
    /// `folio.account.v1`.
    pub mod account {
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("folio.account.v1");
        }
    }
    /// `folio.ledger.v1`.
    pub mod ledger {
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("folio.ledger.v1");
        }
    }
}

/// For tests: `<Service>StandIn` traits whose RPCs answer `UNIMPLEMENTED`
/// unless overridden, each implementing its service (generated from the
/// descriptors). Real services implement the service traits, which have no
/// defaults, so a forgotten RPC does not compile.
#[cfg(feature = "stand-ins")]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod stand_in {
    include!(concat!(env!("OUT_DIR"), "/stand_ins.rs"));
}

/// Vendored `google.rpc` types used inside Folio messages.
pub mod google {
    /// `google.rpc`.
    pub mod rpc {
        #![allow(missing_docs, clippy::all, clippy::pedantic)]
        tonic::include_proto!("google.rpc");
    }
}

pub use folio::{account::v1 as account, auth::v1 as auth, ledger::v1 as ledger};

/// The fully-qualified names of the services the gateway exposes.
pub const PUBLIC_SERVICES: &[&str] =
    &["folio.auth.v1.AuthService", "folio.account.v1.AccountService", "folio.ledger.v1.LedgerService"];
