//! The set of gRPC methods a Folio process can serve, for labels that must
//! stay bounded (DESIGN §5a): a path outside it is counted as `unknown`, so
//! a caller sending made-up paths cannot add series to `/metrics`; and the
//! `x-request-id` a caller sends is kept only when it is a bounded token.

use std::{collections::HashSet, sync::LazyLock};

use prost::Message;

/// Longest request id kept as sent.
const MAX_REQUEST_ID_LEN: usize = 128;

static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut known = HashSet::new();
    for encoded in [folio_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else { continue };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    known.insert(format!("/{package}.{service_name}/{}", method.name.unwrap_or_default()));
                }
            }
        }
    }
    for reflection in ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] {
        known.insert(format!("/{reflection}/ServerReflectionInfo"));
    }
    known
});

/// `path` when it names a method of ours, else `unknown`.
pub fn method_label(path: String) -> String {
    if KNOWN.contains(&path) { path } else { "unknown".to_owned() }
}

/// Whether a caller's `x-request-id` is kept: 1..=128 characters of
/// `[A-Za-z0-9._:-]` (a UUID, a ULID, a trace id). Anything else is replaced
/// with a fresh id before it is logged or echoed.
pub fn acceptable_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Drops an `x-request-id` that is not [`acceptable_request_id`], so the
/// request-id layer sets a fresh one.
pub fn sanitize_request_id<B>(mut request: http::Request<B>) -> http::Request<B> {
    let refused = request.headers().get("x-request-id").is_some_and(|value| !acceptable_request_id(value.as_bytes()));
    if refused {
        request.headers_mut().remove("x-request-id");
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_are_labels() {
        assert_eq!(
            method_label("/folio.ledger.v1.LedgerService/CreateTransfer".to_owned()),
            "/folio.ledger.v1.LedgerService/CreateTransfer"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check".to_owned()), "/grpc.health.v1.Health/Check");
        assert_eq!(method_label("/folio.ledger.v1.LedgerService/Nope".to_owned()), "unknown");
        assert_eq!(method_label("/x/y".to_owned()), "unknown");
    }

    #[test]
    fn request_ids_are_bounded_tokens() {
        assert!(acceptable_request_id(b"0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!acceptable_request_id(b""));
        assert!(!acceptable_request_id(&[b'a'; 129]));
        assert!(!acceptable_request_id(b"evil\r\ninjected"));
        assert!(!acceptable_request_id("caf\u{e9}".as_bytes()));
    }
}
