//! Signing keys: Ed25519 keys sealed at rest with the key-encryption key,
//! published as JWKS, rotated so a new key signs only after every verifier
//! can have fetched it, and old keys stay published until their tokens expire.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use folio_proto::auth::Jwk;
use folio_storage::db::{RetryPolicy, TxError, run_in_tx};
use folio_tokens::MAX_ACCESS_TOKEN_LIFETIME;
use jsonwebtoken::EncodingKey;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::domain::{
    kek::Kek,
    tokens::{self, AccessToken, ActiveKey, Subject},
};
use crate::store::{self, signing_keys::StoredKey};

/// Keys stay published this long after they stop signing (the longest token
/// lifetime plus clock leeway).
const PUBLISHED_AFTER_RETIREMENT: Duration = Duration::from_secs(MAX_ACCESS_TOKEN_LIFETIME.as_secs() + 60);
/// How long the in-memory copy of the key table is trusted.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

struct LoadedKey {
    kid: String,
    public_key: String,
    signs_from: i64,
    encoding: EncodingKey,
}

struct Snapshot {
    keys: Vec<LoadedKey>,
    /// Database clock (µs) when loaded, and the local instant it maps to.
    db_now: i64,
    loaded: Instant,
}

impl Snapshot {
    fn db_now(&self) -> i64 {
        self.db_now.saturating_add(i64::try_from(self.loaded.elapsed().as_micros()).unwrap_or(i64::MAX))
    }
}

/// The signing keys, cached in memory and reloaded every few seconds so that
/// every auth replica follows a rotation made by any of them.
#[derive(Clone)]
pub struct Keyring {
    db: DatabaseConnection,
    kek: Arc<Kek>,
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl Keyring {
    /// A keyring over the `signing_keys` table; creates the first key when there is none.
    pub async fn open(db: DatabaseConnection, kek: Kek) -> anyhow::Result<Self> {
        let keyring = Self { db, kek: Arc::new(kek), snapshot: Arc::new(RwLock::new(None)) };
        if !store::signing_keys::any(&keyring.db).await? {
            let now = store::now(&keyring.db).await?;
            keyring.insert_key(&keyring.db, now).await?;
        }
        keyring.reload().await?;
        Ok(keyring)
    }

    async fn insert_key(&self, db: &impl ConnectionTrait, signs_from: i64) -> anyhow::Result<String> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let der = signing.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding a signing key: {e}"))?;
        let now = store::now(db).await?;
        let key = StoredKey {
            kid: kid.clone(),
            public_key: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
            sealed_private_key: self.kek.seal(&kid, der.as_bytes())?,
            signs_from,
        };
        store::signing_keys::insert(db, key, now).await?;
        Ok(kid)
    }

    async fn reload(&self) -> anyhow::Result<Arc<Snapshot>> {
        let db_now = store::now(&self.db).await?;
        let horizon = db_now - i64::try_from(PUBLISHED_AFTER_RETIREMENT.as_micros()).unwrap_or(i64::MAX);
        let keys = store::signing_keys::published(&self.db, horizon)
            .await?
            .into_iter()
            .map(|row| {
                let der = self.kek.open(&row.kid, &row.sealed_private_key)?;
                Ok(LoadedKey {
                    encoding: EncodingKey::from_ed_der(&der),
                    kid: row.kid,
                    public_key: row.public_key,
                    signs_from: row.signs_from,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let snapshot = Arc::new(Snapshot { keys, db_now, loaded: Instant::now() });
        *self.snapshot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    async fn current(&self) -> anyhow::Result<Arc<Snapshot>> {
        let cached = self.snapshot.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match cached {
            Some(snapshot) if snapshot.loaded.elapsed() < RELOAD_EVERY => Ok(snapshot),
            _ => self.reload().await,
        }
    }

    /// The key that signs now: the newest whose activation time has passed.
    pub async fn signing_key(&self) -> anyhow::Result<ActiveKey> {
        let snapshot = self.current().await?;
        let now = snapshot.db_now();
        let key = snapshot
            .keys
            .iter()
            .filter(|key| key.signs_from <= now)
            .max_by_key(|key| key.signs_from)
            .context("no signing key is active")?;
        Ok(ActiveKey { kid: key.kid.clone(), key: key.encoding.clone(), now_micros: now })
    }

    /// Every key a valid token may carry, newest first.
    pub async fn published(&self) -> anyhow::Result<Vec<Jwk>> {
        let snapshot = self.current().await?;
        Ok(snapshot
            .keys
            .iter()
            .map(|key| Jwk {
                kty: "OKP".to_owned(),
                crv: "Ed25519".to_owned(),
                x: key.public_key.clone(),
                kid: key.kid.clone(),
                alg: "EdDSA".to_owned(),
                r#use: "sig".to_owned(),
            })
            .collect())
    }

    /// Adds a key that signs from `delay` after now; the keys before it
    /// retire at that moment and stay published until their tokens expire.
    /// Rotations are serialised (a table lock on PostgreSQL, the write lock
    /// on SQLite), so two operators rotating at once leave exactly one key
    /// unretired: the later rotation retires the earlier one's key.
    pub async fn rotate(&self, delay: Duration) -> anyhow::Result<(String, i64)> {
        let rotated = run_in_tx(&self.db, "auth_rotate_signing_key", RetryPolicy::default(), |tx| async move {
            store::signing_keys::lock_for_rotation(&*tx).await?;
            let now = store::now(&*tx).await?;
            let signs_from = now.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
            let kid = self.insert_key(&*tx, signs_from).await.map_err(TxError::Abort)?;
            store::signing_keys::retire_all_but(&*tx, &kid, signs_from).await?;
            Ok::<_, TxError<anyhow::Error>>((kid, signs_from))
        })
        .await
        .map_err(|error| match error {
            TxError::Db(error) => anyhow::Error::new(error),
            TxError::Abort(error) => error,
        })?;
        self.reload().await?;
        Ok(rotated)
    }
}

/// Signs access tokens with the keyring's current key.
#[derive(Clone)]
pub struct TokenIssuer {
    keyring: Keyring,
    ttl: Duration,
}

impl TokenIssuer {
    /// Tokens valid for `ttl` (at most 15 minutes).
    pub fn new(keyring: Keyring, ttl: Duration) -> Self {
        Self { keyring, ttl }
    }

    /// Signs an access token for `subject`.
    pub async fn access_token(&self, subject: Subject<'_>) -> anyhow::Result<AccessToken> {
        tokens::sign(subject, self.keyring.signing_key().await?, self.ttl)
    }
}
