//! Users, sessions and service accounts as auth keeps them.

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id (UUID).
    pub id: String,
    /// Normalised email, unique.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Disabled users cannot sign in and their tokens are refused.
    pub disabled: bool,
    /// When registered (µs).
    pub created_at: i64,
    /// When last changed (µs).
    pub updated_at: i64,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Id (UUID).
    pub id: String,
    /// The signed-in user.
    pub user_id: String,
    /// When it began (µs).
    pub created_at: i64,
    /// When its refresh token was last used (µs).
    pub last_used_at: i64,
    /// When it ends (µs).
    pub expires_at: i64,
    /// When it was ended early (µs).
    pub revoked_at: Option<i64>,
    /// The client IP at sign-in.
    pub client_ip: String,
    /// The user agent at sign-in.
    pub user_agent: String,
}

/// A refresh token as stored: by the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session it refreshes.
    pub session_id: String,
    /// When it lapses (µs).
    pub expires_at: i64,
}

/// A service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Client id.
    pub client_id: String,
    /// Unique name.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
    /// Disabled accounts get no token and their tokens are refused.
    pub disabled: bool,
    /// When created (µs).
    pub created_at: i64,
    /// When last changed (µs).
    pub updated_at: i64,
}
