//! `/ready` on the production backend: the store answers, and so does every other server
//! a draw needs (Redis for stock, RabbitMQ for events), so a load balancer stops sending
//! draws to a node that cannot serve them. `/health` stays the liveness check.

use async_trait::async_trait;
use big_market_domain::health::{OutboxStats, StoreLoad, StoreProbe};
use big_market_domain::{Error, ResponseCode, Result};
use std::sync::Arc;
use std::time::Duration;

/// How long one server may take to answer before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A server `/ready` asks, with the name it is reported under.
#[async_trait]
pub trait Dependency: Send + Sync {
    fn name(&self) -> &'static str;
    async fn reachable(&self) -> std::result::Result<(), String>;
}

/// The store's probe plus the other servers: `ready` fails naming the first one that
/// does not answer within [`PROBE_TIMEOUT`]; outbox and load are the store's.
pub struct Readiness {
    pub store: Arc<dyn StoreProbe>,
    /// The store's name in the answer (`MariaDB/MySQL`, `the embedded store`).
    pub store_name: &'static str,
    pub others: Vec<Arc<dyn Dependency>>,
}

fn down(name: &str, reason: &str) -> Error {
    tracing::warn!(server = name, reason, "not ready");
    Error::biz(ResponseCode::UnError, format!("{name} is unreachable"))
}

#[async_trait]
impl StoreProbe for Readiness {
    async fn ready(&self) -> Result<()> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.store.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(down(self.store_name, &e.to_string())),
            Err(_) => return Err(down(self.store_name, "timed out")),
        }
        for dep in &self.others {
            match tokio::time::timeout(PROBE_TIMEOUT, dep.reachable()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(down(dep.name(), &e)),
                Err(_) => return Err(down(dep.name(), "timed out")),
            }
        }
        Ok(())
    }

    async fn outbox(&self) -> Result<OutboxStats> {
        self.store.outbox().await
    }

    fn load(&self) -> StoreLoad {
        self.store.load()
    }
}

/// Redis answers `PING`.
pub struct RedisPing(pub big_market_adapters::redis_store::RedisStock);

#[async_trait]
impl Dependency for RedisPing {
    fn name(&self) -> &'static str {
        "Redis"
    }

    async fn reachable(&self) -> std::result::Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// RabbitMQ accepts a connection.
pub struct BrokerReachable(pub big_market_adapters::amqp::AmqpBus);

#[async_trait]
impl Dependency for BrokerReachable {
    fn name(&self) -> &'static str {
        "RabbitMQ"
    }

    async fn reachable(&self) -> std::result::Result<(), String> {
        self.0.reachable().await.map_err(|e| e.to_string())
    }
}
