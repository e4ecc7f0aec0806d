//! The operator's back office: views that span users visit every shard.

use super::activity::{RAFFLE_ORDER_COLUMNS, raffle_order};
use super::store::{MysqlStore, datetime, limit_arg};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::{RaffleActivityStage, UserRaffleOrder};
use big_market_domain::erp::{CreditLedgerLine, ErpRepository};
use rust_decimal::Decimal;

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
                .all_on(&shard.pool, sqlx::query_as(&sql).bind(limit_arg(limit)))
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
            .all_on(
                &shard.pool,
                sqlx::query_as(&sql).bind(user_id).bind(limit_arg(limit)),
            )
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
            .all_on(
                &shard.pool,
                sqlx::query_as(&sql).bind(user_id).bind(limit_arg(limit)),
            )
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
