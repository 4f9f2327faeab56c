//! The Redis cache: one multiplexed, self-reconnecting connection per process;
//! every operation is one round trip (Lua scripts where atomicity needs it).

use std::time::Duration;

use futures::{StreamExt, stream::BoxStream};
use redis::{AsyncCommands, Script, aio::ConnectionManager};

use super::{CacheError, RateDecision, RateLimit};

/// INCR that starts the key's expiry on the first increment.
const INCR_WITH_EXPIRY: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
";

/// DECR of a counter that exists (never below zero, never creating one).
const DECR_IF_PRESENT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]))
if count == nil or count <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
";

/// GCRA on the server clock, in microseconds. Returns {allowed, retry_after_micros}.
const GCRA: &str = r"
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + emission * cost
local allow_at = new_tat - tolerance
if allow_at > now then return {0, allow_at - now} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, 0}
";

/// Leases calls from shared GCRA budgets (the same keys and TAT format as
/// `GCRA`) and takes back unused ones: KEYS are the budgets; ARGV holds, per
/// key, its emission interval and tolerance (µs), the calls asked for and
/// the calls given back. Returns, per key, the calls granted and, when fewer
/// than asked, the µs until one more would fit.
const LEASE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {}
for i, key in ipairs(KEYS) do
  local base = 4 * (i - 1)
  local emission = tonumber(ARGV[base + 1])
  local tolerance = tonumber(ARGV[base + 2])
  local ask = tonumber(ARGV[base + 3])
  local give_back = tonumber(ARGV[base + 4])
  local tat = tonumber(redis.call('GET', key)) or now
  tat = math.max(now, tat - emission * give_back)
  local fits = math.floor((now + tolerance - tat) / emission)
  local grant = math.max(0, math.min(ask, fits))
  tat = tat + emission * grant
  if tat > now then
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', key)
  end
  local retry = 0
  if grant < ask then retry = math.max(1, tat + emission - tolerance - now) end
  out[2 * i - 1] = grant
  out[2 * i] = retry
end
return out
";

/// A Redis-backed cache.
#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    connection: ConnectionManager,
    incr_script: Script,
    decr_script: Script,
    gcra_script: Script,
    lease_script: Script,
}

impl RedisCache {
    /// Connects to `url` (fails when Redis does not answer).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, None).await
    }

    /// Connects to `url`; a `rediss://` server's certificate is verified
    /// against `tls_ca_file` when given, else the system's trust store.
    pub async fn connect_with(url: &str, tls_ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let client = match tls_ca_file {
            None => redis::Client::open(url),
            Some(ca) => {
                anyhow::ensure!(url.starts_with("rediss://"), "`redis.tls_ca_file` needs a rediss:// `redis.url`");
                let root_cert = std::fs::read(ca)
                    .map_err(|e| anyhow::anyhow!("reading `redis.tls_ca_file` {}: {e}", ca.display()))?;
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) },
                )
            }
        }
        .map_err(|e| anyhow::anyhow!("invalid `redis.url`: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let connection =
            tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager_with_config(config))
                .await
                .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))?
                .map_err(|e| anyhow::anyhow!("connecting to Redis: {e}"))?;
        Ok(Self {
            client,
            connection,
            incr_script: Script::new(INCR_WITH_EXPIRY),
            decr_script: Script::new(DECR_IF_PRESENT),
            gcra_script: Script::new(GCRA),
            lease_script: Script::new(LEASE),
        })
    }

    pub(super) async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        let mut conn = self.connection.clone();
        Ok(self.incr_script.key(key).arg(millis(ttl)).invoke_async(&mut conn).await?)
    }

    pub(super) async fn decr(&self, key: &str) -> Result<i64, CacheError> {
        let mut conn = self.connection.clone();
        Ok(self.decr_script.key(key).invoke_async(&mut conn).await?)
    }

    pub(super) async fn counter(&self, key: &str) -> Result<i64, CacheError> {
        let mut conn = self.connection.clone();
        let value: Option<i64> = conn.get(key).await?;
        Ok(value.unwrap_or(0))
    }

    pub(super) async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.connection.clone();
        let _: () = conn.pset_ex(key, value, millis(ttl)).await?;
        Ok(())
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut conn = self.connection.clone();
        Ok(conn.get(key).await?)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut conn = self.connection.clone();
        let _: () = conn.del(key).await?;
        Ok(())
    }

    pub(super) async fn rate_limit(&self, key: &str, limit: RateLimit, cost: u32) -> Result<RateDecision, CacheError> {
        let mut conn = self.connection.clone();
        let (allowed, retry_micros): (i64, i64) = self
            .gcra_script
            .key(key)
            .arg(limit.emission_micros())
            .arg(limit.tolerance_micros())
            .arg(cost)
            .invoke_async(&mut conn)
            .await?;
        Ok(RateDecision { allowed: allowed == 1, retry_after: Duration::from_micros(retry_micros.unsigned_abs()) })
    }

    /// See `LEASE`: one round trip for every key.
    pub(super) async fn lease(
        &self,
        leases: &[super::synced_limits::Lease],
    ) -> Result<Vec<super::synced_limits::Granted>, CacheError> {
        let mut invocation = self.lease_script.prepare_invoke();
        for (key, limit, ask, give_back) in leases {
            invocation.key(key).arg(limit.emission_micros()).arg(limit.tolerance_micros()).arg(*ask).arg(*give_back);
        }
        let mut conn = self.connection.clone();
        let flat: Vec<u64> = invocation.invoke_async(&mut conn).await?;
        Ok(flat.chunks_exact(2).map(|pair| (u32::try_from(pair[0]).unwrap_or(u32::MAX), pair[1])).collect())
    }

    pub(super) async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        let mut conn = self.connection.clone();
        let _: i64 = conn.publish(channel, message).await?;
        Ok(())
    }

    pub(super) async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, String>, CacheError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub.into_on_message().filter_map(|msg| async move { msg.get_payload::<String>().ok() }).boxed())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}
