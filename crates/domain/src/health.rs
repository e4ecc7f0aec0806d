//! What an operator asks of the stores: are they reachable (`/ready`), and how loaded
//! (`/metrics`). Each backend answers for the stores it configures.

use crate::error::Result;
use async_trait::async_trait;

/// Outbox tasks by state, and how long the oldest undelivered one has waited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStats {
    pub by_state: Vec<(String, i64)>,
    /// Seconds since the oldest task waiting for delivery (`create` or `fail`) was written
    /// (0 if none).
    pub oldest_pending_secs: f64,
}

/// Instant use of the store's connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreLoad {
    /// Transactions waiting for the writer.
    pub writer_queue: usize,
    /// Read connections idle in the pool.
    pub idle_readers: usize,
    /// Commits of grouped transactions since start (each makes several callers'
    /// transactions durable at once).
    pub groups: u64,
    /// Callers' transactions committed in those groups.
    pub grouped: u64,
    /// Transactions that ran again alone after their group rolled back (MySQL).
    pub regrouped: u64,
    /// Groups whose jobs and commit took longer than 50 ms (embedded): every transaction
    /// queued behind one waited as long.
    pub slow_groups: u64,
}

#[async_trait]
pub trait StoreProbe: Send + Sync {
    /// `Ok` when every configured store answers a read and accepts writes.
    async fn ready(&self) -> Result<()>;
    async fn outbox(&self) -> Result<OutboxStats>;
    fn load(&self) -> StoreLoad;
}
