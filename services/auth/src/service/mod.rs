//! Auth's operations, one method per RPC, independent of gRPC: they take
//! plain values and the verified [`Principal`], and return domain values or
//! a [`Failure`] carrying the DESIGN.md reason.

pub mod service_accounts;
pub mod sessions;
pub mod users;

use folio_common::paging::PageTokens;
use folio_common::validate::{self, TextRule};
use std::sync::Arc;

use folio_common::{
    auth::{Principal, REVOCATION_CHANNEL, roles},
    cache::Cache,
    error::{Failure, FolioError, Reason},
};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::domain::{keyring::Keyring, lockout::Lockout, password_hasher::PasswordHasher, tokens::TokenIssuer};
use crate::settings::AuthSettings;

pub use sessions::{IssuedTokens, LoginContext};

/// Everything auth's operations need.
#[derive(Clone)]
pub struct AuthCore {
    db: DatabaseConnection,
    cache: Cache,
    hasher: PasswordHasher,
    issuer: TokenIssuer,
    keyring: Keyring,
    lockout: Lockout,
    settings: Arc<AuthSettings>,
    page_tokens: PageTokens,
}

impl AuthCore {
    /// Wires the operations together.
    pub fn new(
        db: DatabaseConnection,
        cache: Cache,
        hasher: PasswordHasher,
        keyring: Keyring,
        settings: AuthSettings,
        page_tokens: PageTokens,
    ) -> Self {
        let issuer = TokenIssuer::new(keyring.clone(), settings.access_token_ttl());
        let lockout = Lockout::new(cache.clone(), &settings);
        Self { db, cache, hasher, issuer, keyring, lockout, settings: Arc::new(settings), page_tokens }
    }

    /// The keyring (for the JWKS endpoint and local verification).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    async fn now(&self, db: &impl ConnectionTrait) -> Result<i64, Failure> {
        Ok(folio_common::db::now(db).await?.timestamp_micros())
    }

    /// Tells every verifier to poll revocations now (best effort: they poll
    /// every second anyway).
    async fn nudge_verifiers(&self) {
        if let Err(error) = self.cache.publish(REVOCATION_CHANNEL, "changed").await {
            tracing::warn!(%error, "could not nudge verifiers; they will poll within a second");
        }
    }
}

/// `PERMISSION_DENIED` / `MISSING_ROLE` unless the caller is an operator.
fn require_operator(principal: &Principal) -> Result<(), Failure> {
    Ok(principal.require_role(roles::OPERATOR)?)
}

/// The caller's user id and session, or `MISSING_ROLE` for service accounts.
fn require_user(principal: &Principal) -> Result<(&str, &str), Failure> {
    match principal.session_id() {
        Some(session_id) => Ok((&principal.subject, session_id)),
        None => Err(FolioError::new(Reason::MissingRole, "this call is for signed-in users").into()),
    }
}

/// A normalised email: trimmed, lower-case, one `@` with text on both sides.
pub fn normalize_email(email: &str) -> Result<String, Failure> {
    validate::checked_text("email", email, TextRule::Identity)?;
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.chars().any(char::is_whitespace)
        });
    if valid { Ok(email) } else { Err(FolioError::invalid_field("email", "must be an email address").into()) }
}

fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, Failure> {
    Ok(folio_common::paging::page_size(requested, default, max)?)
}

/// The given `values`, deduplicated, each one of `allowed`; at least one.
fn known_subset(field: &str, values: &[String], allowed: &[&'static str]) -> Result<Vec<&'static str>, Failure> {
    let mut chosen: Vec<&'static str> = Vec::new();
    for value in values {
        let Some(known) = allowed.iter().find(|a| **a == value.as_str()) else {
            return Err(FolioError::invalid_field(
                field,
                format!("unknown value {:?}", folio_common::error::echo(value)),
            )
            .into());
        };
        if !chosen.contains(known) {
            chosen.push(known);
        }
    }
    if chosen.is_empty() {
        return Err(FolioError::invalid_field(field, "at least one value is required").into());
    }
    Ok(chosen)
}

/// Parses a UUID field or answers `INVALID_FIELD`.
fn parse_id(field: &str, value: &str) -> Result<String, Failure> {
    uuid::Uuid::parse_str(value)
        .map(|id| id.to_string())
        .map_err(|_| FolioError::invalid_field(field, "must be a UUID").into())
}
