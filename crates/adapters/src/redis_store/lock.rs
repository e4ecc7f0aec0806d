//! Locks and job leadership: `SET key token NX PX ttl`, released or renewed only by the
//! holder of the token (compare-and-delete in Lua), so a holder whose lease expired
//! cannot free a lock someone else now holds.
//!
//! Keys: `P lock_{name}` for business locks, `P big-market-{job}` for job leadership
//! (upstream's `big-market-{JobName}`). The value names the holder: `{host}:{pid}:{random}`.

use super::RedisConn;
use super::{Result, check_prefix};
use ::redis::{Script, cmd};
use rand::Rng;
use std::sync::LazyLock;
use std::time::Duration;

static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("release.lua")));
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("renew.lua")));

/// Takes named locks in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisLock {
    conn: RedisConn,
    prefix: String,
}

impl RedisLock {
    pub fn new(conn: impl Into<RedisConn>, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        Ok(Self {
            conn: conn.into(),
            prefix,
        })
    }

    /// Takes the business lock `name` for `ttl` unless someone holds it.
    pub async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard>> {
        self.acquire_key(format!("{}lock_{name}", self.prefix), ttl)
            .await
    }

    /// Leadership of `job` for `ttl`: the one node that gets the guard runs the job.
    /// The leader renews each round ([`LockGuard::renew`]); when renewal fails it has
    /// lost leadership and stops.
    pub async fn try_lead(&self, job: &str, ttl: Duration) -> Result<Option<LockGuard>> {
        self.acquire_key(format!("{}big-market-{job}", self.prefix), ttl)
            .await
    }

    async fn acquire_key(&self, key: String, ttl: Duration) -> Result<Option<LockGuard>> {
        let token = new_token();
        let mut conn = self.conn.clone();
        let set: Option<String> = cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.map(|_| LockGuard {
            lock: self.clone(),
            key,
            token,
            released: false,
        }))
    }

    /// Releases `key` if it still holds `token`; `false` otherwise (expired, or held by
    /// someone else).
    pub async fn release(&self, key: &str, token: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = RELEASE.key(key).arg(token).invoke_async(&mut conn).await?;
        Ok(n == 1)
    }

    async fn renew(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = RENEW
            .key(key)
            .arg(token)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }
}

/// A held lock. Release it with [`LockGuard::release`]; dropping it releases in the
/// background when a tokio runtime is running (the TTL frees it otherwise).
pub struct LockGuard {
    lock: RedisLock,
    key: String,
    token: String,
    released: bool,
}

impl LockGuard {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Extends the lease; `false` when the lock is no longer ours.
    pub async fn renew(&self, ttl: Duration) -> Result<bool> {
        self.lock.renew(&self.key, &self.token, ttl).await
    }

    /// Frees the lock; `false` when it had already expired or passed to someone else.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        self.lock.release(&self.key, &self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let lock = self.lock.clone();
            let key = std::mem::take(&mut self.key);
            let token = std::mem::take(&mut self.token);
            handle.spawn(async move {
                if let Err(e) = lock.release(&key, &token).await {
                    tracing::warn!(key, error = %e, "releasing a dropped lock failed; its TTL will free it");
                }
            });
        }
    }
}

/// `{host}:{pid}:{random}`: unique per acquisition, and it names the holder, so an
/// operator (or a test) reading the key sees which process holds a lease.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{}:{random}", *HOST, std::process::id())
}

static HOST: LazyLock<String> = LazyLock::new(|| {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(':', "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
});

/// Milliseconds for `PX`, at least 1 (Redis rejects 0).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
