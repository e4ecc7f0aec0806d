//! Reads and operator writes of the config database (`big_market`): strategies, rule
//! trees, activities, SKUs, awards, rebate configuration, stages and dynamic config.
//! Everything here is shared by all users, so it never runs on a user's shard.

use super::store::{MysqlStore, datetime, sql};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::{
    ActivityConfig, RaffleActivity, RaffleActivityCount, RaffleActivitySku, RaffleActivityStage,
};
use big_market_domain::award::Award;
use big_market_domain::dcc::DccRepository;
use big_market_domain::rebate::DailyBehaviorRebate;
use big_market_domain::strategy::tree::{RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use big_market_domain::strategy::{Strategy, StrategyAward, StrategyConfig, StrategyRule};
use rust_decimal::Decimal;
use sqlx::MySqlPool;
use sqlx::mysql::MySqlRow;

impl MysqlStore {
    /// Runs a read on the config database's pool, outside any transaction.
    pub(super) async fn all<O>(
        &self,
        q: sqlx::query::QueryAs<'_, sqlx::MySql, O, sqlx::mysql::MySqlArguments>,
    ) -> Result<Vec<O>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, MySqlRow>,
    {
        self.all_on(self.pool(), q).await
    }

    /// As [`MysqlStore::all`], for at most one row.
    pub(super) async fn one<O>(
        &self,
        q: sqlx::query::QueryAs<'_, sqlx::MySql, O, sqlx::mysql::MySqlArguments>,
    ) -> Result<Option<O>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, MySqlRow>,
    {
        self.one_on(self.pool(), q).await
    }

    /// Runs a statement on the config database's pool; the rows it matched.
    pub(super) async fn run(
        &self,
        q: sqlx::query::Query<'_, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    ) -> Result<u64> {
        self.run_on(self.pool(), q).await
    }

    /// As [`MysqlStore::all`] on `pool` (a user database's server: [`super::store::Shard::pool`]).
    pub(super) async fn all_on<O>(
        &self,
        pool: &MySqlPool,
        q: sqlx::query::QueryAs<'_, sqlx::MySql, O, sqlx::mysql::MySqlArguments>,
    ) -> Result<Vec<O>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, MySqlRow>,
    {
        q.fetch_all(pool).await.map_err(sql)
    }

    /// As [`MysqlStore::one`] on `pool`.
    pub(super) async fn one_on<O>(
        &self,
        pool: &MySqlPool,
        q: sqlx::query::QueryAs<'_, sqlx::MySql, O, sqlx::mysql::MySqlArguments>,
    ) -> Result<Option<O>>
    where
        O: Send + Unpin + for<'r> sqlx::FromRow<'r, MySqlRow>,
    {
        q.fetch_optional(pool).await.map_err(sql)
    }

    /// As [`MysqlStore::run`] on `pool`.
    pub(super) async fn run_on(
        &self,
        pool: &MySqlPool,
        q: sqlx::query::Query<'_, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    ) -> Result<u64> {
        Ok(q.execute(pool).await.map_err(sql)?.rows_affected())
    }

    pub(super) async fn strategy_ids(&self) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT DISTINCT strategy_id FROM {cfg}.strategy ORDER BY strategy_id",
            cfg = self.cfg()
        );
        let rows: Vec<(i64,)> = self.all(sqlx::query_as(&sql)).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The armory input of one strategy.
    pub(super) async fn load_strategy(&self, strategy_id: i64) -> Result<StrategyConfig> {
        let cfg = self.cfg();
        let sql = format!(
            "SELECT strategy_id, strategy_desc, rule_models FROM {cfg}.strategy
             WHERE strategy_id = ? ORDER BY id LIMIT 1"
        );
        let strategy: Option<(i64, String, Option<String>)> =
            self.one(sqlx::query_as(&sql).bind(strategy_id)).await?;
        let sql = format!(
            "SELECT strategy_id, award_id, award_title, award_subtitle, award_count,
                    award_count_surplus, award_rate, rule_models, sort
             FROM {cfg}.strategy_award WHERE strategy_id = ? ORDER BY sort, id"
        );
        type AwardRow = (
            i64,
            i32,
            String,
            Option<String>,
            i64,
            i64,
            Decimal,
            Option<String>,
            i32,
        );
        let awards: Vec<AwardRow> = self.all(sqlx::query_as(&sql).bind(strategy_id)).await?;
        // `rule_type` is `tinyint(1)`, which the driver reports as a boolean.
        let sql = format!(
            "SELECT strategy_id, award_id, CAST(rule_type AS SIGNED), rule_model, rule_value, rule_desc
             FROM {cfg}.strategy_rule WHERE strategy_id = ? ORDER BY id"
        );
        type RuleRow = (i64, Option<i32>, i64, String, String, String);
        let rules: Vec<RuleRow> = self.all(sqlx::query_as(&sql).bind(strategy_id)).await?;
        let sql = format!(
            "SELECT tree_id, tree_name, tree_desc, tree_node_rule_key FROM {cfg}.rule_tree ORDER BY id"
        );
        let trees: Vec<(String, String, Option<String>, String)> =
            self.all(sqlx::query_as(&sql)).await?;
        let sql = format!(
            "SELECT tree_id, rule_key, rule_desc, rule_value FROM {cfg}.rule_tree_node ORDER BY id"
        );
        let nodes: Vec<(String, String, String, Option<String>)> =
            self.all(sqlx::query_as(&sql)).await?;
        let sql = format!(
            "SELECT tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value
             FROM {cfg}.rule_tree_node_line ORDER BY id"
        );
        let lines: Vec<(String, String, String, String, String)> =
            self.all(sqlx::query_as(&sql)).await?;
        let sql = format!(
            "SELECT activity_id, DATE_FORMAT(begin_date_time, '%Y-%m-%d %H:%i:%s'),
                    DATE_FORMAT(end_date_time, '%Y-%m-%d %H:%i:%s')
             FROM {cfg}.raffle_activity WHERE strategy_id = ? ORDER BY id LIMIT 1"
        );
        let activity: Option<(i64, String, String)> =
            self.one(sqlx::query_as(&sql).bind(strategy_id)).await?;
        let activity_window = match &activity {
            Some((_, begin, end)) => Some((datetime(begin)?, datetime(end)?)),
            None => None,
        };
        let sql = format!(
            "SELECT award_id, award_key, award_config, award_desc FROM {cfg}.award ORDER BY id"
        );
        let award_table: Vec<(i32, String, String, String)> =
            self.all(sqlx::query_as(&sql)).await?;
        Ok(StrategyConfig {
            award_table: award_table
                .into_iter()
                .map(|(award_id, award_key, award_config, award_desc)| Award {
                    award_id,
                    award_key,
                    award_config,
                    award_desc,
                })
                .collect(),
            strategy: strategy.map(|s| Strategy {
                strategy_id: s.0,
                strategy_desc: s.1,
                rule_models: s.2,
            }),
            awards: awards
                .into_iter()
                .map(|a| StrategyAward {
                    strategy_id: a.0,
                    award_id: a.1,
                    award_title: a.2,
                    award_subtitle: a.3,
                    award_count: a.4,
                    award_count_surplus: a.5,
                    award_rate: a.6,
                    rule_models: a.7,
                    sort: a.8,
                })
                .collect(),
            rules: rules
                .into_iter()
                .map(|r| StrategyRule {
                    strategy_id: r.0,
                    award_id: r.1,
                    rule_type: i32::try_from(r.2).unwrap_or_default(),
                    rule_model: r.3,
                    rule_value: r.4,
                    rule_desc: r.5,
                })
                .collect(),
            trees: trees
                .into_iter()
                .map(|t| RuleTreeRow {
                    tree_id: t.0,
                    tree_name: t.1,
                    tree_desc: t.2,
                    tree_node_rule_key: t.3,
                })
                .collect(),
            tree_nodes: nodes
                .into_iter()
                .map(|n| RuleTreeNodeRow {
                    tree_id: n.0,
                    rule_key: n.1,
                    rule_desc: n.2,
                    rule_value: n.3,
                })
                .collect(),
            tree_lines: lines
                .into_iter()
                .map(|l| RuleTreeLineRow {
                    tree_id: l.0,
                    rule_node_from: l.1,
                    rule_node_to: l.2,
                    rule_limit_type: l.3,
                    rule_limit_value: l.4,
                })
                .collect(),
            activity_id: activity.map(|a| a.0),
            activity_window,
        })
    }

    pub(super) async fn activity_ids(&self) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT activity_id FROM {cfg}.raffle_activity ORDER BY activity_id",
            cfg = self.cfg()
        );
        let rows: Vec<(i64,)> = self.all(sqlx::query_as(&sql)).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The SKUs of an activity with their counts, surplus as stored now.
    pub(super) async fn sku_rows(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        let sql = format!(
            "SELECT s.sku, s.activity_id, s.activity_count_id, s.stock_count, s.stock_count_surplus,
                    s.product_amount, c.total_count, c.day_count, c.month_count
             FROM {cfg}.raffle_activity_sku s
             JOIN {cfg}.raffle_activity_count c ON c.activity_count_id = s.activity_count_id
             WHERE s.activity_id = ? ORDER BY s.sku",
            cfg = self.cfg()
        );
        type Row = (i64, i64, i64, i64, i64, Decimal, i64, i64, i64);
        let rows: Vec<Row> = self.all(sqlx::query_as(&sql).bind(activity_id)).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    RaffleActivitySku {
                        sku: r.0,
                        activity_id: r.1,
                        activity_count_id: r.2,
                        stock_count: r.3,
                        stock_count_surplus: r.4,
                        product_amount: r.5,
                    },
                    RaffleActivityCount {
                        activity_count_id: r.2,
                        total_count: r.6,
                        day_count: r.7,
                        month_count: r.8,
                    },
                )
            })
            .collect())
    }

    pub(super) async fn load_activity(&self, activity_id: i64) -> Result<Option<ActivityConfig>> {
        let sql = format!(
            "SELECT activity_id, activity_name, activity_desc,
                    DATE_FORMAT(begin_date_time, '%Y-%m-%d %H:%i:%s'),
                    DATE_FORMAT(end_date_time, '%Y-%m-%d %H:%i:%s'), strategy_id, state
             FROM {cfg}.raffle_activity WHERE activity_id = ? ORDER BY id LIMIT 1",
            cfg = self.cfg()
        );
        type Row = (i64, String, String, String, String, i64, String);
        let row: Option<Row> = self.one(sqlx::query_as(&sql).bind(activity_id)).await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(ActivityConfig {
            activity: RaffleActivity {
                activity_id: r.0,
                activity_name: r.1,
                activity_desc: r.2,
                begin_date_time: datetime(&r.3)?,
                end_date_time: datetime(&r.4)?,
                strategy_id: r.5,
                state: r.6,
            },
            skus: self.sku_rows(activity_id).await?,
        }))
    }

    pub(super) async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT activity_id FROM {cfg}.raffle_activity_sku WHERE sku = ?",
            cfg = self.cfg()
        );
        let row: Option<(i64,)> = self.one(sqlx::query_as(&sql).bind(sku)).await?;
        Ok(row.map(|r| r.0))
    }

    /// Stages by id, ascending or (`newest_first`) descending.
    pub(super) async fn load_stages(&self, newest_first: bool) -> Result<Vec<RaffleActivityStage>> {
        let sql = format!(
            "SELECT CAST(id AS SIGNED), channel, source, activity_id, state
             FROM {cfg}.raffle_activity_stage ORDER BY id {order}",
            cfg = self.cfg(),
            order = if newest_first { "DESC" } else { "ASC" }
        );
        let rows: Vec<StageRow> = self.all(sqlx::query_as(&sql)).await?;
        Ok(rows.into_iter().map(stage).collect())
    }

    pub(super) async fn load_stage(&self, id: i64) -> Result<Option<RaffleActivityStage>> {
        let sql = format!(
            "SELECT CAST(id AS SIGNED), channel, source, activity_id, state
             FROM {cfg}.raffle_activity_stage WHERE id = ?",
            cfg = self.cfg()
        );
        let row: Option<StageRow> = self.one(sqlx::query_as(&sql).bind(id)).await?;
        Ok(row.map(stage))
    }

    pub(super) async fn activate(&self, id: i64) -> Result<bool> {
        let sql = format!(
            "UPDATE {cfg}.raffle_activity_stage SET state = 'active' WHERE id = ?",
            cfg = self.cfg()
        );
        Ok(self.run(sqlx::query(&sql).bind(id)).await? == 1)
    }

    pub(super) async fn load_award(&self, award_id: i32) -> Result<Option<Award>> {
        let sql = format!(
            "SELECT award_id, award_key, award_config, award_desc FROM {cfg}.award
             WHERE award_id = ? ORDER BY id LIMIT 1",
            cfg = self.cfg()
        );
        let row: Option<(i32, String, String, String)> =
            self.one(sqlx::query_as(&sql).bind(award_id)).await?;
        Ok(row.map(|r| Award {
            award_id: r.0,
            award_key: r.1,
            award_config: r.2,
            award_desc: r.3,
        }))
    }

    pub(super) async fn load_rebate_configs(
        &self,
        behavior_type: &str,
    ) -> Result<Vec<DailyBehaviorRebate>> {
        let sql = format!(
            "SELECT behavior_type, rebate_desc, rebate_type, rebate_config, state
             FROM {cfg}.daily_behavior_rebate WHERE behavior_type = ? ORDER BY id",
            cfg = self.cfg()
        );
        let rows: Vec<(String, String, String, String, String)> =
            self.all(sqlx::query_as(&sql).bind(behavior_type)).await?;
        Ok(rows
            .into_iter()
            .map(|r| DailyBehaviorRebate {
                behavior_type: r.0,
                rebate_desc: r.1,
                rebate_type: r.2,
                rebate_config: r.3,
                state: r.4,
            })
            .collect())
    }

    /// `(award_count, award_count_surplus)` of one strategy award, for checks and tests.
    pub async fn award_stock(&self, strategy_id: i64, award_id: i32) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT award_count, award_count_surplus FROM {cfg}.strategy_award
             WHERE strategy_id = ? AND award_id = ?",
            cfg = self.cfg()
        );
        let row: Option<(i64, i64)> = self
            .one(sqlx::query_as(&sql).bind(strategy_id).bind(award_id))
            .await?;
        row.ok_or_else(|| {
            big_market_domain::Error::internal(format!(
                "strategy {strategy_id} has no award {award_id}"
            ))
        })
    }

    /// Sets an award's stock (operator tooling and tests).
    pub async fn set_award_stock(&self, strategy_id: i64, award_id: i32, count: i64) -> Result<()> {
        let sql = format!(
            "UPDATE {cfg}.strategy_award SET award_count = ?, award_count_surplus = ?
             WHERE strategy_id = ? AND award_id = ?",
            cfg = self.cfg()
        );
        self.run(
            sqlx::query(&sql)
                .bind(count)
                .bind(count)
                .bind(strategy_id)
                .bind(award_id),
        )
        .await?;
        let key = crate::redis_store::StockKey::Award {
            strategy_id,
            award_id,
        };
        self.reset_stock(key, count).await
    }

    /// `(stock_count, stock_count_surplus)` of one SKU, for checks and tests.
    pub async fn sku_stock(&self, sku: i64) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT stock_count, stock_count_surplus FROM {cfg}.raffle_activity_sku WHERE sku = ?",
            cfg = self.cfg()
        );
        let row: Option<(i64, i64)> = self.one(sqlx::query_as(&sql).bind(sku)).await?;
        row.ok_or_else(|| big_market_domain::Error::internal(format!("no sku {sku}")))
    }

    /// Sets a SKU's stock (operator tooling and tests).
    pub async fn set_sku_stock(&self, sku: i64, count: i64) -> Result<()> {
        let sql = format!(
            "UPDATE {cfg}.raffle_activity_sku SET stock_count = ?, stock_count_surplus = ? WHERE sku = ?",
            cfg = self.cfg()
        );
        self.run(sqlx::query(&sql).bind(count).bind(count).bind(sku))
            .await?;
        self.reset_stock(crate::redis_store::StockKey::Sku { sku }, count)
            .await
    }
}

type StageRow = (i64, String, String, i64, String);

fn stage(r: StageRow) -> RaffleActivityStage {
    RaffleActivityStage {
        id: r.0,
        channel: r.1,
        source: r.2,
        activity_id: r.3,
        state: r.4,
    }
}

#[async_trait]
impl DccRepository for MysqlStore {
    async fn load_dcc(&self) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT config_key, config_value FROM {cfg}.dcc_config ORDER BY config_key",
            cfg = self.cfg()
        );
        self.all(sqlx::query_as(&sql)).await
    }

    async fn save_dcc(&self, key: &str, value: &str) -> Result<()> {
        let sql = format!(
            "INSERT INTO {cfg}.dcc_config (config_key, config_value) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE config_value = VALUES(config_value)",
            cfg = self.cfg()
        );
        self.run(sqlx::query(&sql).bind(key).bind(value)).await?;
        Ok(())
    }
}
