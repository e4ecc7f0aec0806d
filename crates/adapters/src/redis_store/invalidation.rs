//! Cache invalidation across nodes: configuration, probability tables and rule trees are
//! cached in each process; when an operator runs the armory on one node, it publishes
//! `{kind, id}` on `P cache_invalidation` and every node drops that entry.
//!
//! A subscriber holds its own connection (pub/sub needs one). When that connection is
//! lost it logs, reconnects with backoff and then delivers [`Notice::Resync`]: messages
//! sent during the gap are lost, so the receiver must drop every cached entry. On a
//! cluster it subscribes on one node (every node sees every `PUBLISH`) and moves to the
//! next seed node when that one fails.

use super::RedisConn;
use super::{RedisError, Result, check_prefix};
use ::redis::AsyncCommands;
use big_market_domain::cluster::{Changed, ConfigBroadcast};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One cached thing to drop, e.g. `{"kind":"strategy","id":100006}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEvent {
    /// `strategy`, `activity`, `sku`, … (the receiver decides what it understands).
    pub kind: String,
    pub id: i64,
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Invalidate(CacheEvent),
    /// The subscription was re-established after a loss: drop everything.
    Resync,
}

/// Publishes and subscribes to invalidations under one prefix.
#[derive(Clone)]
pub struct Invalidation {
    /// One per node to subscribe on, tried in turn.
    clients: Vec<::redis::Client>,
    conn: RedisConn,
    channel: String,
}

impl Invalidation {
    pub fn new(
        client: ::redis::Client,
        conn: impl Into<RedisConn>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        Self::on_nodes(vec![client], conn, prefix)
    }

    /// As [`Invalidation::new`], subscribing on the first of `clients` that answers
    /// (the nodes of a cluster).
    pub fn on_nodes(
        clients: Vec<::redis::Client>,
        conn: impl Into<RedisConn>,
        prefix: impl Into<String>,
    ) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        if clients.is_empty() {
            return Err(RedisError::Corrupt("no node to subscribe on".into()));
        }
        Ok(Self {
            clients,
            conn: conn.into(),
            channel: format!("{prefix}cache_invalidation"),
        })
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Tells every node to drop `{kind, id}`; returns how many subscribers got it.
    pub async fn publish(&self, kind: &str, id: i64) -> Result<u64> {
        let payload = serde_json::to_string(&CacheEvent {
            kind: kind.to_string(),
            id,
        })
        .map_err(|e| RedisError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        Ok(conn.publish(&self.channel, payload).await?)
    }

    /// Subscribes on a dedicated connection. Returns once the subscription is active, so
    /// a publish after this call is seen.
    pub async fn subscribe(&self) -> Result<Subscription> {
        let first = open_any(&self.clients, &self.channel).await?;
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(listen(
            self.clients.clone(),
            self.channel.clone(),
            first,
            tx,
        ));
        Ok(Subscription { rx, task })
    }
}

impl ConfigBroadcast for Invalidation {
    /// Publishes in the background: the request that changed the configuration does not
    /// wait for Redis, and a failed publish is logged (other nodes then serve the old
    /// copy until their next resync or armory).
    fn changed(&self, what: Changed) {
        let (kind, id) = match what {
            Changed::Strategy(id) => (kinds::STRATEGY, id),
            Changed::Activity(id) => (kinds::ACTIVITY, id),
            Changed::Dcc => (kinds::DCC, 0),
        };
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.publish(kind, id).await {
                tracing::warn!(kind, id, error = %e, "cache invalidation not published");
            }
        });
    }
}

/// The `kind`s of [`CacheEvent`] this version sends and understands.
pub mod kinds {
    pub const STRATEGY: &str = "strategy";
    pub const ACTIVITY: &str = "activity";
    pub const DCC: &str = "dcc";
}

impl CacheEvent {
    /// The change this event names; `None` for a kind this version does not know.
    pub fn change(&self) -> Option<Changed> {
        match self.kind.as_str() {
            kinds::STRATEGY => Some(Changed::Strategy(self.id)),
            kinds::ACTIVITY => Some(Changed::Activity(self.id)),
            kinds::DCC => Some(Changed::Dcc),
            _ => None,
        }
    }
}

/// A live subscription; dropping it stops the listener.
pub struct Subscription {
    rx: mpsc::Receiver<Notice>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// The next notice; `None` only after the listener stopped.
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open(client: &::redis::Client, channel: &str) -> Result<::redis::aio::PubSub> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    tokio::time::timeout(SUBSCRIBE_TIMEOUT, connect)
        .await
        .map_err(|_| RedisError::Corrupt(format!("subscribing to {channel} timed out")))?
}

/// Subscribes on the first node that answers.
async fn open_any(clients: &[::redis::Client], channel: &str) -> Result<::redis::aio::PubSub> {
    let mut last = RedisError::Corrupt("no node to subscribe on".into());
    for client in clients {
        match open(client, channel).await {
            Ok(p) => return Ok(p),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn listen(
    clients: Vec<::redis::Client>,
    channel: String,
    mut pubsub: ::redis::aio::PubSub,
    tx: mpsc::Sender<Notice>,
) {
    loop {
        {
            let mut stream = pubsub.on_message();
            while let Some(msg) = stream.next().await {
                let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
                match serde_json::from_slice::<CacheEvent>(&payload) {
                    Ok(event) => {
                        if tx.send(Notice::Invalidate(event)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "ignoring a malformed invalidation")
                    }
                }
            }
        }
        tracing::warn!(channel, "invalidation subscription lost; reconnecting");
        let mut delay = FIRST_BACKOFF;
        pubsub = loop {
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(delay).await;
            match open_any(&clients, &channel).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(channel, error = %e, retry_in_ms = delay.as_millis() as u64, "resubscribing failed");
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::info!(channel, "invalidation subscription restored");
        if tx.send(Notice::Resync).await.is_err() {
            return;
        }
    }
}
