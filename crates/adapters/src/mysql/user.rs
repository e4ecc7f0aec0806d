//! The repositories over users' data: each user-scoped change is one transaction on the
//! user's shard ([`in_user_tx`]) running the domain's function; reads of one user go
//! to that shard; operator views that span users visit every shard.
//!
//! Tasks live in one `task` table per user database. The compensation job's calls
//! (`due_tasks`, `claim`, `record`, …) name a task by message id only, so they visit
//! the user databases in turn (few: `db_count`).

use super::group::{CreditJob, RecordJob};
use super::store::{MysqlStore, check_deadline, in_user_tx};
use super::tx::{Lock, RAFFLE_ORDER_COLUMNS, datetime, raffle_order, read_quota_rows};
use crate::redis_store::StockKey;
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::quota::{self, DrawOutcome};
use big_market_domain::activity::service::{AccountRows, DrawJob, RechargeJob};
use big_market_domain::activity::{
    ActivityAccount, ActivityConfig, ActivityRepository, PeriodAccount, RaffleActivityCount,
    RaffleActivityOrder, RaffleActivitySku, RaffleActivityStage, UserRaffleOrder,
};
use big_market_domain::award::{
    self, Award, AwardRecordView, AwardRepository, AwardTx, SendAwardMessage, UndeliveredAward,
};
use big_market_domain::credit::{self, CreditOrder, CreditRepository, Trade};
use big_market_domain::erp::{CreditLedgerLine, ErpRepository};
use big_market_domain::health::{OutboxStats, StoreLoad, StoreProbe};
use big_market_domain::rebate::{self, Behavior, DailyBehaviorRebate, RebateRepository};
use big_market_domain::strategy::{
    AssembledStrategy, DrawCounts, RaffleAward, StrategyConfig, StrategyRepository,
};
use big_market_domain::task::{ParkedTask, Task, TaskOutcome, TaskRepository, TaskRow};
use big_market_domain::time::CalendarKeys;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use std::sync::Arc;

/// A generator for one transaction: seeded from the thread's CSPRNG, and `Send`, so it
/// may live across the transaction's awaits.
pub(super) fn rng() -> StdRng {
    StdRng::from_rng(&mut rand::rng())
}

#[async_trait]
impl StrategyRepository for MysqlStore {
    async fn strategy_ids(&self) -> Result<Vec<i64>> {
        MysqlStore::strategy_ids(self).await
    }

    async fn strategy_config(&self, strategy_id: i64) -> Result<StrategyConfig> {
        let config = self.load_strategy(strategy_id).await?;
        let stock: Vec<_> = config
            .awards
            .iter()
            .map(|a| {
                let key = StockKey::Award {
                    strategy_id: a.strategy_id,
                    award_id: a.award_id,
                };
                (key, a.award_count_surplus)
            })
            .collect();
        self.assemble_stock(&stock).await?;
        Ok(config)
    }

    async fn draw_counts(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<DrawCounts> {
        let shard = self.shard(user_id);
        let mut conn = self.pool().acquire().await.map_err(super::store::sql)?;
        let rows = read_quota_rows(
            &mut conn,
            &shard.db,
            activity_id,
            keys,
            &[user_id],
            Lock::No,
        )
        .await
        .map_err(super::store::sql)?;
        Ok(rows.into_values().next().unwrap_or_default().used())
    }

    async fn raffle(
        &self,
        strategy: Arc<AssembledStrategy>,
        user_id: String,
        keys: CalendarKeys,
    ) -> Result<RaffleAward> {
        let mut rng = rng();
        in_user_tx!(self, &user_id, |tx| {
            quota::strategy_raffle(tx, &strategy, &user_id, &keys, &mut rng).await
        })
    }
}

impl MysqlStore {
    /// A points prize credited in its own transaction on the user's shard.
    pub(super) async fn deliver_credit_now(
        &self,
        message: &SendAwardMessage,
        default_config: &str,
    ) -> Result<Option<Decimal>> {
        let mut rng = rng();
        in_user_tx!(self, &message.user_id, |tx| {
            award::deliver_credit(tx, message, default_config, &mut rng).await
        })
    }

    /// One draw in its own transaction on the user's shard (the deadline already checked).
    pub(super) async fn draw_now(&self, job: &DrawJob) -> Result<DrawOutcome> {
        let mut rng = rng();
        in_user_tx!(self, &job.user_id, |tx| {
            let input = job.input();
            quota::draw(tx, input, &mut rng).await
        })
    }
}

#[async_trait]
impl ActivityRepository for MysqlStore {
    async fn activity_ids(&self) -> Result<Vec<i64>> {
        MysqlStore::activity_ids(self).await
    }

    async fn activity_config(&self, activity_id: i64) -> Result<Option<ActivityConfig>> {
        let config = self.load_activity(activity_id).await?;
        if let Some(c) = &config {
            let stock: Vec<_> = c
                .skus
                .iter()
                .map(|(s, _)| (StockKey::Sku { sku: s.sku }, s.stock_count_surplus))
                .collect();
            self.assemble_stock(&stock).await?;
        }
        Ok(config)
    }

    async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>> {
        MysqlStore::activity_of_sku(self, sku).await
    }

    async fn recharge(&self, job: RechargeJob) -> Result<RaffleActivityOrder> {
        let mut rng = rng();
        in_user_tx!(self, &job.request.user_id, |tx| {
            async { quota::recharge(tx, job.input()?, &mut rng).await }.await
        })
    }

    async fn exchange(
        &self,
        job: RechargeJob,
        timestamp_ms: i64,
    ) -> Result<(RaffleActivityOrder, Task)> {
        let mut rng = rng();
        in_user_tx!(self, &job.request.user_id, |tx| {
            async { quota::exchange(tx, job.input()?, timestamp_ms, &mut rng).await }.await
        })
    }

    async fn deliver_paid_order(
        &self,
        user_id: &str,
        out_business_no: &str,
        keys: &CalendarKeys,
    ) -> Result<bool> {
        in_user_tx!(self, user_id, |tx| {
            quota::deliver_paid_order(tx, user_id, out_business_no, keys).await
        })
    }

    async fn draw(&self, job: DrawJob) -> Result<DrawOutcome> {
        if let Some(groups) = &self.groups {
            return groups.draws.submit(self, job).await;
        }
        check_deadline(job.deadline, &job.gate)?;
        self.draw_now(&job).await
    }

    async fn account_rows(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<AccountRows> {
        let db = &self.shard(user_id).db;
        let sql = format!(
            "SELECT user_id, activity_id, total_count, total_count_surplus, day_count,
                    day_count_surplus, month_count, month_count_surplus
             FROM {db}.raffle_activity_account WHERE user_id = ? AND activity_id = ?"
        );
        type AccountRow = (String, i64, i64, i64, i64, i64, i64, i64);
        let account: Option<AccountRow> = self
            .one(sqlx::query_as(&sql).bind(user_id).bind(activity_id))
            .await?;
        let sql = format!(
            "SELECT user_id, activity_id, month, month_count, month_count_surplus
             FROM {db}.raffle_activity_account_month WHERE user_id = ? AND activity_id = ? AND month = ?"
        );
        type PeriodRow = (String, i64, String, i64, i64);
        let month: Option<PeriodRow> = self
            .one(
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(activity_id)
                    .bind(&keys.month),
            )
            .await?;
        let sql = format!(
            "SELECT user_id, activity_id, day, day_count, day_count_surplus
             FROM {db}.raffle_activity_account_day WHERE user_id = ? AND activity_id = ? AND day = ?"
        );
        let day: Option<PeriodRow> = self
            .one(
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(activity_id)
                    .bind(&keys.day),
            )
            .await?;
        let period = |r: PeriodRow| PeriodAccount {
            user_id: r.0,
            activity_id: r.1,
            period: r.2,
            count: r.3,
            count_surplus: r.4,
        };
        Ok(AccountRows {
            account: account.map(|r| ActivityAccount {
                user_id: r.0,
                activity_id: r.1,
                total_count: r.2,
                total_count_surplus: r.3,
                day_count: r.4,
                day_count_surplus: r.5,
                month_count: r.6,
                month_count_surplus: r.7,
            }),
            month: month.map(period),
            day: day.map(period),
        })
    }

    async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        let mut rows = self.sku_rows(activity_id).await?;
        // With Redis stock the SQL column trails the counter by a write-back interval.
        if let Some(stock) = &self.stock {
            for (sku, _) in &mut rows {
                if let Some(left) = stock.surplus(StockKey::Sku { sku: sku.sku }).await? {
                    sku.stock_count_surplus = left;
                }
            }
        }
        Ok(rows)
    }

    async fn stages(&self) -> Result<Vec<RaffleActivityStage>> {
        self.load_stages(false).await
    }

    async fn has_order(&self, user_id: &str, sku: i64, out_business_no: &str) -> Result<bool> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT 1 FROM {db}.raffle_activity_order{sfx}
             WHERE user_id = ? AND sku = ? AND out_business_no = ? LIMIT 1",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(i32,)> = self
            .one(
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(sku)
                    .bind(out_business_no),
            )
            .await?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl AwardRepository for MysqlStore {
    async fn award(&self, award_id: i32) -> Result<Option<Award>> {
        self.load_award(award_id).await
    }

    async fn deliver_credit(
        &self,
        message: SendAwardMessage,
        default_config: String,
    ) -> Result<Option<Decimal>> {
        if let Some(groups) = &self.groups {
            let job = CreditJob {
                message,
                default_config,
            };
            return groups.credits.submit(self, job).await;
        }
        self.deliver_credit_now(&message, &default_config).await
    }

    async fn complete_award(&self, user_id: &str, order_id: &str) -> Result<bool> {
        in_user_tx!(self, user_id, |tx| {
            AwardTx::complete_award(tx, user_id, order_id).await
        })
    }

    async fn award_state(&self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT award_state FROM {db}.user_award_record{sfx} WHERE user_id = ? AND order_id = ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(String,)> = self
            .one(sqlx::query_as(&sql).bind(user_id).bind(order_id))
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn note_award(&self, user_id: &str, order_id: &str, note: &str) -> Result<()> {
        tracing::warn!(%user_id, %order_id, %note, "award not delivered");
        let shard = self.shard(user_id);
        let sql = format!(
            "UPDATE {db}.user_award_record{sfx} SET delivery_note = ?
             WHERE user_id = ? AND order_id = ? AND award_state = 'create'",
            db = shard.db,
            sfx = shard.sfx
        );
        self.run(sqlx::query(&sql).bind(note).bind(user_id).bind(order_id))
            .await?;
        Ok(())
    }

    async fn redeliver(&self, user_id: &str, order_id: &str) -> Result<bool> {
        let shard = self.shard(user_id);
        let sql = format!(
            "UPDATE {db}.task SET state = 'fail', attempts = 0, next_attempt_time = NULL,
                    last_error = 'redelivery requested by an operator', update_time = NOW(3)
             WHERE topic = 'send_award' AND user_id = ?
               AND JSON_UNQUOTE(JSON_EXTRACT(message, '$.data.orderId')) = ?
               AND state IN ('completed', 'parked')
               AND EXISTS (SELECT 1 FROM {db}.user_award_record{sfx}
                           WHERE user_id = ? AND order_id = ? AND award_state = 'create')",
            db = shard.db,
            sfx = shard.sfx
        );
        Ok(self
            .run(
                sqlx::query(&sql)
                    .bind(user_id)
                    .bind(order_id)
                    .bind(user_id)
                    .bind(order_id),
            )
            .await?
            > 0)
    }

    /// Oldest first across every shard.
    async fn undelivered(&self, limit: usize) -> Result<Vec<UndeliveredAward>> {
        let mut out = Vec::new();
        for shard in self.shards() {
            let sql = format!(
                "SELECT user_id, order_id, award_id, award_title,
                        DATE_FORMAT(award_time, '%Y-%m-%d %H:%i:%s'), delivery_note
                 FROM {db}.user_award_record{sfx} WHERE award_state = 'create' ORDER BY id LIMIT ?",
                db = shard.db,
                sfx = shard.sfx
            );
            let rows: Vec<(String, String, i32, String, String, Option<String>)> = self
                .all(sqlx::query_as(&sql).bind(limit_arg(limit)))
                .await?;
            for r in rows {
                out.push(UndeliveredAward {
                    user_id: r.0,
                    order_id: r.1,
                    award_id: r.2,
                    award_title: r.3,
                    award_time: datetime(&r.4)?,
                    note: r.5,
                });
            }
        }
        out.sort_by_key(|a| a.award_time);
        out.truncate(limit);
        Ok(out)
    }

    /// On the user's shard only, as every user row.
    async fn user_award_records(
        &self,
        user_id: &str,
        activity_id: i64,
        limit: usize,
    ) -> Result<Vec<AwardRecordView>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT order_id, award_id, award_title,
                    DATE_FORMAT(award_time, '%Y-%m-%d %H:%i:%s'), award_state, delivery_note
             FROM {db}.user_award_record{sfx} WHERE user_id = ? AND activity_id = ?
             ORDER BY award_time DESC, id DESC LIMIT ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let rows: Vec<(String, i32, String, String, String, Option<String>)> = self
            .all(
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(activity_id)
                    .bind(limit_arg(limit)),
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AwardRecordView {
                    order_id: r.0,
                    award_id: r.1,
                    award_title: r.2,
                    award_time: datetime(&r.3)?,
                    award_state: r.4,
                    note: r.5,
                })
            })
            .collect()
    }
}

fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl CreditRepository for MysqlStore {
    async fn adjust(&self, trade: Trade, timestamp_ms: i64) -> Result<(CreditOrder, Task)> {
        let mut rng = rng();
        in_user_tx!(self, &trade.user_id, |tx| {
            credit::adjust(tx, &trade, timestamp_ms, &mut rng).await
        })
    }

    async fn available(&self, user_id: &str) -> Result<Decimal> {
        let sql = format!(
            "SELECT available_amount FROM {db}.user_credit_account WHERE user_id = ?",
            db = self.shard(user_id).db
        );
        let row: Option<(Decimal,)> = self.one(sqlx::query_as(&sql).bind(user_id)).await?;
        Ok(row.map_or(Decimal::ZERO, |r| r.0))
    }
}

#[async_trait]
impl RebateRepository for MysqlStore {
    async fn rebate_configs(&self, behavior_type: &str) -> Result<Vec<DailyBehaviorRebate>> {
        self.load_rebate_configs(behavior_type).await
    }

    async fn record(
        &self,
        behavior: Behavior,
        configs: Vec<DailyBehaviorRebate>,
        timestamp_ms: i64,
    ) -> Result<Vec<Task>> {
        let mut rng = rng();
        in_user_tx!(self, &behavior.user_id, |tx| {
            rebate::record(tx, &behavior, &configs, timestamp_ms, &mut rng).await
        })
    }

    async fn has_rebate(&self, user_id: &str, out_business_no: &str) -> Result<bool> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT 1 FROM {db}.user_behavior_rebate_order{sfx}
             WHERE user_id = ? AND out_business_no = ? LIMIT 1",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(i32,)> = self
            .one(sqlx::query_as(&sql).bind(user_id).bind(out_business_no))
            .await?;
        Ok(row.is_some())
    }
}

/// A task no sender holds: a failed one whose backoff (or claim) has run out, a new one
/// whose commit is older than the lease (the first `?`, seconds), or a claimed one
/// whose claim has run out. Stamps are the server's `NOW(3)`, so nodes' clocks never
/// disagree about a lease.
const DUE: &str = "((state = 'fail' AND (next_attempt_time IS NULL OR next_attempt_time <= NOW(3)))
     OR (state = 'create' AND next_attempt_time IS NULL
         AND update_time <= DATE_SUB(NOW(3), INTERVAL ? SECOND))
     OR (state = 'create' AND next_attempt_time <= NOW(3)))";

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
    /// The user databases, quoted.
    fn user_dbs(&self) -> &[String] {
        &self.inner.user_dbs
    }

    /// Rows per task state over every user database (for tests and metrics).
    pub async fn task_states(&self) -> Result<Vec<(String, i64)>> {
        let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
        for db in self.user_dbs() {
            let sql = format!("SELECT state, COUNT(*) FROM {db}.task GROUP BY state");
            let rows: Vec<(String, i64)> = self.all(sqlx::query_as(&sql)).await?;
            for (state, n) in rows {
                *totals.entry(state).or_default() += n;
            }
        }
        Ok(totals.into_iter().collect())
    }

    /// [`TaskRepository::record`] in one user database; rows changed.
    pub(super) async fn record_in(
        &self,
        db: &str,
        message_id: &str,
        lease: Option<&str>,
        outcome: &TaskOutcome,
    ) -> Result<u64> {
        let guard =
            "WHERE message_id = ? AND next_attempt_time <=> ? AND state IN ('create', 'fail')";
        let changed = match outcome {
            TaskOutcome::Completed(note) => {
                let sql = format!(
                    "UPDATE {db}.task SET state = 'completed', last_error = ?, update_time = NOW(3) {guard}"
                );
                self.run(sqlx::query(&sql).bind(note).bind(message_id).bind(lease))
                    .await?
            }
            TaskOutcome::Retry {
                error,
                retry_after_secs,
            } => {
                let sql = format!(
                    "UPDATE {db}.task SET state = 'fail', attempts = attempts + 1, last_error = ?,
                            next_attempt_time = DATE_ADD(NOW(3), INTERVAL ? SECOND),
                            update_time = NOW(3) {guard}"
                );
                self.run(
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
                    "UPDATE {db}.task SET state = 'parked', attempts = attempts + 1, last_error = ?,
                            update_time = NOW(3) {guard}"
                );
                self.run(sqlx::query(&sql).bind(error).bind(message_id).bind(lease))
                    .await?
            }
        };
        Ok(changed)
    }

    /// Claims a due task in `db`: one guarded update, so of many claimants exactly one
    /// matches the row; the claimant then reads its lease in the same transaction.
    async fn claim_in(
        &self,
        db: &str,
        message_id: &str,
        lease_secs: u64,
    ) -> Result<Option<TaskRow>> {
        let mut tx = self.pool().begin().await.map_err(super::store::sql)?;
        let sql = format!(
            "UPDATE {db}.task SET update_time = NOW(3),
                    next_attempt_time = DATE_ADD(NOW(3), INTERVAL ? SECOND)
             WHERE message_id = ? AND {DUE}"
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
            let row: Option<TaskTuple> = self.one(sqlx::query_as(&sql).bind(message_id)).await?;
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
            let sql =
                format!("SELECT {TASK_COLUMNS} FROM {db}.task WHERE {DUE} ORDER BY id LIMIT ?");
            let rows: Vec<TaskTuple> = self
                .all(
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
        let db = &self.shard(&task.user_id).db;
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
        let db = &self.shard(&task.user_id).db;
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
                 FROM {db}.task WHERE state = 'parked' ORDER BY id LIMIT ?"
            );
            let rows: Vec<(String, String, String, i64, Option<String>, String)> = self
                .all(sqlx::query_as(&sql).bind(limit_arg(limit)))
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
                "UPDATE {db}.task SET state = 'fail', attempts = 0, next_attempt_time = NULL,
                        update_time = NOW(3)
                 WHERE message_id = ? AND state = 'parked'"
            );
            if self.run(sqlx::query(&sql).bind(message_id)).await? == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[async_trait]
impl ErpRepository for MysqlStore {
    /// Newest first across every shard (by order time, then by each table's id).
    async fn latest_raffle_orders(&self, limit: usize) -> Result<Vec<UserRaffleOrder>> {
        let mut out = Vec::new();
        for shard in self.shards() {
            let sql = format!(
                "SELECT {RAFFLE_ORDER_COLUMNS} FROM {db}.user_raffle_order{sfx} ORDER BY id DESC LIMIT ?",
                db = shard.db,
                sfx = shard.sfx
            );
            let rows: Vec<(String, i64, String, i64, String, String, String)> = self
                .all(sqlx::query_as(&sql).bind(limit_arg(limit)))
                .await?;
            for r in rows {
                out.push(raffle_order(r)?);
            }
        }
        out.sort_by_key(|o| std::cmp::Reverse(o.order_time));
        out.truncate(limit);
        Ok(out)
    }

    async fn stages_newest_first(&self) -> Result<Vec<RaffleActivityStage>> {
        self.load_stages(true).await
    }

    async fn stage(&self, id: i64) -> Result<Option<RaffleActivityStage>> {
        self.load_stage(id).await
    }

    async fn activate_stage(&self, id: i64) -> Result<bool> {
        self.activate(id).await
    }

    /// On the user's shard only.
    async fn user_raffle_orders(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<UserRaffleOrder>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT {RAFFLE_ORDER_COLUMNS} FROM {db}.user_raffle_order{sfx}
             WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let rows: Vec<(String, i64, String, i64, String, String, String)> = self
            .all(sqlx::query_as(&sql).bind(user_id).bind(limit_arg(limit)))
            .await?;
        rows.into_iter().map(raffle_order).collect()
    }

    /// On the user's shard only.
    async fn user_credit_orders(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<CreditLedgerLine>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT order_id, trade_name, trade_type, trade_amount, out_business_no,
                    DATE_FORMAT(create_time, '%Y-%m-%d %H:%i:%s')
             FROM {db}.user_credit_order{sfx} WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let rows: Vec<(String, String, String, Decimal, String, String)> = self
            .all(sqlx::query_as(&sql).bind(user_id).bind(limit_arg(limit)))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CreditLedgerLine {
                    order_id: r.0,
                    trade_name: r.1,
                    trade_type: r.2,
                    trade_amount: r.3,
                    out_business_no: r.4,
                    create_time: datetime(&r.5)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl StoreProbe for MysqlStore {
    async fn ready(&self) -> Result<()> {
        self.run(sqlx::query("SELECT 1")).await?;
        Ok(())
    }

    async fn outbox(&self) -> Result<OutboxStats> {
        let by_state = self.task_states().await?;
        let mut oldest: f64 = 0.0;
        for db in self.user_dbs() {
            // Waiting for delivery: `create` and `fail` (parked ones wait for an operator).
            let sql = format!(
                "SELECT TIMESTAMPDIFF(MICROSECOND, MIN(create_time), NOW()) FROM {db}.task
                 WHERE state IN ('create', 'fail')"
            );
            let row: Option<(Option<i64>,)> = self.one(sqlx::query_as(&sql)).await?;
            if let Some((Some(micros),)) = row {
                oldest = oldest.max(micros as f64 / 1e6);
            }
        }
        Ok(OutboxStats {
            by_state,
            oldest_pending_secs: oldest.max(0.0),
        })
    }

    /// No writer queue here (transactions run side by side); idle pool connections.
    fn load(&self) -> StoreLoad {
        StoreLoad {
            writer_queue: 0,
            idle_readers: self.pool().num_idle(),
        }
    }
}
