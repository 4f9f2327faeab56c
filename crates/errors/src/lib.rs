//! Folio's error model (DESIGN.md section 4): every failure is a gRPC status
//! with a `google.rpc.ErrorInfo` whose `reason` comes from one table, mapped
//! once to its gRPC code, and whose `domain` is `<service>.folio`. Beside
//! it, what a caller's input must be before it is believed: the text rules
//! (`validate`) and timestamps (`time`).

pub mod time;
pub mod validate;

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

macro_rules! reasons {
    ($($variant:ident => $code:ident, $text:literal;)*) => {
        /// Every error reason a Folio service may answer with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $($variant,)* }

        impl Reason {
            /// Every reason, for tests and documentation.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The gRPC code this reason is always answered with.
            pub fn code(self) -> Code {
                match self { $(Reason::$variant => Code::$code,)* }
            }

            /// The UPPER_SNAKE text carried in `ErrorInfo.reason`.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $text,)* }
            }

            /// The reason named by an `ErrorInfo.reason`, if it is one of ours.
            pub fn parse(text: &str) -> Option<Reason> {
                match text { $($text => Some(Reason::$variant),)* _ => None }
            }
        }
    };
}

reasons! {
    InvalidField => InvalidArgument, "INVALID_FIELD";
    SameAccount => InvalidArgument, "SAME_ACCOUNT";
    InvalidAmount => InvalidArgument, "INVALID_AMOUNT";
    WeakPassword => InvalidArgument, "WEAK_PASSWORD";
    TokenMissing => Unauthenticated, "TOKEN_MISSING";
    InvalidCredentials => Unauthenticated, "INVALID_CREDENTIALS";
    TokenExpired => Unauthenticated, "TOKEN_EXPIRED";
    TokenInvalid => Unauthenticated, "TOKEN_INVALID";
    TokenRevoked => Unauthenticated, "TOKEN_REVOKED";
    RefreshTokenReused => Unauthenticated, "REFRESH_TOKEN_REUSED";
    NotAccountOwner => PermissionDenied, "NOT_ACCOUNT_OWNER";
    MissingRole => PermissionDenied, "MISSING_ROLE";
    MissingScope => PermissionDenied, "MISSING_SCOPE";
    UserDisabled => PermissionDenied, "USER_DISABLED";
    IdentityNotAllowed => PermissionDenied, "IDENTITY_NOT_ALLOWED";
    AccountNotFound => NotFound, "ACCOUNT_NOT_FOUND";
    TransferNotFound => NotFound, "TRANSFER_NOT_FOUND";
    PendingTransferNotFound => NotFound, "PENDING_TRANSFER_NOT_FOUND";
    AssetNotFound => NotFound, "ASSET_NOT_FOUND";
    UserNotFound => NotFound, "USER_NOT_FOUND";
    SessionNotFound => NotFound, "SESSION_NOT_FOUND";
    ServiceAccountNotFound => NotFound, "SERVICE_ACCOUNT_NOT_FOUND";
    EmailTaken => AlreadyExists, "EMAIL_TAKEN";
    TransferIdReused => AlreadyExists, "TRANSFER_ID_REUSED";
    RequestIdReused => AlreadyExists, "REQUEST_ID_REUSED";
    AssetExists => AlreadyExists, "ASSET_EXISTS";
    ServiceAccountExists => AlreadyExists, "SERVICE_ACCOUNT_EXISTS";
    AccountExists => AlreadyExists, "ACCOUNT_EXISTS";
    InsufficientFunds => FailedPrecondition, "INSUFFICIENT_FUNDS";
    AccountFrozen => FailedPrecondition, "ACCOUNT_FROZEN";
    AccountClosed => FailedPrecondition, "ACCOUNT_CLOSED";
    AccountPending => FailedPrecondition, "ACCOUNT_PENDING";
    AssetMismatch => FailedPrecondition, "ASSET_MISMATCH";
    PendingTransferAlreadyResolved => FailedPrecondition, "PENDING_TRANSFER_ALREADY_RESOLVED";
    PendingTransferExpired => FailedPrecondition, "PENDING_TRANSFER_EXPIRED";
    AmountExceedsPending => FailedPrecondition, "AMOUNT_EXCEEDS_PENDING";
    BalanceNotZero => FailedPrecondition, "BALANCE_NOT_ZERO";
    AlreadyReversed => FailedPrecondition, "ALREADY_REVERSED";
    CursorExpired => FailedPrecondition, "CURSOR_EXPIRED";
    NotReversible => FailedPrecondition, "NOT_REVERSIBLE";
    ServiceAccountProvisioned => FailedPrecondition, "SERVICE_ACCOUNT_PROVISIONED";
    EtagMismatch => Aborted, "ETAG_MISMATCH";
    RateLimited => ResourceExhausted, "RATE_LIMITED";
    TooManyAttempts => ResourceExhausted, "TOO_MANY_ATTEMPTS";
    MessageTooLarge => ResourceExhausted, "MESSAGE_TOO_LARGE";
    DependencyUnavailable => Unavailable, "DEPENDENCY_UNAVAILABLE";
    Overloaded => Unavailable, "OVERLOADED";
    NotImplemented => Unimplemented, "NOT_IMPLEMENTED";
    DeadlineExceeded => DeadlineExceeded, "DEADLINE_EXCEEDED";
    Internal => Internal, "INTERNAL";
}

/// Longest echo of caller input in an error (DESIGN §4), in characters.
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest caller-facing message, in characters: the fixed text plus echoes.
const MAX_MESSAGE_CHARS: usize = 512;
/// Most bytes of field violations one error carries, so the whole of its
/// status details stays under 2 KiB: a header block no peer refuses.
const MAX_VIOLATION_BYTES: usize = 1024;

/// Caller input as an error may quote it: at most [`MAX_ECHO_CHARS`]
/// characters, control characters shown as U+FFFD. Errors travel in
/// headers; an echo of a megabyte-long field must not become a header the
/// peer refuses (and with it the connection other callers share).
pub fn echo(value: &str) -> String {
    let mut chars = value.chars();
    let mut out: String =
        chars.by_ref().take(MAX_ECHO_CHARS).map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    if chars.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

fn clipped(text: String, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text;
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// An error on its way to a caller: a reason plus what helps the caller act
/// on it. Turned into a [`Status`] once, at the gRPC edge, by [`FolioError::into_status`].
#[derive(Debug, Clone)]
pub struct FolioError {
    reason: Reason,
    message: String,
    metadata: Vec<(String, String)>,
    field_violations: Vec<(String, String)>,
    retry_after: Option<Duration>,
}

impl FolioError {
    /// An error with a reason and a caller-facing message (no internals in it).
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into(), metadata: Vec::new(), field_violations: Vec::new(), retry_after: None }
    }

    /// `INVALID_FIELD` naming the field and what is wrong with it.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let field = echo(field);
        Self::new(Reason::InvalidField, format!("{field}: {description}")).with_violation(field, description)
    }

    /// Adds a `BadRequest` field violation.
    pub fn with_violation(mut self, field: impl Into<String>, description: impl Into<String>) -> Self {
        self.field_violations.push((field.into(), description.into()));
        self
    }

    /// Adds an `ErrorInfo.metadata` entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Adds a `RetryInfo` telling the caller when to try again.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The caller-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status to answer with; `domain` is e.g. `ledger.folio`. Every
    /// text is bounded here, whatever built the error: field names and
    /// metadata values are echoes of at most 64 characters, and violations
    /// past 1 KiB are left out.
    pub fn into_status(self, domain: &str) -> Status {
        let mut details = ErrorDetails::with_error_info(
            self.reason.as_str(),
            domain,
            self.metadata
                .into_iter()
                .map(|(key, value)| (echo(&key), echo(&value)))
                .collect::<std::collections::HashMap<_, _>>(),
        );
        let mut budget = MAX_VIOLATION_BYTES;
        let violations: Vec<_> = self
            .field_violations
            .into_iter()
            .map(|(field, description)| (echo(&field), clipped(description, 2 * MAX_ECHO_CHARS)))
            .take_while(|(field, description)| {
                let size = field.len() + description.len();
                budget = budget.saturating_sub(size);
                budget > 0
            })
            .map(|(field, description)| tonic_types::FieldViolation::new(field, description))
            .collect();
        if !violations.is_empty() {
            details.set_bad_request(violations);
        }
        if let Some(delay) = self.retry_after {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(self.reason.code(), clipped(self.message, MAX_MESSAGE_CHARS), details)
    }
}

impl std::fmt::Display for FolioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

impl std::error::Error for FolioError {}

/// Logs an unexpected failure with its full chain and answers `INTERNAL`
/// without revealing it: internals go to logs, not to callers.
pub fn internal_status(domain: &str, error: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %error_chain(error), "internal error");
    FolioError::new(Reason::Internal, "internal error; it has been logged").into_status(domain)
}

/// `UNAVAILABLE` / `DEPENDENCY_UNAVAILABLE` for a service this one needs.
pub fn dependency_unavailable(domain: &str, dependency: &str) -> Status {
    FolioError::new(Reason::DependencyUnavailable, format!("{dependency} is unavailable; retry later"))
        .with_metadata("dependency", dependency)
        .into_status(domain)
}

/// What a service operation can end in besides success: the caller's
/// mistake (or a business rule), or a fault of ours that the caller only
/// sees as `INTERNAL`.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Answered to the caller as is.
    #[error(transparent)]
    Caller(#[from] FolioError),
    /// Logged in full; the caller gets `INTERNAL`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Failure {
    /// The status to answer with.
    pub fn into_status(self, domain: &str) -> Status {
        match self {
            Failure::Caller(error) => error.into_status(domain),
            Failure::Internal(error) => internal_status(domain, error.as_ref()),
        }
    }

    /// The reason, for a caller's failure.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Failure::Caller(error) => Some(error.reason()),
            Failure::Internal(_) => None,
        }
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(error: sea_orm::DbErr) -> Self {
        Failure::Internal(anyhow::Error::new(error))
    }
}

/// `a: b: c` for an error and its sources.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The reason of a status produced by a Folio service, if it has one.
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|info| info.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_is_upper_snake() {
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert_eq!(Reason::parse(text), Some(*reason));
            assert!(text.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{text}");
        }
    }

    #[test]
    fn echoes_and_details_are_bounded() {
        let path = "p".repeat(8_000);
        let mut error = FolioError::invalid_field(&path, "is not a field of Account");
        for _ in 0..100 {
            error = error.with_violation(path.clone(), "d".repeat(10_000));
        }
        let status = error.with_metadata("path", path.clone()).into_status("account.folio");
        assert!(status.message().chars().count() <= MAX_MESSAGE_CHARS, "{}", status.message().len());
        assert!(status.details().len() <= 2048, "details are {} bytes", status.details().len());
        let details = status.get_error_details();
        let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
        assert!(!violations.is_empty());
        assert!(violations.iter().all(|v| v.field.chars().count() <= MAX_ECHO_CHARS));
        assert_eq!(echo("a\u{0}b"), "a\u{fffd}b");
        assert_eq!(echo(&"x".repeat(65)).chars().count(), MAX_ECHO_CHARS);
    }

    #[test]
    fn design_table_codes() {
        assert_eq!(Reason::InsufficientFunds.code(), Code::FailedPrecondition);
        assert_eq!(Reason::EtagMismatch.code(), Code::Aborted);
        assert_eq!(Reason::TooManyAttempts.code(), Code::ResourceExhausted);
        assert_eq!(Reason::TokenRevoked.code(), Code::Unauthenticated);
        assert_eq!(Reason::RequestIdReused.code(), Code::AlreadyExists);
        assert_eq!(Reason::Overloaded.code(), Code::Unavailable);
    }

    #[test]
    fn status_carries_error_info_violations_and_retry_info() {
        let status = FolioError::invalid_field("amount", "must be positive")
            .with_metadata("index", "3")
            .with_retry_after(Duration::from_secs(2))
            .into_status("ledger.folio");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().cloned().expect("error info");
        assert_eq!(info.reason, "INVALID_FIELD");
        assert_eq!(info.domain, "ledger.folio");
        assert_eq!(info.metadata.get("index").map(String::as_str), Some("3"));
        let violations = details.bad_request().map(|b| b.field_violations.clone()).unwrap_or_default();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "amount");
        assert_eq!(details.retry_info().and_then(|r| r.retry_delay), Some(Duration::from_secs(2)));
    }
}
