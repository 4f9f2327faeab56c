//! Signing keys: Ed25519 keys sealed at rest with the key-encryption key,
//! published as JWKS, rotated so a new key signs only after every verifier
//! can have fetched it, and old keys stay published until their tokens expire.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, aead::Aead, aead::Payload};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use folio_common::auth::MAX_ACCESS_TOKEN_LIFETIME;
use folio_common::db::{RetryPolicy, TxError, run_in_tx};
use folio_proto::auth::Jwk;
use jsonwebtoken::EncodingKey;
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use secrecy::{ExposeSecret, SecretBox};

use crate::store::entities::signing_keys;

/// Keys stay published this long after they stop signing (the longest token
/// lifetime plus clock leeway).
const PUBLISHED_AFTER_RETIREMENT: Duration = Duration::from_secs(MAX_ACCESS_TOKEN_LIFETIME.as_secs() + 60);
/// How long the in-memory copy of the key table is trusted.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The key-encryption key that seals private keys at rest.
pub struct Kek(SecretBox<[u8; 32]>);

impl Kek {
    /// From base64 of 32 bytes.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(encoded.trim()).context("`auth.key_encryption_key` is not base64")?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| anyhow::anyhow!("`auth.key_encryption_key` must decode to 32 bytes"))?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key, base64.
    pub fn generate_base64() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// nonce ‖ ciphertext, base64; `kid` is bound as associated data so a
    /// sealed key cannot be swapped onto another row.
    fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<String> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher()
            .encrypt((&nonce).into(), Payload { msg: plaintext, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealing a signing key failed"))?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let raw = STANDARD.decode(sealed).context("sealed key is not base64")?;
        anyhow::ensure!(raw.len() > 12, "sealed key too short");
        let (nonce, ciphertext) = raw.split_at(12);
        self.cipher()
            .decrypt(nonce.into(), Payload { msg: ciphertext, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("signing key {kid} does not open with the configured key-encryption key"))
    }
}

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
        if signing_keys::Entity::find().one(&keyring.db).await?.is_none() {
            let now = folio_common::db::now(&keyring.db).await?.timestamp_micros();
            keyring.insert_key(&keyring.db, now).await?;
        }
        keyring.reload().await?;
        Ok(keyring)
    }

    async fn insert_key(&self, db: &impl ConnectionTrait, signs_from: i64) -> anyhow::Result<String> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let der = signing.to_pkcs8_der().map_err(|e| anyhow::anyhow!("encoding a signing key: {e}"))?;
        let now = folio_common::db::now(db).await?.timestamp_micros();
        signing_keys::ActiveModel {
            kid: Set(kid.clone()),
            public_key: Set(URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes())),
            encrypted_private_key: Set(self.kek.seal(&kid, der.as_bytes())?),
            created_at: Set(now),
            signs_from: Set(signs_from),
            retired_at: Set(None),
        }
        .insert(db)
        .await?;
        Ok(kid)
    }

    async fn reload(&self) -> anyhow::Result<Arc<Snapshot>> {
        let db_now = folio_common::db::now(&self.db).await?.timestamp_micros();
        let horizon = db_now - i64::try_from(PUBLISHED_AFTER_RETIREMENT.as_micros()).unwrap_or(i64::MAX);
        let rows = signing_keys::Entity::find()
            .filter(signing_keys::Column::RetiredAt.is_null().or(signing_keys::Column::RetiredAt.gt(horizon)))
            .order_by_desc(signing_keys::Column::SignsFrom)
            .all(&self.db)
            .await?;
        let keys = rows
            .into_iter()
            .map(|row| {
                let der = self.kek.open(&row.kid, &row.encrypted_private_key)?;
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
    pub async fn signing_key(&self) -> anyhow::Result<(String, EncodingKey, i64)> {
        let snapshot = self.current().await?;
        let now = snapshot.db_now();
        let key = snapshot
            .keys
            .iter()
            .filter(|key| key.signs_from <= now)
            .max_by_key(|key| key.signs_from)
            .context("no signing key is active")?;
        Ok((key.kid.clone(), key.encoding.clone(), now))
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
            if tx.get_database_backend() == DbBackend::Postgres {
                tx.execute_unprepared("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").await?;
            }
            let now = folio_common::db::now(&*tx).await?.timestamp_micros();
            let signs_from = now.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
            let kid = self.insert_key(&*tx, signs_from).await.map_err(TxError::Abort)?;
            signing_keys::Entity::update_many()
                .col_expr(signing_keys::Column::RetiredAt, sea_orm::sea_query::Expr::value(signs_from))
                .filter(signing_keys::Column::Kid.ne(kid.clone()))
                .filter(signing_keys::Column::RetiredAt.is_null())
                .exec(&*tx)
                .await?;
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
