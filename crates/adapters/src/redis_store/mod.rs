//! The Redis side of the production backend: award and SKU stock with a reservation
//! ledger ([`stock`]), locks and job leadership ([`lock`]), and cache invalidation over
//! pub/sub ([`invalidation`]), and the rate limiter's block list ([`blocks`]).
//!
//! Every key lives under a configurable prefix (tests use a fresh one each), and every
//! stock key carries a hash tag (`{strategyId}` or `{sku}`) so each Lua script touches
//! one cluster slot. The prefix must not contain `{` or `}` for that reason.

pub mod blocks;
pub mod invalidation;
pub mod lock;
pub mod stock;

pub use blocks::RedisBlockList;
pub use invalidation::{CacheEvent, Invalidation, Notice, Subscription};
pub use lock::{LockGuard, RedisLock};
pub use stock::{RedisStock, Reservation, StockKey, SweepReport};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
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
