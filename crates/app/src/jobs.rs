//! Background work of the process: the outbox dispatcher (sends a task as soon as its
//! transaction committed) and the compensation job (re-sends failed and stale tasks).
//! Both stop when the shutdown signal flips.

use big_market_domain::task::{Task, TaskNotifier, TaskRow, TaskService};
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
    let in_flight = Arc::new(Semaphore::new(64));
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

/// Every `interval`, claims and re-sends due tasks (failed ones whose backoff has passed,
/// and `create` ones whose lease has run out).
pub async fn compensation(
    tasks: Arc<TaskService>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = shutdown.changed() => break,
        }
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
            let sent = resend_all(&tasks, due).await;
            if sent > 0 {
                tracing::info!(sent, "compensation re-sent tasks");
            }
            if !full || *shutdown.borrow() {
                break;
            }
        }
    }
    tracing::debug!("outbox compensation stopped");
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
