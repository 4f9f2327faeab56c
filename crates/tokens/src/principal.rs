//! Who is calling: the verified content of an access token.

use serde::{Deserialize, Serialize};

use folio_errors::{FolioError, Reason};

/// Role names carried in users' `roles` claim.
pub mod roles {
    /// A bank customer.
    pub const CUSTOMER: &str = "customer";
    /// Bank staff with administrative rights.
    pub const OPERATOR: &str = "operator";
    /// Every role.
    pub const ALL: &[&str] = &[CUSTOMER, OPERATOR];
}

/// Scope names carried in service accounts' `scope` claim.
pub mod scopes {
    /// Read ledger data of any account.
    pub const LEDGER_READ: &str = "ledger:read";
    /// Create transfers on any account.
    pub const LEDGER_WRITE: &str = "ledger:write";
    /// Call `LedgerAdminService`.
    pub const LEDGER_ADMIN: &str = "ledger:admin";
    /// Read any account.
    pub const ACCOUNTS_READ: &str = "accounts:read";
    /// Change any account.
    pub const ACCOUNTS_WRITE: &str = "accounts:write";
    /// Call `AuthInternalService`.
    pub const AUTH_INTERNAL: &str = "auth:internal";
    /// Every scope.
    pub const ALL: &[&str] = &[LEDGER_READ, LEDGER_WRITE, LEDGER_ADMIN, ACCOUNTS_READ, ACCOUNTS_WRITE, AUTH_INTERNAL];
}

/// The claims of a Folio access token (RFC 9068 profile).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer: `folio-auth`.
    pub iss: String,
    /// Audience: `folio`.
    pub aud: String,
    /// Subject: a user id or a service account's client id.
    pub sub: String,
    /// Session id (users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Token id.
    pub jti: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// User roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Service-account scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// What kind of caller a principal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person, signed in through a session.
    User {
        /// The session the token belongs to.
        session_id: String,
    },
    /// A service account (client credentials).
    Service,
}

/// A verified caller, put in each request's extensions by the auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id or client id.
    pub subject: String,
    /// User or service.
    pub kind: PrincipalKind,
    /// User roles (empty for services).
    pub roles: Vec<String>,
    /// Service scopes (empty for users).
    pub scopes: Vec<String>,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's `exp`.
    pub expires_at: i64,
}

impl Principal {
    /// Builds a principal from verified claims.
    pub fn from_claims(claims: AccessClaims) -> Self {
        let scopes: Vec<String> =
            claims.scope.as_deref().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        let kind = match claims.sid {
            Some(session_id) => PrincipalKind::User { session_id },
            None => PrincipalKind::Service,
        };
        Self { subject: claims.sub, kind, roles: claims.roles, scopes, token_id: claims.jti, expires_at: claims.exp }
    }

    /// The session id, for users.
    pub fn session_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::User { session_id } => Some(session_id),
            PrincipalKind::Service => None,
        }
    }

    /// True for a user holding `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// True for a user with the operator role.
    pub fn is_operator(&self) -> bool {
        self.has_role(roles::OPERATOR)
    }

    /// True for a service holding `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `PERMISSION_DENIED` / `MISSING_ROLE` unless the caller has `role`.
    pub fn require_role(&self, role: &str) -> Result<(), FolioError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingRole, format!("this call needs the `{role}` role"))
                .with_metadata("role", role))
        }
    }

    /// `PERMISSION_DENIED` / `MISSING_SCOPE` unless the caller has `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), FolioError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(FolioError::new(Reason::MissingScope, format!("this call needs the `{scope}` scope"))
                .with_metadata("scope", scope))
        }
    }
}

/// The caller of a request, or `UNAUTHENTICATED` / `TOKEN_MISSING`.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, FolioError> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| FolioError::new(Reason::TokenMissing, "this call needs `authorization: Bearer <access token>`"))
}
