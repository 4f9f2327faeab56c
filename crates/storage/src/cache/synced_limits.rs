//! Rate limits shared by every replica through Redis without a round trip
//! on each call's path (DESIGN §5): each replica leases calls from the
//! shared GCRA budget ahead of use and spends its lease locally.
//!
//! A lease is taken out of the shared budget before any call is admitted
//! against it, so the replicas together never admit more than the budget:
//! nothing is charged after the fact, and no replica can spend what another
//! already has. Every [`SYNC_EVERY`] a replica tops each active key's lease
//! up to about twice what the key used in the last interval (halving while
//! it pauses), or gives back what it holds beyond that, in one script call
//! for all its keys. A call that finds its lease empty asks Redis itself
//! (for as many calls as the key used so far in the interval). A key has one
//! lease request in flight at a time, a call's or a sync's; calls that run
//! out meanwhile wait for it, so a burst makes one round trip, and no call is
//! refused for a budget that is on its way. When the budget is spent, the
//! key is refused locally until the budget refills, so a caller flooding
//! past its budget costs Redis nothing. Idle keys give their lease back and are forgotten.
//!
//! While Redis does not answer, calls without a lease are checked against
//! this replica's share of the budget (`FOLIO__GATEWAY__REPLICAS`) in
//! process, like every other fallback.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Cache, MemoryCache, RateDecision, RateLimit, WithFallback};

/// How often leases are topped up or given back.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);
/// A key not used for this long gives its lease back and is forgotten.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// Keys synced per script call (one Redis round trip each).
const KEYS_PER_CALL: usize = 512;

struct Bucket {
    limit: RateLimit,
    /// Calls taken from the shared budget and not yet admitted.
    lease: u32,
    /// Calls that wanted a lease since the last sync (the demand).
    wanted: u32,
    /// The lease this key keeps: twice the last interval's demand, halving
    /// (not dropping) while the demand pauses.
    target: u32,
    /// The shared budget was spent: refuse locally until then.
    refused_until: Option<Instant>,
    /// A call of this key is asking Redis for a lease; others wait for it.
    fetching: Option<Arc<Notify>>,
    touched: Instant,
}

/// One key's sync: (key, limit, calls asked for, calls given back).
pub(super) type Lease = (String, RateLimit, u32, u32);

/// What Redis granted a key: (calls granted, µs until one more would be).
pub(super) type Granted = (u32, u64);

/// What a call does next.
enum Spend {
    Decided(RateDecision),
    Wait(tokio::sync::futures::OwnedNotified),
    Ask(u32, Arc<Notify>),
}

enum Backend {
    Shared(Arc<WithFallback>),
    Local(MemoryCache),
}

struct Inner {
    buckets: Mutex<HashMap<String, Bucket>>,
    backend: Backend,
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct SyncedLimiter {
    inner: Arc<Inner>,
}

impl SyncedLimiter {
    /// Limits shared through `cache`'s Redis; with no Redis configured, this
    /// replica's own, checked in process.
    pub fn new(cache: &Cache) -> Self {
        let backend = match cache {
            Cache::Redis(shared) => Backend::Shared(Arc::clone(shared)),
            Cache::Memory(memory) => Backend::Local(memory.clone()),
        };
        Self { inner: Arc::new(Inner { buckets: Mutex::new(HashMap::new()), backend }) }
    }

    /// Takes one call from `key`'s budget, or says how long until it could.
    pub async fn check(&self, key: &str, limit: RateLimit) -> RateDecision {
        let shared = match &self.inner.backend {
            Backend::Local(memory) => return memory.rate_limit(key, limit, 1),
            Backend::Shared(shared) => shared,
        };
        let mut first = true;
        loop {
            match self.spend_lease(key, limit, std::mem::take(&mut first)) {
                Spend::Decided(decision) => return decision,
                // Another call of this key is asking Redis: wait for its
                // lease instead of asking too (a burst makes one request).
                Spend::Wait(fetched) => fetched.await,
                Spend::Ask(asked, fetching) => {
                    // Wakes the waiting calls when the fetch is done, and
                    // also when this call is dropped halfway (its caller
                    // went away): the others then ask themselves.
                    let _done = FetchDone { limiter: self, fetches: vec![(key.to_owned(), fetching)] };
                    return self.fetch(shared, key, limit, asked).await;
                }
            }
        }
    }

    /// Asks Redis for `asked` calls of `key` (or checks this replica's share
    /// of the budget while Redis is down) and takes one of them.
    async fn fetch(&self, shared: &WithFallback, key: &str, limit: RateLimit, asked: u32) -> RateDecision {
        let share = shared.share_of(limit);
        let leased = shared
            .run(
                |redis| async move {
                    let granted = redis.lease(&[(key.to_owned(), limit, asked, 0)]).await?;
                    Ok(granted.first().copied())
                },
                |memory| {
                    let decision = memory.rate_limit(key, share, 1);
                    decision.allowed.then_some((1, 0)).or(Some((0, micros(decision.retry_after))))
                },
            )
            .await;
        let now = Instant::now();
        let mut buckets = self.buckets();
        let bucket = buckets.entry(key.to_owned()).or_insert_with(|| Bucket::new(limit, now));
        let Ok(Some((granted, retry_micros))) = leased else {
            // Neither answered: no budget can be checked; let the call through
            // rather than take the bank offline with the limiter.
            return RateDecision { allowed: true, retry_after: Duration::ZERO };
        };
        if granted == 0 {
            let retry_after = Duration::from_micros(retry_micros.max(1));
            bucket.refused_until = Some(now + retry_after);
            return RateDecision { allowed: false, retry_after };
        }
        bucket.lease = bucket.lease.saturating_add(granted - 1);
        RateDecision { allowed: true, retry_after: Duration::ZERO }
    }

    /// Admits from the local lease, refuses while the budget is known to be
    /// spent, or says how to get a lease.
    fn spend_lease(&self, key: &str, limit: RateLimit, first_try: bool) -> Spend {
        let now = Instant::now();
        let mut buckets = self.buckets();
        let bucket = match buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => buckets.entry(key.to_owned()).or_insert_with(|| Bucket::new(limit, now)),
        };
        bucket.limit = limit;
        bucket.touched = now;
        if first_try {
            bucket.wanted = bucket.wanted.saturating_add(1);
        }
        if bucket.lease > 0 {
            bucket.lease -= 1;
            return Spend::Decided(RateDecision { allowed: true, retry_after: Duration::ZERO });
        }
        if let Some(until) = bucket.refused_until {
            if until > now {
                return Spend::Decided(RateDecision { allowed: false, retry_after: until - now });
            }
            bucket.refused_until = None;
        }
        if let Some(fetching) = &bucket.fetching {
            // Registered before the lock is released: the fetch's
            // notification cannot be missed.
            return Spend::Wait(Arc::clone(fetching).notified_owned());
        }
        let fetching = Arc::new(Notify::new());
        bucket.fetching = Some(Arc::clone(&fetching));
        Spend::Ask(bucket.wanted.min(limit.burst.max(1)), fetching)
    }

    /// Syncs every [`SYNC_EVERY`] until `shutdown`, then gives every lease back.
    pub fn spawn_sync(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let limiter = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SYNC_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        limiter.give_back_all().await;
                        return;
                    }
                    _ = every.tick() => limiter.sync().await,
                }
            }
        })
    }

    /// One sync: tops active keys' leases up to twice their recent demand,
    /// gives back what idle or quieter keys hold beyond it.
    pub async fn sync(&self) {
        let (leases, fetches) = self.plan_leases(false);
        // The keys asked for are this sync's to fetch until their grants are
        // added (or the exchange fails): calls that run out meanwhile wait for
        // it instead of asking too, and cannot be refused for a budget this
        // sync is about to hand them.
        let _done = FetchDone { limiter: self, fetches };
        self.exchange(leases).await;
    }

    async fn give_back_all(&self) {
        let (leases, _) = self.plan_leases(true);
        self.exchange(leases).await;
    }

    /// What to ask for and give back per key, and the fetch slots taken for
    /// them: while a key's lease request is in flight (asking or giving
    /// back), its calls wait for it rather than ask Redis for a budget that
    /// is on its way. A key whose call is fetching is left to that fetch.
    /// Idle keys give their lease back and are forgotten at the next sync,
    /// after it has landed.
    fn plan_leases(&self, everything: bool) -> (Vec<Lease>, Vec<(String, Arc<Notify>)>) {
        let now = Instant::now();
        let mut buckets = self.buckets();
        let mut plan = Vec::new();
        let mut fetches = Vec::new();
        buckets.retain(|key, bucket| {
            if bucket.fetching.is_some() && !everything {
                return true;
            }
            let idle = everything || now.duration_since(bucket.touched) >= IDLE_AFTER;
            let target = if idle {
                0
            } else {
                bucket.wanted.saturating_mul(2).max(bucket.target / 2).clamp(1, bucket.limit.burst.max(1))
            };
            bucket.target = target;
            bucket.wanted = 0;
            // A key refused for lack of budget asks too: Redis grants what
            // has refilled since, so a flooding caller is served its budget
            // from the lease instead of a round trip per admitted call.
            let (ask, give_back) =
                if bucket.lease >= target { (0, bucket.lease - target) } else { (target - bucket.lease, 0) };
            if ask == 0 && give_back == 0 {
                return !idle;
            }
            bucket.lease -= give_back;
            plan.push((key.clone(), bucket.limit, ask, give_back));
            let fetching = Arc::new(Notify::new());
            bucket.fetching = Some(Arc::clone(&fetching));
            fetches.push((key.clone(), fetching));
            !everything
        });
        (plan, fetches)
    }

    async fn exchange(&self, plan: Vec<Lease>) {
        let Backend::Shared(shared) = &self.inner.backend else { return };
        for chunk in plan.chunks(KEYS_PER_CALL) {
            match shared.run(|redis| async move { redis.lease(chunk).await.map(Some) }, |_| None).await {
                Ok(Some(granted)) => self.add_leases(chunk, &granted),
                // Redis is down: calls without a lease use this replica's
                // share (see `check`); what was to be given back is lost,
                // which errs on the side of the budget.
                _ => return,
            }
        }
    }

    fn add_leases(&self, plan: &[Lease], granted: &[Granted]) {
        let now = Instant::now();
        let mut buckets = self.buckets();
        for ((key, limit, ..), (calls, retry_micros)) in plan.iter().zip(granted) {
            if *calls == 0 {
                // The budget is spent: refuse locally until it refills.
                if *retry_micros > 0
                    && let Some(bucket) = buckets.get_mut(key)
                {
                    bucket.refused_until = Some(now + Duration::from_micros(*retry_micros));
                }
                continue;
            }
            match buckets.get_mut(key) {
                Some(bucket) => {
                    bucket.lease = bucket.lease.saturating_add(*calls);
                    bucket.refused_until = None;
                }
                // Forgotten meanwhile (at shutdown): keep the lease for its next call.
                None => {
                    let mut bucket = Bucket::new(*limit, now);
                    bucket.lease = *calls;
                    buckets.insert(key.clone(), bucket);
                }
            }
        }
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.inner.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keys this replica holds (for tests of eviction).
    pub fn keys_held(&self) -> usize {
        self.buckets().len()
    }
}

/// Ends fetches (a call's, or a sync's for each key it asked for): the keys
/// are free to fetch again, and their waiters wake. Also runs when the
/// fetching future is dropped halfway.
struct FetchDone<'a> {
    limiter: &'a SyncedLimiter,
    fetches: Vec<(String, Arc<Notify>)>,
}

impl Drop for FetchDone<'_> {
    fn drop(&mut self) {
        let mut buckets = self.limiter.buckets();
        for (key, fetching) in &self.fetches {
            if let Some(bucket) = buckets.get_mut(key)
                && bucket.fetching.as_ref().is_some_and(|f| Arc::ptr_eq(f, fetching))
            {
                bucket.fetching = None;
            }
        }
        drop(buckets);
        for (_, fetching) in &self.fetches {
            fetching.notify_waiters();
        }
    }
}

impl Bucket {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Self { limit, lease: 0, wanted: 0, target: 0, refused_until: None, fetching: None, touched: now }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
