//! Strategy repository of the embedded store: configuration rows, draw counts and the
//! strategy-level raffle with award stock taken in the same transaction.

use super::activity::{SqliteTx, account, day_account};
use super::{SqliteStore, StoreError, datetime, decimal};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::{QuotaRows, quota};
use big_market_domain::award::Award;
use big_market_domain::strategy::tree::{RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use big_market_domain::strategy::{
    AssembledStrategy, DrawCounts, RaffleAward, Strategy, StrategyAward, StrategyConfig,
    StrategyRepository, StrategyRule,
};
use big_market_domain::time::CalendarKeys;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;

/// The `award` table, whole.
pub(super) fn award_table(conn: &Connection) -> rusqlite::Result<Vec<Award>> {
    conn.prepare_cached(
        "SELECT award_id, award_key, award_config, award_desc FROM award ORDER BY id",
    )?
    .query_map([], |r| {
        Ok(Award {
            award_id: r.get(0)?,
            award_key: r.get(1)?,
            award_config: r.get(2)?,
            award_desc: r.get(3)?,
        })
    })?
    .collect()
}

/// Every rule tree with its nodes and lines (trees are shared between strategies).
pub(super) fn rule_trees(
    conn: &Connection,
) -> rusqlite::Result<(Vec<RuleTreeRow>, Vec<RuleTreeNodeRow>, Vec<RuleTreeLineRow>)> {
    let trees = conn
        .prepare_cached(
            "SELECT tree_id, tree_name, tree_desc, tree_node_rule_key FROM rule_tree ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(RuleTreeRow {
                tree_id: r.get(0)?,
                tree_name: r.get(1)?,
                tree_desc: r.get(2)?,
                tree_node_rule_key: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = conn
        .prepare_cached(
            "SELECT tree_id, rule_key, rule_desc, rule_value FROM rule_tree_node ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(RuleTreeNodeRow {
                tree_id: r.get(0)?,
                rule_key: r.get(1)?,
                rule_desc: r.get(2)?,
                rule_value: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let lines = conn
        .prepare_cached(
            "SELECT tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value
             FROM rule_tree_node_line ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(RuleTreeLineRow {
                tree_id: r.get(0)?,
                rule_node_from: r.get(1)?,
                rule_node_to: r.get(2)?,
                rule_limit_type: r.get(3)?,
                rule_limit_value: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((trees, nodes, lines))
}

/// The columns [`strategy_award`] reads, in its order.
pub(super) const STRATEGY_AWARD_COLUMNS: &str = "strategy_id, award_id, award_title, award_subtitle, \
     award_count, award_count_surplus, award_rate, rule_models, sort";

/// A `strategy_award` row selected with [`STRATEGY_AWARD_COLUMNS`].
pub(super) fn strategy_award(r: &rusqlite::Row<'_>) -> Result<StrategyAward, StoreError> {
    let rate: String = r.get(6)?;
    Ok(StrategyAward {
        strategy_id: r.get(0)?,
        award_id: r.get(1)?,
        award_title: r.get(2)?,
        award_subtitle: r.get(3)?,
        award_count: r.get(4)?,
        award_count_surplus: r.get(5)?,
        award_rate: decimal(&rate)?,
        rule_models: r.get(7)?,
        sort: r.get(8)?,
    })
}

/// The columns [`strategy_rule`] reads, in its order.
pub(super) const STRATEGY_RULE_COLUMNS: &str =
    "strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc";

/// A `strategy_rule` row selected with [`STRATEGY_RULE_COLUMNS`].
pub(super) fn strategy_rule(r: &rusqlite::Row<'_>) -> rusqlite::Result<StrategyRule> {
    Ok(StrategyRule {
        strategy_id: r.get(0)?,
        award_id: r.get(1)?,
        rule_type: r.get(2)?,
        rule_model: r.get(3)?,
        rule_value: r.get(4)?,
        rule_desc: r.get(5)?,
    })
}

fn load_config(conn: &Connection, strategy_id: i64) -> Result<StrategyConfig, StoreError> {
    let strategy = conn
        .prepare_cached(
            "SELECT strategy_id, strategy_desc, rule_models FROM strategy WHERE strategy_id = ?1 ORDER BY id LIMIT 1",
        )?
        .query_row([strategy_id], |r| {
            Ok(Strategy {
                strategy_id: r.get(0)?,
                strategy_desc: r.get(1)?,
                rule_models: r.get(2)?,
            })
        })
        .optional()?;
    let mut awards = Vec::new();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {STRATEGY_AWARD_COLUMNS} FROM strategy_award WHERE strategy_id = ?1 ORDER BY sort, id"
    ))?;
    let mut rows = stmt.query([strategy_id])?;
    while let Some(r) = rows.next()? {
        awards.push(strategy_award(r)?);
    }
    let rules = conn
        .prepare_cached(&format!(
            "SELECT {STRATEGY_RULE_COLUMNS} FROM strategy_rule WHERE strategy_id = ?1 ORDER BY id"
        ))?
        .query_map([strategy_id], strategy_rule)?
        .collect::<Result<Vec<_>, _>>()?;
    let (trees, tree_nodes, tree_lines) = rule_trees(conn)?;
    let activity: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT activity_id, begin_date_time, end_date_time FROM raffle_activity WHERE strategy_id = ?1",
        )?
        .query_row([strategy_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let activity_id = activity.as_ref().map(|a| a.0);
    let activity_window = match &activity {
        Some((_, begin, end)) => Some((datetime(begin)?, datetime(end)?)),
        None => None,
    };
    let award_table = award_table(conn)?;
    Ok(StrategyConfig {
        activity_window,
        award_table,
        strategy,
        awards,
        rules,
        trees,
        tree_nodes,
        tree_lines,
        activity_id,
    })
}

#[async_trait]
impl StrategyRepository for SqliteStore {
    async fn strategy_ids(&self) -> Result<Vec<i64>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare("SELECT DISTINCT strategy_id FROM strategy ORDER BY strategy_id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?)
            })
            .await?)
    }

    async fn strategy_config(&self, strategy_id: i64) -> Result<StrategyConfig> {
        Ok(self
            .read(move |conn| load_config(conn, strategy_id))
            .await?)
    }

    async fn draw_counts(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<DrawCounts> {
        let (user_id, keys) = (user_id.to_owned(), keys.clone());
        let rows = self
            .read(move |conn| {
                Ok(QuotaRows {
                    account: account(conn, &user_id, activity_id)?,
                    month: None,
                    day: day_account(conn, &user_id, activity_id, &keys.day)?,
                })
            })
            .await?;
        Ok(rows.used())
    }

    async fn award_stock_left(&self, strategy_id: i64) -> Result<HashMap<i32, i64>> {
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare(
                        "SELECT award_id, award_count_surplus FROM strategy_award WHERE strategy_id = ?1",
                    )?
                    .query_map(params![strategy_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<HashMap<i32, i64>, _>>()?)
            })
            .await?)
    }

    async fn raffle(
        &self,
        strategy: Arc<AssembledStrategy>,
        user_id: String,
        now: jiff::civil::DateTime,
        keys: CalendarKeys,
    ) -> Result<RaffleAward> {
        Ok(self
            .write(move |conn| {
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(quota::strategy_raffle(
                    &mut tx,
                    &strategy,
                    &user_id,
                    now,
                    &keys,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }
}

impl SqliteStore {
    /// `(award_count, award_count_surplus)` of one strategy award, for checks and tests.
    pub async fn award_stock(&self, strategy_id: i64, award_id: i32) -> Result<(i64, i64)> {
        Ok(self
            .read(move |conn| {
                Ok(conn.query_row(
                    "SELECT award_count, award_count_surplus FROM strategy_award
                     WHERE strategy_id = ?1 AND award_id = ?2",
                    params![strategy_id, award_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await?)
    }

    /// `(stock_count, stock_count_surplus)` of one SKU, for checks and tests.
    pub async fn sku_stock(&self, sku: i64) -> Result<(i64, i64)> {
        Ok(self
            .read(move |conn| {
                Ok(conn.query_row(
                    "SELECT stock_count, stock_count_surplus FROM raffle_activity_sku WHERE sku = ?1",
                    params![sku],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await?)
    }

    /// Sets an award's stock (operator tooling and tests).
    pub async fn set_award_stock(&self, strategy_id: i64, award_id: i32, count: i64) -> Result<()> {
        Ok(self
            .write(move |conn| {
                conn.execute(
                    "UPDATE strategy_award SET award_count = ?3, award_count_surplus = ?3,
                            update_time = CURRENT_TIMESTAMP
                     WHERE strategy_id = ?1 AND award_id = ?2",
                    params![strategy_id, award_id, count],
                )?;
                Ok(())
            })
            .await?)
    }
}
