//! Auth's use cases, one method per RPC, independent of gRPC: they take
//! plain values and the verified [`Principal`], let the domain decide, and
//! return domain values or a [`Failure`] carrying the DESIGN.md reason.
//! Also here: the keyring, the lock-out and auth's own token verifier,
//! which keep state beside the database.

pub mod keyring;
pub mod local_auth;
pub mod lockout;
mod service_accounts;
mod sessions;
mod users;

use folio_storage::paging::PageTokens;
use std::sync::Arc;

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::cache::Cache;
use folio_tokens::{Principal, REVOCATION_CHANNEL, roles};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::domain::{password_hasher::PasswordHasher, records::User};
use crate::settings::AuthSettings;
use crate::store;
use keyring::{Keyring, TokenIssuer};
use lockout::Lockout;

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
        Ok(store::now(db).await?)
    }

    async fn find_user(&self, db: &impl ConnectionTrait, id: &str) -> Result<User, Failure> {
        store::users::find(db, id).await?.ok_or_else(|| FolioError::new(Reason::UserNotFound, "no such user").into())
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

fn page_size(requested: i32, default: u64, max: u64) -> Result<u64, Failure> {
    Ok(folio_storage::paging::page_size(requested, default, max)?)
}
