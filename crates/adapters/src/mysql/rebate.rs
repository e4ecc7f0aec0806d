//! Behaviour rebates on the user databases: rebate orders and their tasks.

use super::store::{MysqlStore, MysqlTx, rng};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::id::Inserted;
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
            .one_on(
                &shard.pool,
                sqlx::query_as(&sql).bind(user_id).bind(out_business_no),
            )
            .await?;
        Ok(row.is_some())
    }
}

impl RebateTx for MysqlTx {
    async fn insert_rebate_order(&mut self, o: &RebateOrder) -> Result<Inserted> {
        let sql = format!(
            "INSERT INTO {db}.user_behavior_rebate_order{sfx} (user_id, order_id, behavior_type,
                 rebate_desc, rebate_type, rebate_config, out_business_no, biz_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let q = sqlx::query(&sql)
            .bind(&o.user_id)
            .bind(&o.order_id)
            .bind(&o.behavior_type)
            .bind(&o.rebate_desc)
            .bind(&o.rebate_type)
            .bind(&o.rebate_config)
            .bind(&o.out_business_no)
            .bind(&o.biz_id);
        self.insert_once(
            "uq_biz_id",
            || format!("rebate {} was already recorded", o.biz_id),
            q,
        )
        .await
    }
}
