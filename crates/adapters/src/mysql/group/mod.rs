//! Group commit: units of work of many users on one user database run as one
//! transaction with multi-row statements.
//!
//! Why: on a small server each statement's round trip and thread wake-up costs more than
//! its work, and every transaction adds a begin, a commit (a log flush) and the pool's
//! check of the connection. A draw alone is about eight statements; a group of `n` draws
//! is at most fourteen in all (one insert per table suffix). The same holds for the busiest work after a draw:
//! crediting a points prize, and marking its task `completed`. It is what the embedded
//! store's writer does for SQLite.
//!
//! How: each kind of work has a queue per user database and a few workers. A worker takes
//! what is queued (one unit per user; a user's next unit waits for the next group, so it
//! sees the first), and runs the group ([`Grouped::together`]): the domain's own function
//! runs for each user against a view that answers reads from rows the group read (locked)
//! and collects writes, then the collected writes go out as one statement per table and
//! one commit. A unit the domain refuses writes nothing and gets its error. If a statement
//! of the group fails (a random id taken, a deadlock, a count that does not match) the
//! group is rolled back and each unit runs again alone on the ordinary path
//! ([`Grouped::alone`]), so a group can never decide an outcome the single path would not.

mod delivery;
mod draw;

pub(super) use delivery::{CreditJob, RecordJob};

use super::store::{ER_LOCK_DEADLOCK, MysqlStore, error_number, sql};
use big_market_domain::activity::service::DrawJob;
use big_market_domain::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most units in one group: enough to share a commit among all the connections a node
/// usually serves, few enough that one group's statements stay small.
pub const MAX_GROUP: usize = 64;

/// A kind of work that can run in groups.
pub(super) trait Grouped: Send + Sync + Sized + 'static {
    type Output: Send + 'static;

    /// Whose rows the unit changes (it picks the queue, and one unit per user per group).
    fn user_id(&self) -> &str;

    /// How long a worker waits for more units before running a group: nothing for work
    /// someone is waiting on (a draw's answer), a little for work in the background,
    /// where larger groups mean fewer statements.
    const LINGER: std::time::Duration = std::time::Duration::ZERO;

    /// Whether the unit may still start; an error is its answer (a draw past its deadline).
    fn start(&self) -> Result<()> {
        Ok(())
    }

    /// The unit in its own transaction: the ordinary path.
    fn alone(store: &MysqlStore, job: &Self) -> impl Future<Output = Result<Self::Output>> + Send;

    /// The units (distinct users of one database, at least two) in one transaction on
    /// `conn` (the worker's own connection), an answer each, or `None` for a unit the
    /// group left alone (it runs on its own after the group). `Err`: nothing was
    /// written, so each may run again alone.
    fn together(
        store: &MysqlStore,
        conn: &mut MySqlConnection,
        jobs: &[&Self],
    ) -> impl Future<Output = Result<Vec<Option<Result<Self::Output>>>>> + Send;
}

/// A unit waiting for its group, and where its answer goes.
struct Pending<J: Grouped> {
    job: J,
    reply: oneshot::Sender<Result<J::Output>>,
}

/// The queues of one kind of work, one per user database (index `db - 1`).
pub(super) struct Queues<J: Grouped> {
    senders: Vec<mpsc::UnboundedSender<Pending<J>>>,
}

impl<J: Grouped> Queues<J> {
    /// Starts `workers` workers per user database, each taking groups of at most `max`.
    fn start(store: &MysqlStore, workers: usize, max: usize) -> Self {
        let mut senders = Vec::new();
        for db in &store.inner.user_dbs {
            let (tx, rx) = mpsc::unbounded_channel();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..workers.max(1) {
                let pool = db.pool.clone();
                tokio::spawn(worker(store.clone(), pool, rx.clone(), max.max(1)));
            }
            senders.push(tx);
        }
        Self { senders }
    }

    /// Queues the unit for its database's next group and waits for its answer.
    pub(super) async fn submit(&self, store: &MysqlStore, job: J) -> Result<J::Output> {
        let db = store.inner.router.route(job.user_id()).db;
        let sender = self
            .senders
            .get(db.saturating_sub(1) as usize)
            .ok_or_else(|| Error::internal(format!("no queue for user database {db}")))?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Pending { job, reply })
            .map_err(|_| Error::internal("the group queue is closed"))?;
        answer
            .await
            .map_err(|_| Error::internal("the group worker stopped before answering"))?
    }
}

/// Every kind of grouped work of a store.
pub(super) struct Groups {
    pub(super) draws: Queues<DrawJob>,
    pub(super) credits: Queues<CreditJob>,
    pub(super) records: Queues<RecordJob>,
}

impl MysqlStore {
    /// Runs draws, points prizes and task completions in groups from now on: `workers`
    /// transactions at a time per user database and kind, each of at most `max` units.
    /// Needs Redis stock: without it a draw takes award stock with an `UPDATE` whose
    /// answer the draw needs before the group could write anything.
    pub fn with_grouped_writes(mut self, workers: usize, max: usize) -> Self {
        assert!(self.stock.is_some(), "grouped writes need Redis stock");
        let plain = Self {
            groups: None,
            ..self.clone()
        };
        self.groups = Some(Arc::new(Groups {
            draws: Queues::start(&plain, workers, max),
            credits: Queues::start(&plain, workers, max),
            records: Queues::start(&plain, workers, max),
        }));
        self
    }
}

/// A worker with nothing queued for this long gives its connection back to the pool, so
/// an idle node holds no connections and the pool can close.
const IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes what is queued, one unit per user, and runs it as a group; a user's further
/// units are carried to the next group.
async fn worker<J: Grouped>(
    store: MysqlStore,
    pool: MySqlPool,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Pending<J>>>>,
    max: usize,
) {
    let mut carried: Vec<Pending<J>> = Vec::new();
    // Kept between groups while work keeps coming: a connection back in the pool is
    // checked (a round trip) each time it returns.
    let mut conn: Option<PoolConnection<MySql>> = None;
    loop {
        let mut taken = std::mem::take(&mut carried);
        {
            let mut queue = queue.lock().await;
            if taken.is_empty() {
                let first = match tokio::time::timeout(IDLE, queue.recv()).await {
                    Ok(p) => p,
                    Err(_) => {
                        conn = None;
                        queue.recv().await
                    }
                };
                match first {
                    Some(p) => taken.push(p),
                    None => return,
                }
                if !J::LINGER.is_zero() {
                    tokio::time::sleep(J::LINGER).await;
                }
            }
            while taken.len() < max {
                match queue.try_recv() {
                    Ok(p) => taken.push(p),
                    Err(_) => break,
                }
            }
        }
        // One unit per user; only the units that enter the group are started (a carried
        // draw's caller may still give up at its deadline).
        let mut users = HashSet::new();
        let mut group = Vec::with_capacity(taken.len());
        for p in taken {
            if !users.insert(p.job.user_id().to_owned()) {
                carried.push(p);
            } else if let Err(e) = p.job.start() {
                let _ = p.reply.send(Err(e));
            } else {
                group.push(p);
            }
        }
        // In a task of its own, so a panic costs only this group's answers (their callers
        // get an error), never the queue.
        let store2 = store.clone();
        let pool2 = pool.clone();
        let mut held = conn.take();
        let ran = tokio::spawn(async move {
            run(&store2, &pool2, &mut held, group).await;
            held
        })
        .await;
        match ran {
            Ok(held) => conn = held,
            Err(e) => {
                tracing::error!(error = %e, "a group's work panicked; its units were answered with an error")
            }
        }
    }
}

async fn run<J: Grouped>(
    store: &MysqlStore,
    pool: &MySqlPool,
    conn: &mut Option<PoolConnection<MySql>>,
    mut group: Vec<Pending<J>>,
) {
    if group.len() <= 1 {
        if let Some(p) = group.pop() {
            let _ = p.reply.send(J::alone(store, &p.job).await);
        }
        return;
    }
    let jobs: Vec<&J> = group.iter().map(|p| &p.job).collect();
    let together = match conn {
        Some(c) => J::together(store, c, &jobs).await,
        None => match pool.acquire().await {
            Ok(c) => J::together(store, conn.insert(c), &jobs).await,
            Err(e) => Err(sql(e)),
        },
    };
    let units = group.len() as u64;
    let results = match together {
        Ok(results) => {
            let alone = results.iter().filter(|r| r.is_none()).count() as u64;
            store.inner.group_commits.fetch_add(1, Ordering::Relaxed);
            store
                .inner
                .grouped
                .fetch_add(units - alone, Ordering::Relaxed);
            store.inner.regrouped.fetch_add(alone, Ordering::Relaxed);
            // Units the group could not answer run alone after its commit.
            let mut answers = Vec::with_capacity(results.len());
            for (r, p) in results.into_iter().zip(&group) {
                answers.push(match r {
                    Some(r) => r,
                    None => J::alone(store, &p.job).await,
                });
            }
            answers
        }
        Err(e) => {
            store.inner.regrouped.fetch_add(units, Ordering::Relaxed);
            // The connection may be what failed: the next group takes a fresh one.
            *conn = None;
            tracing::debug!(error = %e, units, "group rolled back: its units run one by one");
            let alone = group.iter().map(|p| J::alone(store, &p.job));
            futures_util::future::join_all(alone).await
        }
    };
    for (p, r) in group.into_iter().zip(results) {
        let _ = p.reply.send(r);
    }
}

/// A statement of a group failed, or matched fewer rows than it must.
pub(super) struct GroupError {
    pub(super) error: Error,
    pub(super) deadlock: bool,
}

impl From<sqlx::Error> for GroupError {
    fn from(e: sqlx::Error) -> Self {
        Self {
            deadlock: error_number(&e) == Some(ER_LOCK_DEADLOCK),
            error: sql(e),
        }
    }
}

impl From<Error> for GroupError {
    fn from(error: Error) -> Self {
        Self {
            error,
            deadlock: false,
        }
    }
}

/// The error of a statement that changed `got` rows where it had to change `expected`.
pub(super) fn expect_rows(what: &str, expected: usize, got: u64) -> Result<(), GroupError> {
    if got == expected as u64 {
        return Ok(());
    }
    Err(Error::internal(format!("{what}: {got} rows changed, {expected} expected")).into())
}

/// `?, ?, …` bound to `values`.
pub(super) fn push_list(q: &mut QueryBuilder<'_, MySql>, values: &[&str]) {
    let mut list = q.separated(", ");
    for v in values {
        list.push_bind(v.to_string());
    }
}

/// `CASE {column} WHEN ? THEN ? … END`: a value per row in one statement.
pub(super) fn push_case<'a, T>(
    q: &mut QueryBuilder<'a, MySql>,
    column: &str,
    rows: impl IntoIterator<Item = (String, T)>,
) where
    T: 'a + Send + sqlx::Encode<'a, MySql> + sqlx::Type<MySql>,
{
    q.push(format!("CASE {column}"));
    for (key, value) in rows {
        q.push(" WHEN ").push_bind(key);
        q.push(" THEN ").push_bind(value);
    }
    q.push(" END");
}

/// The answer of a unit whose group's commit may or may not have happened.
pub(super) fn commit_unknown(e: &sqlx::Error) -> Error {
    Error::internal(format!("the outcome of the group's commit is unknown: {e}"))
}

impl MysqlStore {
    /// Rolls a failed group back and passes its error on.
    pub(super) async fn give_up(&self, tx: sqlx::Transaction<'_, MySql>, e: GroupError) -> Error {
        if e.deadlock {
            self.note_deadlock();
        }
        if let Err(rollback) = tx.rollback().await {
            tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
        }
        e.error
    }
}
