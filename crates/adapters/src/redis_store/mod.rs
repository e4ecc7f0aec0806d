//! The Redis side of the production backend: award and SKU stock with a reservation
//! ledger ([`stock`]), locks and job leadership ([`lock`]), and cache invalidation over
//! pub/sub ([`invalidation`]), and the rate limiter's block list ([`blocks`]).
//!
//! Every key lives under a configurable prefix (tests use a fresh one each), and every
//! stock key carries a hash tag (`{strategyId}` or `{sku}`) so each Lua script touches
//! one cluster slot. The prefix must not contain `{` or `}` for that reason.
//!
//! Redis is one server or a Redis Cluster ([`RedisServers`]); the rest of the code holds
//! a [`RedisConn`] and does not care which. On a cluster every script and `MULTI` names
//! keys of one slot, and commands on keys of different slots (a counter and the shared
//! dirty set) go one by one where a single server gets them in one pipeline.

pub mod blocks;
pub mod invalidation;
pub mod lock;
pub mod stock;

pub use blocks::RedisBlockList;
pub use invalidation::{CacheEvent, Invalidation, Notice, Subscription};
pub use lock::{LockGuard, RedisLock};
pub use stock::{RedisStock, Reservation, StockKey, SweepReport};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisFuture, Value};
use big_market_domain::{Error, ResponseCode};
use std::time::Duration;

/// The prefix used when the configuration names none.
pub const DEFAULT_PREFIX: &str = "big_market:";

/// How long connecting may take before start-up fails with a clear error (not a hang).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Failures of the Redis adapter.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("cannot reach redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The counter does not exist: not assembled yet, or lost by Redis (a restart
    /// without persistence, a flush); the store rebuilds it from SQL. Not "sold out".
    #[error("stock of {0} is not in redis; it is being rebuilt from SQL")]
    NotAssembled(StockKey),
    #[error("invalid key prefix {0:?}: it must not contain '{{' or '}}'")]
    BadPrefix(String),
    #[error("unexpected value in redis: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Domain(#[from] Error),
}

impl From<RedisError> for Error {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::Domain(d) => d,
            RedisError::NotAssembled(StockKey::Award {
                strategy_id,
                award_id,
            }) => Error::biz(
                ResponseCode::UnAssembledStrategyArmory,
                format!(
                    "award stock {strategy_id}_{award_id} is being rebuilt from SQL; nothing was taken, try again shortly"
                ),
            ),
            // Upstream answers ERR_BIZ_005 for a SKU whose stock was never cached; the
            // message says why.
            RedisError::NotAssembled(StockKey::Sku { sku }) => Error::biz(
                ResponseCode::ActivitySkuStockError,
                format!(
                    "sku {sku} stock is being rebuilt from SQL; nothing was taken, try again shortly"
                ),
            ),
            other => Error::internal(other),
        }
    }
}

pub type Result<T, E = RedisError> = std::result::Result<T, E>;

/// Where Redis is: one server (`redis_url`) or the seed nodes of a cluster
/// (`redis_cluster_urls`).
#[derive(Clone)]
pub enum RedisServers {
    Single(String),
    Cluster(Vec<String>),
}

impl std::fmt::Debug for RedisServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => write!(f, "redis {}", address(url)),
            Self::Cluster(urls) => {
                let nodes: Vec<String> = urls.iter().map(|u| address(u)).collect();
                write!(f, "redis cluster {}", nodes.join(","))
            }
        }
    }
}

/// A URL without its credentials, for messages.
fn address(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.rsplit('@').next().unwrap_or(rest).to_owned()
}

/// A connection to one server or to a cluster; cheap to clone (both are multiplexed
/// handles that reconnect by themselves). A cluster connection routes each command to
/// the master of its key's slot and follows `MOVED`/`ASK` when slots move.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Whether keys of different slots must go in separate commands.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(c: ConnectionManager) -> Self {
        Self::Single(c)
    }
}

impl From<ClusterConnection> for RedisConn {
    fn from(c: ClusterConnection) -> Self {
        Self::Cluster(c)
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Connects to one server or a cluster. Returns the connection and, for pub/sub, a
/// client per node to subscribe on (a cluster forwards every `PUBLISH` to all its nodes,
/// so a subscription on any one of them sees every message).
pub async fn connect_to(servers: &RedisServers) -> Result<(Vec<::redis::Client>, RedisConn)> {
    match servers {
        RedisServers::Single(url) => {
            let (client, conn) = connect(url).await?;
            Ok((vec![client], conn.into()))
        }
        RedisServers::Cluster(urls) => {
            let unreachable = |reason: String| RedisError::Unreachable {
                url: format!("{servers:?}"),
                reason,
            };
            if urls.is_empty() {
                return Err(unreachable("no seed node given".into()));
            }
            let clients = urls
                .iter()
                .map(|u| ::redis::Client::open(u.as_str()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| unreachable(e.to_string()))?;
            let cluster = ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(Duration::from_secs(5))
                .retries(3)
                .build()
                .map_err(|e| unreachable(e.to_string()))?;
            let conn = tokio::time::timeout(CONNECT_TIMEOUT * 2, cluster.get_async_connection())
                .await
                .map_err(|_| unreachable("timed out".into()))?
                .map_err(|e| unreachable(e.to_string()))?;
            Ok((clients, conn.into()))
        }
    }
}

/// Opens a managed (multiplexed, reconnecting) connection, failing within a few seconds
/// with the URL named when the server cannot be reached.
pub async fn connect(url: &str) -> Result<(::redis::Client, ConnectionManager)> {
    let unreachable = |reason: String| RedisError::Unreachable {
        url: url.to_string(),
        reason,
    };
    let client = ::redis::Client::open(url).map_err(|e| unreachable(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2);
    let manager = tokio::time::timeout(
        CONNECT_TIMEOUT * 2,
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    .map_err(|_| unreachable("timed out".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    Ok((client, manager))
}

fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.contains(['{', '}']) {
        return Err(RedisError::BadPrefix(prefix.to_string()));
    }
    Ok(())
}
