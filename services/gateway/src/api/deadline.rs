//! Deadlines passed upstream (DESIGN §5): a unary call's is what is left of
//! the caller's `grpc-timeout`, capped by the configured maximum; a server
//! stream is long-lived (DESIGN "Ledger events") and keeps the caller's own
//! deadline, or none, while its response head is still due within the
//! maximum.

use std::time::Duration;

use folio_runtime::server::CallStarted;
use http::{HeaderValue, Request};

use crate::app::connection::Lane;

/// Server-streaming RPCs of the public services. The gateway never decodes
/// the contract at run time; a test checks this list against it.
pub const SERVER_STREAMING_RPCS: &[&str] = &["/folio.ledger.v1.LedgerService/StreamEvents"];

/// Whether `path` is a server-streaming RPC.
pub fn is_server_streaming(path: &str) -> bool {
    SERVER_STREAMING_RPCS.contains(&path)
}

/// Sets the `grpc-timeout` the upstream gets and returns how long the
/// gateway waits for the request body and the response head.
///
/// The wait is what is left of the caller's deadline, capped, less a small
/// margin so the gateway's DEADLINE_EXCEEDED reaches the caller before the
/// caller's own deadline (and before tonic's server-side timer, which would
/// answer CANCELLED); it counts from the call's arrival, as the caller's
/// clock does.
pub fn pass_on<B>(request: &mut Request<B>, max: Duration, lane: Lane) -> Duration {
    let asked = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
    let spent = request.extensions().get::<CallStarted>().map_or(Duration::ZERO, |started| started.0.elapsed());
    let capped = asked.map_or(max, |asked| asked.min(max));
    let wait = capped.saturating_sub((capped / 20).min(Duration::from_millis(5))).saturating_sub(spent);
    let upstream = match lane {
        // Whole 100 ms from a second up (never longer than the gateway
        // waits): calls without a deadline of their own then send the same
        // value every time, which HPACK sends as an index, not a new
        // literal to compress and decompress on both sides.
        Lane::Unary if wait >= Duration::from_secs(1) => {
            Some(Duration::from_millis(u64::try_from(wait.as_millis() / 100 * 100).unwrap_or(u64::MAX)))
        }
        Lane::Unary => Some(wait),
        // The caller's own deadline, however long; none if it set none.
        Lane::Stream => asked.map(|asked| asked.saturating_sub(spent)),
    };
    match upstream.and_then(|d| HeaderValue::from_str(&format!("{}m", d.as_millis().max(1))).ok()) {
        Some(value) => request.headers_mut().insert("grpc-timeout", value),
        None => request.headers_mut().remove("grpc-timeout"),
    };
    wait
}

/// `grpc-timeout`: digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    fn upstream_timeout(asked: Option<&str>, lane: Lane) -> (Duration, Option<String>) {
        let mut request = Request::new(());
        if let Some(asked) = asked {
            request
                .headers_mut()
                .insert("grpc-timeout", HeaderValue::from_str(asked).unwrap_or(HeaderValue::from_static("1m")));
        }
        let wait = pass_on(&mut request, Duration::from_secs(30), lane);
        (wait, request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).map(str::to_owned))
    }

    #[test]
    fn unary_deadlines_are_capped_and_streams_keep_the_callers() {
        let (wait, passed) = upstream_timeout(Some("5M"), Lane::Unary);
        assert!(wait <= Duration::from_secs(30), "{wait:?}");
        assert_eq!(passed.as_deref(), Some("29900m"), "capped, less the margin, in whole 100 ms");
        let (wait, passed) = upstream_timeout(Some("250m"), Lane::Unary);
        assert!(wait < Duration::from_millis(250), "{wait:?}");
        assert!(passed.as_deref().is_some_and(|p| p.starts_with("23") || p.starts_with("24")), "{passed:?}");
        let (wait, passed) = upstream_timeout(None, Lane::Unary);
        assert!(wait <= Duration::from_secs(30) && passed.is_some(), "a unary call always gets a deadline");
        let (wait, passed) = upstream_timeout(Some("5M"), Lane::Stream);
        assert!(wait <= Duration::from_secs(30), "the head of a stream is still due within the maximum");
        assert!(passed.as_deref().is_some_and(|p| p.starts_with("29999") || p.starts_with("300000")), "{passed:?}");
        let (_, passed) = upstream_timeout(None, Lane::Stream);
        assert_eq!(passed, None, "a stream without a deadline gets none");
    }

    #[test]
    fn every_server_stream_of_the_public_contract_is_known() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(folio_proto::PUBLIC_FILE_DESCRIPTOR_SET).unwrap_or_default();
        assert!(!set.file.is_empty(), "the public descriptor set did not decode");
        for file in &set.file {
            for service in &file.service {
                for method in service.method.iter().filter(|m| m.server_streaming()) {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(is_server_streaming(&path), "{path} streams but the gateway would cap its deadline");
                }
            }
        }
    }
}
