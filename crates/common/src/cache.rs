//! Losable, rebuildable state (DESIGN.md section 2): counters with expiry,
//! rate-limit buckets, expiring keys and pub/sub nudges, in Redis when
//! configured and in process otherwise. Both backends pass one test suite.

use std::time::Duration;

use futures::stream::BoxStream;
use secrecy::ExposeSecret;

use crate::config::RedisSettings;

mod memory;
mod redis_backend;

pub use memory::MemoryCache;
pub use redis_backend::RedisCache;

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

/// Redis or the in-process fallback.
#[derive(Clone)]
pub enum Cache {
    /// Shared across replicas.
    Redis(Box<RedisCache>),
    /// This process only.
    Memory(MemoryCache),
}

impl Cache {
    /// Redis when `redis.url` is set, the in-process fallback otherwise.
    pub async fn from_settings(settings: &RedisSettings) -> anyhow::Result<Self> {
        Ok(match &settings.url {
            Some(url) => Cache::Redis(Box::new(RedisCache::connect(url.expose_secret()).await?)),
            None => Cache::Memory(MemoryCache::default()),
        })
    }

    /// Adds one to `key`, starting its expiry `ttl` on the first increment; returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(c) => c.incr(key, ttl).await,
            Cache::Memory(c) => Ok(c.incr(key, ttl)),
        }
    }

    /// The value of a counter (0 when absent or expired).
    pub async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        match self {
            Cache::Redis(c) => c.counter(key).await,
            Cache::Memory(c) => Ok(c.counter(key)),
        }
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.set(key, value, ttl).await,
            Cache::Memory(c) => {
                c.set(key, value, ttl);
                Ok(())
            }
        }
    }

    /// The value of `key`, if present and not expired.
    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        match self {
            Cache::Redis(c) => c.get(key).await,
            Cache::Memory(c) => Ok(c.get(key)),
        }
    }

    /// Removes `key` (counters included).
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.delete(key).await,
            Cache::Memory(c) => {
                c.delete(key);
                Ok(())
            }
        }
    }

    /// Takes `cost` from the bucket `key` if it allows, atomically (one round trip on Redis).
    pub async fn rate_limit(&self, key: &str, limit: RateLimit, cost: u32) -> Result<RateDecision, CacheError> {
        match self {
            Cache::Redis(c) => c.rate_limit(key, limit, cost).await,
            Cache::Memory(c) => Ok(c.rate_limit(key, limit, cost)),
        }
    }

    /// Publishes a nudge on `channel` to every subscriber (of every replica, on Redis).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        match self {
            Cache::Redis(c) => c.publish(channel, message).await,
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
            Cache::Redis(c) => c.subscribe(channel).await,
            Cache::Memory(c) => Ok(c.subscribe(channel)),
        }
    }
}
