//! The outbox on the user databases: one `task` table per user database. The
//! compensation job's calls (`due_tasks`, `claim`, `record`, …) name a task by message id
//! only, so they visit the user databases in turn (few: `db_count`).

use super::group::RecordJob;
use super::store::{MysqlStore, MysqlTx, UserDb, limit_arg};
use crate::states::{TASK_COMPLETED, TASK_CREATE, TASK_FAIL, TASK_PARKED};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::id::Inserted;
use big_market_domain::task::{ParkedTask, Task, TaskOutcome, TaskRepository, TaskRow, TaskTx};

/// A task no sender holds: a failed one whose backoff (or claim) has run out, a new one
/// whose commit is older than the lease (the first `?`, seconds), or a claimed one
/// whose claim has run out. Stamps are the server's `NOW(3)`, so nodes' clocks never
/// disagree about a lease.
fn due() -> String {
    format!(
        "((state = '{TASK_FAIL}' AND (next_attempt_time IS NULL OR next_attempt_time <= NOW(3)))
     OR (state = '{TASK_CREATE}' AND next_attempt_time IS NULL
         AND update_time <= DATE_SUB(NOW(3), INTERVAL ? SECOND))
     OR (state = '{TASK_CREATE}' AND next_attempt_time <= NOW(3)))"
    )
}

/// The lease is `next_attempt_time` to the microsecond as text: the token a sender
/// hands back to `record`.
const TASK_COLUMNS: &str = "user_id, topic, message_id, message, state, attempts,
     DATE_FORMAT(next_attempt_time, '%Y-%m-%d %H:%i:%s.%f')";

type TaskTuple = (String, String, String, String, String, i64, Option<String>);

fn task_row(r: TaskTuple) -> TaskRow {
    TaskRow {
        user_id: r.0,
        topic: r.1,
        message_id: r.2,
        message: r.3,
        state: r.4,
        attempts: r.5,
        lease: r.6,
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl MysqlStore {
    /// The user databases (quoted names and their servers' pools).
    pub(super) fn user_dbs(&self) -> &[UserDb] {
        &self.inner.user_dbs
    }

    /// The user database holding `user_id`'s rows.
    pub(super) fn user_db(&self, user_id: &str) -> &UserDb {
        let db = self.inner.router.route(user_id).db;
        self.inner
            .user_dbs
            .get(db.saturating_sub(1) as usize)
            .unwrap_or_else(|| unreachable!("user database {db} outside the router"))
    }

    /// Rows per task state over every user database (for tests and metrics).
    pub async fn task_states(&self) -> Result<Vec<(String, i64)>> {
        let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
        for db in self.user_dbs() {
            let sql = format!("SELECT state, COUNT(*) FROM {db}.task GROUP BY state");
            let rows: Vec<(String, i64)> = self.all_on(&db.pool, sqlx::query_as(&sql)).await?;
            for (state, n) in rows {
                *totals.entry(state).or_default() += n;
            }
        }
        Ok(totals.into_iter().collect())
    }

    /// [`TaskRepository::record`] in one user database; rows changed.
    pub(super) async fn record_in(
        &self,
        db: &UserDb,
        message_id: &str,
        lease: Option<&str>,
        outcome: &TaskOutcome,
    ) -> Result<u64> {
        let guard = &format!(
            "WHERE message_id = ? AND next_attempt_time <=> ? AND state IN ('{TASK_CREATE}', '{TASK_FAIL}')"
        );
        let changed = match outcome {
            TaskOutcome::Completed(note) => {
                let sql = format!(
                    "UPDATE {db}.task SET state = '{TASK_COMPLETED}', last_error = ?, update_time = NOW(3) {guard}"
                );
                self.run_on(
                    &db.pool,
                    sqlx::query(&sql).bind(note).bind(message_id).bind(lease),
                )
                .await?
            }
            TaskOutcome::Retry {
                error,
                retry_after_secs,
            } => {
                let sql = format!(
                    "UPDATE {db}.task SET state = '{TASK_FAIL}', attempts = attempts + 1, last_error = ?,
                            next_attempt_time = DATE_ADD(NOW(3), INTERVAL ? SECOND),
                            update_time = NOW(3) {guard}"
                );
                self.run_on(
                    &db.pool,
                    sqlx::query(&sql)
                        .bind(error)
                        .bind(secs(*retry_after_secs))
                        .bind(message_id)
                        .bind(lease),
                )
                .await?
            }
            TaskOutcome::Parked(error) => {
                let sql = format!(
                    "UPDATE {db}.task SET state = '{TASK_PARKED}', attempts = attempts + 1, last_error = ?,
                            update_time = NOW(3) {guard}"
                );
                self.run_on(
                    &db.pool,
                    sqlx::query(&sql).bind(error).bind(message_id).bind(lease),
                )
                .await?
            }
        };
        Ok(changed)
    }

    /// Claims a due task in `db`: one guarded update, so of many claimants exactly one
    /// matches the row; the claimant then reads its lease in the same transaction.
    async fn claim_in(
        &self,
        db: &UserDb,
        message_id: &str,
        lease_secs: u64,
    ) -> Result<Option<TaskRow>> {
        let mut tx = db.pool.begin().await.map_err(super::store::sql)?;
        let due = due();
        let sql = format!(
            "UPDATE {db}.task SET update_time = NOW(3),
                    next_attempt_time = DATE_ADD(NOW(3), INTERVAL ? SECOND)
             WHERE message_id = ? AND {due}"
        );
        let claimed = sqlx::query(&sql)
            .bind(secs(lease_secs))
            .bind(message_id)
            .bind(secs(lease_secs))
            .execute(&mut *tx)
            .await
            .map_err(super::store::sql)?
            .rows_affected();
        if claimed != 1 {
            tx.rollback().await.map_err(super::store::sql)?;
            return Ok(None);
        }
        let sql = format!("SELECT {TASK_COLUMNS} FROM {db}.task WHERE message_id = ?");
        let row: TaskTuple = sqlx::query_as(&sql)
            .bind(message_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(super::store::sql)?;
        tx.commit().await.map_err(super::store::sql)?;
        Ok(Some(task_row(row)))
    }
}

#[async_trait]
impl TaskRepository for MysqlStore {
    async fn task(&self, message_id: &str) -> Result<Option<TaskRow>> {
        for db in self.user_dbs() {
            let sql = format!("SELECT {TASK_COLUMNS} FROM {db}.task WHERE message_id = ?");
            let row: Option<TaskTuple> = self
                .one_on(&db.pool, sqlx::query_as(&sql).bind(message_id))
                .await?;
            if let Some(row) = row {
                return Ok(Some(task_row(row)));
            }
        }
        Ok(None)
    }

    /// Due tasks of every user database, up to `limit` in all, taken from the databases
    /// in turn (oldest first in each) so a backlog in one never starves another.
    async fn due_tasks(&self, lease_secs: u64, limit: usize) -> Result<Vec<TaskRow>> {
        let mut per_db = Vec::new();
        for db in self.user_dbs() {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM {db}.task WHERE {} ORDER BY id LIMIT ?",
                due()
            );
            let rows: Vec<TaskTuple> = self
                .all_on(
                    &db.pool,
                    sqlx::query_as(&sql)
                        .bind(secs(lease_secs))
                        .bind(limit_arg(limit)),
                )
                .await?;
            per_db.push(rows.into_iter().map(task_row));
        }
        let mut out = Vec::new();
        while out.len() < limit {
            let before = out.len();
            for rows in &mut per_db {
                if out.len() < limit
                    && let Some(row) = rows.next()
                {
                    out.push(row);
                }
            }
            if out.len() == before {
                break;
            }
        }
        Ok(out)
    }

    async fn claim(&self, message_id: &str, lease_secs: u64) -> Result<Option<TaskRow>> {
        for db in self.user_dbs() {
            if let Some(row) = self.claim_in(db, message_id, lease_secs).await? {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    async fn claim_of(&self, task: &TaskRow, lease_secs: u64) -> Result<Option<TaskRow>> {
        let db = self.user_db(&task.user_id);
        self.claim_in(db, &task.message_id, lease_secs).await
    }

    async fn record_of(&self, task: &TaskRow, outcome: &TaskOutcome) -> Result<()> {
        if let (Some(groups), None, TaskOutcome::Completed(note)) =
            (&self.groups, &task.lease, outcome)
        {
            let job = RecordJob {
                task: task.clone(),
                note: note.clone(),
            };
            return groups.records.submit(self, job).await;
        }
        let db = self.user_db(&task.user_id);
        self.record_in(db, &task.message_id, task.lease.as_deref(), outcome)
            .await?;
        Ok(())
    }

    /// Only the holder of the lease may record: `next_attempt_time <=> lease` (NULL for
    /// the dispatcher of a task never claimed; the claim's lease end for a claimant).
    async fn record(
        &self,
        message_id: &str,
        lease: Option<&str>,
        outcome: &TaskOutcome,
    ) -> Result<()> {
        for db in self.user_dbs() {
            if self.record_in(db, message_id, lease, outcome).await? > 0 {
                break;
            }
        }
        Ok(())
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedTask>> {
        let mut out = Vec::new();
        for db in self.user_dbs() {
            let sql = format!(
                "SELECT message_id, user_id, topic, attempts, last_error,
                        DATE_FORMAT(update_time, '%Y-%m-%d %H:%i:%s.%f')
                 FROM {db}.task WHERE state = '{TASK_PARKED}' ORDER BY id LIMIT ?"
            );
            let rows: Vec<(String, String, String, i64, Option<String>, String)> = self
                .all_on(&db.pool, sqlx::query_as(&sql).bind(limit_arg(limit)))
                .await?;
            out.extend(rows.into_iter().map(|r| ParkedTask {
                message_id: r.0,
                user_id: r.1,
                topic: r.2,
                attempts: r.3,
                last_error: r.4,
                update_time: r.5,
            }));
        }
        out.sort_by(|a, b| a.update_time.cmp(&b.update_time));
        out.truncate(limit);
        Ok(out)
    }

    async fn requeue(&self, message_id: &str) -> Result<bool> {
        for db in self.user_dbs() {
            let sql = format!(
                "UPDATE {db}.task SET state = '{TASK_FAIL}', attempts = 0, next_attempt_time = NULL,
                        update_time = NOW(3)
                 WHERE message_id = ? AND state = '{TASK_PARKED}'"
            );
            if self
                .run_on(&db.pool, sqlx::query(&sql).bind(message_id))
                .await?
                == 1
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl TaskTx for MysqlTx {
    /// The task goes to the user's database (`task` is not split into tables).
    async fn insert_task(&mut self, task: &Task) -> Result<Inserted> {
        let sql = format!(
            "INSERT INTO {db}.task (user_id, topic, message_id, message, state, update_time)
             VALUES (?, ?, ?, ?, ?, NOW(3))",
            db = self.shard.db
        );
        let q = sqlx::query(&sql)
            .bind(&task.user_id)
            .bind(&task.topic)
            .bind(task.message_id())
            .bind(task.message())
            .bind(&task.state);
        let r = self.insert_random_id("uq_message_id", q).await;
        self.check(r)
    }
}
