//! Brute-force protection (DESIGN.md section 3): failures are counted per
//! (email, client IP) and per email with a higher cap, within a window.
//! Past a cap, Login answers `TOO_MANY_ATTEMPTS` with `RetryInfo` before the
//! password is checked; each further failure doubles the delay up to a
//! maximum, so an attacker elsewhere can delay the owner but never lock them
//! out for good. Unknown emails are counted the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use folio_common::cache::Cache;
use folio_common::error::{Failure, FolioError, Reason};
use sha2::{Digest, Sha256};

use crate::settings::AuthSettings;

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
}

fn keys(email: &str, client_ip: &str) -> Keys {
    // Emails are personal data: the cache sees only a digest.
    let email = hex::encode(&Sha256::digest(email.as_bytes())[..16]);
    Keys {
        ip_count: format!("auth:fail:{email}:{client_ip}"),
        email_count: format!("auth:fail:{email}"),
        ip_lock: format!("auth:lock:{email}:{client_ip}"),
        email_lock: format!("auth:lock:{email}"),
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

    /// Counts a failure and locks when a cap is reached.
    pub async fn record_failure(&self, email: &str, client_ip: &str) -> Result<(), Failure> {
        let keys = keys(email, client_ip);
        let ip_failures = self.cache.incr(&keys.ip_count, self.window).await?;
        let email_failures = self.cache.incr(&keys.email_count, self.window).await?;
        self.lock_if_over(&keys.ip_lock, ip_failures, self.ip_threshold).await?;
        self.lock_if_over(&keys.email_lock, email_failures, self.email_threshold).await
    }

    async fn lock_if_over(&self, lock: &str, failures: i64, threshold: i64) -> Result<(), Failure> {
        if failures < threshold {
            return Ok(());
        }
        let doublings = u32::try_from((failures - threshold).min(30)).unwrap_or(30);
        let delay = self.base_delay.saturating_mul(1 << doublings).min(self.max_delay);
        let until = now_millis().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self.cache.set(lock, &until.to_string(), delay).await?;
        Ok(())
    }

    /// A success from this IP clears its counter; the per-email count decays
    /// on its own so a correct guess elsewhere cannot reset an attack.
    pub async fn record_success(&self, email: &str, client_ip: &str) -> Result<(), Failure> {
        let keys = keys(email, client_ip);
        self.cache.delete(&keys.ip_count).await?;
        self.cache.delete(&keys.ip_lock).await?;
        Ok(())
    }
}
