//! Awards on the user databases: award records (written by the draw, completed by
//! delivery) and the award repository (points prizes, undelivered awards).

use super::group::CreditJob;
use super::store::{MysqlStore, MysqlTx, datetime, duplicate_key, index_dup, limit_arg, rng};
use crate::states::{AWARD_COMPLETED, AWARD_CREATE, TASK_COMPLETED, TASK_FAIL, TASK_PARKED};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::award::{
    self, Award, AwardRecordTx, AwardRecordView, AwardRepository, AwardTx, SendAwardMessage,
    UndeliveredAward, UserAwardRecord,
};
use big_market_domain::time::format_datetime;
use rust_decimal::Decimal;

impl MysqlStore {
    /// A points prize credited in its own transaction on the user's shard.
    pub(super) async fn deliver_credit_now(
        &self,
        message: &SendAwardMessage,
        default_config: &str,
    ) -> Result<Option<Decimal>> {
        self.in_user_tx(&message.user_id, |mut tx| async move {
            let r = award::deliver_credit(&mut tx, message, default_config, &mut rng()).await;
            (tx, r)
        })
        .await
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
        self.in_user_tx(user_id, |mut tx| async move {
            let r = AwardTx::complete_award(&mut tx, user_id, order_id).await;
            (tx, r)
        })
        .await
    }

    async fn award_state(&self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT award_state FROM {db}.user_award_record{sfx} WHERE user_id = ? AND order_id = ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(String,)> = self
            .one_on(
                &shard.pool,
                sqlx::query_as(&sql).bind(user_id).bind(order_id),
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn note_award(&self, user_id: &str, order_id: &str, note: &str) -> Result<()> {
        tracing::warn!(%user_id, %order_id, %note, "award not delivered");
        let shard = self.shard(user_id);
        let sql = format!(
            "UPDATE {db}.user_award_record{sfx} SET delivery_note = ?
             WHERE user_id = ? AND order_id = ? AND award_state = '{AWARD_CREATE}'",
            db = shard.db,
            sfx = shard.sfx
        );
        self.run_on(
            &shard.pool,
            sqlx::query(&sql).bind(note).bind(user_id).bind(order_id),
        )
        .await?;
        Ok(())
    }

    async fn redeliver(&self, user_id: &str, order_id: &str) -> Result<bool> {
        let shard = self.shard(user_id);
        let sql = format!(
            "UPDATE {db}.task SET state = '{TASK_FAIL}', attempts = 0, next_attempt_time = NULL,
                    last_error = 'redelivery requested by an operator', update_time = NOW(3)
             WHERE topic = 'send_award' AND user_id = ?
               AND JSON_UNQUOTE(JSON_EXTRACT(message, '$.data.orderId')) = ?
               AND state IN ('{TASK_COMPLETED}', '{TASK_PARKED}')
               AND EXISTS (SELECT 1 FROM {db}.user_award_record{sfx}
                           WHERE user_id = ? AND order_id = ? AND award_state = '{AWARD_CREATE}')",
            db = shard.db,
            sfx = shard.sfx
        );
        Ok(self
            .run_on(
                &shard.pool,
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
                 FROM {db}.user_award_record{sfx} WHERE award_state = '{AWARD_CREATE}' ORDER BY id LIMIT ?",
                db = shard.db,
                sfx = shard.sfx
            );
            let rows: Vec<(String, String, i32, String, String, Option<String>)> = self
                .all_on(&shard.pool, sqlx::query_as(&sql).bind(limit_arg(limit)))
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
            .all_on(
                &shard.pool,
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

impl AwardTx for MysqlTx {
    async fn award_state(&mut self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT award_state FROM {db}.user_award_record{sfx} WHERE user_id = ? AND order_id = ?",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<(String,)> = self
            .optional(sqlx::query_as(&sql).bind(user_id).bind(order_id))
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn complete_award(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.user_award_record{sfx} SET award_state = '{AWARD_COMPLETED}', delivery_note = NULL
             WHERE user_id = ? AND order_id = ? AND award_state = '{AWARD_CREATE}'",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        Ok(self
            .exec(sqlx::query(&sql).bind(user_id).bind(order_id))
            .await?
            == 1)
    }
}

impl AwardRecordTx for MysqlTx {
    async fn insert_award_record(&mut self, r: &UserAwardRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_award_record{sfx} (user_id, activity_id, strategy_id, order_id,
                 award_id, award_title, award_time, award_state, fair_proof, stock_units)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let units = self.award_units(r.strategy_id, r.award_id);
        let result = sqlx::query(&sql)
            .bind(&r.user_id)
            .bind(r.activity_id)
            .bind(r.strategy_id)
            .bind(&r.order_id)
            .bind(r.award_id)
            .bind(&r.award_title)
            .bind(format_datetime(&r.award_time))
            .bind(&r.award_state)
            .bind(&r.fair_proof)
            .bind(units)
            .execute(&mut *self.tx)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if duplicate_key(&e).is_some() => Err(index_dup(format!(
                "raffle order {} already has an award",
                r.order_id
            ))),
            Err(e) => Err(self.fail(e)),
        }
    }
}
