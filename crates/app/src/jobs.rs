//! Background work of the process: the outbox dispatcher (sends a task as soon as its
//! transaction committed), the compensation job (re-sends failed and stale tasks) and,
//! with Redis stock, the stock write-back and sweeper. Jobs that must run once across
//! nodes take a Redis lease per round ([`Leadership`]); without Redis there is one node
//! and it always leads.
//!
//! Every job runs under a [`Supervisor`]: one that panics (or ends on its own) is logged
//! and started again; at shutdown the jobs are stopped stage by stage, each stage waited
//! for, so the last stock write-back sees every draw and delivery that finished.

use big_market_adapters::mysql::MysqlStore;
use big_market_adapters::redis_store::{Notice, RedisLock, Subscription};
use big_market_domain::activity::ActivityService;
use big_market_domain::cluster::Changed;
use big_market_domain::dcc::DynamicConfig;
use big_market_domain::strategy::StrategyService;
use big_market_domain::task::{Task, TaskNotifier, TaskRow, TaskService};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{Id, JoinSet};

/// When a job stops at shutdown: every job of a stage is asked to stop and waited for
/// before the next stage is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Jobs that produce work: the dispatcher (its sends in flight are waited for),
    /// compensation, consumers, the configuration follower, housekeeping.
    Work,
    /// Jobs that settle what the work left: the last stock write-back.
    Settle,
}

impl Stage {
    const ALL: [Stage; 2] = [Stage::Work, Stage::Settle];
}

type JobFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type StartJob = Arc<dyn Fn(watch::Receiver<bool>) -> JobFuture + Send + Sync>;

struct JobSpec {
    name: &'static str,
    stage: Stage,
    start: StartJob,
}

/// The background jobs of one process, before they start.
#[derive(Default)]
pub struct Supervisor {
    jobs: Vec<JobSpec>,
    restart_delay: Option<Duration>,
}

impl Supervisor {
    /// Adds a job. `start` is called again to restart it after a panic, so what a job
    /// owns alone (a receiver) is shared behind a lock the job holds while it runs.
    pub fn add<F>(
        &mut self,
        name: &'static str,
        stage: Stage,
        start: impl Fn(watch::Receiver<bool>) -> F + Send + Sync + 'static,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        self.jobs.push(JobSpec {
            name,
            stage,
            start: Arc::new(move |stop| Box::pin(start(stop))),
        });
    }

    /// How long a job that failed waits before it starts again (1 s by default).
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = Some(delay);
        self
    }

    /// Starts every job.
    pub fn start(self) -> RunningJobs {
        let (stop, asked) = oneshot::channel();
        let delay = self.restart_delay.unwrap_or(Duration::from_secs(1));
        let done = tokio::spawn(supervise(self.jobs, asked, delay));
        RunningJobs { stop, done }
    }
}

/// The started jobs; [`RunningJobs::stop`] ends them.
pub struct RunningJobs {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningJobs {
    /// Stops the jobs stage by stage and waits for them, at most `deadline`; past it the
    /// jobs still running are cut off and the error says so.
    pub async fn stop(self, deadline: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let mut done = self.done;
        match tokio::time::timeout(deadline, &mut done).await {
            Ok(_) => Ok(()),
            Err(_) => {
                done.abort();
                anyhow::bail!("background jobs did not stop within {deadline:?}; cut off")
            }
        }
    }
}

/// Runs the jobs, restarting any that ends before it is asked to stop; then stops them
/// stage by stage.
async fn supervise(jobs: Vec<JobSpec>, mut asked: oneshot::Receiver<()>, delay: Duration) {
    let mut stops: HashMap<Stage, watch::Sender<bool>> = Stage::ALL
        .iter()
        .map(|&stage| (stage, watch::channel(false).0))
        .collect();
    let jobs: Vec<Arc<JobSpec>> = jobs.into_iter().map(Arc::new).collect();
    let mut set = JoinSet::new();
    let mut running: HashMap<Id, Arc<JobSpec>> = HashMap::new();
    let spawn = |set: &mut JoinSet<()>,
                 running: &mut HashMap<Id, Arc<JobSpec>>,
                 job: Arc<JobSpec>,
                 stop: watch::Receiver<bool>,
                 wait: Duration| {
        let start = job.start.clone();
        let handle = set.spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            start(stop).await
        });
        running.insert(handle.id(), job);
    };
    for job in &jobs {
        let stop = stops[&job.stage].subscribe();
        spawn(&mut set, &mut running, job.clone(), stop, Duration::ZERO);
    }
    loop {
        let ended = tokio::select! {
            _ = &mut asked => break,
            ended = set.join_next_with_id() => ended,
        };
        let Some(ended) = ended else {
            // No job at all: wait for the stop.
            let _ = (&mut asked).await;
            break;
        };
        let (id, outcome) = match ended {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some(job) = running.remove(&id) else {
            continue;
        };
        match outcome {
            Some(e) if e.is_panic() => {
                tracing::error!(job = job.name, panic = %panic_message(e.into_panic()), "background job panicked; starting it again")
            }
            _ => tracing::warn!(
                job = job.name,
                "background job ended on its own; starting it again"
            ),
        }
        let stop = stops[&job.stage].subscribe();
        spawn(&mut set, &mut running, job, stop, delay);
    }
    for stage in Stage::ALL {
        if let Some(stop) = stops.remove(&stage) {
            let _ = stop.send(true);
        }
        while running.values().any(|j| j.stage == stage) {
            let Some(ended) = set.join_next_with_id().await else {
                break;
            };
            let (id, panic) = match ended {
                Ok((id, ())) => (id, None),
                Err(e) => (e.id(), e.is_panic().then(|| e.into_panic())),
            };
            if let Some(job) = running.remove(&id) {
                match panic {
                    Some(p) => {
                        tracing::error!(job = job.name, panic = %panic_message(p), "background job panicked while stopping")
                    }
                    None => tracing::debug!(job = job.name, "background job stopped"),
                }
            }
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".into())
}

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

/// The dispatcher's queue of committed tasks, held by the running dispatcher (a restarted
/// one takes it over).
pub type CommittedQueue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Committed>>>;

/// How many tasks the dispatcher sends at once.
const DISPATCH_IN_FLIGHT: u32 = 256;

/// Sends each notified task, several at a time so their writes share commits. At shutdown
/// it stops taking tasks and waits for the sends in flight (a task left in the queue is
/// in the outbox: compensation sends it).
pub async fn dispatcher(
    committed: CommittedQueue,
    tasks: Arc<TaskService>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut committed = committed.lock().await;
    let in_flight = Arc::new(Semaphore::new(DISPATCH_IN_FLIGHT as usize));
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
    // Every permit back: no send in flight.
    let _all = in_flight.acquire_many(DISPATCH_IN_FLIGHT).await;
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

/// On every node: rebuilds from SQL the stock counters Redis lost (restart without
/// persistence, flush, eviction), as soon as a draw finds one missing and at least every
/// few seconds for the ones asked before; a lease in Redis keeps two nodes from
/// rebuilding at once (the other node's draws wait for the counter).
pub async fn stock_rebuild(store: MysqlStore, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            done = store.rebuild_requested(Duration::from_secs(2)) => {
                match done {
                    Ok(report) if report.busy => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "stock rebuild failed; retried");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    tracing::debug!("stock rebuild stopped");
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
    subscription: Arc<tokio::sync::Mutex<Subscription>>,
    strategy: Arc<StrategyService>,
    activity: Arc<ActivityService>,
    dcc: Arc<DynamicConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut subscription = subscription.lock().await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A job that panics is started again; one that stops when asked is not.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_job_is_started_again() {
        let starts = Arc::new(AtomicUsize::new(0));
        let mut jobs = Supervisor::default().restart_delay(Duration::from_millis(10));
        let counted = starts.clone();
        jobs.add("flaky", Stage::Work, move |mut stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(n >= 2, "start {n} fails");
                let _ = stop.wait_for(|s| *s).await;
            }
        });
        let running = jobs.start();
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running.stop(Duration::from_secs(1)).await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    /// The settle stage is asked to stop only once every job of the work stage ended.
    #[tokio::test(start_paused = true)]
    async fn stages_stop_in_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut jobs = Supervisor::default();
        let l = log.clone();
        jobs.add("settle", Stage::Settle, move |mut stop| {
            let l = l.clone();
            async move {
                let _ = stop.wait_for(|s| *s).await;
                l.lock().unwrap().push("settle asked");
            }
        });
        for name in ["work a", "work b"] {
            let l = log.clone();
            jobs.add("work", Stage::Work, move |mut stop| {
                let l = l.clone();
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                    // Work in flight takes a while to finish.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    l.lock().unwrap().push(name);
                }
            });
        }
        let running = jobs.start();
        tokio::task::yield_now().await;
        running.stop(Duration::from_secs(5)).await.unwrap();
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 3, "{log:?}");
        assert_eq!(log[2], "settle asked", "{log:?}");
    }

    /// A job that does not stop is cut off at the deadline, and the error says so.
    #[tokio::test(start_paused = true)]
    async fn a_job_that_never_stops_is_cut_off() {
        let mut jobs = Supervisor::default();
        jobs.add("stuck", Stage::Work, |_stop| std::future::pending::<()>());
        let err = jobs.start().stop(Duration::from_secs(2)).await.unwrap_err();
        assert!(err.to_string().contains("did not stop"), "{err}");
    }
}
