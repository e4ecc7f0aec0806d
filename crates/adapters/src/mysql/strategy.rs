//! The strategy repository: configuration from the config database, draw counts from the
//! user's shard, and the strategy-level raffle in a transaction on it.

use super::activity::{Lock, read_quota_rows};
use super::store::{MysqlStore, rng};
use crate::redis_store::StockKey;
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::quota::{self};
use big_market_domain::strategy::{
    AssembledStrategy, DrawCounts, RaffleAward, StrategyConfig, StrategyRepository,
};
use big_market_domain::time::CalendarKeys;
use std::collections::HashMap;
use std::sync::Arc;

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

    async fn award_stock_left(&self, strategy_id: i64) -> Result<HashMap<i32, i64>> {
        let cfg = self.cfg();
        let sql = format!(
            "SELECT award_id, award_count_surplus FROM {cfg}.strategy_award WHERE strategy_id = ?"
        );
        let rows: Vec<(i32, i64)> = self.all(sqlx::query_as(&sql).bind(strategy_id)).await?;
        let mut left = HashMap::new();
        for (award_id, surplus) in rows {
            // With Redis the counter is where draws take stock; SQL follows by write-back.
            let counted = match self.redis_stock() {
                Some(redis) => {
                    redis
                        .surplus(StockKey::Award {
                            strategy_id,
                            award_id,
                        })
                        .await?
                }
                None => None,
            };
            left.insert(award_id, counted.unwrap_or(surplus));
        }
        Ok(left)
    }

    async fn draw_counts(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<DrawCounts> {
        let shard = self.shard(user_id);
        let mut conn = shard.pool.acquire().await.map_err(super::store::sql)?;
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
        now: jiff::civil::DateTime,
        keys: CalendarKeys,
    ) -> Result<RaffleAward> {
        let (strategy, user, keys) = (&strategy, &user_id, &keys);
        self.in_user_tx(user, |mut tx| async move {
            let r = quota::strategy_raffle(&mut tx, strategy, user, now, keys, &mut rng()).await;
            (tx, r)
        })
        .await
    }
}
