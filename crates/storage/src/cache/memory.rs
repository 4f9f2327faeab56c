//! The in-process cache used when no Redis is configured.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::BoxStream};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{RateDecision, RateLimit};

/// Entries are swept lazily, and in bulk once the map grows past this.
const SWEEP_THRESHOLD: usize = 100_000;

#[derive(Debug)]
enum Value {
    Text(String),
    Counter(i64),
    /// GCRA theoretical arrival time.
    Tat(Instant),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Instant,
}

/// A process-local map with expiry, plus broadcast channels for pub/sub.
#[derive(Clone, Default)]
pub struct MemoryCache {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-written entry
    // (every update is a single insert), so a poisoned map is still sound.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryCache {
    fn live_entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        let mut entries = lock(&self.entries);
        if entries.len() > SWEEP_THRESHOLD {
            let now = Instant::now();
            entries.retain(|_, entry| entry.expires > now);
        }
        entries
    }

    pub(super) fn incr(&self, key: &str, ttl: Duration) -> i64 {
        let now = Instant::now();
        let mut entries = self.live_entries();
        let entry = entries
            .entry(key.to_owned())
            .and_modify(|entry| {
                if entry.expires <= now || !matches!(entry.value, Value::Counter(_)) {
                    *entry = Entry { value: Value::Counter(0), expires: now + ttl };
                }
            })
            .or_insert_with(|| Entry { value: Value::Counter(0), expires: now + ttl });
        let Value::Counter(count) = &mut entry.value else {
            return 0;
        };
        *count = count.saturating_add(1);
        *count
    }

    pub(super) fn decr(&self, key: &str) -> i64 {
        match self.live_entries().get_mut(key) {
            Some(Entry { value: Value::Counter(count), expires }) if *expires > Instant::now() => {
                *count = count.saturating_sub(1).max(0);
                *count
            }
            _ => 0,
        }
    }

    pub(super) fn counter(&self, key: &str) -> i64 {
        match self.live_entries().get(key) {
            Some(Entry { value: Value::Counter(count), expires }) if *expires > Instant::now() => *count,
            _ => 0,
        }
    }

    pub(super) fn set(&self, key: &str, value: &str, ttl: Duration) {
        let entry = Entry { value: Value::Text(value.to_owned()), expires: Instant::now() + ttl };
        self.live_entries().insert(key.to_owned(), entry);
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        match self.live_entries().get(key) {
            Some(Entry { value: Value::Text(text), expires }) if *expires > Instant::now() => Some(text.clone()),
            Some(Entry { value: Value::Counter(count), expires }) if *expires > Instant::now() => {
                Some(count.to_string())
            }
            _ => None,
        }
    }

    pub(super) fn delete(&self, key: &str) {
        self.live_entries().remove(key);
    }

    pub(super) fn rate_limit(&self, key: &str, limit: RateLimit, cost: u32) -> RateDecision {
        let now = Instant::now();
        let emission = Duration::from_micros(limit.emission_micros().unsigned_abs());
        let tolerance = Duration::from_micros(limit.tolerance_micros().unsigned_abs());
        let mut entries = self.live_entries();
        let tat = match entries.get(key) {
            Some(Entry { value: Value::Tat(tat), .. }) if *tat > now => *tat,
            _ => now,
        };
        let new_tat = tat + emission * cost;
        let allow_at = new_tat.checked_sub(tolerance).unwrap_or(now);
        if allow_at > now {
            return RateDecision { allowed: false, retry_after: allow_at - now };
        }
        entries.insert(key.to_owned(), Entry { value: Value::Tat(new_tat), expires: new_tat });
        RateDecision { allowed: true, retry_after: Duration::ZERO }
    }

    fn channel(&self, name: &str) -> broadcast::Sender<String> {
        lock(&self.channels).entry(name.to_owned()).or_insert_with(|| broadcast::channel(64).0).clone()
    }

    pub(super) fn publish(&self, channel: &str, message: &str) {
        // No subscriber is not an error: nudges are best effort.
        let _ = self.channel(channel).send(message.to_owned());
    }

    pub(super) fn subscribe(&self, channel: &str) -> BoxStream<'static, String> {
        BroadcastStream::new(self.channel(channel).subscribe()).filter_map(|m| async move { m.ok() }).boxed()
    }
}
