//! Shared set-up of the Redis tests: a real server (never skipped) and a fresh key prefix
//! per test, so runs and tests do not see each other.

#![allow(dead_code)]

use big_market_adapters::redis_store::{self, Invalidation, RedisLock, RedisStock};
use redis::aio::ConnectionManager;
use std::time::Duration;

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
pub const URL_ENV: &str = "TEST_REDIS_URL";
/// Upper bound for any wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestRedis {
    pub client: redis::Client,
    pub conn: ConnectionManager,
    pub prefix: String,
}

impl TestRedis {
    /// Connects or fails the test with a message naming the server and the override.
    pub async fn start() -> Self {
        let url = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_string());
        let (client, conn) = match redis_store::connect(&url).await {
            Ok(c) => c,
            Err(e) => panic!(
                "the Redis tests need a server at {url} (default 127.0.0.1:6379; set \
                 {URL_ENV} to use another; .ci/run starts one): {e}"
            ),
        };
        let token: u64 = rand::random();
        let prefix = format!("bm-test-{token:016x}:");
        Self {
            client,
            conn,
            prefix,
        }
    }

    pub async fn stock(&self) -> RedisStock {
        RedisStock::new(self.conn.clone(), self.prefix.clone())
            .await
            .expect("stock")
    }

    pub fn lock(&self) -> RedisLock {
        RedisLock::new(self.conn.clone(), self.prefix.clone()).expect("lock")
    }

    pub fn invalidation(&self) -> Invalidation {
        Invalidation::new(self.client.clone(), self.conn.clone(), self.prefix.clone())
            .expect("invalidation")
    }

    /// Deletes this test's keys (Redis is shared with other runs).
    pub async fn cleanup(self) {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("keys");
        for key in keys {
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
    }
}
