//! Local verification of access tokens against the keys auth publishes, plus
//! the revocation list every verifier keeps in memory.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use folio_proto::auth::{Jwk, ListRevocationsResponse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::principal::{AccessClaims, Principal};
use super::sources::{KeySource, RevocationSource};
use folio_errors::{FolioError, Reason};
use folio_storage::cache::Cache;

/// Issuer every Folio access token carries.
pub const ISSUER: &str = "folio-auth";
/// Audience every Folio access token carries.
pub const AUDIENCE: &str = "folio";
/// Longest lifetime an access token may have.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Pub/sub channel on which auth nudges verifiers to refresh revocations.
pub const REVOCATION_CHANNEL: &str = "folio:revocations";

/// Tuning of a verifier.
#[derive(Debug, Clone, Copy)]
pub struct VerifierSettings {
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// An unknown `kid` re-fetches the key set at most this often.
    pub jwks_refetch_interval: Duration,
    /// The key set is refreshed at least this often.
    pub jwks_refresh_interval: Duration,
    /// Revocations are polled this often.
    pub revocation_poll_interval: Duration,
    /// With no successful revocation poll for this long, tokens are refused
    /// (`DEPENDENCY_UNAVAILABLE`): a verifier that cannot learn of revocations
    /// must not keep honouring revoked tokens.
    pub revocation_max_staleness: Duration,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(5),
            jwks_refresh_interval: Duration::from_secs(60),
            revocation_poll_interval: Duration::from_secs(1),
            revocation_max_staleness: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Revocations {
    version: i64,
    sessions: HashSet<String>,
    tokens: HashSet<String>,
    subjects: HashSet<String>,
    refreshed_at: Option<Instant>,
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Tokens whose signature and claims already verified, by the token text:
/// a repeated token skips the Ed25519 check (about 67 µs) and the JSON parse;
/// revocation and expiry are still checked on every call. Keyed by the text
/// itself, not a digest: a SHA-256 costs microseconds per call, and a cheaper
/// hash could let a colliding token borrow another's identity. Bounded:
/// when full, expired tokens are dropped first.
const VERIFIED_CACHE_LIMIT: usize = 50_000;

struct Inner {
    verified: RwLock<HashMap<String, AccessClaims>>,
    settings: VerifierSettings,
    key_source: Arc<dyn KeySource>,
    revocation_source: Arc<dyn RevocationSource>,
    keys: RwLock<Keys>,
    /// Serialises key fetches so a burst of unknown kids makes one fetch.
    fetch_lock: Mutex<()>,
    revocations: RwLock<Revocations>,
    validation: Validation,
}

/// Verifies Folio access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

impl TokenVerifier {
    /// A verifier reading keys and revocations from the given sources.
    /// Call [`TokenVerifier::spawn_refresh`] to keep revocations current.
    pub fn new(
        key_source: Arc<dyn KeySource>,
        revocation_source: Arc<dyn RevocationSource>,
        settings: VerifierSettings,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            inner: Arc::new(Inner {
                verified: RwLock::new(HashMap::new()),
                settings,
                key_source,
                revocation_source,
                keys: RwLock::new(Keys { by_kid: HashMap::new(), fetched_at: None }),
                fetch_lock: Mutex::new(()),
                revocations: RwLock::new(Revocations::default()),
                validation,
            }),
        }
    }

    /// Verifies `token` and returns its principal, or the reason it is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, FolioError> {
        let cached = self.inner.verified.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned();
        let claims = match cached {
            Some(claims) => {
                let now = chrono::Utc::now().timestamp();
                let leeway = i64::try_from(self.inner.settings.leeway.as_secs()).unwrap_or(0);
                if claims.exp + leeway <= now {
                    return Err(FolioError::new(Reason::TokenExpired, "the access token has expired"));
                }
                claims
            }
            None => {
                let claims = self.verify_signature_and_claims(token).await?;
                let mut verified = self.inner.verified.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                if verified.len() >= VERIFIED_CACHE_LIMIT {
                    // Expired tokens go first; only a cache full of live
                    // tokens starts over (each is verified again once).
                    let now = chrono::Utc::now().timestamp();
                    verified.retain(|_, claims| claims.exp > now);
                    if verified.len() >= VERIFIED_CACHE_LIMIT {
                        verified.clear();
                    }
                }
                verified.insert(token.to_owned(), claims.clone());
                claims
            }
        };
        self.check_revocation(&claims)?;
        Ok(Principal::from_claims(claims))
    }

    async fn verify_signature_and_claims(&self, token: &str) -> Result<AccessClaims, FolioError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a well-formed JWT"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("the token's algorithm is not allowed"));
        }
        let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(invalid("the token is not an access token (typ)"));
        }
        let kid = header.kid.ok_or_else(|| invalid("the token names no key (kid)"))?;
        let key = self.key(&kid).await?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.inner.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => FolioError::new(Reason::TokenExpired, "the access token has expired"),
                ErrorKind::ImmatureSignature => invalid("the token is not valid yet (nbf)"),
                ErrorKind::InvalidAudience => invalid("the token is not for Folio (aud)"),
                ErrorKind::InvalidIssuer => invalid("the token was not issued by Folio (iss)"),
                ErrorKind::InvalidSignature => invalid("the token's signature does not verify"),
                _ => invalid("the token does not verify"),
            })?
            .claims;
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime < 0 || lifetime.unsigned_abs() > MAX_ACCESS_TOKEN_LIFETIME.as_secs() {
            return Err(invalid("the token's lifetime exceeds 15 minutes"));
        }
        Ok(claims)
    }

    fn check_revocation(&self, claims: &AccessClaims) -> Result<(), FolioError> {
        let revocations = self.inner.revocations.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh =
            revocations.refreshed_at.is_some_and(|at| at.elapsed() <= self.inner.settings.revocation_max_staleness);
        if !fresh {
            return Err(FolioError::new(
                Reason::DependencyUnavailable,
                "token revocations cannot be checked right now; retry later",
            )
            .with_metadata("dependency", "auth"));
        }
        let revoked = revocations.tokens.contains(&claims.jti)
            || revocations.subjects.contains(&claims.sub)
            || claims.sid.as_ref().is_some_and(|sid| revocations.sessions.contains(sid));
        if revoked {
            return Err(FolioError::new(Reason::TokenRevoked, "the access token has been revoked"));
        }
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, FolioError> {
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let _one_fetch = self.inner.fetch_lock.lock().await;
        // Another caller may have fetched while we waited.
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        let recently =
            self.keys_read().fetched_at.is_some_and(|at| at.elapsed() < self.inner.settings.jwks_refetch_interval);
        if !recently {
            self.refresh_keys_locked().await;
        }
        self.cached_key(kid).ok_or_else(|| invalid("the token's signing key is unknown (kid)"))
    }

    fn keys_read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.inner.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys_read().by_kid.get(kid).cloned()
    }

    /// Fetches the key set now (the caller holds `fetch_lock`, or doesn't need to).
    async fn refresh_keys_locked(&self) {
        match self.inner.key_source.fetch_keys().await {
            Ok(jwks) => {
                let by_kid = decoding_keys(&jwks);
                let mut keys = self.inner.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                keys.by_kid = by_kid;
                keys.fetched_at = Some(Instant::now());
            }
            Err(error) => {
                tracing::warn!(error = %error, "fetching signing keys failed");
                // Count a failed fetch as a fetch so a flood of unknown kids
                // does not hammer auth.
                self.inner.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner).fetched_at =
                    Some(Instant::now());
            }
        }
    }

    /// Polls revocations once; returns whether anything changed.
    pub async fn refresh_revocations(&self) -> anyhow::Result<bool> {
        let since = self.inner.revocations.read().unwrap_or_else(std::sync::PoisonError::into_inner).version;
        let update = self.inner.revocation_source.fetch_revocations(since).await?;
        Ok(self.apply_revocations(update))
    }

    fn apply_revocations(&self, update: ListRevocationsResponse) -> bool {
        let mut revocations = self.inner.revocations.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        revocations.refreshed_at = Some(Instant::now());
        if update.unchanged {
            return false;
        }
        revocations.version = update.version;
        revocations.sessions = update.revoked_session_ids.into_iter().collect();
        revocations.tokens = update.revoked_token_ids.into_iter().collect();
        revocations.subjects =
            update.disabled_user_ids.into_iter().chain(update.disabled_service_account_ids).collect();
        true
    }

    /// Keeps keys and revocations fresh until `shutdown`: revocations every
    /// poll interval, sooner on a pub/sub nudge; keys every refresh interval.
    pub fn spawn_refresh(&self, cache: Option<Cache>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let verifier = self.clone();
        tokio::spawn(async move {
            let mut nudges = match &cache {
                Some(cache) => cache.subscribe(REVOCATION_CHANNEL).await.ok(),
                None => None,
            };
            let mut poll = tokio::time::interval(verifier.inner.settings.revocation_poll_interval);
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut keys = tokio::time::interval(verifier.inner.settings.jwks_refresh_interval);
            keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing_since: Option<Instant> = None;
            let mut last_warning: Option<Instant> = None;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = poll.tick() => {}
                    _ = keys.tick() => {
                        let _one_fetch = verifier.inner.fetch_lock.lock().await;
                        verifier.refresh_keys_locked().await;
                        continue;
                    }
                    Some(_) = next_nudge(&mut nudges) => {}
                }
                match verifier.refresh_revocations().await {
                    Ok(_) => {
                        if let Some(since) = failing_since.take() {
                            tracing::info!(outage_secs = since.elapsed().as_secs(), "polling revocations works again");
                        }
                    }
                    Err(error) => {
                        // Polls run every second: warn when an outage starts and
                        // then every 30 s, not on every failed poll.
                        failing_since.get_or_insert_with(Instant::now);
                        if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(30)) {
                            tracing::warn!(error = %error, "polling revocations failed; tokens are refused once the list is stale");
                            last_warning = Some(Instant::now());
                        }
                    }
                }
            }
        })
    }
}

async fn next_nudge(nudges: &mut Option<futures::stream::BoxStream<'static, String>>) -> Option<String> {
    use futures::StreamExt;
    match nudges {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn decoding_keys(jwks: &[Jwk]) -> HashMap<String, DecodingKey> {
    jwks.iter()
        .filter(|jwk| jwk.kty == "OKP" && jwk.crv == "Ed25519" && (jwk.alg.is_empty() || jwk.alg == "EdDSA"))
        .filter_map(|jwk| match DecodingKey::from_ed_components(&jwk.x) {
            Ok(key) => Some((jwk.kid.clone(), key)),
            Err(error) => {
                tracing::warn!(kid = %jwk.kid, %error, "ignoring a malformed published key");
                None
            }
        })
        .collect()
}

fn invalid(message: &str) -> FolioError {
    FolioError::new(Reason::TokenInvalid, message)
}
