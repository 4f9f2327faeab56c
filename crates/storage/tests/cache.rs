//! One suite, two backends: real Redis and the in-process fallback must
//! behave the same for counters, expiring keys, rate limits and pub/sub.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use std::time::Duration;

use folio_storage::cache::{Cache, MemoryCache, RateLimit, RedisCache};
use folio_testkit::{redis_url, unique};
use futures::StreamExt;

macro_rules! cache_suite {
    ($($name:ident),* $(,)?) => {
        mod redis_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let cache = super::Cache::redis(
                        super::RedisCache::connect(&super::redis_url()).await.expect("Redis must be running"),
                    );
                    super::$name(cache).await;
                }
            )*
        }
        mod memory_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Cache::Memory(super::MemoryCache::default())).await;
                }
            )*
        }
    };
}

cache_suite!(
    counters_count_and_expire,
    keys_expire_and_delete,
    rate_limit_allows_the_burst_then_refuses_with_a_delay,
    rate_limit_buckets_are_independent_and_refill,
    published_nudges_reach_subscribers,
);

async fn counters_count_and_expire(cache: Cache) {
    let key = unique("test:counter:");
    assert_eq!(cache.counter(&key).await.expect("counter"), 0);
    for expected in 1..=3 {
        assert_eq!(cache.incr(&key, Duration::from_millis(300)).await.expect("incr"), expected);
    }
    assert_eq!(cache.counter(&key).await.expect("counter"), 3);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(cache.counter(&key).await.expect("counter"), 0, "the counter must expire with its first ttl");
    assert_eq!(cache.incr(&key, Duration::from_secs(5)).await.expect("incr"), 1, "expired counters restart at 1");
}

async fn keys_expire_and_delete(cache: Cache) {
    let key = unique("test:key:");
    cache.set(&key, "value", Duration::from_millis(300)).await.expect("set");
    assert_eq!(cache.get(&key).await.expect("get").as_deref(), Some("value"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(cache.get(&key).await.expect("get"), None);
    cache.set(&key, "again", Duration::from_secs(10)).await.expect("set");
    cache.delete(&key).await.expect("delete");
    assert_eq!(cache.get(&key).await.expect("get"), None);
}

async fn rate_limit_allows_the_burst_then_refuses_with_a_delay(cache: Cache) {
    let key = unique("test:rate:");
    let limit = RateLimit { rate_per_sec: 10.0, burst: 5 };
    for i in 0..5 {
        let decision = cache.rate_limit(&key, limit, 1).await.expect("rate");
        assert!(decision.allowed, "request {i} of the burst refused");
    }
    let refused = cache.rate_limit(&key, limit, 1).await.expect("rate");
    assert!(!refused.allowed, "the request past the burst must be refused");
    assert!(
        refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_millis(110),
        "retry after {:?} should be about one emission interval (100 ms)",
        refused.retry_after
    );
}

async fn rate_limit_buckets_are_independent_and_refill(cache: Cache) {
    let first = unique("test:rate:");
    let second = unique("test:rate:");
    let limit = RateLimit { rate_per_sec: 20.0, burst: 2 };
    assert!(cache.rate_limit(&first, limit, 1).await.expect("rate").allowed);
    assert!(cache.rate_limit(&first, limit, 1).await.expect("rate").allowed);
    let refused = cache.rate_limit(&first, limit, 1).await.expect("rate");
    assert!(!refused.allowed);
    assert!(cache.rate_limit(&second, limit, 1).await.expect("rate").allowed, "another key has its own bucket");
    tokio::time::sleep(refused.retry_after + Duration::from_millis(5)).await;
    assert!(cache.rate_limit(&first, limit, 1).await.expect("rate").allowed, "the bucket refills at the rate");
}

async fn published_nudges_reach_subscribers(cache: Cache) {
    let channel = unique("test:channel:");
    let mut messages = cache.subscribe(&channel).await.expect("subscribe");
    // Redis confirms the subscription asynchronously; publish until heard.
    let received = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            cache.publish(&channel, "nudge").await.expect("publish");
            if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
                return message;
            }
        }
    })
    .await
    .expect("no message within 5 s");
    assert_eq!(received, "nudge");
}

/// DESIGN §2: losing Redis never fails a call. While it is down every
/// operation runs on the replica's own cache (a rate limit enforcing the
/// replica's share of the budget); when it is back it is used again.
#[tokio::test]
async fn a_redis_outage_is_served_from_the_replicas_own_cache_and_redis_is_used_again_after_it() {
    let mut redis = folio_testkit::OwnRedis::start();
    let cache = Cache::redis(RedisCache::connect(&redis.url()).await.expect("Redis answers")).with_replicas(2);
    let key = unique("test:outage:");
    assert_eq!(cache.incr(&key, Duration::from_secs(60)).await.expect("incr"), 1);

    redis.stop();
    for expected in 1..=3 {
        let count = cache.incr(&key, Duration::from_secs(60)).await.expect("an outage is not an error");
        assert_eq!(count, expected, "counted on the fallback");
    }
    cache.set(&key, "v", Duration::from_secs(60)).await.expect("set during the outage");
    assert_eq!(cache.get(&key).await.expect("get during the outage").as_deref(), Some("v"));
    // Two replicas share the budget: this one enforces half of it.
    let limit = RateLimit { rate_per_sec: 1.0, burst: 10 };
    let bucket = unique("test:outage:rate:");
    let mut allowed = 0;
    for _ in 0..10 {
        if cache.rate_limit(&bucket, limit, 1).await.expect("rate during the outage").allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "a replica without Redis enforces its share of the burst");
    assert!(matches!(&cache, Cache::Redis(shared) if shared.on_fallback()));

    redis.resume();
    tokio::time::sleep(folio_storage::cache::WithFallback::retry_after() + Duration::from_millis(200)).await;
    let fresh = unique("test:outage:back:");
    let mut back = false;
    for _ in 0..50 {
        cache.incr(&fresh, Duration::from_secs(60)).await.expect("incr");
        if !matches!(&cache, Cache::Redis(shared) if shared.on_fallback()) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(back, "Redis is used again once it answers");
    let direct = RedisCache::connect(&redis.url()).await.expect("Redis answers");
    let seen = Cache::redis(direct).counter(&fresh).await.expect("counter");
    assert!(seen >= 1, "writes after the outage land in Redis");
}
