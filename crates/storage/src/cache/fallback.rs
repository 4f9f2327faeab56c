//! Redis with the in-process cache behind it (DESIGN §2): while Redis does
//! not answer, every operation runs on this replica's own cache, so sign-in,
//! lock-outs and rate limits keep working (per replica; a rate limit then
//! enforces this replica's share of the budget). The loss is a metric and a
//! throttled warning; Redis is tried again every second and used as soon as
//! it answers.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{CacheError, MemoryCache, RateLimit, RedisCache};

/// After a failure, Redis is left alone this long (no call waits on a dead server).
const RETRY_AFTER_MILLIS: u64 = 1_000;
/// At most one warning this often while Redis is down.
const WARN_EVERY_MILLIS: u64 = 10_000;

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Redis, and what stands in for it.
pub struct WithFallback {
    redis: RedisCache,
    fallback: MemoryCache,
    /// Replicas sharing a budget: the fallback enforces 1/share of it.
    share: u32,
    down_until: AtomicU64,
    warned_at: AtomicU64,
}

impl WithFallback {
    /// `redis`, falling back to a fresh in-process cache.
    pub fn new(redis: RedisCache) -> Self {
        Self {
            redis,
            fallback: MemoryCache::default(),
            share: 1,
            down_until: AtomicU64::new(0),
            warned_at: AtomicU64::new(0),
        }
    }

    /// While on the fallback, rate limits enforce 1/`replicas` of each budget.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.share = replicas.max(1);
        self
    }

    /// The same limit cut to this replica's share.
    pub(super) fn share_of(&self, limit: RateLimit) -> RateLimit {
        RateLimit { rate_per_sec: limit.rate_per_sec / f64::from(self.share), burst: (limit.burst / self.share).max(1) }
    }

    /// Runs `on_redis` unless Redis is known to be down, else (or when it
    /// fails) `on_fallback`.
    pub(super) async fn run<'a, T, Fut>(
        &'a self,
        on_redis: impl FnOnce(&'a RedisCache) -> Fut,
        on_fallback: impl FnOnce(&'a MemoryCache) -> T,
    ) -> Result<T, CacheError>
    where
        Fut: Future<Output = Result<T, CacheError>>,
    {
        let now = now_millis();
        let down_until = self.down_until.load(Ordering::Relaxed);
        if now < down_until {
            return Ok(on_fallback(&self.fallback));
        }
        match on_redis(&self.redis).await {
            Ok(value) => {
                if down_until != 0 && self.down_until.swap(0, Ordering::Relaxed) != 0 {
                    tracing::info!("Redis answers again; the shared cache is back in use");
                    metrics::gauge!("folio_cache_fallback_active").set(0.0);
                }
                Ok(value)
            }
            Err(error) => {
                self.down_until.store(now + RETRY_AFTER_MILLIS, Ordering::Relaxed);
                metrics::gauge!("folio_cache_fallback_active").set(1.0);
                metrics::counter!("folio_cache_fallback_total").increment(1);
                let warned = self.warned_at.load(Ordering::Relaxed);
                if now.saturating_sub(warned) >= WARN_EVERY_MILLIS
                    && self.warned_at.compare_exchange(warned, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    tracing::warn!(%error, "Redis is unavailable; serving from this replica's own cache");
                }
                Ok(on_fallback(&self.fallback))
            }
        }
    }

    /// Whether Redis is being skipped right now.
    pub fn on_fallback(&self) -> bool {
        now_millis() < self.down_until.load(Ordering::Relaxed)
    }

    /// The Redis cache itself.
    pub(super) fn redis(&self) -> &RedisCache {
        &self.redis
    }

    /// How long a failed Redis is left alone.
    pub fn retry_after() -> Duration {
        Duration::from_millis(RETRY_AFTER_MILLIS)
    }
}
