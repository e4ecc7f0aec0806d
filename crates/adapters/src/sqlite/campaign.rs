//! Campaign documents on the embedded store: the whole configuration read and a plan
//! written inside one writer transaction (the single writer also makes the stock guards
//! exact: no draw runs between the read and the write), and the version table.

use super::activity::stage_row;
use super::strategy::{
    STRATEGY_AWARD_COLUMNS, STRATEGY_RULE_COLUMNS, award_table, rule_trees, strategy_award,
    strategy_rule,
};
use super::{SqliteStore, StoreError, datetime, decimal};
use async_trait::async_trait;
use big_market_domain::activity::{RaffleActivity, RaffleActivityCount, RaffleActivitySku};
use big_market_domain::campaign::{
    Applied, CampaignDocument, CampaignKey, CampaignRepository, CampaignTx, ConfigRows, Finding,
    NewVersion, Plan, VersionInfo, apply_in,
};
use big_market_domain::rebate::DailyBehaviorRebate;
use big_market_domain::strategy::Strategy;
use big_market_domain::time::format_datetime;
use big_market_domain::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

/// Every configuration row, in table order.
pub(super) fn config_rows(conn: &Connection) -> Result<ConfigRows, StoreError> {
    let awards = award_table(conn)?;
    let strategies = conn
        .prepare("SELECT strategy_id, strategy_desc, rule_models FROM strategy ORDER BY id")?
        .query_map([], |r| {
            Ok(Strategy {
                strategy_id: r.get(0)?,
                strategy_desc: r.get(1)?,
                rule_models: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut strategy_awards = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT {STRATEGY_AWARD_COLUMNS} FROM strategy_award ORDER BY id"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        strategy_awards.push(strategy_award(r)?);
    }
    let strategy_rules = conn
        .prepare(&format!(
            "SELECT {STRATEGY_RULE_COLUMNS} FROM strategy_rule ORDER BY id"
        ))?
        .query_map([], strategy_rule)?
        .collect::<Result<Vec<_>, _>>()?;
    let (rule_trees, rule_tree_nodes, rule_tree_lines) = rule_trees(conn)?;
    type ActivityRow = (i64, String, String, String, String, i64, String);
    let raw: Vec<ActivityRow> = conn
        .prepare(
            "SELECT activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state
             FROM raffle_activity ORDER BY id",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let activities = raw
        .into_iter()
        .map(
            |(activity_id, activity_name, activity_desc, b, e, strategy_id, state)| {
                Ok(RaffleActivity {
                    activity_id,
                    activity_name,
                    activity_desc,
                    begin_date_time: datetime(&b)?,
                    end_date_time: datetime(&e)?,
                    strategy_id,
                    state,
                })
            },
        )
        .collect::<Result<Vec<_>, StoreError>>()?;
    let activity_counts = conn
        .prepare(
            "SELECT activity_count_id, total_count, day_count, month_count FROM raffle_activity_count ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(RaffleActivityCount {
                activity_count_id: r.get(0)?,
                total_count: r.get(1)?,
                day_count: r.get(2)?,
                month_count: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut activity_skus = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount
         FROM raffle_activity_sku ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let amount: String = r.get(5)?;
        activity_skus.push(RaffleActivitySku {
            sku: r.get(0)?,
            activity_id: r.get(1)?,
            activity_count_id: r.get(2)?,
            stock_count: r.get(3)?,
            stock_count_surplus: r.get(4)?,
            product_amount: decimal(&amount)?,
        });
    }
    let rebates = conn
        .prepare(
            "SELECT behavior_type, rebate_desc, rebate_type, rebate_config, state
             FROM daily_behavior_rebate ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(DailyBehaviorRebate {
                behavior_type: r.get(0)?,
                rebate_desc: r.get(1)?,
                rebate_type: r.get(2)?,
                rebate_config: r.get(3)?,
                state: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let stages = conn
        .prepare(
            "SELECT id, channel, source, activity_id, state FROM raffle_activity_stage ORDER BY id",
        )?
        .query_map([], stage_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConfigRows {
        awards,
        strategies,
        strategy_awards,
        strategy_rules,
        rule_trees,
        rule_tree_nodes,
        rule_tree_lines,
        activities,
        activity_counts,
        activity_skus,
        rebates,
        stages,
    })
}

fn below_granted(what: String) -> StoreError {
    StoreError::Domain(Error::illegal(format!(
        "{what}: the new stock is below what was already granted"
    )))
}

/// Writes `plan`; every statement in the caller's transaction.
pub(super) fn write_plan(conn: &Connection, p: &Plan) -> Result<(), StoreError> {
    if let Some(c) = &p.strategy {
        let s = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (?1, ?2, ?3)",
                params![s.strategy_id, s.strategy_desc, s.rule_models],
            )?;
        } else {
            conn.execute(
                "UPDATE strategy SET strategy_desc = ?2, rule_models = ?3, update_time = CURRENT_TIMESTAMP
                 WHERE strategy_id = ?1",
                params![s.strategy_id, s.strategy_desc, s.rule_models],
            )?;
        }
    }
    for c in &p.awards {
        let a = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO award (award_id, award_key, award_config, award_desc) VALUES (?1, ?2, ?3, ?4)",
                params![a.award_id, a.award_key, a.award_config, a.award_desc],
            )?;
        } else {
            conn.execute(
                "UPDATE award SET award_key = ?2, award_config = ?3, award_desc = ?4, update_time = CURRENT_TIMESTAMP
                 WHERE award_id = ?1",
                params![a.award_id, a.award_key, a.award_config, a.award_desc],
            )?;
        }
    }
    for c in &p.strategy_awards {
        let a = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO strategy_award (strategy_id, award_id, award_title, award_subtitle, award_count,
                     award_count_surplus, award_rate, rule_models, sort)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8)",
                params![
                    a.strategy_id,
                    a.award_id,
                    a.award_title,
                    a.award_subtitle,
                    a.award_count,
                    a.award_rate.to_string(),
                    a.rule_models,
                    a.sort
                ],
            )?;
        } else {
            let changed = conn.execute(
                "UPDATE strategy_award SET award_title = ?3, award_subtitle = ?4, award_count = ?5,
                     award_count_surplus = award_count_surplus + ?6, award_rate = ?7, rule_models = ?8,
                     sort = ?9, update_time = CURRENT_TIMESTAMP
                 WHERE strategy_id = ?1 AND award_id = ?2 AND award_count_surplus + ?6 >= 0",
                params![
                    a.strategy_id,
                    a.award_id,
                    a.award_title,
                    a.award_subtitle,
                    a.award_count,
                    c.delta,
                    a.award_rate.to_string(),
                    a.rule_models,
                    a.sort
                ],
            )?;
            if changed == 0 {
                return Err(below_granted(format!("award {}", a.award_id)));
            }
        }
    }
    for award_id in &p.removed_strategy_awards {
        conn.execute(
            "DELETE FROM strategy_award WHERE strategy_id = ?1 AND award_id = ?2",
            params![p.strategy_id, award_id],
        )?;
    }
    for c in &p.rules {
        let r = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO strategy_rule (strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.strategy_id, r.award_id, r.rule_type, r.rule_model, r.rule_value, r.rule_desc],
            )?;
        } else {
            conn.execute(
                "UPDATE strategy_rule SET award_id = ?2, rule_type = ?3, rule_value = ?5, rule_desc = ?6,
                     update_time = CURRENT_TIMESTAMP
                 WHERE strategy_id = ?1 AND rule_model = ?4",
                params![r.strategy_id, r.award_id, r.rule_type, r.rule_model, r.rule_value, r.rule_desc],
            )?;
        }
    }
    for model in &p.removed_rules {
        conn.execute(
            "DELETE FROM strategy_rule WHERE strategy_id = ?1 AND rule_model = ?2",
            params![p.strategy_id, model],
        )?;
    }
    for t in &p.trees {
        let id = &t.tree.tree_id;
        conn.execute("DELETE FROM rule_tree WHERE tree_id = ?1", [id])?;
        conn.execute("DELETE FROM rule_tree_node WHERE tree_id = ?1", [id])?;
        conn.execute("DELETE FROM rule_tree_node_line WHERE tree_id = ?1", [id])?;
        conn.execute(
            "INSERT INTO rule_tree (tree_id, tree_name, tree_desc, tree_node_rule_key) VALUES (?1, ?2, ?3, ?4)",
            params![id, t.tree.tree_name, t.tree.tree_desc, t.tree.tree_node_rule_key],
        )?;
        for n in &t.nodes {
            conn.execute(
                "INSERT INTO rule_tree_node (tree_id, rule_key, rule_desc, rule_value) VALUES (?1, ?2, ?3, ?4)",
                params![id, n.rule_key, n.rule_desc, n.rule_value],
            )?;
        }
        for l in &t.lines {
            conn.execute(
                "INSERT INTO rule_tree_node_line (tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, l.rule_node_from, l.rule_node_to, l.rule_limit_type, l.rule_limit_value],
            )?;
        }
    }
    if let Some(c) = &p.activity {
        let a = &c.row;
        let (b, e) = (
            format_datetime(&a.begin_date_time),
            format_datetime(&a.end_date_time),
        );
        if c.new {
            conn.execute(
                "INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time,
                     end_date_time, strategy_id, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![a.activity_id, a.activity_name, a.activity_desc, b, e, a.strategy_id, a.state],
            )?;
        } else {
            conn.execute(
                "UPDATE raffle_activity SET activity_name = ?2, activity_desc = ?3, begin_date_time = ?4,
                     end_date_time = ?5, strategy_id = ?6, state = ?7, update_time = CURRENT_TIMESTAMP
                 WHERE activity_id = ?1",
                params![a.activity_id, a.activity_name, a.activity_desc, b, e, a.strategy_id, a.state],
            )?;
        }
    }
    if let Some(stages) = &p.stages
        && let Some(activity_id) = p.activity_id
    {
        conn.execute(
            "DELETE FROM raffle_activity_stage WHERE activity_id = ?1",
            [activity_id],
        )?;
        for s in stages {
            conn.execute(
                "INSERT INTO raffle_activity_stage (channel, source, activity_id, state) VALUES (?1, ?2, ?3, ?4)",
                params![s.channel, s.source, s.activity_id, s.state],
            )?;
        }
    }
    for c in &p.counts {
        let n = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
                 VALUES (?1, ?2, ?3, ?4)",
                params![n.activity_count_id, n.total_count, n.day_count, n.month_count],
            )?;
        } else {
            conn.execute(
                "UPDATE raffle_activity_count SET total_count = ?2, day_count = ?3, month_count = ?4,
                     update_time = CURRENT_TIMESTAMP WHERE activity_count_id = ?1",
                params![n.activity_count_id, n.total_count, n.day_count, n.month_count],
            )?;
        }
    }
    for c in &p.skus {
        let s = &c.row;
        if c.new {
            conn.execute(
                "INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count,
                     stock_count_surplus, product_amount)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![
                    s.sku,
                    s.activity_id,
                    s.activity_count_id,
                    s.stock_count,
                    s.product_amount.to_string()
                ],
            )?;
        } else {
            let changed = conn.execute(
                "UPDATE raffle_activity_sku SET activity_id = ?2, activity_count_id = ?3, stock_count = ?4,
                     stock_count_surplus = stock_count_surplus + ?5, product_amount = ?6,
                     update_time = CURRENT_TIMESTAMP
                 WHERE sku = ?1 AND stock_count_surplus + ?5 >= 0",
                params![
                    s.sku,
                    s.activity_id,
                    s.activity_count_id,
                    s.stock_count,
                    c.delta,
                    s.product_amount.to_string()
                ],
            )?;
            if changed == 0 {
                return Err(below_granted(format!("SKU {}", s.sku)));
            }
        }
    }
    for sku in &p.removed_skus {
        conn.execute("DELETE FROM raffle_activity_sku WHERE sku = ?1", [sku])?;
    }
    if let Some((configs, rows)) = &p.rebates {
        for c in configs {
            conn.execute(
                "DELETE FROM daily_behavior_rebate WHERE rebate_type = 'sku' AND rebate_config = ?1",
                [c],
            )?;
        }
        for r in rows {
            conn.execute(
                "INSERT INTO daily_behavior_rebate (behavior_type, rebate_desc, rebate_type, rebate_config, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.behavior_type, r.rebate_desc, r.rebate_type, r.rebate_config, r.state],
            )?;
        }
    }
    Ok(())
}

/// The unit of work of an apply on the writer connection.
struct Tx<'a> {
    conn: &'a Connection,
}

impl CampaignTx for Tx<'_> {
    async fn config_rows(&mut self) -> Result<ConfigRows> {
        Ok(config_rows(self.conn)?)
    }

    async fn awards_with_records(&mut self, strategy_id: i64) -> Result<HashSet<i32>> {
        Ok(award_ids_with_records(self.conn, strategy_id)?)
    }

    async fn write(&mut self, plan: &Plan) -> Result<()> {
        Ok(write_plan(self.conn, plan)?)
    }

    async fn latest_version(&mut self, key: CampaignKey) -> Result<i64> {
        let (kind, id) = key.parts();
        Ok(self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM campaign_version WHERE campaign_type = ?1 AND campaign_id = ?2",
                params![kind, id],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?)
    }

    async fn insert_version(&mut self, v: &NewVersion) -> Result<()> {
        let (kind, id) = v.key.parts();
        self.conn
            .execute(
                "INSERT INTO campaign_version (campaign_type, campaign_id, version, document, author, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![kind, id, v.version, v.document, v.author, v.summary],
            )
            .map_err(StoreError::from)?;
        Ok(())
    }
}

fn award_ids_with_records(conn: &Connection, strategy_id: i64) -> Result<HashSet<i32>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT DISTINCT award_id FROM user_award_record WHERE strategy_id = ?1")?
        .query_map([strategy_id], |r| r.get(0))?
        .collect::<Result<HashSet<i32>, _>>()?)
}

#[async_trait]
impl CampaignRepository for SqliteStore {
    async fn config_rows(&self) -> Result<ConfigRows> {
        Ok(self.read(config_rows).await?)
    }

    async fn awards_with_records(&self, strategy_id: i64) -> Result<HashSet<i32>> {
        Ok(self
            .read(move |conn| award_ids_with_records(conn, strategy_id))
            .await?)
    }

    async fn apply(
        &self,
        doc: CampaignDocument,
        author: String,
        note: Option<String>,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>> {
        Ok(self
            .write(move |conn| {
                let mut tx = Tx { conn };
                // Ready at once: every call of the unit of work is synchronous here.
                Ok(pollster::block_on(apply_in(
                    &mut tx,
                    &doc,
                    &author,
                    note.as_deref(),
                ))?)
            })
            .await?)
    }

    async fn versions(&self, key: CampaignKey) -> Result<Vec<VersionInfo>> {
        let (kind, id) = key.parts();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare(
                        "SELECT version, create_time, author, summary FROM campaign_version
                         WHERE campaign_type = ?1 AND campaign_id = ?2 ORDER BY version DESC",
                    )?
                    .query_map(params![kind, id], |r| {
                        Ok(VersionInfo {
                            version: r.get(0)?,
                            create_time: r.get(1)?,
                            author: r.get(2)?,
                            summary: r.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn version_document(&self, key: CampaignKey, version: i64) -> Result<Option<String>> {
        let (kind, id) = key.parts();
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT document FROM campaign_version
                         WHERE campaign_type = ?1 AND campaign_id = ?2 AND version = ?3",
                        params![kind, id, version],
                        |r| r.get(0),
                    )
                    .optional()?)
            })
            .await?)
    }

    async fn latest_versions(&self) -> Result<Vec<(CampaignKey, i64)>> {
        Ok(self
            .read(|conn| {
                let rows: Vec<(String, i64, i64)> = conn
                    .prepare(
                        "SELECT campaign_type, campaign_id, MAX(version) FROM campaign_version
                         GROUP BY campaign_type, campaign_id",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
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
            })
            .await?)
    }
}
