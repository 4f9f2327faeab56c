//! argon2id hashing behind a concurrency cap: hashes run on blocking threads,
//! at most `concurrency` at once, so a login flood queues (or is shed) instead
//! of starving every other request of CPU.

use std::sync::Arc;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version};
use folio_errors::{Failure, FolioError, Reason};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no such user).
    No,
    /// Right password; the hash is current.
    Yes,
    /// Right password, stored with weaker parameters: store this new hash.
    YesRehashed(String),
}

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    slots: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    /// A hash of a random password, verified against for unknown users so
    /// that they cost the same work as known ones.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    /// A hasher with argon2id(`memory_kib`, `iterations`, p=1).
    pub fn new(memory_kib: u32, iterations: u32, concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
        } else {
            concurrency
        };
        let mut hasher = Self {
            params,
            slots: Arc::new(Semaphore::new(concurrency)),
            queue: Arc::new(Semaphore::new(queue.max(concurrency))),
            dummy_hash: Arc::new(String::new()),
        };
        let random: String = (0..32).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        hasher.dummy_hash = Arc::new(hasher.hash_now(&random)?);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &str) -> anyhow::Result<String> {
        let salt: [u8; 16] = rand::random();
        let hash =
            self.argon2().hash_password_with_salt(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(hash.to_string())
    }

    /// Runs `work` on a blocking thread once a hashing slot is free;
    /// `OVERLOADED` when too many are already waiting.
    async fn capped<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Failure> {
        let _queued = self.queue.clone().try_acquire_owned().map_err(|_| {
            FolioError::new(Reason::Overloaded, "too many sign-ins in progress; retry shortly")
                .with_retry_after(std::time::Duration::from_millis(500))
        })?;
        let _slot = self.slots.clone().acquire_owned().await.context("hashing slots closed")?;
        Ok(tokio::task::spawn_blocking(work).await.context("hashing thread failed")?)
    }

    /// The PHC string (algorithm, parameters, salt, hash) for `password`.
    pub async fn hash(&self, password: &SecretString) -> Result<String, Failure> {
        let hasher = self.clone();
        let password = password.clone();
        Ok(self.capped(move || hasher.hash_now(password.expose_secret())).await??)
    }

    /// Checks `password` against `stored` (a PHC string), or against the
    /// dummy hash when `stored` is `None`, doing the same work either way.
    pub async fn verify(&self, password: &SecretString, stored: Option<String>) -> Result<Verified, Failure> {
        let hasher = self.clone();
        let password = password.clone();
        self.capped(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| hasher.dummy_hash.as_str().to_owned());
            let Ok(parsed) = PasswordHash::new(&phc) else { return Ok(Verified::No) };
            // Verification uses the parameters stored with the hash.
            let matches = hasher.argon2().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
            if !(known && matches) {
                return Ok(Verified::No);
            }
            let current = Params::try_from(&parsed)
                .map(|p| p.m_cost() >= hasher.params.m_cost() && p.t_cost() >= hasher.params.t_cost());
            if current.unwrap_or(false) && parsed.algorithm.as_str() == "argon2id" {
                Ok(Verified::Yes)
            } else {
                hasher.hash_now(password.expose_secret()).map(Verified::YesRehashed)
            }
        })
        .await?
        .map_err(Failure::Internal)
    }
}
