//! Award, credit, rebate and outbox storage of the embedded store: the rest of the unit
//! of work ([`SqliteTx`]) and the repositories of those domains.

use super::activity::{SqliteTx, duplicate_or_internal, inserted, internal};
use super::error::is_unique_violation;
use super::{SqliteStore, datetime, decimal};
use crate::states::{
    ACCOUNT_OPEN, AWARD_COMPLETED, AWARD_CREATE, TASK_COMPLETED, TASK_CREATE, TASK_FAIL,
    TASK_PARKED,
};
use async_trait::async_trait;
use big_market_domain::award::{
    self, Award, AwardCatalogTx, AwardRecordTx, AwardRecordView, AwardRepository, AwardTx,
    SendAwardMessage, UndeliveredAward, UserAwardRecord,
};
use big_market_domain::credit::{
    self, CreditGrantTx, CreditOrder, CreditRepository, CreditTx, Trade,
};
use big_market_domain::id::Inserted;
use big_market_domain::rebate::{
    self, Behavior, DailyBehaviorRebate, RebateOrder, RebateRepository, RebateTx,
};
use big_market_domain::task::{ParkedTask, Task, TaskOutcome, TaskRepository, TaskRow, TaskTx};
use big_market_domain::time::format_datetime;
use big_market_domain::{Error, ResponseCode, Result};
use rusqlite::{OptionalExtension, params};
use rust_decimal::Decimal;

/// Amounts are stored as `decimal(10,2)` text: always two places.
fn amount_text(d: Decimal) -> String {
    format!("{:.2}", credit::to_cents(d))
}

impl AwardTx for SqliteTx<'_> {
    async fn award_state(&mut self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT award_state FROM user_award_record WHERE user_id = ?1 AND order_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![user_id, order_id], |r| r.get(0))
                    .optional()
            })
            .map_err(internal)
    }

    async fn complete_award(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                &format!("UPDATE user_award_record SET award_state = '{AWARD_COMPLETED}', delivery_note = NULL,
                        update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1 AND order_id = ?2 AND award_state = '{AWARD_CREATE}'"),
            )
            .and_then(|mut s| s.execute(params![user_id, order_id]))
            .map_err(internal)?;
        Ok(n == 1)
    }
}

/// An award table row.
fn award_row(conn: &rusqlite::Connection, award_id: i32) -> rusqlite::Result<Option<Award>> {
    conn.prepare_cached(
        "SELECT award_id, award_key, award_config, award_desc FROM award WHERE award_id = ?1",
    )?
    .query_row([award_id], |r| {
        Ok(Award {
            award_id: r.get(0)?,
            award_key: r.get(1)?,
            award_config: r.get(2)?,
            award_desc: r.get(3)?,
        })
    })
    .optional()
}

impl AwardCatalogTx for SqliteTx<'_> {
    async fn award(&mut self, award_id: i32) -> Result<Option<Award>> {
        award_row(self.conn, award_id).map_err(internal)
    }
}

impl AwardRecordTx for SqliteTx<'_> {
    async fn insert_award_record(&mut self, r: &UserAwardRecord) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO user_award_record (user_id, activity_id, strategy_id, order_id, award_id, award_title, award_time, award_state, fair_proof)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.user_id,
                    r.activity_id,
                    r.strategy_id,
                    r.order_id,
                    r.award_id,
                    r.award_title,
                    format_datetime(&r.award_time),
                    r.award_state,
                    r.fair_proof
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::biz(ResponseCode::IndexDup, format!("raffle order {} already has an award", r.order_id))
                } else {
                    internal(e)
                }
            })?;
        Ok(())
    }
}

impl TaskTx for SqliteTx<'_> {
    async fn insert_task(&mut self, task: &Task) -> Result<Inserted> {
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO task (user_id, topic, message_id, message, state, last_error, update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
            )
            .and_then(|mut s| {
                s.execute(params![
                    task.user_id,
                    task.topic,
                    task.message_id(),
                    task.message(),
                    task.state,
                    task.note
                ])
            });
        inserted(result, "task.message_id").map_err(internal)
    }
}

impl CreditTx for SqliteTx<'_> {
    async fn credit_available(&mut self, user_id: &str) -> Result<Decimal> {
        let v: Option<String> = self
            .conn
            .prepare_cached("SELECT available_amount FROM user_credit_account WHERE user_id = ?1")
            .and_then(|mut s| s.query_row([user_id], |r| r.get(0)).optional())
            .map_err(internal)?;
        Ok(v.map(|s| decimal(&s)).transpose()?.unwrap_or(Decimal::ZERO))
    }

    async fn credit_take(&mut self, user_id: &str, amount: Decimal) -> Result<bool> {
        let available = self.credit_available(user_id).await?;
        if available < amount {
            return Ok(false);
        }
        let n = self
            .conn
            .prepare_cached(
                "UPDATE user_credit_account SET available_amount = ?2, update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1",
            )
            .and_then(|mut s| s.execute(params![user_id, amount_text(available - amount)]))
            .map_err(internal)?;
        Ok(n == 1)
    }
}

impl CreditGrantTx for SqliteTx<'_> {
    async fn credit_add(&mut self, user_id: &str, amount: Decimal) -> Result<()> {
        let current: Option<(String, String)> = self
            .conn
            .prepare_cached(
                "SELECT total_amount, available_amount FROM user_credit_account WHERE user_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(internal)?;
        match current {
            None => {
                self.conn
                    .prepare_cached(
                        &format!("INSERT INTO user_credit_account (user_id, total_amount, available_amount, account_status)
                         VALUES (?1, ?2, ?2, '{ACCOUNT_OPEN}')"),
                    )
                    .and_then(|mut s| s.execute(params![user_id, amount_text(amount)]))
                    .map_err(internal)?;
            }
            Some((total, available)) => {
                let (total, available) = (decimal(&total)? + amount, decimal(&available)? + amount);
                self.conn
                    .prepare_cached(
                        "UPDATE user_credit_account SET total_amount = ?2, available_amount = ?3,
                                update_time = CURRENT_TIMESTAMP WHERE user_id = ?1",
                    )
                    .and_then(|mut s| {
                        s.execute(params![user_id, amount_text(total), amount_text(available)])
                    })
                    .map_err(internal)?;
            }
        }
        Ok(())
    }

    async fn insert_credit_order(&mut self, o: &CreditOrder) -> Result<Inserted> {
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO user_credit_order (user_id, order_id, trade_name, trade_type, trade_amount, out_business_no)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    o.user_id,
                    o.order_id,
                    o.trade_name,
                    o.trade_type,
                    amount_text(o.trade_amount),
                    o.out_business_no
                ])
            });
        inserted(result, "user_credit_order.order_id").map_err(|e| {
            duplicate_or_internal(e, "user_credit_order.out_business_no", || {
                format!("credit trade {} was already made", o.out_business_no)
            })
        })
    }
}

impl RebateTx for SqliteTx<'_> {
    async fn insert_rebate_order(&mut self, r: &RebateOrder) -> Result<Inserted> {
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO user_behavior_rebate_order (user_id, order_id, behavior_type, rebate_desc, rebate_type,
                     rebate_config, out_business_no, biz_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.user_id, r.order_id, r.behavior_type, r.rebate_desc, r.rebate_type, r.rebate_config, r.out_business_no, r.biz_id
                ])
            });
        inserted(result, "user_behavior_rebate_order.order_id").map_err(|e| {
            duplicate_or_internal(e, "user_behavior_rebate_order.biz_id", || {
                format!("rebate {} was already recorded", r.biz_id)
            })
        })
    }
}

#[async_trait]
impl AwardRepository for SqliteStore {
    async fn award(&self, award_id: i32) -> Result<Option<Award>> {
        Ok(self
            .read(move |conn| Ok(award_row(conn, award_id)?))
            .await?)
    }

    async fn deliver_credit(
        &self,
        message: SendAwardMessage,
        default_config: String,
    ) -> Result<Option<Decimal>> {
        Ok(self
            .write(move |conn| {
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(award::deliver_credit(
                    &mut tx,
                    &message,
                    &default_config,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }

    async fn complete_award(&self, user_id: &str, order_id: &str) -> Result<bool> {
        let (user_id, order_id) = (user_id.to_owned(), order_id.to_owned());
        Ok(self
            .write(move |conn| {
                Ok(pollster::block_on(
                    SqliteTx { conn }.complete_award(&user_id, &order_id),
                )?)
            })
            .await?)
    }

    async fn award_state(&self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        let (user_id, order_id) = (user_id.to_owned(), order_id.to_owned());
        Ok(self
            .read(move |conn| {
                Ok(pollster::block_on(
                    SqliteTx { conn }.award_state(&user_id, &order_id),
                )?)
            })
            .await?)
    }

    async fn note_award(&self, user_id: &str, order_id: &str, note: &str) -> Result<()> {
        let (user_id, order_id, note) = (user_id.to_owned(), order_id.to_owned(), note.to_owned());
        tracing::warn!(%user_id, %order_id, %note, "award not delivered");
        Ok(self
            .write(move |conn| {
                conn.prepare_cached(
                    &format!("UPDATE user_award_record SET delivery_note = ?3, update_time = CURRENT_TIMESTAMP
                     WHERE user_id = ?1 AND order_id = ?2 AND award_state = '{AWARD_CREATE}'"),
                )?
                .execute(params![user_id, order_id, note])?;
                Ok(())
            })
            .await?)
    }

    async fn redeliver(&self, user_id: &str, order_id: &str) -> Result<bool> {
        let (user_id, order_id) = (user_id.to_owned(), order_id.to_owned());
        Ok(self
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "UPDATE task SET state = '{TASK_FAIL}', attempts = 0, next_attempt_time = NULL,
                                last_error = 'redelivery requested by an operator', update_time = {NOW_MS}
                         WHERE topic = 'send_award' AND user_id = ?1
                           AND json_extract(message, '$.data.orderId') = ?2
                           AND state IN ('{TASK_COMPLETED}', '{TASK_PARKED}')
                           AND EXISTS (SELECT 1 FROM user_award_record
                                       WHERE user_id = ?1 AND order_id = ?2 AND award_state = '{AWARD_CREATE}')"
                    ))?
                    .execute(params![user_id, order_id])?
                    > 0)
            })
            .await?)
    }

    async fn undelivered(&self, limit: usize) -> Result<Vec<UndeliveredAward>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    &format!("SELECT user_id, order_id, award_id, award_title, award_time, delivery_note
                     FROM user_award_record WHERE award_state = '{AWARD_CREATE}' ORDER BY id LIMIT ?1"),
                )?;
                let rows = stmt
                    .query_map([limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?, r.get(5)?))
                    })?
                    .collect::<Result<Vec<(String, String, i32, String, String, Option<String>)>, _>>()?;
                rows.into_iter()
                    .map(|(user_id, order_id, award_id, award_title, time, note)| {
                        Ok(UndeliveredAward {
                            user_id,
                            order_id,
                            award_id,
                            award_title,
                            award_time: datetime(&time)?,
                            note,
                        })
                    })
                    .collect()
            })
            .await?)
    }
    async fn user_award_records(
        &self,
        user_id: &str,
        activity_id: i64,
        limit: usize,
    ) -> Result<Vec<AwardRecordView>> {
        let user_id = user_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT order_id, award_id, award_title, award_time, award_state, delivery_note
                     FROM user_award_record WHERE user_id = ?1 AND activity_id = ?2
                     ORDER BY award_time DESC, id DESC LIMIT ?3",
                )?;
                let rows = stmt
                    .query_map(params![user_id, activity_id, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?, r.get(5)?))
                    })?
                    .collect::<Result<Vec<(String, i32, String, String, String, Option<String>)>, _>>()?;
                rows.into_iter()
                    .map(|(order_id, award_id, award_title, time, award_state, note)| {
                        Ok(AwardRecordView {
                            order_id,
                            award_id,
                            award_title,
                            award_time: datetime(&time)?,
                            award_state,
                            note,
                        })
                    })
                    .collect()
            })
            .await?)
    }
}

#[async_trait]
impl CreditRepository for SqliteStore {
    async fn adjust(&self, trade: Trade, timestamp_ms: i64) -> Result<(CreditOrder, Task)> {
        Ok(self
            .write(move |conn| {
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(credit::adjust(
                    &mut tx,
                    &trade,
                    timestamp_ms,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }

    async fn available(&self, user_id: &str) -> Result<Decimal> {
        let user_id = user_id.to_owned();
        Ok(self
            .read(move |conn| {
                let v: Option<String> = conn
                    .prepare_cached(
                        "SELECT available_amount FROM user_credit_account WHERE user_id = ?1",
                    )?
                    .query_row([&user_id], |r| r.get(0))
                    .optional()?;
                Ok(v.map(|s| decimal(&s)).transpose()?.unwrap_or(Decimal::ZERO))
            })
            .await?)
    }
}

#[async_trait]
impl RebateRepository for SqliteStore {
    async fn rebate_configs(&self, behavior_type: &str) -> Result<Vec<DailyBehaviorRebate>> {
        let behavior_type = behavior_type.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT behavior_type, rebate_desc, rebate_type, rebate_config, state
                         FROM daily_behavior_rebate WHERE behavior_type = ?1 ORDER BY id",
                    )?
                    .query_map([&behavior_type], |r| {
                        Ok(DailyBehaviorRebate {
                            behavior_type: r.get(0)?,
                            rebate_desc: r.get(1)?,
                            rebate_type: r.get(2)?,
                            rebate_config: r.get(3)?,
                            state: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn record(
        &self,
        behavior: Behavior,
        configs: Vec<DailyBehaviorRebate>,
        timestamp_ms: i64,
    ) -> Result<Vec<Task>> {
        Ok(self
            .write(move |conn| {
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(rebate::record(
                    &mut tx,
                    &behavior,
                    &configs,
                    timestamp_ms,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }

    async fn has_rebate(&self, user_id: &str, out_business_no: &str) -> Result<bool> {
        let (user_id, obn) = (user_id.to_owned(), out_business_no.to_owned());
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT 1 FROM user_behavior_rebate_order WHERE user_id = ?1 AND out_business_no = ?2 LIMIT 1",
                    )?
                    .query_row(params![user_id, obn], |_| Ok(()))
                    .optional()?
                    .is_some())
            })
            .await?)
    }
}

/// Task times are stamped to the millisecond (`yyyy-MM-dd HH:mm:ss.SSS`, UTC) so that a
/// lease ends when it says, not up to a second early.
const NOW_MS: &str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";

/// A task no sender holds: a failed one whose backoff (or claim) has run out, a new one
/// whose commit is older than the lease (`?1`, as `-N seconds`), or a claimed one whose
/// claim has run out.
fn due() -> String {
    format!(
        "(state = '{TASK_FAIL}' AND (next_attempt_time IS NULL OR next_attempt_time <= {NOW_MS}))
         OR (state = '{TASK_CREATE}' AND next_attempt_time IS NULL
             AND update_time <= strftime('%Y-%m-%d %H:%M:%f', 'now', ?1))
         OR (state = '{TASK_CREATE}' AND next_attempt_time <= {NOW_MS})"
    )
}

const TASK_COLUMNS: &str =
    "user_id, topic, message_id, message, state, attempts, next_attempt_time";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        user_id: r.get(0)?,
        topic: r.get(1)?,
        message_id: r.get(2)?,
        message: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        lease: r.get(6)?,
    })
}

#[async_trait]
impl TaskRepository for SqliteStore {
    async fn task(&self, message_id: &str) -> Result<Option<TaskRow>> {
        let id = message_id.to_owned();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "SELECT {TASK_COLUMNS} FROM task WHERE message_id = ?1"
                    ))?
                    .query_row([&id], task_row)
                    .optional()?)
            })
            .await?)
    }

    async fn due_tasks(&self, lease_secs: u64, limit: usize) -> Result<Vec<TaskRow>> {
        let expired = format!("-{lease_secs} seconds");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "SELECT {TASK_COLUMNS} FROM task WHERE {} ORDER BY id LIMIT ?2",
                        due()
                    ))?
                    .query_map(params![expired, limit], task_row)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn claim(&self, message_id: &str, lease_secs: u64) -> Result<Option<TaskRow>> {
        let id = message_id.to_owned();
        Ok(self
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "UPDATE task SET update_time = {NOW_MS},
                                next_attempt_time = strftime('%Y-%m-%d %H:%M:%f', 'now', ?3)
                         WHERE message_id = ?2 AND ({})
                         RETURNING {TASK_COLUMNS}",
                        due()
                    ))?
                    .query_row(
                        params![
                            format!("-{lease_secs} seconds"),
                            id,
                            format!("+{lease_secs} seconds")
                        ],
                        task_row,
                    )
                    .optional()?)
            })
            .await?)
    }

    async fn record(
        &self,
        message_id: &str,
        lease: Option<&str>,
        outcome: &TaskOutcome,
    ) -> Result<()> {
        let (id, lease) = (message_id.to_owned(), lease.map(str::to_owned));
        let outcome = outcome.clone();
        // Only the holder of the lease may record: `next_attempt_time IS ?2` (NULL for the
        // dispatcher of a task never claimed; the claim's lease end for a claimant).
        Ok(self
            .write(move |conn| {
                match outcome {
                    TaskOutcome::Completed(note) => conn
                        .prepare_cached(&format!(
                            "UPDATE task SET state = '{TASK_COMPLETED}', last_error = ?3, update_time = {NOW_MS}
                             WHERE message_id = ?1 AND next_attempt_time IS ?2 AND state IN ('{TASK_CREATE}', '{TASK_FAIL}')"
                        ))?
                        .execute(params![id, lease, note])?,
                    TaskOutcome::Retry { error, retry_after_secs } => conn
                        .prepare_cached(&format!(
                            "UPDATE task SET state = '{TASK_FAIL}', attempts = attempts + 1, last_error = ?3,
                                    next_attempt_time = strftime('%Y-%m-%d %H:%M:%f', 'now', ?4),
                                    update_time = {NOW_MS}
                             WHERE message_id = ?1 AND next_attempt_time IS ?2 AND state IN ('{TASK_CREATE}', '{TASK_FAIL}')"
                        ))?
                        .execute(params![id, lease, error, format!("+{retry_after_secs} seconds")])?,
                    TaskOutcome::Parked(error) => conn
                        .prepare_cached(&format!(
                            "UPDATE task SET state = '{TASK_PARKED}', attempts = attempts + 1, last_error = ?3,
                                    update_time = {NOW_MS}
                             WHERE message_id = ?1 AND next_attempt_time IS ?2 AND state IN ('{TASK_CREATE}', '{TASK_FAIL}')"
                        ))?
                        .execute(params![id, lease, error])?,
                };
                Ok(())
            })
            .await?)
    }

    async fn parked(&self, limit: usize) -> Result<Vec<ParkedTask>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        &format!("SELECT message_id, user_id, topic, attempts, last_error, update_time FROM task
                         WHERE state = '{TASK_PARKED}' ORDER BY id LIMIT ?1"),
                    )?
                    .query_map([limit], |r| {
                        Ok(ParkedTask {
                            message_id: r.get(0)?,
                            user_id: r.get(1)?,
                            topic: r.get(2)?,
                            attempts: r.get(3)?,
                            last_error: r.get(4)?,
                            update_time: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn requeue(&self, message_id: &str) -> Result<bool> {
        let id = message_id.to_owned();
        Ok(self
            .write(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "UPDATE task SET state = '{TASK_FAIL}', attempts = 0, next_attempt_time = NULL,
                                update_time = {NOW_MS}
                         WHERE message_id = ?1 AND state = '{TASK_PARKED}'"
                    ))?
                    .execute([id])?
                    == 1)
            })
            .await?)
    }
}

impl SqliteStore {
    /// Rows per task state (for tests and metrics).
    pub async fn task_states(&self) -> Result<Vec<(String, i64)>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT state, COUNT(*) FROM task GROUP BY state ORDER BY state",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }
}
