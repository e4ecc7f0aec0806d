//! Campaign documents on the production backend: the config database read and the plan
//! written in one transaction on `big_market`, applies serialised by a named lock, and
//! stock changes carried to the Redis counters.
//!
//! With Redis stock the counter is what is left to sell (open reservations are already
//! out of it), so a change of the total by Δ is an atomic "add Δ unless it would go
//! below zero" on the counter; the SQL surplus follows (and the write-back job keeps it
//! equal to the counter). If the transaction then fails, the counter changes are undone.

use super::store::{MysqlStore, datetime, sql};
use crate::redis_store::StockKey;
use async_trait::async_trait;
use big_market_domain::activity::{
    RaffleActivity, RaffleActivityCount, RaffleActivitySku, RaffleActivityStage,
};
use big_market_domain::award::Award;
use big_market_domain::campaign::{
    Applied, CampaignDocument, CampaignKey, CampaignRepository, CampaignTx, ConfigRows, Finding,
    NewVersion, Plan, VersionInfo, apply_in,
};
use big_market_domain::rebate::DailyBehaviorRebate;
use big_market_domain::strategy::tree::{RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use big_market_domain::strategy::{Strategy, StrategyAward, StrategyRule};
use big_market_domain::time::format_datetime;
use big_market_domain::{Error, Result};
use rust_decimal::Decimal;
use sqlx::{MySql, Transaction};
use std::collections::HashSet;

/// Seconds an apply waits for another apply to finish.
const LOCK_WAIT_SECS: i64 = 30;

type Conn = sqlx::MySqlConnection;

async fn all<O>(conn: &mut Conn, q: &str) -> Result<Vec<O>>
where
    O: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow>,
{
    sqlx::query_as(q).fetch_all(conn).await.map_err(sql)
}

/// Every configuration row, in table order.
async fn config_rows(conn: &mut Conn, cfg: &str) -> Result<ConfigRows> {
    let awards: Vec<(i32, String, String, String)> = all(
        conn,
        &format!(
            "SELECT award_id, award_key, award_config, award_desc FROM {cfg}.award ORDER BY id"
        ),
    )
    .await?;
    let strategies: Vec<(i64, String, Option<String>)> = all(
        conn,
        &format!("SELECT strategy_id, strategy_desc, rule_models FROM {cfg}.strategy ORDER BY id"),
    )
    .await?;
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
    let strategy_awards: Vec<AwardRow> = all(
        conn,
        &format!(
            "SELECT strategy_id, award_id, award_title, award_subtitle, award_count, award_count_surplus,
                    award_rate, rule_models, sort FROM {cfg}.strategy_award ORDER BY id"
        ),
    )
    .await?;
    // `rule_type` is `tinyint(1)`, which the driver reports as a boolean.
    type RuleRow = (i64, Option<i32>, i64, String, String, String);
    let rules: Vec<RuleRow> = all(
        conn,
        &format!(
            "SELECT strategy_id, award_id, CAST(rule_type AS SIGNED), rule_model, rule_value, rule_desc
             FROM {cfg}.strategy_rule ORDER BY id"
        ),
    )
    .await?;
    let trees: Vec<(String, String, Option<String>, String)> = all(
        conn,
        &format!("SELECT tree_id, tree_name, tree_desc, tree_node_rule_key FROM {cfg}.rule_tree ORDER BY id"),
    )
    .await?;
    let nodes: Vec<(String, String, String, Option<String>)> = all(
        conn,
        &format!(
            "SELECT tree_id, rule_key, rule_desc, rule_value FROM {cfg}.rule_tree_node ORDER BY id"
        ),
    )
    .await?;
    let lines: Vec<(String, String, String, String, String)> = all(
        conn,
        &format!(
            "SELECT tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value
             FROM {cfg}.rule_tree_node_line ORDER BY id"
        ),
    )
    .await?;
    let activities: Vec<(i64, String, String, String, String, i64, String)> = all(
        conn,
        &format!(
            "SELECT activity_id, activity_name, activity_desc,
                    DATE_FORMAT(begin_date_time, '%Y-%m-%d %H:%i:%s'),
                    DATE_FORMAT(end_date_time, '%Y-%m-%d %H:%i:%s'), strategy_id, state
             FROM {cfg}.raffle_activity ORDER BY id"
        ),
    )
    .await?;
    let counts: Vec<(i64, i64, i64, i64)> = all(
        conn,
        &format!(
            "SELECT activity_count_id, total_count, day_count, month_count FROM {cfg}.raffle_activity_count ORDER BY id"
        ),
    )
    .await?;
    let skus: Vec<(i64, i64, i64, i64, i64, Decimal)> = all(
        conn,
        &format!(
            "SELECT sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount
             FROM {cfg}.raffle_activity_sku ORDER BY id"
        ),
    )
    .await?;
    let rebates: Vec<(String, String, String, String, String)> = all(
        conn,
        &format!(
            "SELECT behavior_type, rebate_desc, rebate_type, rebate_config, state
             FROM {cfg}.daily_behavior_rebate ORDER BY id"
        ),
    )
    .await?;
    let stages: Vec<(i64, String, String, i64, String)> = all(
        conn,
        &format!(
            "SELECT CAST(id AS SIGNED), channel, source, activity_id, state FROM {cfg}.raffle_activity_stage ORDER BY id"
        ),
    )
    .await?;
    Ok(ConfigRows {
        awards: awards
            .into_iter()
            .map(|a| Award {
                award_id: a.0,
                award_key: a.1,
                award_config: a.2,
                award_desc: a.3,
            })
            .collect(),
        strategies: strategies
            .into_iter()
            .map(|s| Strategy {
                strategy_id: s.0,
                strategy_desc: s.1,
                rule_models: s.2,
            })
            .collect(),
        strategy_awards: strategy_awards
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
        strategy_rules: rules
            .into_iter()
            .map(|r| StrategyRule {
                strategy_id: r.0,
                award_id: r.1,
                rule_type: i32::try_from(r.2).unwrap_or(0),
                rule_model: r.3,
                rule_value: r.4,
                rule_desc: r.5,
            })
            .collect(),
        rule_trees: trees
            .into_iter()
            .map(|t| RuleTreeRow {
                tree_id: t.0,
                tree_name: t.1,
                tree_desc: t.2,
                tree_node_rule_key: t.3,
            })
            .collect(),
        rule_tree_nodes: nodes
            .into_iter()
            .map(|n| RuleTreeNodeRow {
                tree_id: n.0,
                rule_key: n.1,
                rule_desc: n.2,
                rule_value: n.3,
            })
            .collect(),
        rule_tree_lines: lines
            .into_iter()
            .map(|l| RuleTreeLineRow {
                tree_id: l.0,
                rule_node_from: l.1,
                rule_node_to: l.2,
                rule_limit_type: l.3,
                rule_limit_value: l.4,
            })
            .collect(),
        activities: activities
            .into_iter()
            .map(|a| {
                Ok(RaffleActivity {
                    activity_id: a.0,
                    activity_name: a.1,
                    activity_desc: a.2,
                    begin_date_time: datetime(&a.3)?,
                    end_date_time: datetime(&a.4)?,
                    strategy_id: a.5,
                    state: a.6,
                })
            })
            .collect::<Result<Vec<_>>>()?,
        activity_counts: counts
            .into_iter()
            .map(|c| RaffleActivityCount {
                activity_count_id: c.0,
                total_count: c.1,
                day_count: c.2,
                month_count: c.3,
            })
            .collect(),
        activity_skus: skus
            .into_iter()
            .map(|s| RaffleActivitySku {
                sku: s.0,
                activity_id: s.1,
                activity_count_id: s.2,
                stock_count: s.3,
                stock_count_surplus: s.4,
                product_amount: s.5,
            })
            .collect(),
        rebates: rebates
            .into_iter()
            .map(|r| DailyBehaviorRebate {
                behavior_type: r.0,
                rebate_desc: r.1,
                rebate_type: r.2,
                rebate_config: r.3,
                state: r.4,
            })
            .collect(),
        stages: stages
            .into_iter()
            .map(|s| RaffleActivityStage {
                id: s.0,
                channel: s.1,
                source: s.2,
                activity_id: s.3,
                state: s.4,
            })
            .collect(),
    })
}

/// One apply's transaction on the config database.
struct Tx<'s> {
    store: &'s MysqlStore,
    tx: Transaction<'s, MySql>,
    /// Counter changes made in Redis, undone if the transaction does not commit.
    adjusted: Vec<(StockKey, i64)>,
}

fn below_granted(what: String) -> Error {
    Error::illegal(format!(
        "{what}: the new stock is below what was already granted"
    ))
}

impl Tx<'_> {
    fn cfg(&self) -> &str {
        self.store.cfg()
    }

    async fn exec(
        &mut self,
        q: sqlx::query::Query<'_, MySql, sqlx::mysql::MySqlArguments>,
    ) -> Result<u64> {
        Ok(q.execute(&mut *self.tx).await.map_err(sql)?.rows_affected())
    }

    /// Changes what is left of `key` by `delta`: in Redis when its counter exists
    /// (guarded there), else by the SQL statement's own guard. Whether the SQL surplus
    /// must be guarded (no counter).
    async fn adjust(&mut self, key: StockKey, delta: i64) -> Result<bool> {
        let Some(stock) = self.store.redis_stock() else {
            return Ok(true);
        };
        if delta == 0 {
            return Ok(stock.surplus(key).await?.is_none());
        }
        match stock.adjust(key, delta).await? {
            None => Ok(true),
            Some(true) => {
                self.adjusted.push((key, delta));
                Ok(false)
            }
            Some(false) => Err(below_granted(key.to_string())),
        }
    }

    /// A new stock row: its counter starts from the total (a counter left by a row
    /// removed earlier is replaced).
    async fn start_counter(&mut self, key: StockKey, count: i64) -> Result<()> {
        if let Some(stock) = self.store.redis_stock() {
            stock.reset(key, count).await?;
        }
        Ok(())
    }
}

impl MysqlStore {
    /// Takes back counter changes of an apply that did not commit.
    async fn undo_adjustments(&self, adjusted: Vec<(StockKey, i64)>) {
        let Some(stock) = self.redis_stock() else {
            return;
        };
        for (key, delta) in adjusted {
            if let Err(e) = stock.adjust(key, -delta).await {
                tracing::error!(%key, delta, error = %e, "a campaign's stock change could not be undone in Redis; the sweeper and write-back do not fix this: set the stock again");
            }
        }
    }
}

impl CampaignTx for Tx<'_> {
    async fn config_rows(&mut self) -> Result<ConfigRows> {
        let cfg = self.store.cfg().to_owned();
        config_rows(&mut self.tx, &cfg).await
    }

    async fn awards_with_records(&mut self, strategy_id: i64) -> Result<HashSet<i32>> {
        self.store.award_ids_with_records(strategy_id).await
    }

    async fn write(&mut self, p: &Plan) -> Result<()> {
        let cfg = self.cfg().to_owned();
        if let Some(c) = &p.strategy {
            let s = &c.row;
            let q = if c.new {
                format!(
                    "INSERT INTO {cfg}.strategy (strategy_desc, rule_models, strategy_id) VALUES (?, ?, ?)"
                )
            } else {
                format!(
                    "UPDATE {cfg}.strategy SET strategy_desc = ?, rule_models = ? WHERE strategy_id = ?"
                )
            };
            self.exec(
                sqlx::query(&q)
                    .bind(&s.strategy_desc)
                    .bind(&s.rule_models)
                    .bind(s.strategy_id),
            )
            .await?;
        }
        for c in &p.awards {
            let a = &c.row;
            let q = if c.new {
                format!(
                    "INSERT INTO {cfg}.award (award_key, award_config, award_desc, award_id) VALUES (?, ?, ?, ?)"
                )
            } else {
                format!(
                    "UPDATE {cfg}.award SET award_key = ?, award_config = ?, award_desc = ? WHERE award_id = ?"
                )
            };
            self.exec(
                sqlx::query(&q)
                    .bind(&a.award_key)
                    .bind(&a.award_config)
                    .bind(&a.award_desc)
                    .bind(a.award_id),
            )
            .await?;
        }
        for c in &p.strategy_awards {
            let a = &c.row;
            let key = StockKey::Award {
                strategy_id: a.strategy_id,
                award_id: a.award_id,
            };
            if c.new {
                let q = format!(
                    "INSERT INTO {cfg}.strategy_award (strategy_id, award_id, award_title, award_subtitle,
                         award_count, award_count_surplus, award_rate, rule_models, sort)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(a.strategy_id)
                        .bind(a.award_id)
                        .bind(&a.award_title)
                        .bind(&a.award_subtitle)
                        .bind(a.award_count)
                        .bind(a.award_count)
                        .bind(a.award_rate)
                        .bind(&a.rule_models)
                        .bind(a.sort),
                )
                .await?;
                self.start_counter(key, a.award_count).await?;
                continue;
            }
            let guarded = self.adjust(key, c.delta).await?;
            let q = format!(
                "UPDATE {cfg}.strategy_award SET award_title = ?, award_subtitle = ?, award_count = ?,
                     award_count_surplus = GREATEST(award_count_surplus + ?, 0), award_rate = ?,
                     rule_models = ?, sort = ?
                 WHERE strategy_id = ? AND award_id = ? {guard}",
                guard = if guarded { "AND award_count_surplus + ? >= 0" } else { "AND ? = ?" }
            );
            let mut query = sqlx::query(&q)
                .bind(&a.award_title)
                .bind(&a.award_subtitle)
                .bind(a.award_count)
                .bind(c.delta)
                .bind(a.award_rate)
                .bind(&a.rule_models)
                .bind(a.sort)
                .bind(a.strategy_id)
                .bind(a.award_id)
                .bind(c.delta);
            if !guarded {
                query = query.bind(c.delta);
            }
            if self.exec(query).await? == 0 && guarded {
                return Err(below_granted(format!("award {}", a.award_id)));
            }
        }
        for award_id in &p.removed_strategy_awards {
            let q =
                format!("DELETE FROM {cfg}.strategy_award WHERE strategy_id = ? AND award_id = ?");
            self.exec(sqlx::query(&q).bind(p.strategy_id).bind(award_id))
                .await?;
        }
        for c in &p.rules {
            let r = &c.row;
            let q = if c.new {
                format!(
                    "INSERT INTO {cfg}.strategy_rule (award_id, rule_type, rule_value, rule_desc, strategy_id, rule_model)
                     VALUES (?, ?, ?, ?, ?, ?)"
                )
            } else {
                format!(
                    "UPDATE {cfg}.strategy_rule SET award_id = ?, rule_type = ?, rule_value = ?, rule_desc = ?
                     WHERE strategy_id = ? AND rule_model = ?"
                )
            };
            self.exec(
                sqlx::query(&q)
                    .bind(r.award_id)
                    .bind(r.rule_type)
                    .bind(&r.rule_value)
                    .bind(&r.rule_desc)
                    .bind(r.strategy_id)
                    .bind(&r.rule_model),
            )
            .await?;
        }
        for model in &p.removed_rules {
            let q =
                format!("DELETE FROM {cfg}.strategy_rule WHERE strategy_id = ? AND rule_model = ?");
            self.exec(sqlx::query(&q).bind(p.strategy_id).bind(model))
                .await?;
        }
        for t in &p.trees {
            let id = &t.tree.tree_id;
            for table in ["rule_tree", "rule_tree_node", "rule_tree_node_line"] {
                let q = format!("DELETE FROM {cfg}.{table} WHERE tree_id = ?");
                self.exec(sqlx::query(&q).bind(id)).await?;
            }
            let q = format!(
                "INSERT INTO {cfg}.rule_tree (tree_id, tree_name, tree_desc, tree_node_rule_key) VALUES (?, ?, ?, ?)"
            );
            self.exec(
                sqlx::query(&q)
                    .bind(id)
                    .bind(&t.tree.tree_name)
                    .bind(&t.tree.tree_desc)
                    .bind(&t.tree.tree_node_rule_key),
            )
            .await?;
            for n in &t.nodes {
                let q = format!(
                    "INSERT INTO {cfg}.rule_tree_node (tree_id, rule_key, rule_desc, rule_value) VALUES (?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(id)
                        .bind(&n.rule_key)
                        .bind(&n.rule_desc)
                        .bind(&n.rule_value),
                )
                .await?;
            }
            for l in &t.lines {
                let q = format!(
                    "INSERT INTO {cfg}.rule_tree_node_line (tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value)
                     VALUES (?, ?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(id)
                        .bind(&l.rule_node_from)
                        .bind(&l.rule_node_to)
                        .bind(&l.rule_limit_type)
                        .bind(&l.rule_limit_value),
                )
                .await?;
            }
        }
        if let Some(c) = &p.activity {
            let a = &c.row;
            let q = if c.new {
                format!(
                    "INSERT INTO {cfg}.raffle_activity (activity_name, activity_desc, begin_date_time, end_date_time,
                         strategy_id, state, activity_id) VALUES (?, ?, ?, ?, ?, ?, ?)"
                )
            } else {
                format!(
                    "UPDATE {cfg}.raffle_activity SET activity_name = ?, activity_desc = ?, begin_date_time = ?,
                         end_date_time = ?, strategy_id = ?, state = ? WHERE activity_id = ?"
                )
            };
            self.exec(
                sqlx::query(&q)
                    .bind(&a.activity_name)
                    .bind(&a.activity_desc)
                    .bind(format_datetime(&a.begin_date_time))
                    .bind(format_datetime(&a.end_date_time))
                    .bind(a.strategy_id)
                    .bind(&a.state)
                    .bind(a.activity_id),
            )
            .await?;
        }
        if let (Some(stages), Some(activity_id)) = (&p.stages, p.activity_id) {
            let q = format!("DELETE FROM {cfg}.raffle_activity_stage WHERE activity_id = ?");
            self.exec(sqlx::query(&q).bind(activity_id)).await?;
            for s in stages {
                let q = format!(
                    "INSERT INTO {cfg}.raffle_activity_stage (channel, source, activity_id, state) VALUES (?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(&s.channel)
                        .bind(&s.source)
                        .bind(s.activity_id)
                        .bind(&s.state),
                )
                .await?;
            }
        }
        for c in &p.counts {
            let n = &c.row;
            let q = if c.new {
                format!(
                    "INSERT INTO {cfg}.raffle_activity_count (total_count, day_count, month_count, activity_count_id)
                     VALUES (?, ?, ?, ?)"
                )
            } else {
                format!(
                    "UPDATE {cfg}.raffle_activity_count SET total_count = ?, day_count = ?, month_count = ?
                     WHERE activity_count_id = ?"
                )
            };
            self.exec(
                sqlx::query(&q)
                    .bind(n.total_count)
                    .bind(n.day_count)
                    .bind(n.month_count)
                    .bind(n.activity_count_id),
            )
            .await?;
        }
        for c in &p.skus {
            let s = &c.row;
            let key = StockKey::Sku { sku: s.sku };
            if c.new {
                let q = format!(
                    "INSERT INTO {cfg}.raffle_activity_sku (sku, activity_id, activity_count_id, stock_count,
                         stock_count_surplus, product_amount) VALUES (?, ?, ?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(s.sku)
                        .bind(s.activity_id)
                        .bind(s.activity_count_id)
                        .bind(s.stock_count)
                        .bind(s.stock_count)
                        .bind(s.product_amount),
                )
                .await?;
                self.start_counter(key, s.stock_count).await?;
                continue;
            }
            let guarded = self.adjust(key, c.delta).await?;
            let q = format!(
                "UPDATE {cfg}.raffle_activity_sku SET activity_id = ?, activity_count_id = ?, stock_count = ?,
                     stock_count_surplus = GREATEST(stock_count_surplus + ?, 0), product_amount = ?
                 WHERE sku = ? {guard}",
                guard = if guarded { "AND stock_count_surplus + ? >= 0" } else { "AND ? = ?" }
            );
            let mut query = sqlx::query(&q)
                .bind(s.activity_id)
                .bind(s.activity_count_id)
                .bind(s.stock_count)
                .bind(c.delta)
                .bind(s.product_amount)
                .bind(s.sku)
                .bind(c.delta);
            if !guarded {
                query = query.bind(c.delta);
            }
            if self.exec(query).await? == 0 && guarded {
                return Err(below_granted(format!("SKU {}", s.sku)));
            }
        }
        for sku in &p.removed_skus {
            let q = format!("DELETE FROM {cfg}.raffle_activity_sku WHERE sku = ?");
            self.exec(sqlx::query(&q).bind(sku)).await?;
        }
        if let Some((configs, rows)) = &p.rebates {
            for c in configs {
                let q = format!(
                    "DELETE FROM {cfg}.daily_behavior_rebate WHERE rebate_type = 'sku' AND rebate_config = ?"
                );
                self.exec(sqlx::query(&q).bind(c)).await?;
            }
            for r in rows {
                let q = format!(
                    "INSERT INTO {cfg}.daily_behavior_rebate (behavior_type, rebate_desc, rebate_type, rebate_config, state)
                     VALUES (?, ?, ?, ?, ?)"
                );
                self.exec(
                    sqlx::query(&q)
                        .bind(&r.behavior_type)
                        .bind(&r.rebate_desc)
                        .bind(&r.rebate_type)
                        .bind(&r.rebate_config)
                        .bind(&r.state),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn latest_version(&mut self, key: CampaignKey) -> Result<i64> {
        let (kind, id) = key.parts();
        let q = format!(
            "SELECT CAST(COALESCE(MAX(version), 0) AS SIGNED) FROM {cfg}.campaign_version
             WHERE campaign_type = ? AND campaign_id = ?",
            cfg = self.cfg()
        );
        let (v,): (i64,) = sqlx::query_as(&q)
            .bind(kind)
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(sql)?;
        Ok(v)
    }

    async fn insert_version(&mut self, v: &NewVersion) -> Result<()> {
        let (kind, id) = v.key.parts();
        let q = format!(
            "INSERT INTO {cfg}.campaign_version (campaign_type, campaign_id, version, document, author, summary, create_time)
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP())",
            cfg = self.cfg()
        );
        self.exec(
            sqlx::query(&q)
                .bind(kind)
                .bind(id)
                .bind(v.version)
                .bind(&v.document)
                .bind(&v.author)
                .bind(&v.summary),
        )
        .await?;
        Ok(())
    }
}

impl MysqlStore {
    /// Award ids of a strategy that have award records, over every user database.
    pub(super) async fn award_ids_with_records(&self, strategy_id: i64) -> Result<HashSet<i32>> {
        let mut ids = HashSet::new();
        for shard in self.shards() {
            let q = format!(
                "SELECT DISTINCT award_id FROM {db}.user_award_record{sfx} WHERE strategy_id = ?",
                db = shard.db,
                sfx = shard.sfx
            );
            let rows: Vec<(i32,)> = self
                .all_on(&shard.pool, sqlx::query_as(&q).bind(strategy_id))
                .await?;
            ids.extend(rows.into_iter().map(|r| r.0));
        }
        Ok(ids)
    }

    fn lock_name(&self) -> String {
        format!("{}.campaign_apply", self.cfg())
    }
}

#[async_trait]
impl CampaignRepository for MysqlStore {
    async fn config_rows(&self) -> Result<ConfigRows> {
        // One transaction, so the tables are read at one instant.
        let mut tx = self.pool().begin().await.map_err(sql)?;
        let rows = config_rows(&mut tx, self.cfg()).await;
        let _ = tx.rollback().await;
        rows
    }

    async fn awards_with_records(&self, strategy_id: i64) -> Result<HashSet<i32>> {
        self.award_ids_with_records(strategy_id).await
    }

    async fn apply(
        &self,
        doc: CampaignDocument,
        author: String,
        note: Option<String>,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>> {
        use sqlx::Connection;
        let mut conn = self.pool().acquire().await.map_err(sql)?;
        // Applies run one at a time (each reads every row, then writes its plan); the
        // lock belongs to this connection and is released after the commit.
        let (locked,): (Option<i64>,) = sqlx::query_as("SELECT GET_LOCK(?, ?)")
            .bind(self.lock_name())
            .bind(LOCK_WAIT_SECS)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql)?;
        if locked != Some(1) {
            return Err(Error::biz(
                big_market_domain::ResponseCode::UnError,
                "another campaign apply is still running; try again",
            ));
        }
        let result = async {
            let tx = conn.begin().await.map_err(sql)?;
            let mut unit = Tx {
                store: self,
                tx,
                adjusted: Vec::new(),
            };
            let outcome = apply_in(&mut unit, &doc, &author, note.as_deref()).await;
            let Tx { tx, adjusted, .. } = unit;
            if matches!(outcome, Ok(Ok(_))) {
                if let Err(e) = tx.commit().await {
                    self.undo_adjustments(adjusted).await;
                    return Err(sql(e));
                }
            } else {
                self.undo_adjustments(adjusted).await;
                let _ = tx.rollback().await;
            }
            outcome
        }
        .await;
        let _ = sqlx::query("DO RELEASE_LOCK(?)")
            .bind(self.lock_name())
            .execute(&mut *conn)
            .await;
        result
    }

    async fn versions(&self, key: CampaignKey) -> Result<Vec<VersionInfo>> {
        let (kind, id) = key.parts();
        let q = format!(
            "SELECT CAST(version AS SIGNED), DATE_FORMAT(create_time, '%Y-%m-%d %H:%i:%s'), author, summary
             FROM {cfg}.campaign_version WHERE campaign_type = ? AND campaign_id = ? ORDER BY version DESC",
            cfg = self.cfg()
        );
        let rows: Vec<(i64, String, String, String)> =
            self.all(sqlx::query_as(&q).bind(kind).bind(id)).await?;
        Ok(rows
            .into_iter()
            .map(|r| VersionInfo {
                version: r.0,
                create_time: r.1,
                author: r.2,
                summary: r.3,
            })
            .collect())
    }

    async fn version_document(&self, key: CampaignKey, version: i64) -> Result<Option<String>> {
        let (kind, id) = key.parts();
        let q = format!(
            "SELECT document FROM {cfg}.campaign_version WHERE campaign_type = ? AND campaign_id = ? AND version = ?",
            cfg = self.cfg()
        );
        let row: Option<(String,)> = self
            .one(sqlx::query_as(&q).bind(kind).bind(id).bind(version))
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn latest_versions(&self) -> Result<Vec<(CampaignKey, i64)>> {
        let q = format!(
            "SELECT campaign_type, campaign_id, CAST(MAX(version) AS SIGNED) FROM {cfg}.campaign_version
             GROUP BY campaign_type, campaign_id",
            cfg = self.cfg()
        );
        let rows: Vec<(String, i64, i64)> = self.all(sqlx::query_as(&q)).await?;
        Ok(rows
            .into_iter()
            .map(|(kind, id, v)| {
                let key = if kind == "activity" {
                    CampaignKey::Activity(id)
                } else {
                    CampaignKey::Strategy(id)
                };
                (key, v)
            })
            .collect())
    }
}
