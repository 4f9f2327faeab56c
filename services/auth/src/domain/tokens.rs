//! Issuing tokens: EdDSA access tokens (`typ: at+jwt`, RFC 9068 claims) and
//! opaque refresh tokens of 256 random bits, stored only as SHA-256 hashes.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use folio_tokens::{AUDIENCE, AccessClaims, ISSUER};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

/// A signed access token and when it expires (seconds since the epoch).
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// `exp`.
    pub expires_at: i64,
}

/// Who a token is for.
pub enum Subject<'a> {
    /// A user in a session.
    User {
        /// User id.
        id: &'a str,
        /// Session id.
        session_id: &'a str,
        /// Roles.
        roles: &'a [String],
    },
    /// A service account.
    Service {
        /// Client id.
        client_id: &'a str,
        /// Granted scopes.
        scopes: &'a [String],
    },
}

/// The key that signs now, as the keyring hands it out.
pub struct ActiveKey {
    /// Key id (`kid`).
    pub kid: String,
    /// The private key.
    pub key: EncodingKey,
    /// The database clock when the key was chosen (µs).
    pub now_micros: i64,
}

/// Signs an access token for `subject`, valid for `ttl` from the key's clock.
pub fn sign(subject: Subject<'_>, active: ActiveKey, ttl: Duration) -> anyhow::Result<AccessToken> {
    let now = active.now_micros / 1_000_000;
    let exp = now + i64::try_from(ttl.as_secs()).unwrap_or(900);
    let (sub, sid, roles, scope) = match subject {
        Subject::User { id, session_id, roles } => (id, Some(session_id.to_owned()), roles.to_vec(), None),
        Subject::Service { client_id, scopes } => (client_id, None, Vec::new(), Some(scopes.join(" "))),
    };
    let claims = AccessClaims {
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: sub.to_owned(),
        sid,
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now,
        nbf: now,
        exp,
        roles,
        scope,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(active.kid);
    let token = jsonwebtoken::encode(&header, &claims, &active.key)?;
    Ok(AccessToken { token, expires_at: exp })
}

/// A new refresh token: 256 bits from the OS CSPRNG, base64url.
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A new client secret, same strength as a refresh token.
pub fn new_client_secret() -> String {
    new_refresh_token()
}

/// What is stored for a high-entropy secret: SHA-256, hex. (A slow hash adds
/// nothing for 256 random bits; comparison is constant-time.)
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two stored hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
