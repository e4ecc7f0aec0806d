//! Background work of the process: the outbox dispatcher (sends a task as soon as its
//! transaction committed), the compensation job (re-sends failed and stale tasks) and,
//! with Redis stock, the stock write-back and sweeper. All stop when the shutdown signal
//! flips. Jobs that must run once across nodes take a Redis lease per round
//! ([`Leadership`]); without Redis there is one node and it always leads.

use big_market_adapters::mysql::MysqlStore;
use big_market_adapters::redis_store::{Notice, RedisLock, Subscription};
use big_market_domain::activity::ActivityService;
use big_market_domain::cluster::Changed;
use big_market_domain::dcc::DynamicConfig;
use big_market_domain::strategy::StrategyService;
use big_market_domain::task::{Task, TaskNotifier, TaskRow, TaskService};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};

/// Hands committed tasks to the dispatcher.
pub struct ChannelNotifier(pub mpsc::UnboundedSender<Committed>);

/// A task and when its commit was seen.
pub type Committed = (Instant, TaskRow);

impl TaskNotifier for ChannelNotifier {
    fn notify(&self, task: &Task) {
        // A closed channel means shutdown: the compensation job sends it after restart.
        let _ = self.0.send((Instant::now(), task.to_row()));
    }
}

/// Sends each notified task, several at a time so their writes share commits.
pub async fn dispatcher(
    mut committed: mpsc::UnboundedReceiver<Committed>,
    tasks: Arc<TaskService>,
    mut shutdown: watch::Receiver<bool>,
) {
    let in_flight = Arc::new(Semaphore::new(256));
    loop {
        let task = tokio::select! {
            task = committed.recv() => match task { Some(t) => t, None => break },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let tasks = tasks.clone();
        tokio::spawn(async move {
            let (at, task) = task;
            if let Err(e) = tasks.dispatch(&task, at).await {
                tracing::error!(message_id = %task.message_id, error = %e, "dispatch failed; compensation will retry");
            }
            drop(permit);
        });
    }
    tracing::debug!("outbox dispatcher stopped");
}

const PAGE: usize = 512;

/// Claims and sends `due` tasks, 64 at a time; how many were sent.
async fn resend_all(tasks: &Arc<TaskService>, due: Vec<TaskRow>) -> usize {
    let in_flight = Arc::new(Semaphore::new(64));
    let mut sends = tokio::task::JoinSet::new();
    for task in due {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let tasks = tasks.clone();
        sends.spawn(async move {
            let sent = match tasks.resend(&task).await {
                Ok(outcome) => outcome.is_some(),
                Err(e) => {
                    tracing::error!(message_id = %task.message_id, error = %e, "re-send failed");
                    false
                }
            };
            drop(permit);
            sent
        });
    }
    let mut sent = 0;
    while let Some(done) = sends.join_next().await {
        sent += usize::from(done.unwrap_or(false));
    }
    sent
}

/// Decides which node runs a round of a cluster-wide job.
#[derive(Clone, Default)]
pub struct Leadership(pub Option<RedisLock>);

impl Leadership {
    /// Runs `round` if this node holds the job's lease (`SET NX PX` with a token, released
    /// after the round; a node that dies keeps it only for `lease`). `None` when another
    /// node led this round.
    pub async fn run<T, Fut: Future<Output = T>>(
        &self,
        job: &str,
        lease: Duration,
        round: impl FnOnce() -> Fut,
    ) -> Option<T> {
        let Some(lock) = &self.0 else {
            return Some(round().await);
        };
        let guard = match lock.try_lead(job, lease).await {
            Ok(Some(guard)) => guard,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(job, error = %e, "cannot reach redis for job leadership; skipping the round");
                return None;
            }
        };
        let out = round().await;
        if let Err(e) = guard.release().await {
            tracing::warn!(job, error = %e, "releasing the job lease failed; it expires on its own");
        }
        Some(out)
    }
}

/// Every `interval`, claims and re-sends due tasks (failed ones whose backoff has passed,
/// and `create` ones whose lease has run out), on one node at a time.
pub async fn compensation(
    tasks: Arc<TaskService>,
    interval: Duration,
    leadership: Leadership,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = shutdown.changed() => break,
        }
        let lease = interval * 6;
        leadership
            .run("compensation", lease, || compensate(&tasks, &shutdown))
            .await;
    }
    tracing::debug!("outbox compensation stopped");
}

async fn compensate(tasks: &Arc<TaskService>, shutdown: &watch::Receiver<bool>) {
    {
        // Drain a backlog page after page, 64 sends at a time (their writes share
        // commits), until a page comes back short; a page waits for its sends, so the
        // next listing never shows a task still in flight.
        loop {
            let due = match tasks.due(PAGE).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "compensation could not list due tasks");
                    break;
                }
            };
            let full = due.len() == PAGE;
            let sent = resend_all(tasks, due).await;
            if sent > 0 {
                tracing::info!(sent, "compensation re-sent tasks");
            }
            if !full || *shutdown.borrow() {
                break;
            }
        }
    }
}

/// Redis stock upkeep: every `interval`, the changed counters are written to the SQL
/// surplus columns (one batch per round, never a row update per draw); every five
/// seconds, reservations older than `reservation_bound` are settled from SQL. Each on
/// one node at a time. A last write-back runs at shutdown.
pub async fn stock_upkeep(
    store: MysqlStore,
    interval: Duration,
    reservation_bound: Duration,
    leadership: Leadership,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut write_back = tokio::time::interval(interval);
    write_back.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let bound_ms = i64::try_from(reservation_bound.as_millis()).unwrap_or(i64::MAX);
    let lease = interval.max(Duration::from_millis(500)) * 10;
    // Every counter is copied on the first round and every 30th after it: changes whose
    // dirty mark was lost (a leader killed between taking the marks and its commit, or
    // two overlapping rounds) reach SQL within 30 rounds.
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = write_back.tick() => {
                let full = round == 0;
                round = (round + 1) % 30;
                leadership.run("stock_writeback", lease, || async {
                    let written = if full {
                        store.write_back_all_stock().await
                    } else {
                        store.write_back_stock().await
                    };
                    if let Err(e) = written {
                        tracing::warn!(error = %e, "stock write-back failed; retried next round");
                    }
                }).await;
            }
            _ = sweep.tick() => {
                leadership.run("stock_sweep", Duration::from_secs(60), || async {
                    if let Err(e) = store.sweep_stock(bound_ms).await {
                        tracing::warn!(error = %e, "stock sweep failed; retried next round");
                    }
                }).await;
            }
            _ = shutdown.changed() => break,
        }
    }
    let last = leadership
        .run("stock_writeback", lease, || store.write_back_stock())
        .await;
    if let Some(Err(e)) = last {
        tracing::warn!(error = %e, "last stock write-back failed; the next full round catches up");
    }
    tracing::debug!("stock upkeep stopped");
}

/// Every minute, forgets rate-limiter and block-list entries nobody needs any more.
pub async fn housekeeping(
    guard: Arc<big_market_domain::guard::DrawGuard>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => guard.housekeeping(),
            _ = shutdown.changed() => break,
        }
    }
}

/// Applies other nodes' configuration changes announced over Redis: each named strategy,
/// activity or the dcc switches are reloaded from SQL; after a lost subscription,
/// everything is (announcements sent during the gap are gone).
pub async fn follow_config_changes(
    mut subscription: Subscription,
    strategy: Arc<StrategyService>,
    activity: Arc<ActivityService>,
    dcc: Arc<DynamicConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let notice = tokio::select! {
            n = subscription.recv() => match n { Some(n) => n, None => break },
            _ = shutdown.changed() => break,
        };
        let done = match notice {
            Notice::Invalidate(event) => match event.change() {
                Some(Changed::Strategy(id)) => strategy.reload(id).await.map(drop),
                Some(Changed::Activity(id)) => activity.reload(id).await,
                Some(Changed::Dcc) => dcc.reload().await,
                None => {
                    tracing::debug!(kind = %event.kind, "ignoring an unknown invalidation");
                    Ok(())
                }
            },
            Notice::Resync => {
                let strategies = strategy.armory_all().await.map(drop);
                let activities = activity.reload_all().await;
                let switches = dcc.reload().await;
                strategies.and(activities).and(switches)
            }
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "reloading changed configuration failed");
        }
    }
    tracing::debug!("configuration follower stopped");
}
