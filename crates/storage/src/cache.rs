//! Losable, rebuildable state (DESIGN.md section 2): counters with expiry,
//! rate-limit buckets, expiring keys and pub/sub nudges, in Redis when
//! configured and in process otherwise. Both backends pass one test suite.

use std::{sync::Arc, time::Duration};

use futures::stream::BoxStream;
use secrecy::ExposeSecret;

use serde::Deserialize;

mod fallback;
mod memory;
mod redis_backend;
mod synced_limits;

pub use fallback::WithFallback;
pub use memory::MemoryCache;
pub use redis_backend::RedisCache;
pub use synced_limits::{SYNC_EVERY, SyncedLimiter};

/// A cache failure. Callers decide whether to fail open or closed.
#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(String);

impl From<redis::RedisError> for CacheError {
    fn from(error: redis::RedisError) -> Self {
        Self(error.to_string())
    }
}

/// The outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may proceed (its cost was taken).
    pub allowed: bool,
    /// When refused: how long until the same request would be allowed.
    pub retry_after: Duration,
}

/// A rate limit: `rate_per_sec` sustained, `burst` at once (GCRA).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second (> 0).
    pub rate_per_sec: f64,
    /// Requests allowed at once from a full bucket (>= 1).
    pub burst: u32,
}

impl RateLimit {
    /// Microseconds between two requests at the sustained rate.
    fn emission_micros(self) -> i64 {
        (1_000_000.0 / self.rate_per_sec.max(1e-6)).ceil() as i64
    }

    /// How far ahead of now the theoretical arrival time may run.
    fn tolerance_micros(self) -> i64 {
        self.emission_micros().saturating_mul(i64::from(self.burst.max(1)))
    }
}

/// Redis (with the in-process cache standing in while it is down) or the
/// in-process cache alone.
#[derive(Clone)]
pub enum Cache {
    /// Shared across replicas.
    Redis(Arc<WithFallback>),
    /// This process only.
    Memory(MemoryCache),
}

impl Cache {
    /// Redis when `redis.url` is set, the in-process fallback otherwise.
    pub async fn from_settings(settings: &RedisSettings) -> anyhow::Result<Self> {
        Ok(match &settings.url {
            Some(url) => {
                Cache::redis(RedisCache::connect_with(url.expose_secret(), settings.tls_ca_file.as_deref()).await?)
            }
            None => Cache::Memory(MemoryCache::default()),
        })
    }

    /// `redis`, with the in-process cache standing in while it is down.
    pub fn redis(redis: RedisCache) -> Self {
        Cache::Redis(Arc::new(WithFallback::new(redis)))
    }

    /// While Redis is down, rate limits enforce 1/`replicas` of each budget.
    pub fn with_replicas(self, replicas: u32) -> Self {
        match self {
            Cache::Redis(shared) => match Arc::try_unwrap(shared) {
                Ok(shared) => Cache::Redis(Arc::new(shared.with_replicas(replicas))),
                Err(shared) => Cache::Redis(shared),
            },
            memory => memory,
        }
    }

    /// Adds one to `key`, starting its expiry `ttl` on the first increment; returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.incr(key, ttl), |m| m.incr(key, ttl)).await,
            Cache::Memory(c) => Ok(c.incr(key, ttl)),
        }
    }

    /// Takes one from a counter that exists (never below zero); returns the new count.
    pub async fn decr(&self, key: &str) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.decr(key), |m| m.decr(key)).await,
            Cache::Memory(c) => Ok(c.decr(key)),
        }
    }

    /// The value of a counter (0 when absent or expired).
    pub async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.counter(key), |m| m.counter(key)).await,
            Cache::Memory(c) => Ok(c.counter(key)),
        }
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.set(key, value, ttl), |m| m.set(key, value, ttl)).await,
            Cache::Memory(c) => {
                c.set(key, value, ttl);
                Ok(())
            }
        }
    }

    /// The value of `key`, if present and not expired.
    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.get(key), |m| m.get(key)).await,
            Cache::Memory(c) => Ok(c.get(key)),
        }
    }

    /// Removes `key` (counters included).
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.delete(key), |m| m.delete(key)).await,
            Cache::Memory(c) => {
                c.delete(key);
                Ok(())
            }
        }
    }

    /// Takes `cost` from the bucket `key` if it allows, atomically (one round
    /// trip on Redis; this replica's share of the budget while Redis is down).
    pub async fn rate_limit(&self, key: &str, limit: RateLimit, cost: u32) -> Result<RateDecision, CacheError> {
        match self {
            Cache::Redis(c) => {
                let share = c.share_of(limit);
                c.run(|r| r.rate_limit(key, limit, cost), |m| m.rate_limit(key, share, cost)).await
            }
            Cache::Memory(c) => Ok(c.rate_limit(key, limit, cost)),
        }
    }

    /// Publishes a nudge on `channel` to every subscriber (of every replica, on Redis).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.run(|r| r.publish(channel, message), |m| m.publish(channel, message)).await,
            Cache::Memory(c) => {
                c.publish(channel, message);
                Ok(())
            }
        }
    }

    /// Messages published on `channel` from now on. Delivery is best effort:
    /// nudges only hurry work that also happens on a timer.
    pub async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, String>, CacheError> {
        match self {
            Cache::Redis(c) => c.redis().subscribe(channel).await,
            Cache::Memory(c) => Ok(c.subscribe(channel)),
        }
    }
}

/// Redis connection (`redis.*`, `FOLIO__REDIS__*`); unset means the in-process fallback.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://...`, or `rediss://...` for TLS.
    pub url: Option<secrecy::SecretString>,
    /// With `rediss://`: the CA (PEM) Redis's certificate must chain to,
    /// instead of the system's trust store (a private CA, as in CI).
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl From<CacheError> for folio_errors::Failure {
    fn from(error: CacheError) -> Self {
        folio_errors::Failure::Internal(anyhow::Error::new(error))
    }
}
