//! Behaviour rebates on the user databases: rebate orders and their tasks.

use super::store::{MysqlStore, MysqlTx, rng};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::rebate::{
    self, Behavior, DailyBehaviorRebate, RebateOrder, RebateRepository, RebateTx,
};
use big_market_domain::task::Task;

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
        let (behavior, configs) = (&behavior, &configs);
        self.in_user_tx(&behavior.user_id, |mut tx| async move {
            let r = rebate::record(&mut tx, behavior, configs, timestamp_ms, &mut rng()).await;
            (tx, r)
        })
        .await
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

impl RebateTx for MysqlTx {
    async fn insert_rebate_order(&mut self, o: &mut RebateOrder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_behavior_rebate_order{sfx} (user_id, order_id, behavior_type,
                 rebate_desc, rebate_type, rebate_config, out_business_no, biz_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row = o.clone();
        self.insert_once(
            &mut o.order_id,
            "uq_biz_id",
            || format!("rebate {} was already recorded", row.biz_id),
            |id| {
                sqlx::query(&sql)
                    .bind(&row.user_id)
                    .bind(id)
                    .bind(&row.behavior_type)
                    .bind(&row.rebate_desc)
                    .bind(&row.rebate_type)
                    .bind(&row.rebate_config)
                    .bind(&row.out_business_no)
                    .bind(&row.biz_id)
            },
        )
        .await
    }
}
