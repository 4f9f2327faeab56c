//! Rate limits leased from Redis (DESIGN §5): replicas together never admit
//! more than the budget, calls are decided without a round trip once a key
//! holds a lease, a flood past the budget is refused locally, idle leases go
//! back to the budget, and an outage falls back to this replica's share.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use folio_storage::cache::{Cache, RateLimit, RedisCache, SYNC_EVERY, SyncedLimiter};
use folio_testkit::{redis_url, unique};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

async fn connect(url: &str, replicas: u32) -> Cache {
    Cache::redis(RedisCache::connect(url).await.expect("Redis must be running")).with_replicas(replicas)
}

async fn replica(url: &str, replicas: u32, shutdown: &CancellationToken) -> SyncedLimiter {
    let limiter = SyncedLimiter::new(&connect(url, replicas).await);
    limiter.spawn_sync(shutdown.clone());
    limiter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_flooding_one_key_together_admit_no_more_than_the_budget() {
    let shutdown = CancellationToken::new();
    let url = redis_url();
    let limit = RateLimit { rate_per_sec: 200.0, burst: 100 };
    let key = unique("test:shared:flood:");
    let admitted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let mut floods = Vec::new();
    for _ in 0..3 {
        let limiter = replica(&url, 3, &shutdown).await;
        for _ in 0..2 {
            let (limiter, key, admitted) = (limiter.clone(), key.clone(), admitted.clone());
            floods.push(tokio::spawn(async move {
                while started.elapsed() < run_for {
                    if limiter.check(&key, limit).await.allowed {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    for flood in floods {
        flood.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed) as f64;
    let budget = limit.rate_per_sec * elapsed + f64::from(limit.burst);
    // Leases are taken from the budget before use: nothing over it (one
    // call of rounding per replica at most).
    assert!(admitted <= budget + 3.0, "admitted {admitted} calls on a budget of {budget:.0} over {elapsed:.2} s");
    assert!(admitted >= 0.8 * limit.rate_per_sec * elapsed, "admitted only {admitted} of a budget of {budget:.0}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_key_with_a_lease_is_decided_without_redis_and_a_flood_is_refused_locally() {
    // Synced by hand, so no periodic sync changes the lease between steps.
    let limiter = SyncedLimiter::new(&connect(&redis_url(), 1).await);
    // A slow refill, so the refusal outlasts a loaded machine's pauses.
    let limit = RateLimit { rate_per_sec: 2.0, burst: 20 };
    let key = unique("test:shared:local:");
    for _ in 0..5 {
        assert!(limiter.check(&key, limit).await.allowed);
    }
    // A sync sizes the key's lease by its demand: the next calls are
    // answered without awaiting anything.
    limiter.sync().await;
    for i in 0..5 {
        let decision = limiter.check(&key, limit).now_or_never();
        assert!(decision.is_some_and(|d| d.allowed), "call {i} needed a round trip despite a lease");
    }
    // Spend the whole budget, then every refusal is local too.
    let mut refused = None;
    for _ in 0..100 {
        let decision = limiter.check(&key, limit).await;
        if !decision.allowed {
            refused = Some(decision);
            break;
        }
    }
    let refused = refused.expect("the budget of 20 (+2/s) ran out");
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_millis(500));
    let again = limiter.check(&key, limit).now_or_never().expect("a refusal while the budget is spent is local");
    assert!(!again.allowed);
}

#[tokio::test]
async fn leases_come_out_of_the_budget_and_idle_ones_go_back_to_it() {
    let shutdown = CancellationToken::new();
    let url = redis_url();
    let (quiet, busy) = (replica(&url, 2, &shutdown).await, replica(&url, 2, &shutdown).await);
    // A slow refill, so what comes back is the lease, not the rate.
    let limit = RateLimit { rate_per_sec: 1.0, burst: 40 };
    let key = unique("test:shared:idle:");
    let started = Instant::now();
    for _ in 0..10 {
        assert!(quiet.check(&key, limit).await.allowed);
    }
    // The quiet replica's lease grows to twice its demand, out of the budget.
    quiet.sync().await;
    let mut taken = 0;
    while busy.check(&key, limit).await.allowed {
        taken += 1;
    }
    assert!(taken <= 25, "the other replica got {taken} of 30 left: the lease was not taken from the budget");
    // Idle for a second: every lease goes back, and the key is forgotten
    // once its lease has landed back in Redis.
    let idle_from = Instant::now();
    while quiet.keys_held() + busy.keys_held() > 0 {
        assert!(idle_from.elapsed() < Duration::from_secs(5), "an idle key is forgotten");
        tokio::time::sleep(SYNC_EVERY).await;
    }
    assert!(idle_from.elapsed() >= Duration::from_millis(900), "a key was forgotten before it was idle");
    // Without a sync of its own, so its flood ends only when Redis has
    // nothing left (a sync could lease the last calls and hold them).
    let late = SyncedLimiter::new(&connect(&url, 2).await);
    let mut back = 0;
    while late.check(&key, limit).await.allowed {
        back += 1;
    }
    let refill = started.elapsed().as_secs_f64() * limit.rate_per_sec;
    let admitted = f64::from(10 + taken + back);
    assert!(admitted >= 40.0, "only {admitted} admitted in all: leases did not come back");
    assert!(admitted <= 40.0 + refill + 1.0, "{admitted} admitted on a budget of {:.1}", 40.0 + refill);
    shutdown.cancel();
}

#[tokio::test]
async fn without_redis_a_replica_enforces_its_share_of_the_budget() {
    let shutdown = CancellationToken::new();
    let mut redis = folio_testkit::OwnRedis::start();
    let limiter = replica(&redis.url(), 2, &shutdown).await;
    redis.stop();
    let limit = RateLimit { rate_per_sec: 1.0, burst: 10 };
    let key = unique("test:shared:outage:");
    let mut allowed = 0;
    for _ in 0..10 {
        if limiter.check(&key, limit).await.allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "two replicas share the budget: this one enforces half of it");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_calls_at_once_within_the_budget_is_admitted_whole() {
    let shutdown = CancellationToken::new();
    let limiter = replica(&redis_url(), 1, &shutdown).await;
    let limit = RateLimit { rate_per_sec: 1.0, burst: 500 };
    let key = unique("test:shared:burst:");
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let (limiter, key) = (limiter.clone(), key.clone());
            tokio::spawn(async move { limiter.check(&key, limit).await.allowed })
        })
        .collect();
    let mut admitted = 0;
    for call in calls {
        admitted += usize::from(call.await.unwrap());
    }
    assert_eq!(admitted, 500, "calls sent at once within the burst were refused");
    assert!(!limiter.check(&key, limit).await.allowed, "the 501st call of a 500 burst");
    shutdown.cancel();
}

#[tokio::test]
async fn a_call_dropped_while_asking_redis_does_not_strand_the_others() {
    let shutdown = CancellationToken::new();
    let redis = folio_testkit::OwnRedis::start();
    let limiter = replica(&redis.url(), 1, &shutdown).await;
    let limit = RateLimit { rate_per_sec: 100.0, burst: 100 };
    let key = unique("test:shared:dropped:");
    redis.freeze();
    let first = {
        let (limiter, key) = (limiter.clone(), key.clone());
        tokio::spawn(async move { limiter.check(&key, limit).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Its caller went away while it waited on Redis for the key's lease.
    first.abort();
    let second = tokio::time::timeout(Duration::from_secs(10), limiter.check(&key, limit)).await;
    redis.thaw();
    assert!(second.is_ok(), "a call waited for a lease that a dropped call was to fetch");
    shutdown.cancel();
}
