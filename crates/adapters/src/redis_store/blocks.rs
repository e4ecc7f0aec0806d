//! The rate limiter's block list shared by every node: `P rate_limit_block_{userId}`, a
//! hash of the rejection count and when the window ends. The end is kept in the caller's
//! clock (so an injected clock decides, as on the embedded backend); the key's TTL only
//! frees memory.

use super::RedisConn;
use super::{Result, check_prefix};
use ::redis::Script;
use async_trait::async_trait;
use big_market_domain::guard::BlockList;
use jiff::Timestamp;
use std::sync::LazyLock;
use std::time::Duration;

static BLOCK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("block.lua")));

#[derive(Clone)]
pub struct RedisBlockList {
    conn: RedisConn,
    prefix: String,
}

impl RedisBlockList {
    pub fn new(conn: impl Into<RedisConn>, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        Ok(Self {
            conn: conn.into(),
            prefix,
        })
    }

    fn key(&self, user_id: &str) -> String {
        format!("{}rate_limit_block_{user_id}", self.prefix)
    }
}

#[async_trait]
impl BlockList for RedisBlockList {
    async fn rejections(&self, user_id: &str, now: Timestamp) -> big_market_domain::Result<u32> {
        let mut conn = self.conn.clone();
        let (count, expires): (Option<u32>, Option<i64>) = ::redis::cmd("HMGET")
            .arg(self.key(user_id))
            .arg("count")
            .arg("expires")
            .query_async(&mut conn)
            .await
            .map_err(super::RedisError::from)?;
        Ok(match (count, expires) {
            (Some(n), Some(end)) if end > now.as_millisecond() => n,
            _ => 0,
        })
    }

    async fn reject(
        &self,
        user_id: &str,
        now: Timestamp,
        window: Duration,
    ) -> big_market_domain::Result<u32> {
        let mut conn = self.conn.clone();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        let count: u32 = BLOCK
            .key(self.key(user_id))
            .arg(now.as_millisecond())
            .arg(window_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(super::RedisError::from)?;
        Ok(count)
    }

    /// Redis expires entries itself.
    fn purge(&self, _now: Timestamp) {}
}
