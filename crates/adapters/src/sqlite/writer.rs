//! Group commit: one thread owns the write connection; callers send closures.
//!
//! The thread takes every job waiting (up to `max_batch`), opens one transaction, runs
//! each job inside its own savepoint, commits once and only then answers the callers.
//! Under load many draws share one fsync; alone, a draw commits at once (no waiting for
//! a batch to fill).

use super::StoreError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Delivers a job's result once the group's commit outcome is known.
type Finish = Box<dyn FnOnce(Result<(), Failed>) + Send>;
/// Runs a job (or, given `None`, reports that it could not run); returns how it ended
/// (keep its savepoint or not) and how to answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (Ran, Finish) + Send>;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Ok,
    Failed,
    /// Failed because the store could not grow (`SQLITE_FULL`).
    Full,
}

/// Why a group did not commit.
#[derive(Debug, Clone)]
struct Failed {
    /// For want of space: the callers are told the store is full, not that it broke.
    full: bool,
    reason: String,
}

impl From<&str> for Failed {
    fn from(reason: &str) -> Self {
        Self {
            full: false,
            reason: reason.to_owned(),
        }
    }
}

impl Failed {
    fn sqlite(e: &rusqlite::Error) -> Self {
        Self {
            full: super::error::is_full(e),
            reason: e.to_string(),
        }
    }
}

/// A group longer than this (its jobs plus the commit) is logged with where the time went:
/// every draw queued behind it waited as long.
const SLOW_GROUP: Duration = Duration::from_millis(50);

/// What the writer has done since it started (for metrics).
#[derive(Default)]
pub(super) struct WriterStats {
    pub(super) groups: AtomicU64,
    pub(super) jobs: AtomicU64,
    pub(super) slow_groups: AtomicU64,
}

pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
    /// Jobs sent and not yet taken by the thread (for metrics).
    queued: Arc<AtomicUsize>,
    stats: Arc<WriterStats>,
    /// Set by [`Writer::close`]: the thread stops after its current group.
    stop: Arc<AtomicBool>,
}

impl Writer {
    /// With `wal`, the connection commits without syncing (`synchronous=NORMAL`) and a
    /// thread of its own syncs the WAL file before each group is answered: the next group
    /// runs while the disk flushes the last one, and nobody is answered before their
    /// commit is on disk.
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        wal: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let syncer = match wal {
            Some(path) => Some(Syncer::start(path, stop.clone())?),
            None => None,
        };
        let (q, st, stats2) = (queued.clone(), stop.clone(), stats.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1), &q, &st, &stats2, syncer))
            .map_err(|e| StoreError::Io(format!("start writer thread: {e}")))?;
        Ok(Self {
            jobs,
            queued,
            stats,
            stop,
        })
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Jobs waiting for the thread.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether the thread still takes jobs.
    pub(super) fn alive(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Stops the thread after the jobs already sent; later writes fail with `Closed`.
    pub(super) fn close(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the thread if it is waiting for a job.
        let noop: Job = Box::new(|_| (Ran::Ok, Box::new(|_| {})));
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(noop).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Runs `f` in the next group. With a `deadline`, a job the thread reaches too late
    /// is refused without running (`Expired`); one that has started is always answered.
    pub(super) async fn submit<T, F>(
        &self,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    Err(StoreError::Expired)
                }
                Some(conn) => catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(StoreError::Io("a store transaction panicked".into()))),
                None => Err(StoreError::Io("the transaction could not start".into())),
            };
            let ran = match &result {
                Ok(_) => Ran::Ok,
                Err(e) if e.is_full() => Ran::Full,
                Err(_) => Ran::Failed,
            };
            let finish: Finish = Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) if e.full => Err(StoreError::Full(e.reason)),
                    Err(e) => Err(StoreError::Io(format!("commit failed: {}", e.reason))),
                };
                let _ = tx.send(answer);
            });
            (ran, finish)
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Closed);
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_batch: usize,
    queued: &AtomicUsize,
    stop: &AtomicBool,
    stats: &WriterStats,
    syncer: Option<Syncer>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
        if syncer
            .as_ref()
            .is_some_and(|s| s.broken.load(Ordering::SeqCst))
        {
            // A failed sync stopped the store: nothing more is run.
            for job in batch.drain(..) {
                job(None).1(Err("the store stopped after a failed sync".into()));
            }
            break;
        }
        let n = batch.len();
        let started = Instant::now();
        let outcome = commit_group(&conn, &mut batch);
        let took = started.elapsed();
        match (&syncer, &outcome.commit) {
            (Some(syncer), Ok(())) => syncer.after_sync(outcome.finishes),
            _ => {
                for finish in outcome.finishes {
                    finish(outcome.commit.clone());
                }
            }
        }
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(n as u64, Ordering::Relaxed);
        if took >= SLOW_GROUP {
            stats.slow_groups.fetch_add(1, Ordering::Relaxed);
            let wal = conn
                .path()
                .and_then(|p| std::fs::metadata(format!("{p}-wal")).ok())
                .map_or(0, |m| m.len());
            tracing::warn!(
                jobs = n,
                run_ms = outcome.ran.as_secs_f64() * 1e3,
                commit_ms = (took - outcome.ran).as_secs_f64() * 1e3,
                wal_bytes = wal,
                "slow group commit: the draws queued behind it waited as long"
            );
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    // Dropping the syncer lets it answer what it holds, then end.
    drop(syncer);
    tracing::debug!("sqlite writer stopped");
}

/// Makes committed groups durable off the writer thread: one `fdatasync` of the WAL file
/// covers every group committed before it, so while the disk flushes, the writer runs
/// the next groups, and a sync that finishes answers all of them.
struct Syncer {
    groups: std::sync::mpsc::Sender<Vec<Finish>>,
    /// Set when a sync failed.
    broken: Arc<AtomicBool>,
}

impl Syncer {
    fn start(wal: PathBuf, stop: Arc<AtomicBool>) -> Result<Self, StoreError> {
        // SQLite creates the WAL at the first read of a WAL-mode store (the migrations'
        // `user_version`); an empty one made here would be read as an empty log.
        let file = std::fs::File::open(&wal)
            .or_else(|_| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&wal)
            })
            .map_err(|e| StoreError::Io(format!("open {}: {e}", wal.display())))?;
        let (groups, rx) = std::sync::mpsc::channel::<Vec<Finish>>();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || sync_loop(wal, file, &rx, &stop, &flag))
            .map_err(|e| StoreError::Io(format!("start sync thread: {e}")))?;
        Ok(Self { groups, broken })
    }

    /// Answers `finishes` once the WAL holding their commit is on disk.
    fn after_sync(&self, finishes: Vec<Finish>) {
        if let Err(std::sync::mpsc::SendError(finishes)) = self.groups.send(finishes) {
            for finish in finishes {
                finish(Err("the store's sync thread has stopped".into()));
            }
        }
    }
}

fn sync_loop(
    wal: PathBuf,
    mut file: std::fs::File,
    rx: &std::sync::mpsc::Receiver<Vec<Finish>>,
    stop: &AtomicBool,
    broken: &AtomicBool,
) {
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut waiting = first;
        // Everything committed so far is in the file: one sync covers it all.
        while let Ok(more) = rx.try_recv() {
            waiting.extend(more);
        }
        if failed.is_none() {
            let started = Instant::now();
            if let Err(e) = sync_wal(&wal, &mut file) {
                // Linux may drop the pages a failed fsync could not write: what was
                // committed is visible but may not be on disk. Stop the writer, so the
                // store is reopened from what the disk holds, and say the outcome is
                // unknown rather than "failed".
                tracing::error!(error = %e, "syncing the WAL failed; the store stops taking writes");
                broken.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
                failed = Some(format!(
                    "the commit could not be made durable ({e}); whether it was kept is known once the store is reopened"
                ));
            } else if started.elapsed() >= SLOW_GROUP {
                tracing::warn!(
                    sync_ms = started.elapsed().as_secs_f64() * 1e3,
                    jobs = waiting.len(),
                    "slow WAL sync: the draws it answers waited as long"
                );
            }
        }
        let answer = failed.as_deref().map_or(Ok(()), |r| Err(Failed::from(r)));
        for finish in waiting {
            finish(answer.clone());
        }
    }
}

/// `fdatasync` of the WAL, reopening it first if SQLite replaced the file.
fn sync_wal(wal: &Path, file: &mut std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let current = std::fs::metadata(wal)?;
    let held = file.metadata()?;
    if (current.dev(), current.ino()) != (held.dev(), held.ino()) {
        *file = std::fs::File::open(wal)?;
    }
    file.sync_data()
}

struct GroupOutcome {
    commit: Result<(), Failed>,
    finishes: Vec<Finish>,
    /// Time spent before `COMMIT` (the jobs and their savepoints).
    ran: Duration,
}

fn commit_group(conn: &Connection, batch: &mut Vec<Job>) -> GroupOutcome {
    let started = Instant::now();
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for job in batch.drain(..) {
            finishes.push(job(None).1);
        }
        return GroupOutcome {
            commit: Err(Failed::sqlite(&e)),
            finishes,
            ran: started.elapsed(),
        };
    }
    let mut jobs = batch.drain(..);
    for job in jobs.by_ref() {
        let savepoint = conn.execute_batch("SAVEPOINT job");
        let (ran, finish) = match savepoint {
            Ok(()) => job(Some(conn)),
            Err(_) => job(None),
        };
        finishes.push(finish);
        // SQLite rolls the whole transaction back by itself on some errors (disk full,
        // I/O error, out of memory): the savepoints of the jobs before are gone with it,
        // so the group must fail as one rather than commit what is left.
        if conn.is_autocommit() {
            tracing::error!("the store rolled the group back on its own");
            return abort_group(
                conn,
                jobs,
                finishes,
                Failed {
                    full: ran == Ran::Full,
                    reason: "the transaction was rolled back by the store".into(),
                },
            );
        }
        let end = if ran == Ran::Ok {
            conn.execute_batch("RELEASE job")
        } else {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = end {
            // A job's writes that cannot be undone must not be committed with the others.
            tracing::error!(error = %e, "savepoint could not be closed; failing the group");
            let mut failed = Failed::sqlite(&e);
            failed.reason = format!("savepoint: {e}");
            return abort_group(conn, jobs, finishes, failed);
        }
    }
    drop(jobs);
    let ran = started.elapsed();
    let commit = conn.execute_batch("COMMIT").map_err(|e| {
        tracing::error!(error = %e, "group commit failed; rolling back");
        let _ = conn.execute_batch("ROLLBACK");
        Failed::sqlite(&e)
    });
    GroupOutcome {
        commit,
        finishes,
        ran,
    }
}

/// Rolls the group back (if SQLite has not already) and fails every job of it, the ones
/// that ran and the ones that did not.
fn abort_group(
    conn: &Connection,
    rest: impl Iterator<Item = Job>,
    mut finishes: Vec<Finish>,
    failed: Failed,
) -> GroupOutcome {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for job in rest {
        finishes.push(job(None).1);
    }
    GroupOutcome {
        commit: Err(failed),
        finishes,
        ran: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Answers = Arc<Mutex<Vec<Result<(), String>>>>;

    fn job(answers: &Answers, f: impl FnOnce(&Connection) -> bool + Send + 'static) -> Job {
        let answers = answers.clone();
        Box::new(move |conn| {
            let ok = conn.map(f).unwrap_or(false);
            let finish: Finish = Box::new(move |commit| {
                answers.lock().unwrap().push(if ok {
                    commit.map_err(|e| e.reason)
                } else {
                    Err("job failed".into())
                });
            });
            (if ok { Ran::Ok } else { Ran::Failed }, finish)
        })
    }

    fn insert(answers: &Answers, v: i64) -> Job {
        job(answers, move |c| {
            c.execute("INSERT INTO t(v) VALUES (?1)", [v]).is_ok()
        })
    }

    fn run_group(conn: &Connection, mut batch: Vec<Job>) {
        let outcome = commit_group(conn, &mut batch);
        for finish in outcome.finishes {
            finish(outcome.commit.clone());
        }
    }

    fn rows(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    fn setup() -> (Connection, Answers) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        (conn, Answers::default())
    }

    #[test]
    fn a_failed_job_is_undone_alone() {
        let (conn, answers) = setup();
        let batch = vec![
            insert(&answers, 1),
            job(&answers, |c| {
                c.execute("INSERT INTO t(v) VALUES (2)", []).unwrap();
                false
            }),
            insert(&answers, 3),
        ];
        run_group(&conn, batch);
        assert_eq!(rows(&conn), vec![1, 3]);
        let answers = answers.lock().unwrap();
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 2);
        assert!(answers[1].is_err());
    }

    #[test]
    fn a_transaction_lost_mid_group_fails_every_job_and_commits_nothing() {
        let (conn, answers) = setup();
        let batch = vec![
            insert(&answers, 1),
            // What SQLite does by itself on SQLITE_FULL or SQLITE_IOERR.
            job(&answers, |c| {
                c.execute("INSERT INTO t(v) VALUES (2)", []).unwrap();
                c.execute_batch("ROLLBACK").unwrap();
                true
            }),
            insert(&answers, 3),
        ];
        run_group(&conn, batch);
        assert!(rows(&conn).is_empty());
        let answers = answers.lock().unwrap();
        assert_eq!(answers.len(), 3);
        assert!(answers.iter().all(|a| a.is_err()), "{answers:?}");
        assert!(conn.is_autocommit());
    }

    /// A store at its size limit refuses a write as full (an error users are told as
    /// such, not an internal failure), smaller writes still fit, and once pages are freed
    /// the refused write succeeds on the same connection.
    #[tokio::test]
    async fn a_full_store_refuses_as_full_and_recovers_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE ballast (b BLOB);")
            .unwrap();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages + 8)
            .unwrap();
        let writer = Writer::start(conn, 16, None).unwrap();
        let blob = |bytes: usize| {
            move |c: &Connection| -> Result<(), StoreError> {
                c.execute("INSERT INTO ballast VALUES (zeroblob(?1))", [bytes])?;
                Ok(())
            }
        };
        let full = writer.submit(None, blob(64 * 1024)).await.unwrap_err();
        assert!(full.is_full(), "{full:?}");
        assert_eq!(
            big_market_domain::Error::from(full).code(),
            big_market_domain::ResponseCode::StoreFull
        );
        writer.submit(None, blob(16 * 1024)).await.unwrap();
        let full = writer.submit(None, blob(24 * 1024)).await.unwrap_err();
        assert!(full.is_full(), "{full:?}");
        writer
            .submit(None, |c| Ok(c.execute("DELETE FROM ballast", [])?))
            .await
            .unwrap();
        writer.submit(None, blob(24 * 1024)).await.unwrap();
        writer.close();
    }
}
