//! Brute-force protection (DESIGN.md section 3): failures are counted per
//! (email, client IP) and per email with a higher cap, within a window.
//! Past a cap, Login answers `TOO_MANY_ATTEMPTS` with `RetryInfo` before the
//! password is checked; each further failure doubles the delay up to a
//! maximum, so an attacker elsewhere can delay the owner but never lock them
//! out for good. Unknown emails are counted the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::cache::Cache;
use sha2::{Digest, Sha256};

use crate::settings::AuthSettings;

/// A probe that the next attempt past a cap may take.
const PROBE_OPEN: &str = "0";

/// An attempt counted by [`Lockout::reserve`]: the counts it made.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    ip_attempts: i64,
    email_attempts: i64,
}

/// Counts failures and decides lock-outs.
#[derive(Clone)]
pub struct Lockout {
    cache: Cache,
    ip_threshold: i64,
    email_threshold: i64,
    window: Duration,
    base_delay: Duration,
    max_delay: Duration,
}

struct Keys {
    ip_count: String,
    email_count: String,
    ip_lock: String,
    email_lock: String,
    ip_probe: String,
    email_probe: String,
}

fn keys(email: &str, client_ip: &str) -> Keys {
    // Emails are personal data: the cache sees only a digest.
    let email = hex::encode(&Sha256::digest(email.as_bytes())[..16]);
    Keys {
        ip_count: format!("auth:fail:{email}:{client_ip}"),
        email_count: format!("auth:fail:{email}"),
        ip_lock: format!("auth:lock:{email}:{client_ip}"),
        email_lock: format!("auth:lock:{email}"),
        ip_probe: format!("auth:probe:{email}:{client_ip}"),
        email_probe: format!("auth:probe:{email}"),
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Lockout {
    /// Lock-out rules from the `auth` settings.
    pub fn new(cache: Cache, settings: &AuthSettings) -> Self {
        Self {
            cache,
            ip_threshold: settings.lockout_threshold,
            email_threshold: settings.lockout_email_threshold,
            window: Duration::from_secs(settings.lockout_window_secs),
            base_delay: Duration::from_millis(settings.lockout_base_delay_ms),
            max_delay: Duration::from_secs(settings.lockout_max_delay_secs),
        }
    }

    /// `TOO_MANY_ATTEMPTS` with the remaining delay while either lock holds.
    pub async fn check(&self, email: &str, client_ip: &str) -> Result<(), Failure> {
        let keys = keys(email, client_ip);
        let mut wait = Duration::ZERO;
        for lock in [&keys.ip_lock, &keys.email_lock] {
            if let Some(until) = self.cache.get(lock).await?.and_then(|v| v.parse::<u64>().ok()) {
                wait = wait.max(Duration::from_millis(until.saturating_sub(now_millis())));
            }
        }
        if wait > Duration::ZERO {
            return Err(FolioError::new(Reason::TooManyAttempts, "too many failed sign-ins; wait before trying again")
                .with_retry_after(wait)
                .into());
        }
        Ok(())
    }

    /// Counts this attempt before the password is checked, atomically (one
    /// increment each), so attempts sent at once are checked at most as often
    /// as the caps allow (DESIGN §5a). Past a cap, once each lock has run
    /// out, exactly one attempt (the one that wins the probe) is checked;
    /// the rest are refused unchecked. The count stands as a failure unless
    /// [`Lockout::record_success`] takes it back.
    pub async fn reserve(&self, email: &str, client_ip: &str) -> Result<Attempt, Failure> {
        self.check(email, client_ip).await?;
        let keys = keys(email, client_ip);
        let ip_attempts = self.cache.incr(&keys.ip_count, self.window).await?;
        let email_attempts = self.cache.incr(&keys.email_count, self.window).await?;
        let attempt = Attempt { ip_attempts, email_attempts };
        let ip_ok = ip_attempts <= self.ip_threshold || self.take_probe(&keys.ip_probe).await?;
        let email_ok = email_attempts <= self.email_threshold || self.take_probe(&keys.email_probe).await?;
        if !(ip_ok && email_ok) {
            return Err(FolioError::new(Reason::TooManyAttempts, "too many failed sign-ins; wait before trying again")
                .with_retry_after(self.base_delay)
                .into());
        }
        Ok(attempt)
    }

    /// The reserved attempt failed: locks when it reached a cap (and opens
    /// the probe for the attempt after the lock).
    pub async fn record_failure(&self, email: &str, client_ip: &str, attempt: Attempt) -> Result<(), Failure> {
        let keys = keys(email, client_ip);
        if self.lock_if_over(&keys.ip_lock, attempt.ip_attempts, self.ip_threshold).await? {
            self.cache.set(&keys.ip_probe, PROBE_OPEN, self.window).await?;
        }
        if self.lock_if_over(&keys.email_lock, attempt.email_attempts, self.email_threshold).await? {
            self.cache.set(&keys.email_probe, PROBE_OPEN, self.window).await?;
        }
        Ok(())
    }

    /// Whether this attempt takes the one check a lock leaves behind it:
    /// the probe is open only after a lock was set, and one increment wins it.
    async fn take_probe(&self, probe: &str) -> Result<bool, Failure> {
        if self.cache.get(probe).await?.as_deref() != Some(PROBE_OPEN) {
            return Ok(false);
        }
        Ok(self.cache.incr(probe, self.window).await? == 1)
    }

    /// Locks `lock` when `failures` reached `threshold`; whether it did.
    async fn lock_if_over(&self, lock: &str, failures: i64, threshold: i64) -> Result<bool, Failure> {
        if failures < threshold {
            return Ok(false);
        }
        let doublings = u32::try_from((failures - threshold).min(30)).unwrap_or(30);
        let delay = self.base_delay.saturating_mul(1 << doublings).min(self.max_delay);
        let until = now_millis().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self.cache.set(lock, &until.to_string(), delay).await?;
        Ok(true)
    }

    /// A success from this IP clears its counter, and takes back the one
    /// attempt it reserved from the per-email count; the failures counted
    /// there decay on their own, so a correct guess elsewhere cannot reset
    /// an attack.
    pub async fn record_success(&self, email: &str, client_ip: &str) -> Result<(), Failure> {
        let keys = keys(email, client_ip);
        self.cache.decr(&keys.email_count).await?;
        self.cache.delete(&keys.ip_count).await?;
        self.cache.delete(&keys.ip_lock).await?;
        self.cache.delete(&keys.ip_probe).await?;
        Ok(())
    }
}
