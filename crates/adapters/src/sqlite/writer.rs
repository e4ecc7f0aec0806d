//! Group commit: one thread owns the write connection; callers send closures.
//!
//! The thread takes every job waiting (up to `max_batch`), opens one transaction, runs
//! each job inside its own savepoint, commits once and only then answers the callers.
//! Under load many draws share one fsync; alone, a draw commits at once (no waiting for
//! a batch to fill).

use super::StoreError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use tokio::sync::{mpsc, oneshot};

/// Delivers a job's result once the group's commit outcome is known.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs a job (or, given `None`, reports that it could not run); returns whether it
/// succeeded (keep its savepoint) and how to answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    pub(super) fn start(conn: Connection, max_batch: usize) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))
            .map_err(|e| StoreError::Io(format!("start writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    pub(super) async fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => catch_unwind(AssertUnwindSafe(|| f(conn)))
                    .unwrap_or_else(|_| Err(StoreError::Io("a store transaction panicked".into()))),
                None => Err(StoreError::Io("the transaction could not start".into())),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Io(format!("commit failed: {e}"))),
                };
                let _ = tx.send(answer);
            });
            (ok, finish)
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_group(&conn, &mut batch);
        for finish in outcome.finishes {
            finish(outcome.commit.clone());
        }
    }
    tracing::debug!("sqlite writer stopped");
}

struct GroupOutcome {
    commit: Result<(), String>,
    finishes: Vec<Finish>,
}

fn commit_group(conn: &Connection, batch: &mut Vec<Job>) -> GroupOutcome {
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for job in batch.drain(..) {
            finishes.push(job(None).1);
        }
        return GroupOutcome {
            commit: Err(e.to_string()),
            finishes,
        };
    }
    for job in batch.drain(..) {
        let savepoint = conn.execute_batch("SAVEPOINT job");
        let (ok, finish) = match savepoint {
            Ok(()) => job(Some(conn)),
            Err(_) => job(None),
        };
        let end = if ok {
            conn.execute_batch("RELEASE job")
        } else {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = end {
            tracing::error!(error = %e, "savepoint could not be closed");
        }
        finishes.push(finish);
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| {
        tracing::error!(error = %e, "group commit failed; rolling back");
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    GroupOutcome { commit, finishes }
}
